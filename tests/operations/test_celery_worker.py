"""A real Celery worker (Redis broker, solo pool) runs the nightly chain against the test
database: what `make worker` and Celery beat do in production (README.md "Configuration").

The worker is a separate process, so the test uses a transactional database (data must be
committed for the worker to see it, and the worker's JobRuns are committed for the test to
read) and a queue of its own, so that no other worker on the same Redis takes its tasks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from kombu import pools

from config.celery import app as celery_app
from members.models import Member, TierChange
from operations.nightly import CHAIN_KIND, NIGHTLY_STEPS, member_id_ranges
from operations.tasks import nightly_run_task, nightly_watchdog_task, ping_task
from portal.choices import JobStatus
from portal.models import JobRun
from tests.factories import MemberFactory
from tests.operations.test_nightly import REGISTERED_TASKS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    # The chain needs the migrations' data (the active tier scheme); conftest's
    # `_reference_data` puts it back if an earlier transactional test flushed it.
    pytest.mark.django_db(transaction=True),
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15")
STEP_KINDS = [step.kind for step in NIGHTLY_STEPS]
WORKER_START_SECONDS = 60
RESULT_SECONDS = 60


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def current_test_database_url() -> str:
    """A DATABASE_URL for the database this test runs in (`test_…`, one per xdist worker)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    user = f"{quote(db['USER'], safe='')}{password}@" if db.get("USER") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{host}{port}/{db['NAME']}"


def _forget_broker_connections() -> None:
    """Drop the app's cached broker pool and result backend so new settings take effect."""
    pools.reset()  # close and forget kombu's connection and producer pools
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.__dict__["amqp"]._producer_pool = None
    celery_app._backend_cache = None
    celery_app._local.__dict__.pop("backend", None)


@contextmanager
def portal_app_on_broker(url: str, result_backend: str | None) -> Iterator[None]:
    """This process runs tasks eagerly (no REDIS_URL); send them to `url` (results to
    `result_backend`, None for none) instead, for now."""
    names = ("task_always_eager", "broker_url", "result_backend")
    saved = {name: celery_app.conf[name] for name in names}
    celery_app.conf.update(task_always_eager=False, broker_url=url, result_backend=result_backend)
    _forget_broker_connections()
    try:
        yield
    finally:
        _forget_broker_connections()
        celery_app.conf.update(saved)


@dataclass
class Worker:
    process: subprocess.Popen
    nodename: str
    queue: str
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


#: `celery … worker` whose own follow-up tasks (a chain's next step, a chord's ranges and
#: callback) go to the worker's queue too, not to the shared default queue "celery"
WORKER_OWNING_ITS_QUEUE = (
    "import sys\n"
    "from config.celery import app\n"
    "app.conf.task_default_queue = sys.argv[1]\n"
    "app.worker_main(sys.argv[2:])\n"
)


@contextmanager
def celery_worker(
    tmp_path: Path, *, follow_ups_on_own_queue: bool = False, **extra_env: str
) -> Iterator[Worker]:
    """`celery -A config worker --pool=solo` on a queue of its own, pointed at the test
    database and at the Redis of the tests; stopped (and waited for) whatever happens."""
    queue = f"portal-test-{uuid.uuid4().hex[:12]}"
    nodename = f"{queue}@pytest"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"TIER_RECOMPUTE_CHUNKS", "DJANGO_ENV", "CELERY_BROKER_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=current_test_database_url(),
        REDIS_URL=REDIS_URL,
        **extra_env,
    )
    worker_args = [
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        queue,
        "-n",
        nodename,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    if follow_ups_on_own_queue:
        command = [sys.executable, "-c", WORKER_OWNING_ITS_QUEUE, queue, *worker_args]
    else:
        command = [sys.executable, "-m", "celery", "-A", "config", *worker_args]
    log = tmp_path / "worker.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and celery
            command, cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    worker = Worker(process, nodename, queue, log)
    try:
        _wait_until_ready(worker)
        yield worker
    finally:
        process.terminate()  # warm shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _forget_queue(queue)


def _forget_queue(queue: str) -> None:
    """Leave no binding of the test's queue behind in the shared Redis database."""
    import redis

    with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as client:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def _wait_until_ready(worker: Worker) -> None:
    deadline = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(
                f"the Celery worker exited with {worker.process.returncode}:\n{worker.log_tail()}"
            )
        if celery_app.control.ping(destination=[worker.nodename], timeout=0.5):
            return
    pytest.fail(
        f"the Celery worker did not answer a ping in {WORKER_START_SECONDS}s:\n{worker.log_tail()}"
    )


def result_of(async_result, worker: Worker):
    try:
        value = async_result.get(timeout=RESULT_SECONDS)
    except Exception as exc:
        pytest.fail(f"no result from the worker: {exc!r}\nworker log:\n{worker.log_tail()}")
    async_result.forget()
    return value


@pytest.fixture
def on_redis() -> Iterator[None]:
    if not redis_answers(REDIS_URL):
        pytest.skip(f"needs Redis: nothing answers at {REDIS_URL} (start redis-server)")
    with portal_app_on_broker(REDIS_URL, REDIS_URL):
        yield


@pytest.fixture
def bank(org, import_csv):
    """Two customers; October 2026 in the assets feed (M0000001 at GOLD level) and both
    feeds of 2026-11-25, the day before the business date."""
    for member_no in ("M0000001", "M0000002"):
        MemberFactory(member_no=member_no, branch=org["B01S1"])
    days = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)] + [date(2026, 11, 25)]
    rows = [f"M0000001,{day},DEMAND,100000.00" for day in days]
    rows += [f"M0000002,{day},DEMAND,1000.00" for day in days]
    import_csv("assets", "member_no,date,category,balance\n" + "\n".join(rows) + "\n")
    import_csv("consumption", "member_no,date,amount,count\nM0000001,2026-11-25,88.00,1\n")
    return org


