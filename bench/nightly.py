"""Nightly tier-step benchmark on PostgreSQL (see bench/NIGHTLY_RESULTS.md).

    .venv/bin/python bench/nightly.py --members 1000000 \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_nightly] \
        [--sample 20000] [--seed 20250601] [--fillfactor N]

Creates the database if missing, migrates, truncates member data and builds a synthetic
population with COPY (members plus MemberMonthlyStat rows for February to May 2025, and one
marker FeedBatch per fact feed so no step warns of missing feeds), then in one run:

1. first grading: `tier_recompute` for 2025-03-01 (basis February; everyone INITIAL), then
   the monthly steps for 2025-04-01 and 2025-05-01 (timed, reported, not a goal) so that
   protection counters are real, then VACUUM ANALYZE (the month between runs);
2. THE TIMED TIER STEP: `tier_recompute` for 2025-06-01 (basis May: upgrades, members held
   by protection, downgrades after three months below), checked against `tier_explain` on
   500 members (explained before the step, compared after it, and re-explained);
3. the same date again (idempotent: nothing may change, not even a row version);
4. lifecycle stages graded once for 2025-06-01 (everyone starts NEW), then the whole chain,
   `nightly_run(business_date=2025-06-02)`: an ordinary night;
5. a naive per-member ORM loop over a `--sample` of members (`tier_explain` + `save()`),
   extrapolated linearly to the population;
6. the SQL floor: one hand-written UPDATE grading everyone on the basis month's MADA
   (no protection, no history, no override), rolled back.

Prints a table and the three goals (engine ≤ 20 s, naive/engine ≥ 50×, engine/floor ≤ 3×)
with PASS/FAIL. Progress goes to stderr, the report to stdout. Exit status 1 when the
correctness checks fail. `--fillfactor` is a what-if: the storage parameter of
members_member set before loading (default: PostgreSQL's 100, as the migrations leave it).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import bench_common
from bench_common import ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_nightly"

STAT_MONTHS = [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)]
FIRST_DATE = date(2025, 3, 1)  # basis February: everyone graded for the first time
WARMUP_DATES = [date(2025, 4, 1), date(2025, 5, 1)]  # protection counters build up
STEP_DATE = date(2025, 6, 1)  # basis May: the timed steady-state step
CHAIN_DATE = date(2025, 6, 2)  # the next night: the whole chain
CHECK_SAMPLE = 500

GOAL_SECONDS = 20.0
GOAL_NAIVE_RATIO = 50.0
GOAL_FLOOR_RATIO = 3.0


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- database and population --------------------------------------------------------------------


def django_setup(url: str) -> None:
    os.environ.setdefault("TIER_RECOMPUTE_CHUNKS", "1")
    bench_common.django_setup(url)


def _tier_floor_fen(mada_fen: int) -> int:
    """The threshold (fen) of the default tier a MADA reaches (API.md, "Defaults")."""
    for threshold in (1_000_000_000, 50_000_000, 5_000_000):
        if mada_fen >= threshold:
            return threshold
    return 0


def generate(n: int, seed: int):
    """Yield (member line, [stat lines]) in COPY text format for members 1..n.

    Basis MADA is log-normal (median ≈ 21,000 CNY): ≈ 35 % reach GOLD, ≈ 8 % SUNFLOWER,
    ≈ 0.3 % PRIVATE. Of the members at GOLD or above, ≈ 28 % (≈ 10 % of everyone) fall below
    their tier: since March (downgraded on 2025-06-01), since April or in May only (held by
    protection) or in March only (recovered). ≈ 4 % rise sharply in May (upgrades), ≈ 2 % miss
    April's row, ≈ 3 % join in April or May, ≈ 5 % have no statistics at all.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    days = [(m, (date(m.year + m.month // 12, m.month % 12 + 1, 1) - m).days) for m in STAT_MONTHS]
    epoch = datetime(2015, 1, 1, tzinfo=UTC)
    span_old = int((datetime(2025, 1, 31, tzinfo=UTC) - epoch).total_seconds())
    for i in range(1, n + 1):
        kind = rng.random()
        first = 0  # index into STAT_MONTHS of the first month with statistics
        if kind < 0.05:
            first = None
            if kind < 0.02:  # registered last week, no data yet
                registered = datetime(2025, 5, 20, tzinfo=UTC) + timedelta(
                    seconds=rng.randrange(10 * 86400)
                )
            else:
                registered = epoch + timedelta(seconds=rng.randrange(span_old))
        elif kind < 0.08:
            first = 2 if kind < 0.065 else 3
            registered = datetime(2025, first + 1, 1, tzinfo=UTC) + timedelta(
                seconds=rng.randrange(25 * 86400)
            )
        else:
            registered = epoch + timedelta(seconds=rng.randrange(span_old))
        activity = rng.random()
        if activity < 0.75:
            last_active = (CHAIN_DATE - timedelta(days=rng.randrange(1, 30))).isoformat()
        elif activity < 0.85:
            last_active = (CHAIN_DATE - timedelta(days=rng.randrange(30, 90))).isoformat()
        elif activity < 0.97:
            last_active = (CHAIN_DATE - timedelta(days=rng.randrange(90, 500))).isoformat()
        else:
            last_active = r"\N"
        if last_active != r"\N" and last_active < registered.date().isoformat():
            last_active = registered.date().isoformat()
        credit = "t" if rng.random() < 0.01 else "f"
        member = (
            f"{i}\tM{i:09d}\tBench member {i}\t139{i:08d}\t1101011980{i:08d}\t"
            f"{registered.isoformat()}\tACTIVE\t[]\t{credit}\tNEW\t{last_active}\t0\t0\t"
            f"{now}\t{now}\n"
        )
        stats: list[str] = []
        if first is not None:
            base = 10 ** rng.gauss(4.32, 0.98)  # CNY
            factors = [rng.uniform(0.92, 1.08) for _ in STAT_MONTHS]
            values = [base * f for f in factors]
            missing = set()
            path = rng.random()
            floor = _tier_floor_fen(int(base * 100)) / 100
            if floor > 0 and path < 0.28:
                shape = rng.random()
                if shape < 0.4:
                    below = {1, 2, 3}  # since March: downgraded on 2025-06-01
                elif shape < 0.65:
                    below = {2, 3}  # since April: held, two months below
                elif shape < 0.9:
                    below = {3}  # May only: held, one month below
                else:
                    below = {1}  # March only, recovered
                for j in below:
                    values[j] = floor * rng.uniform(0.2, 0.95)
            elif 0.28 <= path < 0.32:
                values[3] = base * rng.uniform(2.5, 20.0)  # rises in May: upgrade
            elif 0.32 <= path < 0.34:
                missing.add(2)  # no April row: a month at 0
            for j in range(first, len(STAT_MONTHS)):
                if j in missing:
                    continue
                month, n_days = days[j]
                mada_fen = int(values[j] * 100)
                total = mada_fen * n_days + rng.randrange(n_days)
                demand = total * 3 // 10
                time_ = total // 2
                wealth = total - demand - time_
                active = rng.randrange(n_days + 1)
                stats.append(
                    f"{i}\t{month.isoformat()}\t{demand}\t{time_}\t{wealth}\t{total}\t"
                    f"{n_days}\t{active * rng.randrange(1, 40000)}\t{active}\t{active}\n"
                )
        yield member, stats


