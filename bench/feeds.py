"""Assets-feed import benchmark on PostgreSQL (see bench/README.md).

    .venv/bin/python bench/feeds.py [--rows 1000000] [--members 200000] \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench] [--profile FILE]

Goal (issue): on PostgreSQL the import streams with COPY or batched upserts; a 1,000,000-row
assets file imports in well under a minute. This script measures it; it is not a test.

Creates the database if missing, migrates, truncates the member tables and loads --members
members with COPY. Then it writes two synthetic assets files of --rows rows each to a temp
dir (members x days x categories on past days of October 2026, 1 to 4 categories per
member, ~0.1 % bad rows of nine kinds) and times, in one run:

  (a) the Python share: csv.reader alone, then csv + AssetsFormat.parse (no database);
  (b) the COPY floor: the same file's bytes COPY'd into a one-column UNLOGGED table;
  (c) feed_import(kind="assets") of file 1: the real service;
  (d) feed_import of file 1 again: the duplicate-file path;
  (e) feed_import of file 2, same size, whose first half is the second half of file 1:
      the row-level duplicate path over a table that already holds file 1.

Prints rows, seconds and rows/s for each step, (c) / floor and PASS/FAIL against the goal
"1,000,000 rows in < 60 s" (the goal is scaled linearly when --rows differs), then checks
correctness: received = accepted + duplicates + rejected for every batch, the counts equal
what the generator expects, and SUM(balance_fen) / COUNT(*) of members_assetbalance and the
month's day sums in members_membermonthlystat equal the generator's valid rows. Progress
goes to stderr, the report to stdout; exit status 1 when a check or the goal fails.
`--profile FILE` runs (c) under cProfile, saves the stats and prints the top functions.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench_common import django_setup, ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
GOAL_ROWS = 1_000_000
GOAL_SECONDS = 60.0
FIRST_DAY = date(2026, 10, 1)
DAYS = 31  # October 2026
BAD_EVERY = 1000  # one bad line in every 1,000 (~0.1 %)
CATEGORIES = ("DEMAND", "TIME", "WEALTH", "FUND", "INSURANCE", "BOND", "MORTGAGE", "LOAN")
# The bad-line kinds, in rotation, and how the import must count each one.
BAD_KINDS = (
    ("unknown member", "R"),
    ("impossible date", "R"),
    ("future date", "R"),
    ("unknown category", "R"),
    ("negative balance", "R"),
    ("three decimals", "R"),
    ("three columns", "R"),
    ("same member/day/category, other balance", "R"),
    ("exact repeat of a row", "D"),
)

_T0 = time.perf_counter()


def progress(message: str) -> None:
    elapsed = time.perf_counter() - _T0
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}Z +{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- database and members -------------------------------------------------------------------


MEMBER_COLUMNS = (
    "member_no, name, phone, id_number, registered_at, status, channels, credit_risk, "
    "lifecycle_stage, points_balance, tier_months_below, created_at, updated_at"
)


def member_no(i: int) -> str:
    return f"M{i:07d}"


def load_members(url: str, n: int) -> None:
    """Truncate member data (every table with a member_id or batch_id column) and COPY n members."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name IN ('member_id', 'batch_id') "
                "ORDER BY 1"
            )
        ]
        progress(f"truncating members_member, members_feedbatch, {', '.join(tables)}")
        conn.execute(
            f"TRUNCATE members_member, members_feedbatch, {', '.join(tables)} "
            "RESTART IDENTITY CASCADE"
        )
        now = datetime.now(UTC).isoformat()
        registered = datetime(2020, 1, 1, tzinfo=UTC).isoformat()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY members_member ({MEMBER_COLUMNS}) FROM STDIN") as copy,
        ):
            block: list[str] = []
            for i in range(1, n + 1):
                block.append(
                    f"{member_no(i)}\tBench member {i}\t139{i:08d}\t1101011980{i:08d}\t"
                    f"{registered}\tACTIVE\t[]\tf\tNEW\t0\t0\t{now}\t{now}\n"
                )
                if len(block) >= 50_000:
                    copy.write("".join(block))
                    block.clear()
            copy.write("".join(block))
        conn.commit()
        progress(f"  COPY members_member: {n:,} rows ({time.perf_counter() - started:.1f} s)")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("members_member", "members_assetbalance", "members_membermonthlystat"):
            conn.execute(f"VACUUM ANALYZE {table}")


