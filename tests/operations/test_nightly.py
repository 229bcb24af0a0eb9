"""The nightly chain (`manage.py run_nightly`, API.md "Commands"; DESIGN.md "Nightly
pipeline"), the roles migration, the Celery task names and beat schedule (STYLE.md
"Celery"), and the production settings guard (STYLE.md "Settings").

The business date is 2026-11-26: the feed check looks for the assets and consumption feeds
of 2026-11-25, and the tier basis is October 2026.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from config.celery import app as celery_app
from config.schedules import BEAT_SCHEDULE
from members.models import Member, MemberMonthlyStat, TierChange
from operations import nightly, tasks
from operations.nightly import (
    CHAIN_KIND,
    NIGHTLY_STEPS,
    NightlyStep,
    nightly_missed_dates,
    nightly_step,
)
from operations.tasks import nightly_run_task
from portal.choices import JobStatus, Role
from portal.clock import today_in_shanghai
from portal.models import JobRun
from tests.factories import MemberFactory

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUSINESS_DATE = date(2026, 11, 26)
FEED_DAY = BUSINESS_DATE - timedelta(days=1)
STEP_KINDS = [step.kind for step in NIGHTLY_STEPS]
#: `kind: STATUS key=value … (1.2s)`, one line per step
STEP_LINE = re.compile(r"^(?P<kind>\w+): (?P<status>[A-Z]+) (?P<counts>.*) \((?P<secs>\d+\.\d)s\)$")

#: STYLE.md "Celery": a rename of a task is a visible change of this set.
REGISTERED_TASKS = {
    "operations.nightly_run_task",
    "operations.nightly_night_task",
    "operations.nightly_step_task",
    "operations.nightly_chunk_task",
    "operations.nightly_close_task",
    "operations.nightly_fail_task",
    "operations.nightly_summary_task",
    "operations.nightly_watchdog_task",
    "operations.ping_task",
}


# --- arranging a small bank ----------------------------------------------------------------


@pytest.fixture
def bank(db, org, import_csv):
    """Two customers of 朝阳支行 with every day of October 2026 in the assets feed: M0000001
    holds 100,000.00 (GOLD basis), M0000002 holds 1,000.00 (STANDARD)."""
    for member_no in ("M0000001", "M0000002"):
        MemberFactory(member_no=member_no, branch=org["B01S1"])
    october = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)]
    rows = [f"M0000001,{day},DEMAND,100000.00" for day in october]
    rows += [f"M0000002,{day},DEMAND,1000.00" for day in october]
    import_csv("assets", "member_no,date,category,balance\n" + "\n".join(rows) + "\n")
    return org


def import_feeds_of(import_csv, day: date, kinds: tuple[str, ...]) -> None:
    """The data warehouse's files of one day, for the given feed kinds."""
    if "assets" in kinds:
        import_csv(
            "assets",
            f"member_no,date,category,balance\nM0000001,{day},DEMAND,100000.00\n"
            f"M0000002,{day},DEMAND,1000.00\n",
            name=f"assets_{day:%Y%m%d}.csv",
        )
    if "consumption" in kinds:
        import_csv(
            "consumption",
            f"member_no,date,amount,count\nM0000001,{day},350.00,2\n",
            name=f"consumption_{day:%Y%m%d}.csv",
        )


