"""Writes of the portal app: audit entries and job runs."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from django.db import models, transaction
from django.utils import timezone

from .choices import JobStatus
from .models import AuditEntry, JobRun


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    changes: dict | None = None,
    reason: str = "",
    ip: str | None = None,
) -> AuditEntry:
    """Append one audit entry. Call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes or {},
        reason=reason,
        ip=ip,
    )


def jobrun_progress(*, run: JobRun, progress: str) -> None:
    """Record how far a running job has got (shown on the job runs page)."""
    JobRun.objects.filter(pk=run.pk).update(progress=progress[:200])
    run.progress = progress[:200]


@contextmanager
def jobrun_record(*, kind: str, business_date: date, actor=None) -> Iterator[JobRun]:
    """Record one run of a batch job as a `JobRun` row committed before and after the work.

    The work runs inside the block; it may set `run.counts`, `run.message` and
    `run.status = JobStatus.WARNING`. An exception marks the run FAILED with the error and
    what to do next, then propagates.
    """
    run = JobRun.objects.create(kind=kind, business_date=business_date, triggered_by=actor)
    try:
        yield run
    except Exception as exc:
        run.status = JobStatus.FAILED
        run.error = (
            f"{type(exc).__name__}: {exc}\n\nFix the cause, then re-run this job for "
            f"{business_date} (run_nightly --date {business_date} or the re-run button).\n\n"
            + traceback.format_exc(limit=5)
        )
        run.finished_at = timezone.now()
        with transaction.atomic():
            run.save()
        raise
    else:
        if run.status == JobStatus.RUNNING:
            run.status = JobStatus.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()
