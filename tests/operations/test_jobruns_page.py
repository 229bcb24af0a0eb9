"""The job runs page from the user's side (operations/views.py): the re-run button and the
run-a-date form answer within seconds when the task queue (Redis) is down and say what to
do; a date whose night is running is refused with who runs it; the table refreshes itself
while a run is RUNNING; the watchdog logs a night it cannot dispatch instead of raising."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from operations.forms import NIGHTLY_RUN_DAYS_BACK
from operations.nightly import CHAIN_KIND
from operations.tasks import nightly_run_task, nightly_watchdog_task
from portal.choices import JobStatus, Role
from portal.clock import today_in_shanghai
from portal.models import AuditEntry, JobRun
from portal.permissions import PERMISSION_MATRIX
from tests.operations.test_celery_worker import portal_app_on_broker

TODAY = today_in_shanghai()
DAY = TODAY - timedelta(days=3)
ROLES = list(Role)


def _port_nobody_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down() -> Iterator[None]:
    """Celery sends tasks (not eager) to a Redis broker and result store that are down."""
    url = f"redis://127.0.0.1:{_port_nobody_listens_on()}/0"
    with portal_app_on_broker(url, url):
        yield


@pytest.fixture
def broker_up() -> Iterator[None]:
    """Celery sends tasks to a broker that takes them (kombu's in-memory transport; no
    worker consumes them here)."""
    with portal_app_on_broker("memory://", None):
        yield


@pytest.fixture
def client(client):
    """The test client of a user who reads the portal in English."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user(Role.ADMINISTRATOR))
    return client


@pytest.fixture
def sent(monkeypatch) -> list:
    """What was handed to the task queue (the real send is replaced by a record of it)."""
    calls = []
    monkeypatch.setattr(nightly_run_task, "apply_async", lambda *a, **kw: calls.append((a, kw)))
    return calls


def _running_night(day=DAY, **fields) -> JobRun:
    defaults = {
        "runner": "Celery worker (pid 4242 on node-7)",
        "progress": "step 2/9: tier_recompute",
        "heartbeat_at": timezone.now(),
    }
    return JobRun.objects.create(kind=CHAIN_KIND, business_date=day, **{**defaults, **fields})


def _failed_run(day=DAY, status=JobStatus.FAILED) -> JobRun:
    return JobRun.objects.create(
        kind="tier_recompute",
        business_date=day,
        status=status,
        finished_at=timezone.now(),
        error="OperationalError: the database went away\n\nFix the cause, then re-run.",
    )


def _page_text(response) -> str:
    return response.content.decode()


# --- the broker is down -------------------------------------------------------------------


def test_rerun_with_the_broker_down_answers_within_seconds_and_says_to_run_run_nightly(
    admin_client, broker_down
):
    run = _failed_run()

    started = time.monotonic()
    response = admin_client.post(f"/jobs/{run.pk}/rerun/")
    elapsed = time.monotonic() - started

    assert elapsed < 5, f"the re-run took {elapsed:.1f} s with the broker down"
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    page = _page_text(admin_client.get("/jobs/"))
    assert "task queue (broker) cannot be reached" in page
    assert f"python manage.py run_nightly --date {DAY.isoformat()}" in page
    assert "was sent to the task queue" not in page
    assert not AuditEntry.objects.filter(action="nightly.dispatch").exists()


def test_run_date_form_with_the_broker_down_answers_within_seconds_and_says_what_to_do(
    admin_client, broker_down
):
    started = time.monotonic()
    response = admin_client.post("/jobs/run/", {"business_date": DAY.isoformat()})
    elapsed = time.monotonic() - started

    assert elapsed < 5, f"the form took {elapsed:.1f} s with the broker down"
    assert response.status_code == 200
    page = _page_text(response)
    assert f"run_nightly --date {DAY.isoformat()}" in page
    assert "start Redis and try again" in page
    assert not JobRun.objects.filter(kind=CHAIN_KIND).exists()


