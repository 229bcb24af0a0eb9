"""Thin Celery wrappers around the nightly chain.

With a broker (REDIS_URL) and TIER_RECOMPUTE_CHUNKS > 1, `nightly_run_task` replaces itself
by a chain of steps in which each population-wide step is a chord of member-id-range tasks;
the chord's callback closes the step's JobRun. Without a broker (eager) or with one chunk,
the chain runs in-process exactly like `manage.py run_nightly`.
"""

from __future__ import annotations

from datetime import date

from celery import chain, chord, shared_task
from django.conf import settings
from django.db import OperationalError, transaction

from portal.choices import JobStatus
from portal.clock import today_in_shanghai
from portal.jobs import jobrun_fail, jobrun_finish, jobrun_progress, jobrun_start
from portal.models import JobRun

from .nightly import (
    NIGHTLY_STEPS,
    member_id_ranges,
    nightly_run,
    nightly_step,
    nightly_step_run,
    sum_counts,
)

RETRYABLE = (ConnectionError, OperationalError)


def _day(business_date: str | None) -> date:
    return date.fromisoformat(business_date) if business_date else today_in_shanghai()


def _summary(runs: list[JobRun]) -> list[dict]:
    return [{"kind": run.kind, "status": run.status, "counts": run.counts} for run in runs]


@shared_task(
    name="operations.nightly_run_task",
    bind=True,
    acks_late=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    max_retries=3,
)
def nightly_run_task(self, business_date: str | None = None):
    """Run the nightly chain for a business date (ISO string; default: today in Shanghai)."""
    day = _day(business_date)
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.TIER_RECOMPUTE_CHUNKS <= 1:
        return _summary(nightly_run(business_date=day))
    steps = [nightly_step_task.si(day.isoformat(), step.kind) for step in NIGHTLY_STEPS]
    raise self.replace(chain(*steps, nightly_summary_task.si(day.isoformat())))


@shared_task(name="operations.nightly_step_task", bind=True, acks_late=True)
def nightly_step_task(self, business_date: str, kind: str):
    """One step of the distributed chain; a chunked step becomes a chord of range tasks."""
    day, step = _day(business_date), nightly_step(kind)
    if step.chunk is None:
        return nightly_step_run(step=step, business_date=day).pk
    run = jobrun_start(kind=kind, business_date=day)
    ranges = member_id_ranges()
    jobrun_progress(run=run, progress=f"{len(ranges)} chunks queued")
    header = [
        nightly_chunk_task.si(business_date, kind, run.pk, *(id_range or (None, None)))
        for id_range in ranges
    ]
    body = nightly_close_task.s(run.pk).on_error(nightly_fail_task.si(run.pk))
    raise self.replace(chord(header, body))


@shared_task(
    name="operations.nightly_chunk_task",
    acks_late=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    max_retries=3,
)
def nightly_chunk_task(business_date: str, kind: str, run_id: int, lo, hi) -> dict:
    """One member-id range of a chunked step (idempotent: re-running it changes nothing)."""
    run = JobRun.objects.get(pk=run_id)
    id_range = (lo, hi) if lo is not None else None
    try:
        return nightly_step(kind).chunk(_day(business_date), run, id_range)
    except RETRYABLE:
        raise
    except Exception as exc:
        _mark_failed(run_id, f"{type(exc).__name__}: {exc} (members {lo}–{hi})")
        raise


@shared_task(name="operations.nightly_close_task", acks_late=True)
def nightly_close_task(parts: list[dict], run_id: int) -> int:
    """Chord callback: add up the chunks' counts and close the step's JobRun."""
    with transaction.atomic():
        run = JobRun.objects.select_for_update().get(pk=run_id)
        step = nightly_step(run.kind)
        jobrun_finish(
            run=run,
            counts={**sum_counts(parts), "chunks": len(parts)},
            warning=step.warn(run.business_date) if step.warn else "",
            progress=f"{len(parts)}/{len(parts)} chunks done",
        )
    return run_id


def _mark_failed(run_id: int, cause: str) -> None:
    jobrun_fail(run=JobRun.objects.get(pk=run_id), cause=cause)


@shared_task(name="operations.nightly_fail_task")
def nightly_fail_task(run_id: int) -> None:
    """Chord error callback: the step failed (the chunk's own error is kept if recorded)."""
    if JobRun.objects.filter(pk=run_id, status=JobStatus.RUNNING).exists():
        _mark_failed(run_id, "A chunk of this step failed; see the worker log.")


@shared_task(name="operations.nightly_summary_task")
def nightly_summary_task(business_date: str) -> list[dict]:
    day = _day(business_date)
    latest = {}
    for run in JobRun.objects.filter(business_date=day).order_by("started_at", "id"):
        latest[run.kind] = run
    return _summary([latest[step.kind] for step in NIGHTLY_STEPS if step.kind in latest])


@shared_task(name="operations.ping_task", acks_late=True)
def ping_task(value: str) -> str:
    """Round trip used by health checks and the worker integration test."""
    return f"pong:{value}"
