"""Nights a bank can trust, tried with real `run_nightly` processes on PostgreSQL: two runs of
one date at once, and a run killed with SIGKILL in the middle of a step. Each scenario runs
on one of two twin databases copied from the same seeded demo bank; the other twin runs the
night once, uninterrupted, and the two are compared table by table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

pytestmark = [pytest.mark.postgres, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
NIGHT = "2026-11-26"
#: heartbeats every second, dead after 3 s without one (the defaults are 15 s and 120 s)
FAST_HEARTBEATS = {"NIGHTLY_HEARTBEAT_SECONDS": "1", "NIGHTLY_STALE_AFTER_SECONDS": "3"}


def server_url(database: str) -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/{database}"


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(server_url("postgres"), autocommit=True) as conn:
        conn.execute(statement)


def manage(database: str, *args: str, wait: bool = True, **extra_env):
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "TIER_RECOMPUTE_CHUNKS"}},
        "DATABASE_URL": server_url(database),
        **FAST_HEARTBEATS,
        **extra_env,
    }
    command = [sys.executable, "manage.py", *args]
    if not wait:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def seeded_bank():
    """A demo bank migrated and seeded once, kept as a template for the twins."""
    name = f"portal_faults_{uuid.uuid4().hex[:8]}"
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrated = manage(name, "migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        seeded = manage(name, "seed_demo", "--members", "300", "--as-of", NIGHT, "--seed", "7")
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        yield name
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def twins(seeded_bank):
    names = [f"{seeded_bank}_{side}_{uuid.uuid4().hex[:6]}" for side in ("a", "b")]
    for name in names:
        admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(seeded_bank)
            )
        )
    yield names
    for name in names:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


STATE_QUERIES = {
    "members": "SELECT m.member_no, t.code, m.lifecycle_stage, m.stage_since, m.tier_since, "
    "b.value, m.tier_months_below, m.points_balance FROM members_member m "
    "LEFT JOIN members_tier t ON t.id = m.tier_id "
    "LEFT JOIN members_membertierbasis b ON b.member_id = m.id",
    "tier history": "SELECT m.member_no, f.code, t.code, c.cause, c.business_date, c.basis "
    "FROM members_tierchange c JOIN members_member m ON m.id = c.member_id "
    "LEFT JOIN members_tier f ON f.id = c.from_tier_id JOIN members_tier t ON t.id = c.to_tier_id",
    "grants": "SELECT m.member_no, b.code, g.status, g.idempotency_key, g.cost_fen, g.expires_on "
    "FROM benefits_benefitgrant g JOIN members_member m ON m.id = g.member_id "
    "JOIN benefits_benefit b ON b.id = g.benefit_id",
    "budgets": "SELECT code, amount_fen, consumed_fen FROM benefits_budget",
    "budget ledger": "SELECT b.code, e.kind, e.amount_fen, e.source FROM benefits_budgetentry e "
    "JOIN benefits_budget b ON b.id = e.budget_id",
    "points ledger": "SELECT m.member_no, p.kind, p.points, p.remaining, p.idempotency_key "
    "FROM members_pointsentry p JOIN members_member m ON m.id = p.member_id",
    "budget alerts": "SELECT b.code, a.percent FROM benefits_budgetalert a "
    "JOIN benefits_budget b ON b.id = a.budget_id",
}


def state(database: str) -> dict[str, Counter]:
    """The bank's data as multisets of rows (ids and timestamps left out)."""
    with psycopg.connect(server_url(database)) as conn:
        return {
            name: Counter(conn.execute(query).fetchall()) for name, query in STATE_QUERIES.items()
        }


def job_runs(database: str) -> list[tuple[str, str]]:
    with psycopg.connect(server_url(database)) as conn:
        return conn.execute(
            "SELECT kind, status FROM portal_jobrun WHERE business_date = %s ORDER BY id", [NIGHT]
        ).fetchall()


def hold_members_table(database: str) -> psycopg.Connection:
    """Block every writer of members_member (the tier recompute's UPDATE) until released."""
    conn = psycopg.connect(server_url(database))
    conn.execute("LOCK TABLE members_member IN SHARE MODE")
    return conn


