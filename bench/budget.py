"""Budget consumption benchmark on PostgreSQL: grants per second through `grant_create`.

    .venv/bin/python bench/budget.py \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_budget] \
        [--seconds 10] [--workers 8] [--budgets 100] [--exhaust-room 2000]

Creates the database if missing, migrates, clears the benefits tables (and the audit log,
which `grant_create` writes to) and builds its own department, 1,000 members and one benefit
costing 123.45 CNY. Then, with `--workers` worker PROCESSES (multiprocessing "spawn"; each
child calls django.setup() and has its own database connection), all released together:

  (0) reference: ONE process granting against one budget (no contention);
  (a) contention: every worker granting against ONE budget, for `--seconds`;
  (x) exhaustion: every worker granting against ONE budget with room for exactly
      `--exhaust-room` grants (plus half a grant), until each is refused;
  (b) spread: every worker granting against `--budgets` budgets (picked at random), for
      `--seconds`.

Consuming a budget is one conditional UPDATE per level (DESIGN.md "Budget"), so under
contention the row lock on the single budget serialises the grants: (a) measures what that
costs against (b). Afterwards every budget is checked — consumed_fen > amount_fen, grants ×
cost ≠ consumed, ledger sum ≠ consumed each count as an overspend — and the exhaustion
budget must hold exactly `--exhaust-room` grants. Report to stdout, progress to stderr; exit
status 1 on FAIL.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench_common import django_setup, ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_budget"
COST_FEN = 12_345  # 123.45 CNY
MEMBERS = 1_000
BIG_ROOM = 10_000_000  # grants: never reached within a timed phase
PREFIX = "BENCH"


_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- database ------------------------------------------------------------------------------


def prepare(budgets: int, exhaust_room: int) -> dict:
    """A clean slate: the benefits tables emptied, one department, members, a benefit, and the
    budgets of every phase (all open today)."""
    from django.db import connection

    from benefits.models import Benefit, Budget
    from members.models import Member
    from portal.clock import today_in_shanghai
    from portal.models import Department

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE benefits_budgetentry, benefits_budgetalert, benefits_manualgrantrequest, "
            "benefits_benefitfeedback, benefits_tierentitlement, benefits_benefitgrant, "
            "benefits_benefit, benefits_budget, portal_auditentry RESTART IDENTITY CASCADE"
        )
    department, _ = Department.objects.get_or_create(code=PREFIX, defaults={"name": "Bench"})
    registered = datetime.fromisoformat("2024-01-02T09:00:00+08:00")
    Member.objects.bulk_create(
        [
            Member(member_no=f"{PREFIX}{i:06d}", name=f"客户{i}", registered_at=registered)
            for i in range(MEMBERS)
        ],
        ignore_conflicts=True,
    )
    member_ids = list(
        Member.objects.filter(member_no__startswith=PREFIX).values_list("pk", flat=True)
    )
    today = today_in_shanghai()

    def budget(code: str, room: int, extra_fen: int = 0) -> Budget:
        return Budget.objects.create(
            code=f"{PREFIX}-{code}",
            name=f"Bench {code}",
            department=department,
            period_start=today - timedelta(days=365),
            period_end=today + timedelta(days=365),
            amount_fen=room * COST_FEN + extra_fen,
        )

    reference = budget("REF", BIG_ROOM)
    contention = budget("ONE", BIG_ROOM)
    exhaust = budget("EXHAUST", exhaust_room, extra_fen=COST_FEN // 2)
    spread = [budget(f"S{i:03d}", BIG_ROOM) for i in range(budgets)]
    benefit = Benefit.objects.create(
        code=PREFIX,
        name="基准权益",
        name_en="Bench benefit",
        category="GIFT",
        unit_cost_fen=COST_FEN,
        department=department,
        budget=contention,
    )
    return {
        "benefit": benefit.pk,
        "members": member_ids,
        "reference": reference.pk,
        "contention": contention.pk,
        "exhaust": exhaust.pk,
        "spread": [b.pk for b in spread],
    }


# --- one worker process --------------------------------------------------------------------


def worker(
    url, index, phase, budget_ids, benefit_id, member_ids, seconds, until_refused, gate, out
):
    """Grant as fast as possible from the moment every worker is ready; report counts."""
    try:
        django_setup(url)
        from django.db import connection

        from benefits.choices import GrantSource
        from benefits.models import Benefit, Budget
        from benefits.services import BudgetExhausted, grant_create
        from members.models import Member
        from portal.clock import today_in_shanghai

        benefit = Benefit.objects.get(pk=benefit_id)
        budgets = list(Budget.objects.filter(pk__in=budget_ids).order_by("pk"))
        members = list(Member.objects.filter(pk__in=member_ids).order_by("pk"))
        expires = today_in_shanghai() + timedelta(days=30)
        rng = random.Random(index)
        granted = refused = 0
        gate.wait(timeout=120)
        started = time.time()
        deadline = started + seconds
        attempt = 0
        while time.time() < deadline:
            budget = budgets[rng.randrange(len(budgets))]
            try:
                grant_create(
                    member=members[(index * 7919 + attempt) % len(members)],
                    benefit=benefit,
                    budget=budget,
                    source=GrantSource.MANUAL,
                    idempotency_key=f"{phase}-{index}-{attempt}",
                    expires_on=expires,
                )
                granted += 1
            except BudgetExhausted:
                refused += 1
                if until_refused:
                    break
            attempt += 1
        finished = time.time()
        connection.close()
        out.put({"index": index, "granted": granted, "refused": refused,
                 "started": started, "finished": finished, "error": None})  # fmt: skip
    except Exception as exc:  # reported, never silently lost
        out.put({"index": index, "granted": 0, "refused": 0, "started": 0.0,
                 "finished": 0.0, "error": repr(exc)})  # fmt: skip


def run_phase(url, name, *, workers, budget_ids, world, seconds, until_refused=False) -> dict:
    ctx = multiprocessing.get_context("spawn")
    gate = ctx.Barrier(workers)
    out = ctx.Queue()
    processes = [
        ctx.Process(
            target=worker,
            args=(
                url,
                i,
                name,
                budget_ids,
                world["benefit"],
                world["members"],
                seconds,
                until_refused,
                gate,
                out,
            ),
        )  # fmt: skip
        for i in range(workers)
    ]
    progress(f"{name}: starting {workers} worker process(es) on {len(budget_ids)} budget(s)")
    for process in processes:
        process.start()
    results = [out.get(timeout=seconds + 300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [r["error"] for r in results if r["error"]]
    wall = max(r["finished"] for r in results) - min(r["started"] for r in results)
    granted = sum(r["granted"] for r in results)
    refused = sum(r["refused"] for r in results)
    rate = granted / wall if wall > 0 else 0.0
    progress(f"{name}: {granted:,} grants, {refused:,} refused in {wall:.1f} s = {rate:,.0f}/s")
    return {
        "name": name,
        "workers": workers,
        "budgets": len(budget_ids),
        "granted": granted,
        "refused": refused,
        "seconds": wall,
        "rate": rate,
        "errors": errors,
    }


def measure_lock_hold(world: dict, grants: int = 500) -> float:
    """Median time (s) one grant holds the budget's row lock, from its conditional UPDATE to
    the end of COMMIT, in one process: 1 / that is the most one budget can take per second,
    however many processes grant against it."""
    import statistics

    from django.db import connection, transaction

    from benefits.choices import GrantSource
    from benefits.models import Benefit, Budget
    from benefits.services import grant_create
    from members.models import Member
    from portal.clock import today_in_shanghai

    benefit = Benefit.objects.get(pk=world["benefit"])
    budget = Budget.objects.get(pk=world["reference"])
    members = list(Member.objects.filter(pk__in=world["members"][:100]))
    expires = today_in_shanghai() + timedelta(days=30)
    holds: list[float] = []

    def timed(execute, sql, params, many, context):
        if sql.startswith('UPDATE "benefits_budget"'):
            locked = time.perf_counter()
            transaction.on_commit(lambda: holds.append(time.perf_counter() - locked))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(timed):
        for i in range(grants):
            grant_create(
                member=members[i % len(members)],
                benefit=benefit,
                budget=budget,
                source=GrantSource.MANUAL,
                idempotency_key=f"hold-{i}",
                expires_on=expires,
            )
    return statistics.median(holds)


# --- checks --------------------------------------------------------------------------------


def overspend_check() -> list[str]:
    """Every bench budget: never over its amount, grants × cost = consumed = ledger sum."""
    from django.db.models import Count, Sum

    from benefits.models import Budget, BudgetEntry

    problems = []
    budgets = Budget.objects.filter(code__startswith=PREFIX).annotate(n_grants=Count("grants"))
    ledger = dict(
        BudgetEntry.objects.filter(budget__code__startswith=PREFIX)
        .values_list("budget_id")
        .annotate(total=Sum("amount_fen"))
    )
    for budget in budgets:
        expected = budget.n_grants * COST_FEN
        if budget.consumed_fen > budget.amount_fen:
            problems.append(f"{budget.code}: consumed {budget.consumed_fen} > {budget.amount_fen}")
        if expected != budget.consumed_fen:
            problems.append(
                f"{budget.code}: {budget.n_grants} grants × cost ≠ {budget.consumed_fen}"
            )
        if ledger.get(budget.pk, 0) != budget.consumed_fen:
            problems.append(f"{budget.code}: ledger {ledger.get(budget.pk, 0)} ≠ consumed")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=10.0, help="per timed phase")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--budgets", type=int, default=100, help="budgets of the spread phase")
    parser.add_argument("--exhaust-room", type=int, default=2_000, help="grants of room")
    args = parser.parse_args()

    ensure_database(args.database_url, progress)
    django_setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    progress("migrating")
    call_command("migrate", verbosity=0, interactive=False)
    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL.", file=sys.stderr)
        return 2
    world = prepare(args.budgets, args.exhaust_room)
    progress("measuring how long one grant holds the budget's row lock")
    lock_hold = measure_lock_hold(world)
    connection.close()  # the children open their own

    url, seconds, workers = args.database_url, args.seconds, args.workers
    phases = [
        run_phase(url, "ref", workers=1, budget_ids=[world["reference"]], world=world,
                  seconds=seconds),
        run_phase(url, "one", workers=workers, budget_ids=[world["contention"]], world=world,
                  seconds=seconds),
        run_phase(url, "exhaust", workers=workers, budget_ids=[world["exhaust"]], world=world,
                  seconds=seconds + 120, until_refused=True),
        run_phase(url, "spread", workers=workers, budget_ids=world["spread"], world=world,
                  seconds=seconds),
    ]  # fmt: skip
    reference, contention, exhaust, spread = phases

    from benefits.models import Budget

    problems = overspend_check()
    exhaust_budget = Budget.objects.get(pk=world["exhaust"])
    exhaust_grants = exhaust_budget.grants.count()
    exact = exhaust_grants == args.exhaust_room == exhaust["granted"]
    errors = [e for phase in phases for e in phase["errors"]]
    spread_hit = Budget.objects.filter(pk__in=world["spread"], consumed_fen__gt=0).count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]

    labels = {
        "ref": "(0) reference: 1 process, 1 budget",
        "one": f"(a) contention: {workers} processes, 1 budget",
        "exhaust": f"(x) exhaustion: {workers} processes, room for {args.exhaust_room:,}",
        "spread": f"(b) spread: {workers} processes, {args.budgets} budgets",
    }
    print(
        f"Budget consumption through grant_create — PostgreSQL {server.split()[0]}, "
        f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"{seconds:g} s per timed phase, unit cost {COST_FEN / 100:.2f} CNY"
    )
    print()
    print(f"{'phase':<48} {'grants':>9} {'refused':>8} {'seconds':>8} {'grants/s':>9}")
    for phase in phases:
        print(
            f"{labels[phase['name']]:<48} {phase['granted']:>9,} {phase['refused']:>8,} "
            f"{phase['seconds']:>8.1f} {phase['rate']:>9,.0f}"
        )
    print()
    ratio = spread["rate"] / contention["rate"] if contention["rate"] else float("inf")
    scaling = contention["rate"] / reference["rate"] if reference["rate"] else float("inf")
    print(f"ratio spread / contention (b / a):       {ratio:.2f}×")
    print(f"ratio contention / one process (a / 0):  {scaling:.2f}×")
    print(f"spread budgets that received grants:     {spread_hit} of {args.budgets}")
    print(
        f"row lock held per grant (UPDATE → COMMIT, 1 process, median): {lock_hold * 1000:.2f} ms"
        f" → one budget takes at most ≈ {1 / lock_hold:,.0f} grants/s"
    )
    print(
        f"exhaustion: {exhaust_grants:,} grants on a budget with room for "
        f"{args.exhaust_room:,} (+ half a grant), {exhaust['refused']:,} refused → "
        f"{'PASS' if exact else 'FAIL'}"
    )
    print(f"overspend count: {len(problems)} → {'PASS' if not problems else 'FAIL'}")
    for problem in problems[:20]:
        print(f"  {problem}")
    if errors:
        print(f"worker errors: {len(errors)} → FAIL")
        for error in errors[:10]:
            print(f"  {error}")
    ok = exact and not problems and not errors
    print(f"RESULT: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