# --- the synthetic feed ---------------------------------------------------------------------


def categories_of(m: int) -> tuple[str, ...]:
    """1 to 4 consecutive categories per member (2.5 on average)."""
    k = 1 + (m * 7) % 4
    start = (m * 3) % len(CATEGORIES)
    return tuple(CATEGORIES[(start + j) % len(CATEGORIES)] for j in range(k))


def balance_fen(m: int, day: int, c: int) -> int:
    """A deterministic balance: 0 to 1,000,000.00 CNY, some whole yuan, some zero."""
    base = (m * 2_654_435_761 + c * 40_503) % 100_000_000
    if base % 97 == 0:
        return 0
    value = base + day * (m % 1_000)
    return value - value % 100 if m % 5 == 0 else value


def fen_text(fen: int) -> str:
    whole, cents = divmod(fen, 100)
    if cents == 0:
        return str(whole)
    if cents % 10 == 0:
        return f"{whole}.{cents // 10}"
    return f"{whole}.{cents:02d}"


def good_triples(members: int):
    """(member, day index, category index) in feed order: day, member, category."""
    for day in range(DAYS):
        for m in range(1, members + 1):
            for category in categories_of(m):
                yield m, day, CATEGORIES.index(category)


class Expect:
    """What the import of one file must report, from the generator."""

    def __init__(self) -> None:
        self.lines = 0
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.accepted_fen = 0
        self.member_days: set[int] = set()
        self.bad: Counter[str] = Counter()
        self.first_day: date | None = None
        self.last_day: date | None = None


