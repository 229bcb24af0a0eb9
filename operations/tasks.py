"""Thin Celery wrappers around the nightly chain.

`nightly_run_task` (beat, every night; the job page's re-run) runs the night of a business
date, or, with no date, every night missed since the last one that completed (at most
`NIGHTLY_CATCH_UP_DAYS`, oldest first). Without a broker (eager) or with one chunk, each night
runs in-process exactly like `manage.py run_nightly`. With a broker and
`TIER_RECOMPUTE_CHUNKS` > 1 a night becomes a chain of step tasks in which each
population-wide step is a chord of member-id-range tasks; the chunks report their progress
as they finish ("3/4 chunks, 750,000 members") and the chord's callback closes the step.

Each night is claimed as one `nightly_chain` JobRun (one live night per date); chunks and
steps keep its heartbeat while they run. `nightly_watchdog_task` (beat, every minute) marks a
night whose heartbeat went stale ABANDONED — its worker died, or the broker lost its tasks —
and dispatches the night again: every step is idempotent for its date, so the re-run ends in
the state of an uninterrupted night. A task of an abandoned night does nothing.

`nightly_dispatch` is the one way a night is sent to the workers (the job page's re-run and
run-a-date form, the watchdog): it refuses while a live night of the date runs and fails
within seconds, saying what to do, when the broker cannot be reached.
"""

from __future__ import annotations

import logging
from datetime import date

from celery import chain, chord, current_app, shared_task
from celery.exceptions import Ignore
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

from portal.choices import JobStatus
from portal.clock import today_in_shanghai
from portal.errors import DomainError
from portal.jobs import (
    JobAlreadyRunning,
    jobrun_abandon_stale,
    jobrun_fail,
    jobrun_finish,
    jobrun_heartbeats,
    jobrun_is_stale,
    jobrun_progress,
    jobrun_runner,
    jobrun_start,
    progress_chunks,
    progress_step,
)
from portal.models import JobRun
from portal.services import audit_record

from .nightly import (
    CHAIN_KIND,
    NIGHTLY_STEPS,
    member_id_ranges,
    nightly_chain_finish,
    nightly_chain_start,
    nightly_missed_dates,
    nightly_run,
    nightly_step,
    nightly_step_run,
    sum_counts,
)

logger = logging.getLogger(__name__)

RETRYABLE = (ConnectionError, OperationalError)


def _day(business_date: str | None) -> date:
    return date.fromisoformat(business_date) if business_date else today_in_shanghai()


def _summary(runs: list[JobRun]) -> list[dict]:
    return [{"kind": run.kind, "status": run.status, "counts": run.counts} for run in runs]


def _in_process() -> bool:
    return settings.CELERY_TASK_ALWAYS_EAGER or settings.TIER_RECOMPUTE_CHUNKS <= 1


def _live(run_id: int) -> JobRun:
    """The run, if it is still RUNNING; a task of a night that was abandoned (and re-run)
    or has failed stops here without continuing its chain."""
    run = JobRun.objects.filter(pk=run_id).first()
    if run is None or run.status != JobStatus.RUNNING:
        raise Ignore()
    return run


@shared_task(
    name="operations.nightly_run_task",
    bind=True,
    acks_late=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    max_retries=3,
)
def nightly_run_task(self, business_date: str | None = None):
    """Run the night of a business date (ISO string), or with none every night missed up to
    today in Shanghai, oldest first."""
    days = [_day(business_date)] if business_date else nightly_missed_dates(until=_day(None))
    if _in_process():
        runs = []
        for day in days:
            try:
                runs += nightly_run(business_date=day, runner=jobrun_runner("Celery worker"))
            except JobAlreadyRunning as exc:
                logger.warning("%s", exc)
                break  # later nights wait for this one: they run in date order
        return _summary(runs)
    raise self.replace(chain(*(nightly_night_task.si(day.isoformat()) for day in days)))


@shared_task(name="operations.nightly_night_task", bind=True, acks_late=True)
def nightly_night_task(self, business_date: str):
    """Claim the night of a date, then run its steps one after the other as tasks."""
    day = _day(business_date)
    try:
        night = nightly_chain_start(business_date=day, runner=jobrun_runner("Celery worker"))
    except JobAlreadyRunning as exc:
        logger.warning("%s", exc)
        raise Ignore() from None  # the night is being run: this chain (and what follows) stops
    steps = [nightly_step_task.si(business_date, step.kind, night.pk) for step in NIGHTLY_STEPS]
    raise self.replace(chain(*steps, nightly_summary_task.si(business_date, night.pk)))


