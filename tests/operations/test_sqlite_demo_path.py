"""The SQLite demo path, end to end in fresh processes, as `make run` and `.ci/run` take it:
`migrate`, `seed_demo`, then `run_nightly` twice, on an embedded SQLite database and
without a Celery broker (README.md "Two commands", "Tests and CI")."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from operations.nightly import NIGHTLY_STEPS

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STEP_KINDS = [step.kind for step in NIGHTLY_STEPS]
STEP_LINE = re.compile(r"^(?P<kind>\w+): (?P<status>[A-Z]+) (?P<counts>.*) \((?P<secs>\d+\.\d)s\)$")
COUNT = re.compile(r"(\w+)=(\S+)")


@dataclass
class DemoPath:
    database: Path
    migrate: subprocess.CompletedProcess
    seed: subprocess.CompletedProcess
    nights: list[subprocess.CompletedProcess]


def sqlite_env(database: Path) -> dict[str, str]:
    """This process's environment, pointed at an embedded SQLite file and without a broker."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "TIER_RECOMPUTE_CHUNKS", "DJANGO_ENV"}
    }
    env["DATABASE_URL"] = f"sqlite:///{database}"
    return env


def manage(database: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=sqlite_env(database),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def step_lines(output: str) -> list[re.Match]:
    lines = [STEP_LINE.match(line) for line in output.splitlines() if line.strip()]
    assert all(lines), output
    return lines


def counts_of(line: re.Match) -> dict[str, str]:
    return dict(COUNT.findall(line["counts"]))


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory) -> DemoPath:
    database = tmp_path_factory.mktemp("sqlite-demo") / "demo.sqlite3"
    migrate = manage(database, "migrate", "--no-input")
    assert migrate.returncode == 0, migrate.stderr
    seed = manage(database, "seed_demo", "--members", "200", "--as-of", "2026-11-26")
    assert seed.returncode == 0, seed.stderr
    nights = [manage(database, "run_nightly", "--date", "2026-11-26") for _ in range(2)]
    return DemoPath(database, migrate, seed, nights)


def test_migrate_and_seed_demo_succeed_on_a_fresh_sqlite_database(demo_path):
    assert demo_path.database.exists()
    assert "Seeded 200 members" in demo_path.seed.stdout
    assert "password for all: Demo-2026!" in demo_path.seed.stdout
    with sqlite3.connect(demo_path.database) as db:
        (members,) = db.execute("SELECT COUNT(*) FROM members_member").fetchone()
    assert members == 200


def test_run_nightly_prints_one_line_per_step_with_its_counts(demo_path):
    first = demo_path.nights[0]

    assert first.returncode == 0, first.stderr
    lines = step_lines(first.stdout)
    assert [line["kind"] for line in lines] == STEP_KINDS
    assert all(line["status"] == "SUCCEEDED" for line in lines), first.stdout
    assert all(counts_of(line) for line in lines), first.stdout
    by_kind = {line["kind"]: counts_of(line) for line in lines}
    assert by_kind["feed_check"]["missing"] == "[]"  # seed_demo loads feeds up to 2026-11-25
    assert by_kind["tier_recompute"]["evaluated"] == "200"
    assert by_kind["lifecycle_recompute"]["evaluated"] == "200"


def test_run_nightly_a_second_time_succeeds_and_changes_nothing(demo_path):
    second = demo_path.nights[1]

    assert second.returncode == 0, second.stderr
    lines = step_lines(second.stdout)
    assert [line["kind"] for line in lines] == STEP_KINDS
    assert all(line["status"] == "SUCCEEDED" for line in lines), second.stdout
    by_kind = {line["kind"]: counts_of(line) for line in lines}
    assert by_kind["tier_recompute"]["changed"] == "0"
    assert by_kind["lifecycle_recompute"]["changed"] == "0"
    assert by_kind["entitlement_grants"]["granted"] == "0"
    with sqlite3.connect(demo_path.database) as db:
        runs = db.execute(
            "SELECT kind, status, finished_at FROM portal_jobrun WHERE business_date = ?",
            ["2026-11-26"],
        ).fetchall()
    assert len(runs) == 2 * (len(STEP_KINDS) + 1)  # each step and the night itself, twice
    assert sum(kind == "nightly_chain" for kind, _, _ in runs) == 2
    assert all(status == "SUCCEEDED" and finished for _, status, finished in runs), runs


def test_seed_demo_runs_inside_a_transaction_on_sqlite(tmp_path):
    database = tmp_path / "atomic.sqlite3"
    migrated = manage(database, "migrate", "--no-input")
    if migrated.returncode != 0:
        pytest.fail(f"migrate failed:\n{migrated.stderr[-2000:]}")
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.db import transaction\n"
        "with transaction.atomic():\n"
        "    call_command('seed_demo', '--members', '5', '--as-of', '2026-11-26')\n"
    )

    seeded = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**sqlite_env(database), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert seeded.returncode == 0, seeded.stderr[-2000:]
    assert "Seeded 5 members" in seeded.stdout


def test_commands_print_their_own_output_only(demo_path, tmp_path):
    """No start-up logging of third-party apps (django-axes' "AXES: BEGIN …") in a command's
    output; `import_feed` ends with its one summary line."""
    feed = tmp_path / "consumption.csv"
    feed.write_text("member_no,date,amount,count\nNOBODY,2026-11-20,10.00,1\n")

    imported = manage(demo_path.database, "import_feed", "consumption", str(feed))

    for result in (demo_path.migrate, demo_path.seed, *demo_path.nights, imported):
        assert "AXES" not in result.stdout + result.stderr
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == ["received=1 accepted=0 duplicates=0 rejected=1"]