def run_nightly(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("run_nightly", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def step_runs(**filters):
    """The steps' JobRuns (the night's own run, `nightly_chain`, left out), oldest first."""
    return JobRun.objects.filter(**filters).exclude(kind=CHAIN_KIND).order_by("id")


def runs_of(day: date = BUSINESS_DATE) -> dict[str, JobRun]:
    return {run.kind: run for run in step_runs(business_date=day)}


# --- one JobRun per step -------------------------------------------------------------------


def test_run_nightly_records_a_jobrun_per_step_with_counts_and_duration(bank, import_csv):
    import_feeds_of(import_csv, FEED_DAY, ("assets", "consumption"))

    out, _ = run_nightly("--date", "2026-11-26")

    runs = list(step_runs(business_date=BUSINESS_DATE))
    assert [run.kind for run in runs] == STEP_KINDS
    night = JobRun.objects.get(kind=CHAIN_KIND, business_date=BUSINESS_DATE)
    assert night.status == JobStatus.SUCCEEDED and night.counts == {
        kind: JobStatus.SUCCEEDED for kind in STEP_KINDS
    }
    for run in runs:
        assert run.status == JobStatus.SUCCEEDED, (run.kind, run.message, run.error)
        assert run.counts, run.kind
        assert run.finished_at is not None and run.duration >= timedelta(0), run.kind
    assert runs[1].counts["evaluated"] == 2  # tier recompute over the whole population
    lines = [STEP_LINE.match(line) for line in out.splitlines()]
    assert all(lines), out
    assert [(m["kind"], m["status"]) for m in lines] == [(k, "SUCCEEDED") for k in STEP_KINDS]
    assert "evaluated=2" in lines[1]["counts"]


def test_run_nightly_grades_the_members_of_the_business_date(bank, import_csv):
    import_feeds_of(import_csv, FEED_DAY, ("assets", "consumption"))

    run_nightly("--date", "2026-11-26")

    tiers = dict(Member.objects.values_list("member_no", "tier__code"))
    assert tiers == {"M0000001": "GOLD", "M0000002": "STANDARD"}


def test_run_nightly_without_a_date_runs_for_today_in_shanghai(bank):
    run_nightly()

    assert [run.kind for run in runs_of(today_in_shanghai()).values()] == STEP_KINDS


# --- the feed arrival check ----------------------------------------------------------------


def test_feed_check_succeeds_when_both_feeds_of_the_day_before_arrived(bank, import_csv):
    import_feeds_of(import_csv, FEED_DAY, ("assets", "consumption"))

    run_nightly("--date", "2026-11-26")

    check = runs_of()["feed_check"]
    assert check.status == JobStatus.SUCCEEDED
    assert check.message == ""
    assert check.counts["feed_date"] == "2026-11-25"
    assert check.counts["missing"] == []
    assert check.counts["assets_rows"] == 2 and check.counts["consumption_rows"] == 1


@pytest.mark.parametrize(
    "arrived, missing",
    [
        (("consumption",), ["assets"]),
        (("assets",), ["consumption"]),
        ((), ["assets", "consumption"]),
    ],
)
def test_feed_check_warns_naming_the_missing_feed_and_the_chain_still_completes(
    bank, import_csv, arrived, missing
):
    import_feeds_of(import_csv, FEED_DAY, arrived)
    # a file of another day is no substitute
    import_feeds_of(import_csv, FEED_DAY - timedelta(days=1), ("assets", "consumption"))

    _, err = run_nightly("--date", "2026-11-26")

    runs = runs_of()
    check = runs["feed_check"]
    assert check.status == JobStatus.WARNING
    assert check.counts["missing"] == missing
    for kind in missing:
        assert f"No {kind}" in check.message or f"and {kind}" in check.message, check.message
    for kind in {"assets", "consumption"} - set(missing):
        assert kind not in check.message
    assert "2026-11-25" in check.message
    assert "Import the missing file" in check.message and "re-run" in check.message
    assert check.message in err  # the operator sees it on the console too
    assert list(runs) == STEP_KINDS
    assert all(run.status != JobStatus.FAILED for run in runs.values())
    assert all(run.finished_at is not None for run in runs.values())


# --- idempotence ---------------------------------------------------------------------------


def member_data() -> tuple:
    return (
        list(Member.objects.order_by("pk").values()),
        list(TierChange.objects.order_by("pk").values()),
        list(MemberMonthlyStat.objects.order_by("pk").values()),
    )


def test_rerunning_a_business_date_succeeds_and_changes_no_member_data(bank, import_csv):
    import_feeds_of(import_csv, FEED_DAY, ("assets", "consumption"))
    run_nightly("--date", "2026-11-26")
    first_runs = step_runs().count()
    before = member_data()
    assert TierChange.objects.filter(member__member_no="M0000001", to_tier__code="GOLD").exists()

    out, _ = run_nightly("--date", "2026-11-26")

    assert member_data() == before
    second = list(step_runs()[first_runs:])
    assert [run.kind for run in second] == STEP_KINDS
    assert all(run.status == JobStatus.SUCCEEDED for run in second), [
        (run.kind, run.status, run.message) for run in second
    ]
    tier_run = next(run for run in second if run.kind == "tier_recompute")
    assert tier_run.counts["changed"] == 0
    assert len(out.splitlines()) == len(STEP_KINDS)


# --- bad input and failures ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["2026-13-01", "26/11/2026", "tomorrow", "2026-11-31"])
def test_run_nightly_refuses_a_date_that_is_not_yyyy_mm_dd(db, value):
    with pytest.raises(CommandError) as refused:
        run_nightly("--date", value)

    assert "YYYY-MM-DD" in str(refused.value)
    assert repr(value) in str(refused.value)
    assert not JobRun.objects.exists()


def _ledger_offline(business_date, run):
    raise RuntimeError("core banking ledger is offline")


def _ledger_offline_chunk(business_date, run, id_range):
    raise RuntimeError("core banking ledger is offline")


@pytest.mark.parametrize(
    "failing_step",
    [
        NightlyStep("ledger_sync", "Ledger sync", run=_ledger_offline),
        NightlyStep("ledger_sync", "Ledger sync", chunk=_ledger_offline_chunk),
    ],
    ids=["whole-step", "chunked-step"],
)
def test_a_failing_step_leaves_a_failed_jobrun_that_says_to_rerun_and_stops_the_chain(
    bank, monkeypatch, failing_step
):
    monkeypatch.setattr(
        nightly,
        "NIGHTLY_STEPS",
        [nightly_step("feed_check"), failing_step, nightly_step("budget_alerts")],
    )

    with pytest.raises(CommandError) as stopped:
        run_nightly("--date", "2026-11-26")

    assert "core banking ledger is offline" in str(stopped.value)
    assert "run_nightly --date 2026-11-26" in str(stopped.value)
    runs = runs_of()
    assert list(runs) == ["feed_check", "ledger_sync"]  # budget_alerts never started
    failed = runs["ledger_sync"]
    assert failed.status == JobStatus.FAILED
    assert failed.finished_at is not None
    assert "RuntimeError: core banking ledger is offline" in failed.error
    assert "re-run" in failed.error and "run_nightly --date 2026-11-26" in failed.error


# --- roles, Celery, settings ---------------------------------------------------------------


def test_roles_migration_created_exactly_the_groups_of_the_roles(db):
    migration = importlib.import_module("portal.migrations.0002_roles")

    assert set(Group.objects.values_list("name", flat=True)) == set(Role.values)
    assert sorted(migration.ROLE_NAMES) == sorted(Role.values)


def test_registered_celery_task_names_are_the_known_set():
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovery

    registered = {name for name in celery_app.tasks if not name.startswith("celery.")}

    assert registered == REGISTERED_TASKS


def test_beat_runs_the_nightly_chain_at_0130_shanghai_with_an_expiry():
    entries = [
        entry for entry in BEAT_SCHEDULE.values() if entry["task"] == "operations.nightly_run_task"
    ]

    assert len(entries) == 1
    (entry,) = entries
    assert entry["schedule"] == crontab(hour=1, minute=30)
    # a backlog must never run a night twice: the message expires well before the next night
    assert 0 < entry["options"]["expires"] < 24 * 60 * 60
    assert celery_app.conf.timezone == "Asia/Shanghai"
    assert celery_app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE == BEAT_SCHEDULE


def _start_django(**variables: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "PERSONAL_DATA_KEYS",
            "DEBUG",
            "REDIS_URL",
        }
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_ENV="production", **variables)
    return subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION_VARIABLES = {
    "SECRET_KEY": "test-" + "k" * 50,
    "ALLOWED_HOSTS": "portal.example.bank",
    "DATABASE_URL": "postgres://portal@db.example.bank:5432/portal",
    "PERSONAL_DATA_KEYS": "k1:" + "A" * 43 + "=",
}


@pytest.mark.parametrize(
    "given",
    [
        (),
        ("SECRET_KEY",),
        ("SECRET_KEY", "ALLOWED_HOSTS", "PERSONAL_DATA_KEYS"),
        ("ALLOWED_HOSTS", "DATABASE_URL", "PERSONAL_DATA_KEYS"),
        ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"),
    ],
    ids=["none", "secret-key-only", "no-database-url", "no-secret-key", "no-personal-data-keys"],
)
def test_production_settings_refuse_to_start_without_the_required_variables(given):
    started = _start_django(**{name: PRODUCTION_VARIABLES[name] for name in given})

    assert started.returncode != 0
    assert "started" not in started.stdout
    assert "ImproperlyConfigured" in started.stderr
    error = started.stderr.strip().splitlines()[-1]
    for name in PRODUCTION_VARIABLES:
        assert (name in error) == (name not in given), (name, error)


def test_production_settings_start_with_the_required_variables():
    started = _start_django(**PRODUCTION_VARIABLES)

    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout


# --- catch-up of missed nights ------------------------------------------------------------


def _night_done(day: date) -> None:
    JobRun.objects.create(kind=CHAIN_KIND, business_date=day, status=JobStatus.SUCCEEDED)


def test_the_missed_nights_are_those_after_the_last_completed_one_in_order(db, settings):
    settings.NIGHTLY_CATCH_UP_DAYS = 7
    _night_done(date(2026, 11, 21))
    JobRun.objects.create(kind=CHAIN_KIND, business_date=date(2026, 11, 23), status="FAILED")

    assert nightly_missed_dates(until=date(2026, 11, 25)) == [
        date(2026, 11, 22),
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
    ]
    assert nightly_missed_dates(until=date(2026, 11, 21)) == [date(2026, 11, 21)]  # a re-run


def test_a_catch_up_is_bounded_to_the_last_days_and_starts_with_just_today(db, settings):
    settings.NIGHTLY_CATCH_UP_DAYS = 3
    assert nightly_missed_dates(until=date(2026, 11, 25)) == [date(2026, 11, 25)]  # none yet

    _night_done(date(2026, 11, 1))

    assert nightly_missed_dates(until=date(2026, 11, 25)) == [
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
    ]


def test_the_nightly_task_without_a_date_runs_every_missed_night(bank, import_csv, monkeypatch):
    import_feeds_of(import_csv, FEED_DAY, ("assets", "consumption"))
    _night_done(BUSINESS_DATE - timedelta(days=3))
    monkeypatch.setattr(tasks, "today_in_shanghai", lambda: BUSINESS_DATE)  # beat's "tonight"

    summary = nightly_run_task.apply().get()

    nights = list(
        JobRun.objects.filter(kind=CHAIN_KIND).order_by("id").values_list("business_date", "status")
    )
    # the two nights without their feeds end as warnings (the feed check says so)
    assert [day for day, _ in nights] == [BUSINESS_DATE - timedelta(days=n) for n in (3, 2, 1, 0)]
    assert {status for _, status in nights[1:]} <= {JobStatus.SUCCEEDED, JobStatus.WARNING}
    assert len(summary) == 3 * len(STEP_KINDS)