def write_files(directory: Path, rows: int, members: int, future: date):
    """Write file 1 (global lines [0, rows)) and file 2 (lines [rows // 2, rows // 2 + rows)).

    Every BAD_EVERY-th line of the global line stream is a bad line (the kind rotates); the
    others are consecutive good (member, day, category) rows. The second half of file 1 and
    the first half of file 2 are the same lines, so file 2 meets them as already loaded.
    Returns the two paths and their Expect (a triple counts as accepted in the first file
    that has it, a duplicate after that)."""
    half = rows // 2
    total = half + rows
    capacity = DAYS * sum(len(categories_of(m)) for m in range(1, members + 1))
    if total > capacity:
        raise SystemExit(f"{members:,} members give at most {capacity:,} rows; use more members")
    paths = (directory / "assets-1.csv", directory / "assets-2.csv")
    expect = (Expect(), Expect())
    days = [FIRST_DAY + timedelta(days=d) for d in range(DAYS)]
    day_text = [d.isoformat() for d in days]
    triples = good_triples(members)
    previous: tuple[int, int, int] | None = None
    header = "member_no,date,category,balance\n"
    with (
        open(paths[0], "w", encoding="utf-8", newline="") as out1,
        open(paths[1], "w", encoding="utf-8", newline="") as out2,
    ):
        out1.write(header)
        out2.write(header)
        buf1: list[str] = []
        buf2: list[str] = []
        for j in range(total):
            in1, in2 = j < rows, j >= half
            if j % BAD_EVERY == BAD_EVERY - 1 and previous is not None:
                kind = (j // BAD_EVERY) % len(BAD_KINDS)
                label, outcome = BAD_KINDS[kind]
                m, d, c = previous
                fen = balance_fen(m, d, c)
                cat = CATEGORIES[c]
                line = [
                    f"NOSUCH{j % 100_000:05d},{day_text[d]},{cat},{fen_text(fen)}",
                    f"{member_no(m)},2026-10-32,{cat},{fen_text(fen)}",
                    f"{member_no(m)},{future.isoformat()},{cat},{fen_text(fen)}",
                    f"{member_no(m)},{day_text[d]},CRYPTO,{fen_text(fen)}",
                    f"{member_no(m)},{day_text[d]},{cat},-{fen_text(fen)}",
                    f"{member_no(m)},{day_text[d]},{cat},{fen // 100}.123",
                    f"{member_no(m)},{day_text[d]},{cat}",
                    f"{member_no(m)},{day_text[d]},{cat},{fen_text(fen + 1)}",
                    f"{member_no(m)},{day_text[d]},{cat},{fen_text(fen)}",
                ][kind] + "\n"
                for inside, exp in ((in1, expect[0]), (in2, expect[1])):
                    if inside:
                        exp.lines += 1
                        exp.bad[label] += 1
                        if outcome == "R":
                            exp.rejected += 1
                        else:
                            exp.duplicates += 1
            else:
                m, d, c = previous = next(triples)
                fen = balance_fen(m, d, c)
                line = f"{member_no(m)},{day_text[d]},{CATEGORIES[c]},{fen_text(fen)}\n"
                # A good line is new in the first file that has it: file 1 for j < rows.
                for inside, exp, new in (
                    (in1, expect[0], True),
                    (in2, expect[1], j >= rows),
                ):
                    if not inside:
                        continue
                    exp.lines += 1
                    if exp.first_day is None or days[d] < exp.first_day:
                        exp.first_day = days[d]
                    if exp.last_day is None or days[d] > exp.last_day:
                        exp.last_day = days[d]
                    if new:
                        exp.accepted += 1
                        exp.accepted_fen += fen
                        exp.member_days.add(m * DAYS + d)
                    else:
                        exp.duplicates += 1
            if in1:
                buf1.append(line)
            if in2:
                buf2.append(line)
            if len(buf1) + len(buf2) >= 100_000:
                out1.write("".join(buf1))
                out2.write("".join(buf2))
                buf1.clear()
                buf2.clear()
            if (j + 1) % 500_000 == 0:
                progress(f"  generated {j + 1:,} of {total:,} lines")
        out1.write("".join(buf1))
        out2.write("".join(buf2))
    return paths, expect


# --- the measured steps ---------------------------------------------------------------------


def timed(label: str, work):
    progress(f"{label} …")
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    progress(f"{label}: {seconds:.2f} s")
    return result, seconds


def csv_only(path: Path) -> int:
    n = 0
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for _fields in reader:
            n += 1
    return n


def csv_and_parse(path: Path) -> tuple[int, int]:
    """The import's own reader (`feed_rows`: csv + raw line) and AssetsFormat.parse, no database."""
    from members.feeds import FEED_FORMATS, RowError
    from members.services.feeds import feed_rows
    from portal.clock import today_in_shanghai

    fmt = FEED_FORMATS["assets"]
    width = len(fmt.header)
    today = today_in_shanghai()
    good = bad = 0
    with open(path, "rb") as handle:
        for _line_no, fields, _raw in feed_rows(handle, fmt.header):
            if len(fields) != width:
                bad += 1
                continue
            try:
                fmt.parse([value.strip() for value in fields], today)
            except RowError:
                bad += 1
                continue
            good += 1
    return good, bad


def copy_floor(url: str, path: Path) -> int:
    """COPY the file's bytes into a one-column UNLOGGED table: the fastest possible load.

    One text column because PostgreSQL 15's COPY stops at the first malformed row (the file
    has some on purpose) and has no ON_ERROR; the lines hold no tab or backslash."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_floor")
        conn.execute("CREATE UNLOGGED TABLE bench_copy_floor (line text)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY bench_copy_floor (line) FROM STDIN") as copy,
            open(path, "rb") as handle,
        ):
            handle.readline()  # the header
            for block in iter(lambda: handle.read(1 << 20), b""):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        count = conn.execute("SELECT COUNT(*) FROM bench_copy_floor").fetchone()[0]
        conn.execute("DROP TABLE bench_copy_floor")
        conn.commit()
    progress(f"  floor: {count:,} lines in {seconds:.2f} s")
    return count


class StatementTimes:
    """Django execute_wrapper: the time of each SQL statement the import runs (COPY is not
    wrapped; it shows in the "read, parse, COPY to stage" phase)."""

    def __init__(self) -> None:
        self.times: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.times.append((time.perf_counter() - started, " ".join(sql.split())))

    def top(self, n: int = 6) -> list[tuple[float, str]]:
        return sorted(self.times, reverse=True)[:n]


class Phases:
    """Timestamps of the import's progress messages: read+stage / classify / apply."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if "classifying" in message:
            self.marks.append(("read, parse, COPY to stage", now))
        elif "applying" in message:
            self.marks.append(("classify + rejections", now))
        progress(f"  {message}")

    def split(self, started: float, finished: float) -> list[tuple[str, float]]:
        out, last = [], started
        for label, at in self.marks:
            out.append((label, at - last))
            last = at
        if self.marks:
            out.append(("apply (stats + facts) + finish", finished - last))
        return out


def run_import(path: Path, name: str, profile: str | None = None):
    from django.db import connection

    from members.services import feed_import

    phases = Phases()
    statements = StatementTimes()

    def work():
        with open(path, "rb") as handle, connection.execute_wrapper(statements):
            return feed_import(kind="assets", file=handle, file_name=name, progress=phases)

    progress(f"feed_import {name} …")
    started = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        batch = profiler.runcall(work)
        profiler.dump_stats(profile)
    else:
        batch = work()
    finished = time.perf_counter()
    seconds = finished - started
    progress(
        f"feed_import {name}: {seconds:.2f} s  status={batch.status} received={batch.received:,} "
        f"accepted={batch.accepted:,} duplicates={batch.duplicates:,} rejected={batch.rejected:,}"
    )
    return batch, seconds, (phases.split(started, finished), statements.top())


def print_profile(path: str, top: int = 15) -> None:
    import pstats

    print(f"\ncProfile of (c), top {top} by cumulative time (stats saved to {path}):")
    stats = pstats.Stats(path, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)
    print(f"top {top} by own time:")
    stats.sort_stats("tottime").print_stats(top)


# --- checks ---------------------------------------------------------------------------------


def check_batch(label: str, batch, exp: Expect | None, status: str) -> list[str]:
    problems = []
    if batch.received != batch.accepted + batch.duplicates + batch.rejected:
        problems.append(
            f"{label}: received {batch.received} != accepted {batch.accepted} + duplicates "
            f"{batch.duplicates} + rejected {batch.rejected}"
        )
    if batch.status != status:
        problems.append(f"{label}: status {batch.status}, expected {status}")
    if exp is not None:
        want = (exp.lines, exp.accepted, exp.duplicates, exp.rejected)
        got = (batch.received, batch.accepted, batch.duplicates, batch.rejected)
        if got != want:
            problems.append(f"{label}: (received, accepted, duplicates, rejected) {got} != {want}")
        if (batch.first_date, batch.last_date) != (exp.first_day, exp.last_day):
            problems.append(
                f"{label}: dates {batch.first_date}..{batch.last_date} != "
                f"{exp.first_day}..{exp.last_day}"
            )
    return problems


def table_sums() -> tuple[int, int, int, int, int]:
    """(asset rows, SUM(balance_fen), SUM of the month's category day sums, SUM(asset_days),
    rejections stored)."""
    from django.db import connection

    cats = " + ".join(f"{c.lower()}_day_sum_fen" for c in CATEGORIES)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(balance_fen), 0) FROM members_assetbalance")
        rows, fen = cursor.fetchone()
        cursor.execute(
            f"SELECT COALESCE(SUM({cats}), 0), COALESCE(SUM(asset_days), 0) "
            "FROM members_membermonthlystat WHERE month = %s",
            [FIRST_DAY],
        )
        stat_fen, asset_days = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM members_feedrejection")
        (rejections,) = cursor.fetchone()
    return int(rows), int(fen), int(stat_fen), int(asset_days), int(rejections)