def test_a_real_worker_answers_the_ping_task_and_registers_the_known_tasks(on_redis, tmp_path):
    with celery_worker(tmp_path) as worker:
        pong = result_of(ping_task.apply_async(args=["hello"], queue=worker.queue), worker)
        registered = celery_app.control.inspect([worker.nodename], timeout=5).registered()

    assert pong == "pong:hello"
    names = {name.split(" ")[0] for name in registered[worker.nodename]}
    assert {name for name in names if not name.startswith("celery.")} == REGISTERED_TASKS


def test_a_real_worker_runs_the_nightly_chain_into_the_test_database(on_redis, bank, tmp_path):
    assert not JobRun.objects.exists()

    with celery_worker(tmp_path) as worker:
        sent = nightly_run_task.apply_async(args=["2026-11-26"], queue=worker.queue)
        summary = result_of(sent, worker)

    assert [step["kind"] for step in summary] == STEP_KINDS
    assert all(step["status"] == JobStatus.SUCCEEDED for step in summary), summary
    assert summary[1]["counts"]["evaluated"] == 2
    # written by the worker process, committed, read here
    runs = list(
        JobRun.objects.filter(business_date=date(2026, 11, 26))
        .exclude(kind=CHAIN_KIND)
        .order_by("id")
    )
    assert [run.kind for run in runs] == STEP_KINDS
    night = JobRun.objects.get(kind=CHAIN_KIND, business_date=date(2026, 11, 26))
    assert night.status == JobStatus.SUCCEEDED and "Celery worker (pid" in night.runner
    assert all(run.status == JobStatus.SUCCEEDED and run.finished_at for run in runs)
    assert [run.counts for run in runs] == [step["counts"] for step in summary]
    tiers = dict(Member.objects.values_list("member_no", "tier__code"))
    assert tiers == {"M0000001": "GOLD", "M0000002": "STANDARD"}


def test_a_real_worker_fans_the_recomputes_out_as_chords_over_member_id_ranges(
    on_redis, bank, tmp_path
):
    for n in range(3):
        MemberFactory(member_no=f"M100000{n}", branch=bank["B01S1"])

    with celery_worker(tmp_path, follow_ups_on_own_queue=True, TIER_RECOMPUTE_CHUNKS="2") as worker:
        sent = nightly_run_task.apply_async(args=["2026-11-26"], queue=worker.queue)
        summary = result_of(sent, worker)
        log = worker.log_tail(100_000)

    # two ranges for each of the two recomputes, each chord closed by its callback
    assert len(re.findall(r"Task operations\.nightly_chunk_task\[\S+\] succeeded", log)) == 4
    assert len(re.findall(r"Task operations\.nightly_close_task\[\S+\] succeeded", log)) == 2
    assert [step["kind"] for step in summary] == STEP_KINDS
    assert all(step["status"] == JobStatus.SUCCEEDED for step in summary), summary
    runs = {
        run.kind: run
        for run in JobRun.objects.filter(business_date=date(2026, 11, 26))
        .exclude(kind=CHAIN_KIND)
        .order_by("id")
    }
    assert list(runs) == STEP_KINDS
    night = JobRun.objects.get(kind=CHAIN_KIND, business_date=date(2026, 11, 26))
    assert night.status == JobStatus.SUCCEEDED and night.progress == "9/9 steps done"
    for kind in ("tier_recompute", "lifecycle_recompute"):
        run = runs[kind]
        assert run.status == JobStatus.SUCCEEDED and run.finished_at, kind
        assert run.counts["chunks"] == 2 and run.counts["evaluated"] == 5, run.counts
        assert run.progress == "2/2 chunks done"
    tiers = dict(Member.objects.values_list("member_no", "tier__code"))
    assert tiers["M0000001"] == "GOLD"
    assert set(tiers.values()) == {"GOLD", "STANDARD"}