@shared_task(name="operations.nightly_step_task", bind=True, acks_late=True)
def nightly_step_task(self, business_date: str, kind: str, night_id: int):
    """One step of a distributed night; a chunked step becomes a chord of range tasks."""
    night = _live(night_id)
    day, step = _day(business_date), nightly_step(kind)
    position = [s.kind for s in NIGHTLY_STEPS].index(kind) + 1
    jobrun_progress(run=night, progress=progress_step(position, len(NIGHTLY_STEPS), kind))
    if step.chunk is None:
        with jobrun_heartbeats(night):
            return nightly_step_run(step=step, business_date=day, runner=night.runner).pk
    run = jobrun_start(kind=kind, business_date=day, runner=night.runner)
    try:
        with jobrun_heartbeats(night):
            prepared = step.prepare(day, run) if step.prepare else {}
    except Exception as exc:  # the step and the night say why, then the task fails
        _fail(run.pk, night.pk, f"{type(exc).__name__}: {exc} (before the ranges)")
        raise
    ranges = member_id_ranges()
    run.counts = {"ranges": len(ranges), "done": {}, "prepared": prepared}
    run.save(update_fields=["counts"])
    jobrun_progress(run=run, progress=progress_chunks(0, len(ranges), 0))
    header = [
        nightly_chunk_task.si(business_date, kind, run.pk, night.pk, *(id_range or (None, None)))
        for id_range in ranges
    ]
    body = nightly_close_task.s(run.pk, night.pk).on_error(nightly_fail_task.si(run.pk, night.pk))
    raise self.replace(chord(header, body))


@shared_task(
    name="operations.nightly_chunk_task",
    acks_late=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    max_retries=3,
)
def nightly_chunk_task(business_date: str, kind: str, run_id: int, night_id: int, lo, hi) -> dict:
    """One member-id range of a chunked step (idempotent: re-running it changes nothing);
    reports the step's progress when it is done."""
    run, night = _live(run_id), _live(night_id)
    id_range = (lo, hi) if lo is not None else None
    try:
        with jobrun_heartbeats(run, night):
            counts = nightly_step(kind).chunk(_day(business_date), run, id_range)
    except RETRYABLE:
        raise
    except Exception as exc:
        _fail(run_id, night_id, f"{type(exc).__name__}: {exc} (members {lo}–{hi})")
        raise
    _chunk_done(run_id, f"{lo}-{hi}", counts)
    return counts


def _chunk_done(run_id: int, key: str, counts: dict) -> None:
    """Add a finished chunk to its step's progress (one row lock: chunks finish one at a
    time here, whatever the order)."""
    with transaction.atomic():
        run = JobRun.objects.select_for_update().get(pk=run_id)
        done = {**run.counts.get("done", {}), key: counts}
        total = run.counts.get("ranges", len(done))
        members = sum(part.get("evaluated", 0) for part in done.values())
        run.counts = {**run.counts, "done": done}
        run.save(update_fields=["counts"])
    jobrun_progress(run=run, progress=progress_chunks(len(done), total, members))


@shared_task(name="operations.nightly_close_task", acks_late=True)
def nightly_close_task(parts: list[dict], run_id: int, night_id: int) -> int:
    """Chord callback: add up the chunks' counts and close the step's JobRun."""
    _live(night_id)
    with transaction.atomic():
        run = JobRun.objects.select_for_update().get(pk=run_id)
        if run.status != JobStatus.RUNNING:
            raise Ignore()
        step = nightly_step(run.kind)
        jobrun_finish(
            run=run,
            counts={
                **sum_counts([run.counts.get("prepared", {}), *parts]),
                "chunks": len(parts),
            },
            warning=step.warn(run.business_date) if step.warn else "",
            progress=f"{len(parts)}/{len(parts)} chunks done",
        )
    return run_id


def _fail(run_id: int, night_id: int, cause: str) -> None:
    for pk in (run_id, night_id):
        run = JobRun.objects.filter(pk=pk, status=JobStatus.RUNNING).first()
        if run is not None:
            jobrun_fail(run=run, cause=cause)


@shared_task(name="operations.nightly_fail_task")
def nightly_fail_task(run_id: int, night_id: int) -> None:
    """Chord error callback: the step failed (the chunk's own error is kept if recorded)."""
    _fail(run_id, night_id, "A chunk of this step failed; see the worker log.")


@shared_task(name="operations.nightly_summary_task")
def nightly_summary_task(business_date: str, night_id: int) -> list[dict]:
    """Close the night with what each of its steps ended as."""
    night = _live(night_id)
    latest = {}
    for run in JobRun.objects.filter(
        business_date=_day(business_date), started_at__gte=night.started_at
    ).exclude(kind=CHAIN_KIND):
        latest[run.kind] = run
    runs = [latest[step.kind] for step in NIGHTLY_STEPS if step.kind in latest]
    nightly_chain_finish(chain=night, runs=runs)
    return _summary(runs)