# --- main -----------------------------------------------------------------------------------


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=GOAL_ROWS, help="lines per assets file")
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--profile", metavar="FILE", help="run (c) under cProfile, save stats")
    parser.add_argument("--keep-files", action="store_true", help="keep the CSV files")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the benchmark needs PostgreSQL (COPY, temp tables)")
    if args.rows < 2 * BAD_EVERY or args.members < 1:
        parser.error(f"--rows must be at least {2 * BAD_EVERY}, --members at least 1")

    ensure_database(args.database_url, progress)
    django_setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from portal.clock import today_in_shanghai

    progress("migrate")
    call_command("migrate", verbosity=0, interactive=False)
    today = today_in_shanghai()
    if FIRST_DAY + timedelta(days=DAYS - 1) > today:
        raise SystemExit(f"the feed days (October 2026) must be in the past; today is {today}")
    _none, members_seconds = timed(
        f"members: {args.members:,} with COPY",
        lambda: load_members(args.database_url, args.members),
    )

    workdir = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    (paths, expect), gen_seconds = timed(
        f"writing two assets files of {args.rows:,} lines to {workdir}",
        lambda: write_files(workdir, args.rows, args.members, today + timedelta(days=30)),
    )
    size_mb = paths[0].stat().st_size / 1e6
    rows = expect[0].lines
    connection.close()  # the steps below open their own connections

    results: list[tuple[str, int, float, str]] = []  # (step, rows, seconds, note)
    n_csv, t_csv = timed("(a1) csv.reader alone", lambda: csv_only(paths[0]))
    results.append(("(a1) csv.reader alone (Python)", n_csv, t_csv, "no database"))
    (good, bad), t_parse = timed("(a2) csv + AssetsFormat.parse", lambda: csv_and_parse(paths[0]))
    results.append(
        ("(a2) csv + AssetsFormat.parse (Python)", good + bad, t_parse, f"{bad:,} parse errors")
    )
    n_floor, t_floor = timed("(b) COPY floor", lambda: copy_floor(args.database_url, paths[0]))
    results.append(("(b) COPY floor (1 text column, UNLOGGED)", n_floor, t_floor, "no parsing"))

    batch1, t_import, phases = run_import(paths[0], paths[0].name, args.profile)
    results.append(("(c) feed_import, new file", batch1.received, t_import, "THE GOAL"))
    after1 = table_sums()
    batch_dup, t_dup, _ = run_import(paths[0], paths[0].name + " (again)")
    results.append(("(d) same file again", batch_dup.received, t_dup, "duplicate-file path"))
    batch2, t_overlap, phases2 = run_import(paths[1], paths[1].name)
    results.append(("(e) file 2, 50 % overlap", batch2.received, t_overlap, "row-level dups"))
    after2 = table_sums()

    if not args.keep_files:
        for path in paths:
            path.unlink()
        workdir.rmdir()

    # --- report -----------------------------------------------------------------------------
    goal_seconds = GOAL_SECONDS * rows / GOAL_ROWS
    print("Assets-feed import benchmark (bench/feeds.py)")
    print(
        f"machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, PostgreSQL {connection.pg_version // 10000}, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"data: {args.members:,} members; file 1 {rows:,} lines ({size_mb:.1f} MB), "
        f"{expect[0].first_day}..{expect[0].last_day}; file 2 {expect[1].lines:,} lines, "
        f"half of them file 1's; bad lines per file {sum(expect[0].bad.values()):,}"
    )
    print(f"setup: members COPY {members_seconds:.1f} s, files written in {gen_seconds:.1f} s\n")
    width = max(len(r[0]) for r in results)
    print(f"{'step':<{width}}  {'rows':>10}  {'seconds':>8}  {'rows/s':>10}  note")
    for step, n, seconds, note in results:
        print(f"{step:<{width}}  {n:>10,}  {seconds:>8.2f}  {rate(n, seconds):>10}  {note}")
    print()
    for label, (split, top) in (("(c)", phases), ("(e)", phases2)):
        total = sum(s for _, s in split) or 1.0
        parts = ", ".join(f"{name} {s:.1f} s ({100 * s / total:.0f} %)" for name, s in split)
        print(f"{label} phases: {parts}")
        print(f"{label} slowest SQL statements:")
        for seconds, sql in top:
            print(f"    {seconds:6.2f} s  {sql[:110]}")
    print(f"(a2) / (c): the Python parse alone is {100 * t_parse / t_import:.0f} % of the import")
    print(f"(c) / (b): the import takes {t_import / t_floor:.1f}x the COPY floor")
    print(f"(e) / (c): {t_overlap / t_import:.2f}x;  (d) / (c): {t_dup / t_import:.2f}x")
    scaled = "" if rows == GOAL_ROWS else f" (scaled to {rows:,} rows: < {goal_seconds:.1f} s)"
    passed = t_import < goal_seconds
    print(
        f"\nGOAL 1,000,000 rows in < 60 s{scaled}: {'PASS' if passed else 'FAIL'} "
        f"({rows:,} rows in {t_import:.2f} s, {rate(rows, t_import)} rows/s)"
    )

    problems = []
    problems += check_batch("(c)", batch1, expect[0], "LOADED")
    problems += check_batch("(d)", batch_dup, None, "DUPLICATE_FILE")
    if (batch_dup.received, batch_dup.duplicates) != (expect[0].lines, expect[0].lines):
        problems.append(f"(d): received/duplicates {batch_dup.received}/{batch_dup.duplicates}")
    problems += check_batch("(e)", batch2, expect[1], "LOADED")
    want1 = (
        expect[0].accepted,
        expect[0].accepted_fen,
        expect[0].accepted_fen,
        len(expect[0].member_days),
        expect[0].rejected,
    )
    all_days = expect[0].member_days | expect[1].member_days
    fen_all = expect[0].accepted_fen + expect[1].accepted_fen
    want2 = (
        expect[0].accepted + expect[1].accepted,
        fen_all,
        fen_all,
        len(all_days),
        expect[0].rejected + expect[1].rejected,
    )
    names = ("asset rows", "SUM(balance_fen)", "month day sums", "asset_days", "rejections")
    for label, got, want in (("after (c)", after1, want1), ("after (e)", after2, want2)):
        for name, g, w in zip(names, got, want, strict=True):
            if g != w:
                problems.append(f"{label}: {name} {g:,} != expected {w:,}")
    print("\nCorrectness:")
    for label, batch in (("(c)", batch1), ("(d)", batch_dup), ("(e)", batch2)):
        print(
            f"  {label} received {batch.received:,} = accepted {batch.accepted:,} + duplicates "
            f"{batch.duplicates:,} + rejected {batch.rejected:,}: "
            f"{batch.received == batch.accepted + batch.duplicates + batch.rejected}"
        )
    print(
        f"  after (c): SUM(balance_fen) {after1[1]:,} fen, generator {want1[1]:,} fen; "
        f"{after1[0]:,} rows, generator {want1[0]:,}"
    )
    print(
        f"  after (e): SUM(balance_fen) {after2[1]:,} fen, generator {want2[1]:,} fen; "
        f"{after2[0]:,} rows, generator {want2[0]:,}; monthly day sums {after2[2]:,}, "
        f"asset_days {after2[3]:,} (generator {want2[3]:,})"
    )
    print(f"  bad lines per kind in file 1: {dict(expect[0].bad)}")
    print("  CHECK: " + ("OK" if not problems else "FAILED"))
    for problem in problems:
        print(f"    - {problem}")
    if args.profile:
        print_profile(args.profile)
    return 0 if passed and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