MEMBER_COLUMNS = (
    "id, member_no, name, phone, id_number, registered_at, status, channels, credit_risk, "
    "lifecycle_stage, last_active_on, points_balance, tier_months_below, created_at, updated_at"
)
STAT_COLUMNS = (
    "member_id, month, demand_day_sum_fen, time_day_sum_fen, wealth_day_sum_fen, "
    "financial_day_sum_fen, asset_days, consumption_amount_fen, consumption_count, active_days"
)


def populate(url: str, n: int, seed: int, fillfactor: int | None = None) -> int:
    """Truncate member data and load n members and their monthly statistics with COPY.

    `fillfactor` (a what-if, off by default) sets the storage parameter of members_member
    before loading; without it the table is reset to PostgreSQL's default (100)."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'member_id' ORDER BY 1"
            )
        ]
        progress(f"truncating members_member, {', '.join(tables)}")
        conn.execute(
            f"TRUNCATE members_member, members_feedbatch, {', '.join(tables)} "
            "RESTART IDENTITY CASCADE"
        )
        if fillfactor is not None:  # otherwise keep what the migrations set
            conn.execute(f"ALTER TABLE members_member SET (fillfactor = {int(fillfactor)})")
        # The data is consistent by construction: skip the per-row FK triggers while loading.
        conn.execute("SET session_replication_role = replica")
        stat_rows = 0
        started = time.perf_counter()
        stat_blocks: list[str] = []  # the statistics follow their members in a second COPY
        with conn.cursor() as cur:
            with cur.copy(f"COPY members_member ({MEMBER_COLUMNS}) FROM STDIN") as copy:
                members: list[str] = []
                stats: list[str] = []
                for index, (member, member_stats) in enumerate(generate(n, seed), start=1):
                    members.append(member)
                    stats.extend(member_stats)
                    if len(members) >= 20_000 or index == n:
                        copy.write("".join(members))
                        stat_blocks.append("".join(stats))
                        stat_rows += len(stats)
                        members.clear()
                        stats.clear()
                    if index % 200_000 == 0:
                        progress(f"  generated {index:,} members")
            progress(f"  COPY members_member: {n:,} rows ({time.perf_counter() - started:.1f} s)")
            started = time.perf_counter()
            with cur.copy(f"COPY members_membermonthlystat ({STAT_COLUMNS}) FROM STDIN") as copy:
                for block in stat_blocks:
                    copy.write(block)
            progress(
                f"  COPY members_membermonthlystat: {stat_rows:,} rows "
                f"({time.perf_counter() - started:.1f} s)"
            )
        conn.execute("SET session_replication_role = DEFAULT")
        # The statistics stand for feeds already imported: one marker batch per fact feed
        # covering every day up to the chain's feed date, so no step warns of missing feeds.
        feed_end = CHAIN_DATE - timedelta(days=1)
        for kind in ("assets", "consumption"):
            conn.execute(
                "INSERT INTO members_feedbatch (kind, file_name, checksum, status, received, "
                "accepted, duplicates, rejected, rows_read, first_date, last_date, error, "
                "started_at, finished_at) VALUES (%s, %s, %s, 'LOADED', %s, %s, 0, 0, %s, %s, "
                "%s, '', now(), now())",
                [kind, f"bench-{kind}.csv", f"bench-{kind}", stat_rows, stat_rows, stat_rows]
                + [STAT_MONTHS[0], feed_end],
            )
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('members_member', 'id'), %s)", [max(n, 1)]
        )
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('members_membermonthlystat', 'id'), "
            "(SELECT COALESCE(MAX(id), 1) FROM members_membermonthlystat))"
        )
        conn.commit()
    vacuum(url, ["members_member", "members_membermonthlystat", *tables])
    return stat_rows


def vacuum(url: str, tables: list[str]) -> None:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in dict.fromkeys(tables):
            conn.execute(f"VACUUM ANALYZE {table}")
    names = ", ".join(dict.fromkeys(tables))
    progress(f"  VACUUM ANALYZE {names} ({time.perf_counter() - started:.1f} s)")


# --- the measured steps --------------------------------------------------------------------------


def timed(label: str, work):
    progress(f"{label} …")
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    progress(f"{label}: {seconds:.2f} s")
    return result, seconds


def tier_distribution() -> dict[str, int]:
    from django.db.models import Count

    from members.models import Member

    rows = Member.objects.values("computed_tier__code").annotate(n=Count("id")).order_by()
    return {row["computed_tier__code"] or "—": row["n"] for row in rows}


def update_counters() -> tuple[int, int] | None:
    """(rows updated, of which HOT) in members_member so far (PostgreSQL 15+ statistics)."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE relname = 'members_member'"
            )
            row = cursor.fetchone()
    except DatabaseError:
        return None
    return (int(row[0]), int(row[1])) if row else None