def test_a_fanned_out_night_switches_a_scheduled_scheme_before_its_ranges(on_redis, bank, tmp_path):
    """The switch runs once, before the chord, so that every range grades by the new
    scheme; its counts join the step's."""
    from members.models import TierScheme

    for n in range(3):
        MemberFactory(member_no=f"M100000{n}", branch=bank["B01S1"])
    TierScheme.objects.filter(code="DEFAULT_POINTS").update(
        status="SCHEDULED", effective_on=date(2026, 11, 26)
    )

    with celery_worker(tmp_path, follow_ups_on_own_queue=True, TIER_RECOMPUTE_CHUNKS="2") as worker:
        summary = result_of(
            nightly_run_task.apply_async(args=["2026-11-26"], queue=worker.queue), worker
        )

    assert all(step["status"] == JobStatus.SUCCEEDED for step in summary), summary
    tier_step = JobRun.objects.get(kind="tier_recompute", business_date=date(2026, 11, 26))
    assert tier_step.counts["scheme_switched"] == 1 and tier_step.counts["chunks"] == 2
    assert tier_step.counts["scheme_regraded"] == 0  # nobody had a tier before this night
    assert TierScheme.objects.get(code="DEFAULT_POINTS").status == "ACTIVE"
    assert set(Member.objects.values_list("tier__scheme__code", flat=True)) == {"DEFAULT_POINTS"}


def _wait_for(condition, seconds: float, what: str, worker: Worker):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"{what} within {seconds}s\nworker log:\n{worker.log_tail()}")


def test_a_worker_killed_mid_chord_and_restarted_completes_the_night(on_redis, bank, tmp_path):
    """The worker dies while the tier recompute's last range waits (its rows are locked
    here); the step showed its chunk progress meanwhile. After the restart the watchdog
    finds the night without a heartbeat, marks it ABANDONED and runs it again: the night
    completes within NIGHTLY_STALE_AFTER_SECONDS plus one watchdog round plus the night's
    own time, in the state of an uninterrupted night."""
    for n in range(6):
        MemberFactory(member_no=f"M20000{n}", branch=bank["B01S1"])
    last_range = member_id_ranges(4)[-1]
    day = date(2026, 11, 26)
    fast = {
        "TIER_RECOMPUTE_CHUNKS": "4",
        "NIGHTLY_HEARTBEAT_SECONDS": "1",
        "NIGHTLY_STALE_AFTER_SECONDS": "3",
    }
    holder = psycopg.connect(current_test_database_url())
    holder.execute(
        "SELECT id FROM members_member WHERE id BETWEEN %s AND %s FOR UPDATE", list(last_range)
    )
    try:
        with celery_worker(tmp_path, follow_ups_on_own_queue=True, **fast) as worker:
            nightly_run_task.apply_async(args=[day.isoformat()], queue=worker.queue)

            def three_of_four():
                run = JobRun.objects.filter(kind="tier_recompute", business_date=day).first()
                return run if run and run.progress.startswith("chunk 3/4,") else None

            tier_run = _wait_for(three_of_four, 60, "three chunks done", worker)
            worker.process.kill()  # SIGKILL: the last chunk is taken and never acknowledged
            worker.process.wait(timeout=20)
    finally:
        holder.rollback()
        holder.close()
    assert tier_run.status == JobStatus.RUNNING
    assert tier_run.progress == "chunk 3/4, 6 members"  # 2 + 2 + 2 of the 8 members

    started = time.monotonic()
    with celery_worker(tmp_path, follow_ups_on_own_queue=True, **fast) as worker:
        time.sleep(4)  # the dead night's heartbeat goes stale
        found = result_of(nightly_watchdog_task.apply_async(queue=worker.queue), worker)

        def night_done():
            return JobRun.objects.filter(
                kind=CHAIN_KIND, business_date=day, status=JobStatus.SUCCEEDED
            ).first()

        _wait_for(night_done, 60, "the night dispatched again completed", worker)
    elapsed = time.monotonic() - started

    assert found == {"abandoned": 2, "nights_dispatched": 1}  # the night and its tier step
    assert elapsed < 60
    statuses = list(
        JobRun.objects.filter(business_date=day).order_by("id").values_list("kind", "status")
    )
    assert statuses[:3] == [
        (CHAIN_KIND, JobStatus.ABANDONED),
        ("feed_check", JobStatus.SUCCEEDED),
        ("tier_recompute", JobStatus.ABANDONED),
    ]
    assert JobStatus.RUNNING not in {status for _, status in statuses}
    # as an uninterrupted night: every member graded once, the GOLD member at GOLD
    tiers = dict(Member.objects.values_list("member_no", "tier__code"))
    assert tiers["M0000001"] == "GOLD" and set(tiers.values()) == {"GOLD", "STANDARD"}
    moves = list(TierChange.objects.values_list("member__member_no", "cause"))
    assert sorted(moves) == sorted((member_no, "INITIAL") for member_no in tiers)
    assert all(stage for stage in Member.objects.values_list("lifecycle_stage", flat=True))