def test_watchdog_with_the_broker_down_logs_the_night_instead_of_raising(broker_down, caplog, db):
    night = _running_night()
    stale = timezone.now() - timedelta(seconds=settings.NIGHTLY_STALE_AFTER_SECONDS + 60)
    JobRun.objects.filter(pk=night.pk).update(started_at=stale, heartbeat_at=stale)

    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="operations.tasks"):
        found = nightly_watchdog_task()
    elapsed = time.monotonic() - started

    assert elapsed < 5
    assert found == {
        "abandoned": 1,
        "nights_dispatched": 0,
        "nights_not_dispatched": [DAY.isoformat()],
    }
    assert f"run_nightly --date {DAY.isoformat()}" in caplog.text
    night.refresh_from_db()
    assert night.status == JobStatus.ABANDONED


# --- the re-run button ----------------------------------------------------------------------


def test_rerun_is_offered_only_for_failed_or_abandoned_runs(admin_client):
    failed = _failed_run(DAY)
    abandoned = _failed_run(DAY - timedelta(days=1), status=JobStatus.ABANDONED)
    succeeded = _failed_run(DAY - timedelta(days=2), status=JobStatus.SUCCEEDED)
    warned = _failed_run(DAY - timedelta(days=3), status=JobStatus.WARNING)

    page = _page_text(admin_client.get("/jobs/"))

    assert f"/jobs/{failed.pk}/rerun/" in page
    assert f"/jobs/{abandoned.pk}/rerun/" in page
    assert f"/jobs/{succeeded.pk}/rerun/" not in page
    assert f"/jobs/{warned.pk}/rerun/" not in page
    assert ">Abandoned</span>" in page and ">Failed</span>" in page


def test_rerun_of_a_succeeded_run_is_refused_and_sends_nothing(admin_client, sent):
    run = _failed_run(status=JobStatus.SUCCEEDED)

    response = admin_client.post(f"/jobs/{run.pk}/rerun/", follow=True)

    assert "only a failed or abandoned run offers a re-run" in _page_text(response)
    assert sent == []


def test_rerun_while_the_night_of_the_date_runs_says_who_runs_it_and_sends_nothing(
    admin_client, sent
):
    night = _running_night()
    run = _failed_run()

    response = admin_client.post(f"/jobs/{run.pk}/rerun/", follow=True)

    page = _page_text(response)
    assert f"run #{night.pk}" in page
    assert "Celery worker (pid 4242 on node-7)" in page
    assert "step 2/9: tier_recompute" in page
    assert sent == []


def test_rerun_with_the_broker_up_queues_the_night_audits_it_and_watches_the_table(
    admin_client, broker_up, make_user
):
    run = _failed_run()

    response = admin_client.post(f"/jobs/{run.pk}/rerun/")

    assert response.status_code == 302
    assert response["Location"].startswith("/jobs/?waiting=")
    page = _page_text(admin_client.get(response["Location"]))
    assert f"The nightly chain for {DAY.isoformat()} was sent to the task queue" in page
    assert 'hx-get="/jobs/table/' in page  # watched until a worker takes it
    entry = AuditEntry.objects.get(action="nightly.dispatch")
    assert entry.changes == {"business_date": DAY.isoformat(), "queued": True}


# --- the run-a-date form ------------------------------------------------------------------


def test_administrator_runs_a_date_in_process_when_celery_is_eager(admin_client):
    assert celery_app.conf.task_always_eager  # development and tests: no broker

    response = admin_client.post("/jobs/run/", {"business_date": DAY.isoformat()}, follow=True)

    page = _page_text(response)
    assert f"The nightly chain for {DAY.isoformat()} ran in this process" in page
    night = JobRun.objects.get(kind=CHAIN_KIND, business_date=DAY)
    assert night.status in (JobStatus.SUCCEEDED, JobStatus.WARNING)
    assert AuditEntry.objects.filter(action="nightly.dispatch").count() == 1


def test_the_jobs_page_offers_the_form_to_administrators_only(client, make_user):
    client.force_login(make_user(Role.ADMINISTRATOR))
    assert 'action="/jobs/run/"' in _page_text(client.get("/jobs/"))

    client.force_login(make_user(Role.BRANCH_MANAGER, branch="B01"))
    page = _page_text(client.get("/jobs/"))
    assert 'action="/jobs/run/"' not in page