def hot_detail(before, after) -> str:
    if before is None or after is None:
        return ""
    updated, hot = after[0] - before[0], after[1] - before[1]
    share = f" ({100 * hot / updated:.0f} %)" if updated else ""
    return f"; members_member rows updated {updated:,}, HOT {hot:,}{share}"


def current_xid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")
        return int(cursor.fetchone()[0]) % (1 << 32)


def rows_written_since(xid: int) -> int:
    """Members whose row version was written by a transaction after `xid` (no wraparound in a
    fresh benchmark database)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM members_member WHERE (xmin::text)::bigint > %s", [xid])
        return int(cursor.fetchone()[0])


def explain_many(ids: list[int], business_date: date) -> dict[int, object]:
    from members.models import Member
    from members.tiers import TierPlan, tier_explain

    plan = TierPlan.active(business_date)
    members = Member.objects.filter(pk__in=ids).select_related("computed_tier")
    return {member.pk: tier_explain(member=member, plan=plan) for member in members}


def check_against_explain(expected: dict[int, object], label: str) -> list[str]:
    """Compare the stored tier fields of the sampled members with `tier_explain`'s result."""
    from members.models import Member

    problems = []
    stored = Member.objects.select_related("basis").in_bulk(list(expected))
    for pk, explanation in expected.items():
        member = stored[pk]
        in_force = explanation.override or explanation.computed
        got = (member.computed_tier_id, member.tier_id, member.tier_basis, member.tier_months_below)
        want = (explanation.computed.pk, in_force.pk, explanation.basis, explanation.months_below)
        if got != want:
            problems.append(f"{label}: member {pk} stored {got}, tier_explain says {want}")
    return problems


