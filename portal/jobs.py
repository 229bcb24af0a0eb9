"""Job runs: the one place a `JobRun` is opened, advanced, closed and failed.

Every batch job (a step of the nightly chain, in-process or as a Celery chord) records its
run with these functions, so the status rules and the "what to do next" of a failure are
written once.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from django.db import transaction
from django.utils import timezone

from .choices import JobStatus
from .models import JobRun
from .services import audit_context

__all__ = [
    "jobrun_fail",
    "jobrun_finish",
    "jobrun_progress",
    "jobrun_record",
    "jobrun_start",
]


def jobrun_start(*, kind: str, business_date: date, actor=None) -> JobRun:
    """Open a RUNNING run of job `kind` for the business date (committed at once)."""
    return JobRun.objects.create(
        kind=kind,
        business_date=business_date,
        triggered_by=actor if getattr(actor, "pk", None) else None,
    )


def jobrun_progress(*, run: JobRun, progress: str) -> None:
    """Record how far a running job has got (shown on the job runs page)."""
    JobRun.objects.filter(pk=run.pk).update(progress=progress[:200])
    run.progress = progress[:200]


def jobrun_finish(
    *, run: JobRun, counts: dict, warning: str = "", progress: str | None = None
) -> JobRun:
    """Close a run: SUCCEEDED, or WARNING with the message when there is one."""
    run.counts = counts
    if warning:
        run.status, run.message = JobStatus.WARNING, warning
    elif run.status == JobStatus.RUNNING:
        run.status = JobStatus.SUCCEEDED
    if progress is not None:
        run.progress = progress[:200]
    run.finished_at = timezone.now()
    run.save()
    return run


def jobrun_fail(*, run: JobRun, cause: str, details: str = "") -> JobRun:
    """Close a run as FAILED with its cause and what to do next (re-run the date)."""
    day = run.business_date.isoformat()
    run.status = JobStatus.FAILED
    run.error = (
        f"{cause}\n\nFix the cause, then re-run this job for {day} "
        f"(run_nightly --date {day} or the re-run button)." + (f"\n\n{details}" if details else "")
    )
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
    return run


@contextmanager
def jobrun_record(*, kind: str, business_date: date, actor=None) -> Iterator[JobRun]:
    """Record one run of a batch job as a `JobRun` committed before and after the work.

    The work runs inside the block and sets `run.counts` (and `run.message` with
    `run.status = JobStatus.WARNING` for a warning). An exception marks the run FAILED with
    the error and what to do next, then propagates.
    """
    run = jobrun_start(kind=kind, business_date=business_date, actor=actor)
    try:
        job = f"job {kind} {business_date.isoformat()} (run #{run.pk})"
        with audit_context(job=job, **({"user": actor.pk} if getattr(actor, "pk", None) else {})):
            yield run
    except Exception as exc:
        jobrun_fail(
            run=run, cause=f"{type(exc).__name__}: {exc}", details=traceback.format_exc(limit=5)
        )
        raise
    else:
        jobrun_finish(run=run, counts=run.counts, warning=run.message)