def wait_until_blocked(database: str, seconds: float = 60) -> None:
    """Until a backend of `database` waits for a lock on an UPDATE of members_member."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(server_url("postgres"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            blocked = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock' AND query ILIKE '%%UPDATE members_member%%'",
                [database],
            ).fetchone()[0]
            if blocked:
                return
            time.sleep(0.2)
    raise AssertionError("the night never reached the tier recompute's UPDATE")


def test_two_runs_of_one_date_at_once_leave_the_state_of_one_run(twins):
    racing, reference = twins
    held = hold_members_table(racing)
    first = manage(racing, "run_nightly", "--date", NIGHT, wait=False)
    try:
        wait_until_blocked(racing)
        started = time.monotonic()
        second = manage(racing, "run_nightly", "--date", NIGHT)
        refused_in = time.monotonic() - started
    finally:
        held.rollback()
        held.close()
    out, err = first.communicate(timeout=300)
    once = manage(reference, "run_nightly", "--date", NIGHT)

    assert first.returncode == 0, err[-3000:]
    assert once.returncode == 0, once.stderr[-3000:]
    assert second.returncode == 3, second.stderr
    # the message names the running job, its date, its process and where it is
    for fact in ("nightly_chain", "2026-11-26", "run_nightly (pid", "step 2/9: tier_recompute"):
        assert fact in second.stderr, second.stderr
    assert second.stdout == ""  # it ran no step
    assert refused_in < 30
    assert state(racing) == state(reference)
    assert job_runs(racing) == job_runs(reference)  # one night's runs, nothing of the second


def test_a_run_killed_mid_step_is_abandoned_and_the_rerun_equals_an_uninterrupted_night(twins):
    killed_side, reference = twins
    held = hold_members_table(killed_side)
    doomed = manage(killed_side, "run_nightly", "--date", NIGHT, wait=False)
    try:
        wait_until_blocked(killed_side)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        held.rollback()
        held.close()
    assert ("tier_recompute", "RUNNING") in job_runs(killed_side)  # left behind by the kill

    time.sleep(4)  # past NIGHTLY_STALE_AFTER_SECONDS without a heartbeat
    rerun = manage(killed_side, "run_nightly", "--date", NIGHT)
    once = manage(reference, "run_nightly", "--date", NIGHT)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert once.returncode == 0, once.stderr[-3000:]
    runs = job_runs(killed_side)
    assert runs[:3] == [
        ("nightly_chain", "ABANDONED"),
        ("feed_check", "SUCCEEDED"),
        ("tier_recompute", "ABANDONED"),
    ]
    assert "RUNNING" not in {status for _, status in runs}
    with psycopg.connect(server_url(killed_side)) as conn:
        (note,) = conn.execute(
            "SELECT error FROM portal_jobrun WHERE kind = 'tier_recompute' AND status = 'ABANDONED'"
        ).fetchone()
    assert "run #" in note  # superseded by the re-run, which it names
    assert state(killed_side) == state(reference)


def test_a_catch_up_over_five_missed_nights_equals_five_nightly_runs(twins):
    caught_up, night_by_night = twins
    dates = ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]

    catch_up = manage(caught_up, "run_nightly", "--from", dates[0], "--to", dates[-1])
    singles = [manage(night_by_night, "run_nightly", "--date", day) for day in dates]

    assert catch_up.returncode == 0, catch_up.stderr[-3000:]
    assert all(single.returncode == 0 for single in singles), [s.stderr[-500:] for s in singles]
    assert [line for line in catch_up.stdout.splitlines() if line.startswith("==")] == [
        f"== {day}" for day in dates
    ]
    assert state(caught_up) == state(night_by_night)
    with psycopg.connect(server_url(caught_up)) as conn:
        nights = conn.execute(
            "SELECT business_date::text, status FROM portal_jobrun WHERE kind = 'nightly_chain' "
            "ORDER BY id"
        ).fetchall()
    assert nights == [(day, "SUCCEEDED") for day in dates]  # in date order