def naive_loop(ids: list[int], business_date: date) -> int:
    """The per-member way: for each member read its statistics through the ORM, work out the
    tier in Python (`tier_explain`), record a change and save the member. One transaction,
    rolled back, so the population stays as the engine left it."""
    from django.db import transaction

    from members.models import Member, MemberTierBasis, TierChange
    from members.tiers import TierPlan, tier_explain

    plan = TierPlan.active(business_date)
    done = 0
    with transaction.atomic():
        for member in Member.objects.filter(pk__in=ids).order_by("pk").iterator(chunk_size=2000):
            explanation = tier_explain(member=member, plan=plan)
            in_force = explanation.override or explanation.computed
            if in_force.pk != member.tier_id:
                TierChange.objects.create(
                    member=member,
                    from_tier_id=member.tier_id,
                    to_tier=in_force,
                    cause="UPGRADE",
                    business_date=business_date,
                    basis=explanation.basis,
                    months_below=explanation.months_below,
                )
                member.tier_since = business_date
            if explanation.computed.pk != member.computed_tier_id:
                member.computed_since = business_date
            member.tier = in_force
            member.computed_tier = explanation.computed
            member.tier_months_below = explanation.months_below
            member.save()
            MemberTierBasis.objects.update_or_create(
                member=member, defaults={"value": explanation.basis}
            )
            done += 1
            if done % 5000 == 0:
                progress(f"  naive: {done:,}/{len(ids):,} members")
        transaction.set_rollback(True)
    return done


def floor_sql(business_date: date) -> str:
    """ONE statement grading everyone on the basis month's MADA: no protection, no
    history, no override, no credit risk."""
    from members.tiers import TierPlan, basis_month_for
    from portal.periods import days_in

    plan = TierPlan.active(business_date)
    basis = basis_month_for(business_date)
    n_days = days_in(basis)
    whens = " ".join(
        f"WHEN COALESCE((2 * s.financial_day_sum_fen + {n_days}) / {2 * n_days}, 0) "
        f">= {tier.threshold} THEN {tier.pk}"
        for tier in reversed(plan.tiers[1:])
    )
    return f"""
UPDATE members_member SET computed_tier_id = g.tier_id
FROM (
    SELECT m.id AS member_id, CASE {whens} ELSE {plan.tiers[0].pk} END AS tier_id
    FROM members_member m
    LEFT JOIN members_membermonthlystat s ON s.member_id = m.id AND s.month = '{basis}'
) g
WHERE members_member.id = g.member_id
"""


def run_floor(business_date: date) -> tuple[int, float]:
    from django.db import connection, transaction

    statement = floor_sql(business_date)
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(statement)
        seconds = time.perf_counter() - started
        rows = cursor.rowcount
        transaction.set_rollback(True)
    return rows, seconds


# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "?"
    return (
        f"{os.cpu_count()} cores, {memory} RAM, {platform.system()} {platform.machine()}, "
        f"PostgreSQL {version} (shared_buffers {buffers}, work_mem {work_mem})"
    )