@pytest.mark.parametrize(
    "role", [role for role in ROLES if role not in PERMISSION_MATRIX["portal.rerun_job"]]
)
def test_other_roles_may_not_run_a_date(client, make_user, sent, role):
    client.force_login(make_user(role, branch="B01"))

    response = client.post("/jobs/run/", {"business_date": DAY.isoformat()})

    assert response.status_code == 403
    assert sent == []


def test_run_a_date_is_a_post_only_action(admin_client):
    assert admin_client.get("/jobs/run/").status_code == 405


def test_a_future_date_is_refused_with_a_message(admin_client, sent):
    tomorrow = TODAY + timedelta(days=1)

    response = admin_client.post("/jobs/run/", {"business_date": tomorrow.isoformat()})

    assert response.status_code == 200
    assert f"{tomorrow.isoformat()} is in the future" in _page_text(response)
    assert sent == []


def test_a_date_too_far_back_is_refused_with_a_message(admin_client, sent):
    old = TODAY - timedelta(days=NIGHTLY_RUN_DAYS_BACK + 1)

    response = admin_client.post("/jobs/run/", {"business_date": old.isoformat()})

    page = _page_text(response)
    assert f"{old.isoformat()} is more than {NIGHTLY_RUN_DAYS_BACK} days ago" in page
    assert f"run_nightly --date {old.isoformat()}" in page
    assert sent == []


def test_a_date_whose_night_is_running_is_refused_naming_the_running_night(admin_client, sent):
    night = _running_night()

    response = admin_client.post("/jobs/run/", {"business_date": DAY.isoformat()})

    page = _page_text(response)
    assert f"run #{night.pk}" in page and "already running" in page
    assert "step 2/9: tier_recompute" in page
    assert sent == []


def test_a_night_whose_worker_died_does_not_block_running_its_date(admin_client, broker_up):
    night = _running_night()
    stale = timezone.now() - timedelta(seconds=settings.NIGHTLY_STALE_AFTER_SECONDS + 60)
    JobRun.objects.filter(pk=night.pk).update(started_at=stale, heartbeat_at=stale)

    response = admin_client.post("/jobs/run/", {"business_date": DAY.isoformat()})

    assert response.status_code == 302


# --- the table refreshes itself -----------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_table_partial_follows_the_view_jobruns_action(client, make_user, role):
    client.force_login(make_user(role, branch="B01"))

    response = client.get("/jobs/table/")

    allowed = role in PERMISSION_MATRIX["portal.view_jobruns"]
    assert response.status_code == (200 if allowed else 403)


def test_the_table_partial_sends_anonymous_users_to_the_login_page(client, db):
    response = client.get("/jobs/table/")

    assert response.status_code == 302 and response["Location"] == "/login/?next=/jobs/table/"


def test_the_table_shows_a_running_nights_progress_and_keeps_refreshing(client, make_user):
    client.force_login(make_user(Role.BRANCH_MANAGER, branch="B01"))
    _running_night(progress="3/4 chunks, 750,000 members")

    partial = _page_text(client.get("/jobs/table/"))

    assert "chunk 3/4, 750,000 members" in partial  # the stored progress, said as a sentence
    assert ">Running</span>" in partial
    assert 'hx-trigger="every 3s"' in partial and 'hx-get="/jobs/table/?page=1' in partial
    assert "<html" not in partial  # the table alone, for htmx to swap in
    assert 'hx-trigger="every 3s"' in _page_text(client.get("/jobs/"))


def test_the_table_stops_refreshing_when_nothing_runs(client, make_user):
    client.force_login(make_user(Role.BRANCH_MANAGER, branch="B01"))
    _failed_run(status=JobStatus.ABANDONED)

    partial = _page_text(client.get("/jobs/table/"))

    assert ">Abandoned</span>" in partial
    assert "hx-trigger" not in partial
    assert "hx-trigger" not in _page_text(client.get("/jobs/"))


def test_a_watched_table_stops_after_its_last_refresh(client, make_user):
    client.force_login(make_user(Role.BRANCH_MANAGER, branch="B01"))

    assert 'waiting=1"' in _page_text(client.get("/jobs/table/?waiting=2"))
    assert "hx-trigger" not in _page_text(client.get("/jobs/table/?waiting=0"))
    assert "hx-trigger" not in _page_text(client.get("/jobs/table/?waiting=oops"))