class QueueUnavailable(DomainError):
    """The task queue (broker) cannot be reached: the night was not started."""

    http_status = 503
    code = "queue_unavailable"

    def __init__(self, business_date: date):
        day = business_date.isoformat()
        super().__init__(
            _(
                "The task queue (broker) cannot be reached: the nightly chain for %(date)s was "
                "not started. Run `python manage.py run_nightly --date %(date)s` on the server "
                "to run it in-process, or start Redis and try again."
            )
            % {"date": day},
            details={"business_date": day},
        )


#: what a publish to an unreachable broker raises (kombu wraps the transport's errors)
BROKER_ERRORS = (BrokerError, OSError)


def nightly_live_night(business_date: date) -> JobRun | None:
    """The night of the date that is running and alive (its heartbeat is fresh), if any."""
    run = JobRun.objects.filter(
        kind=CHAIN_KIND, business_date=business_date, status=JobStatus.RUNNING
    ).first()
    return run if run is not None and not jobrun_is_stale(run) else None


def nightly_dispatch(business_date: date, *, actor=None, ip: str | None = None, task=None) -> bool:
    """Send the night of `business_date` to the workers (`nightly_run_task`, or `task`);
    True when queued, False when it ran in this process (eager Celery, no broker).

    A live night of the date refuses with `JobAlreadyRunning` (naming it): nothing is sent.
    An unreachable broker raises `QueueUnavailable` within seconds: one publish without
    retries and no result subscription (the broker's connect and socket timeouts are in
    the settings), so a page or the watchdog never hangs on it. A dispatch by a user is
    audited."""
    live = nightly_live_night(business_date)
    if live is not None:
        raise JobAlreadyRunning(live)
    task = task or nightly_run_task
    queued = not current_app.conf.task_always_eager
    if queued:
        try:
            task.apply_async(args=[business_date.isoformat()], retry=False, ignore_result=True)
        except BROKER_ERRORS as exc:
            logger.error(
                "night %s not dispatched, the broker cannot be reached: %s", business_date, exc
            )
            raise QueueUnavailable(business_date) from exc
    else:  # eager: the night runs here, now, like run_nightly
        task.apply_async(args=[business_date.isoformat()])
    if getattr(actor, "pk", None):
        audit_record(
            actor=actor,
            action="nightly.dispatch",
            changes={"business_date": business_date.isoformat(), "queued": queued},
            ip=ip,
        )
    return queued


@shared_task(name="operations.nightly_watchdog_task", acks_late=True)
def nightly_watchdog_task() -> dict:
    """Every minute (beat): a RUNNING night or step without a heartbeat for
    NIGHTLY_STALE_AFTER_SECONDS has lost its worker (or its tasks): mark it ABANDONED and
    dispatch its night again. A live night's runs are left alone."""
    stale_nights = [
        run.business_date
        for run in JobRun.objects.filter(kind=CHAIN_KIND, status=JobStatus.RUNNING)
        if jobrun_is_stale(run)
    ]
    abandoned = jobrun_abandon_stale(superseded_by="the watchdog's re-dispatch")
    dispatched, not_dispatched = [], []
    for day in sorted(set(stale_nights)):
        try:
            nightly_dispatch(day, task=nightly_night_task)
        except (QueueUnavailable, JobAlreadyRunning) as exc:
            # Logged, not raised: the watchdog's other nights and its next round go on.
            logger.error("night %s lost its worker and was not dispatched again: %s", day, exc)
            not_dispatched.append(day.isoformat())
            continue
        logger.warning("night %s lost its worker: dispatched again", day)
        dispatched.append(day.isoformat())
    found = {"abandoned": abandoned, "nights_dispatched": len(dispatched)}
    return {**found, "nights_not_dispatched": not_dispatched} if not_dispatched else found


@shared_task(name="operations.ping_task", acks_late=True)
def ping_task(value: str) -> str:
    """Round trip used by health checks and the worker integration test."""
    return f"pong:{value}"


__all__ = [
    "QueueUnavailable",
    "nightly_chunk_task",
    "nightly_close_task",
    "nightly_dispatch",
    "nightly_fail_task",
    "nightly_live_night",
    "nightly_night_task",
    "nightly_run_task",
    "nightly_step_task",
    "nightly_summary_task",
    "nightly_watchdog_task",
    "ping_task",
]