def fmt_counts(counts: dict) -> str:
    keys = ["evaluated", "upgraded", "downgraded", "held_by_protection", "credit_risk"]
    keys += ["first_graded", "changed"]
    return ", ".join(f"{key} {counts.get(key, 0):,}" for key in keys if key in counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sample", type=int, default=20_000, help="naive-loop sample size")
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument(
        "--fillfactor",
        type=int,
        default=None,
        help="what-if: members_member fillfactor (10-100) set before loading; default: as is",
    )
    args = parser.parse_args()
    n = args.members
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the benchmark needs PostgreSQL (COPY, temp tables)")

    ensure_database(args.database_url, progress)
    django_setup(args.database_url)
    from django.core.management import call_command

    from members.models import Member, TierChange
    from members.services import lifecycle_recompute, tier_recompute
    from members.tiers import TierPlan
    from operations.nightly import nightly_run

    progress("migrate")
    call_command("migrate", verbosity=0, interactive=False)
    plan = TierPlan.active(STEP_DATE)
    if plan.scheme.method != "MADA":
        raise SystemExit(f"the active scheme {plan.scheme.code} is not MADA; use a fresh database")

    progress(
        f"population: {n:,} members, statistics for {STAT_MONTHS[0]:%Y-%m}…{STAT_MONTHS[-1]:%Y-%m}"
    )
    stat_rows, gen_seconds = timed(
        "populate (generate + COPY + VACUUM ANALYZE)",
        lambda: populate(args.database_url, n, args.seed, args.fillfactor),
    )

    results: list[tuple[str, str, str]] = []  # (step, seconds, detail)

    def tier_step(label: str, day: date) -> tuple[dict, float, str]:
        before = update_counters()
        counts, seconds = timed(
            f"{label}: tier_recompute {day}", lambda: tier_recompute(business_date=day)
        )
        detail = fmt_counts(counts) + hot_detail(before, update_counters())
        progress(f"  {detail}")
        return counts, seconds, detail

    _counts, seconds, detail = tier_step("first grading", FIRST_DATE)
    results.append((f"first grading, {FIRST_DATE} (INITIAL)", f"{seconds:.2f}", detail))
    for day in WARMUP_DATES:
        _counts, seconds, detail = tier_step("warm-up", day)
        results.append((f"monthly step {day} (warm-up)", f"{seconds:.2f}", detail))
    # A month passes between monthly steps; autovacuum would have cleaned up meanwhile.
    vacuum(args.database_url, ["members_member", "members_tierchange"])

    rng = random.Random(args.seed + 1)
    check_ids = rng.sample(range(1, n + 1), min(CHECK_SAMPLE, n))
    progress(f"tier_explain for {len(check_ids)} members before the timed step")
    expected = explain_many(check_ids, STEP_DATE)
    rules = Counter(e.rule for e in expected.values())
    before_changes = TierChange.objects.count()

    # (2) the timed step
    step_counts, step_seconds, detail = tier_step("TIMED", STEP_DATE)
    step_history = TierChange.objects.count() - before_changes
    detail += f"; {step_history:,} TierChange rows"
    results.append((f"TIMED tier step {STEP_DATE}", f"{step_seconds:.2f}", detail))
    distribution = tier_distribution()
    problems = check_against_explain(expected, "transition")
    problems += check_against_explain(explain_many(check_ids, STEP_DATE), "re-explain")
    progress(f"correctness: {len(check_ids)} members checked, {len(problems)} mismatches")

    # (3) idempotent re-run
    xid = current_xid()
    before_changes = TierChange.objects.count()
    rerun_counts, rerun_seconds = timed(
        f"tier_recompute {STEP_DATE} again (idempotent)",
        lambda: tier_recompute(business_date=STEP_DATE),
    )
    rewritten = rows_written_since(xid)
    rerun_history = TierChange.objects.count() - before_changes
    rerun_detail = (
        f"changed {rerun_counts['changed']}, member rows rewritten {rewritten}, "
        f"TierChange rows {rerun_history}"
    )
    progress(f"  {rerun_detail}")
    if rerun_counts["changed"] or rewritten or rerun_history:
        problems.append(f"the re-run changed something: {rerun_detail}")
    results.append((f"re-run {STEP_DATE} (idempotent)", f"{rerun_seconds:.2f}", rerun_detail))

    # (4) the whole chain, on the next night. Lifecycle stages are graded for the first time
    # on STEP_DATE (everyone starts NEW), so that the chain shows an ordinary night.
    before = update_counters()
    lifecycle, seconds = timed(
        f"lifecycle_recompute {STEP_DATE} (first stages)",
        lambda: lifecycle_recompute(business_date=STEP_DATE),
    )
    detail = f"changed {lifecycle['changed']:,}" + hot_detail(before, update_counters())
    progress(f"  {detail}")
    results.append((f"first lifecycle stages {STEP_DATE}", f"{seconds:.2f}", detail))
    runs, chain_seconds = timed(
        f"nightly_run {CHAIN_DATE}", lambda: nightly_run(business_date=CHAIN_DATE)
    )
    steps = "; ".join(
        f"{run.kind} {(run.finished_at - run.started_at).total_seconds():.2f} s {run.status}"
        for run in runs
    )
    progress(f"  {steps}")
    results.append((f"whole chain nightly_run {CHAIN_DATE}", f"{chain_seconds:.2f}", steps))

    # (5) naive per-member loop on a sample
    sample = min(args.sample, n)
    sample_ids = sorted(random.Random(args.seed + 2).sample(range(1, n + 1), sample))
    done, naive_sample_seconds = timed(
        f"naive ORM loop on {sample:,} members", lambda: naive_loop(sample_ids, STEP_DATE)
    )
    naive_seconds = naive_sample_seconds * n / max(done, 1)
    results.append(
        (
            f"naive ORM loop, {done:,}-member sample",
            f"{naive_sample_seconds:.2f}",
            f"{1000 * naive_sample_seconds / max(done, 1):.2f} ms/member → "
            f"{naive_seconds:,.0f} s extrapolated to {n:,}",
        )
    )

    # (6) SQL floor
    progress(f"SQL floor UPDATE for {STEP_DATE} (rolled back) …")
    before = update_counters()
    floor_rows, floor_seconds = run_floor(STEP_DATE)
    floor_detail = f"{floor_rows:,} rows graded" + hot_detail(before, update_counters())
    progress(f"SQL floor: {floor_seconds:.2f} s; {floor_detail}")
    results.append(
        (
            "SQL floor: one UPDATE (rolled back)",
            f"{floor_seconds:.2f}",
            floor_detail,
        )
    )

    # report
    members_total = Member.objects.count()
    naive_ratio = naive_seconds / step_seconds
    floor_ratio = step_seconds / floor_seconds
    print()
    print(f"Nightly tier benchmark — {members_total:,} members, {stat_rows:,} monthly stat rows")
    print(f"machine: {machine()}")
    fillfactor = "as migrated" if args.fillfactor is None else f"{args.fillfactor} (what-if)"
    print(
        f"population built in {gen_seconds:.1f} s (generate + COPY + VACUUM ANALYZE); "
        f"members_member fillfactor {fillfactor}"
    )
    print(
        f"sample rules before the timed step ({len(check_ids)} members): "
        + ", ".join(f"{k} {v}" for k, v in sorted(rules.items()))
    )
    print(
        "computed tiers after the timed step: "
        + ", ".join(f"{k} {v:,}" for k, v in distribution.items())
    )
    print()
    width = max(len(row[0]) for row in results)
    print(f"{'step':<{width}}  {'seconds':>9}  detail")
    for label, seconds, detail in results:
        print(f"{label:<{width}}  {seconds:>9}  {detail}")
    print()
    print(f"engine throughput: {n / step_seconds:,.0f} members/s")
    goals = [
        (
            f"tier step ≤ {GOAL_SECONDS:.0f} s",
            f"{step_seconds:.2f} s",
            step_seconds <= GOAL_SECONDS,
        ),
        (
            f"naive / engine ≥ {GOAL_NAIVE_RATIO:.0f}×",
            f"{naive_ratio:,.1f}×",
            naive_ratio >= GOAL_NAIVE_RATIO,
        ),
        (
            f"engine / floor ≤ {GOAL_FLOOR_RATIO:.0f}×",
            f"{floor_ratio:.2f}×",
            floor_ratio <= GOAL_FLOOR_RATIO,
        ),
    ]
    for goal, value, ok in goals:
        print(f"{goal:<22} {value:>12}  {'PASS' if ok else 'FAIL'}")
    print(
        f"correctness ({len(check_ids)} members vs tier_explain, idempotent re-run): "
        + ("PASS" if not problems else "FAIL")
    )
    for problem in problems[:20]:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
