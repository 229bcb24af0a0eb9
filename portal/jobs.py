"""Job runs: the one place a `JobRun` is opened, kept alive, advanced, closed, failed and found
dead.

Every batch job (a step of the nightly chain, the chain itself, in-process or as a Celery
chord) records its run with these functions, so the rules are written once:
- at most one RUNNING run of a job for a business date (a database constraint); opening a
  second one raises `JobAlreadyRunning`, naming the run that holds it;
- a running job refreshes its heartbeat; a RUNNING run whose heartbeat is older than
  `NIGHTLY_STALE_AFTER_SECONDS` has died: it is marked ABANDONED (and superseded) by the
  next run of its job and date, or by the sweep;
- a failure says what to do next: re-run the date.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from .choices import JobStatus
from .errors import StateConflict
from .models import JobRun
from .services import audit_context

__all__ = [
    "JobAlreadyRunning",
    "jobrun_abandon_stale",
    "jobrun_fail",
    "jobrun_finish",
    "jobrun_heartbeat",
    "jobrun_heartbeats",
    "jobrun_is_stale",
    "jobrun_progress",
    "jobrun_progress_text",
    "jobrun_record",
    "jobrun_runner",
    "jobrun_start",
]

logger = logging.getLogger(__name__)


class JobAlreadyRunning(StateConflict):
    """The job is being run for this business date by a live run."""

    code = "job_running"

    def __init__(self, run: JobRun):
        self.run = run
        super().__init__(
            _(
                "%(job)s for %(date)s is already running: run #%(id)s, started %(since)s by "
                "%(runner)s%(progress)s. Wait for it to finish (Job runs page); a run whose "
                "process died is taken over automatically once its heartbeat is older than "
                "%(stale)s seconds."
            )
            % {
                "job": run.kind,
                "date": run.business_date.isoformat(),
                "id": run.pk,
                "since": timezone.localtime(run.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                "runner": run.runner or (run.triggered_by or _("an unknown process")),
                "progress": f" ({run.progress})" if run.progress else "",
                "stale": settings.NIGHTLY_STALE_AFTER_SECONDS,
            },
            details={"job_run": run.pk},
        )


def jobrun_runner(what: str) -> str:
    """Who runs a job, as its JobRun shows it: `what` with this process and host."""
    return f"{what} (pid {os.getpid()} on {socket.gethostname()})"[:200]


def jobrun_is_stale(run: JobRun) -> bool:
    """A RUNNING run whose heartbeat (or start) is older than NIGHTLY_STALE_AFTER_SECONDS."""
    beat = run.heartbeat_at or run.started_at
    limit = timedelta(seconds=settings.NIGHTLY_STALE_AFTER_SECONDS)
    return run.status == JobStatus.RUNNING and timezone.now() - beat > limit


def jobrun_abandon_stale(
    *, kind: str | None = None, business_date: date | None = None, superseded_by: str = ""
) -> int:
    """Mark ABANDONED every RUNNING run (of `kind` / `business_date` when given) whose
    heartbeat is stale: its process died. Returns how many. The sweep calls it with no
    filter; a new run of a job calls it for its own job and date."""
    cutoff = timezone.now() - timedelta(seconds=settings.NIGHTLY_STALE_AFTER_SECONDS)
    runs = JobRun.objects.filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff),
        status=JobStatus.RUNNING,
    )
    if kind is not None:
        runs = runs.filter(kind=kind)
    if business_date is not None:
        runs = runs.filter(business_date=business_date)
    note = _("Its process stopped sending heartbeats (it died or was killed).")
    if superseded_by:
        note += " " + _("Superseded by %(run)s.") % {"run": superseded_by}
    return runs.update(status=JobStatus.ABANDONED, finished_at=timezone.now(), error=note)


def jobrun_start(*, kind: str, business_date: date, actor=None, runner: str = "") -> JobRun:
    """Open a RUNNING run of job `kind` for the business date (committed at once). A run of
    the same job and date that is alive raises `JobAlreadyRunning`; one whose process died
    is marked ABANDONED first and superseded."""
    for _attempt in range(2):
        try:
            with transaction.atomic():
                return JobRun.objects.create(
                    kind=kind,
                    business_date=business_date,
                    triggered_by=actor if getattr(actor, "pk", None) else None,
                    runner=runner[:200],
                    heartbeat_at=timezone.now(),
                )
        except IntegrityError:
            holder = JobRun.objects.filter(
                kind=kind, business_date=business_date, status=JobStatus.RUNNING
            ).first()
            if holder is None:
                continue  # it just finished: open ours
            if not jobrun_is_stale(holder):
                raise JobAlreadyRunning(holder) from None
            jobrun_abandon_stale(
                kind=kind, business_date=business_date, superseded_by=runner or "a new run"
            )
    holder = JobRun.objects.filter(
        kind=kind, business_date=business_date, status=JobStatus.RUNNING
    ).first()
    raise JobAlreadyRunning(holder)


def jobrun_heartbeat(*, run: JobRun) -> None:
    """Note that the run is alive (only while it is RUNNING)."""
    JobRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


def _beating(run_ids: list[int], stop: threading.Event, every: float) -> None:
    try:
        while not stop.wait(every):
            JobRun.objects.filter(pk__in=run_ids, status=JobStatus.RUNNING).update(
                heartbeat_at=timezone.now()
            )
    except Exception:  # a heartbeat that cannot be written only makes the run look older
        logger.warning("heartbeat of job runs %s could not be written", run_ids, exc_info=True)
    finally:
        connection.close()


@contextmanager
def jobrun_heartbeats(*runs: JobRun) -> Iterator[None]:
    """Refresh the runs' heartbeats from a thread of their own while the block runs (a step
    may be one long statement); nothing on an in-memory SQLite database, which a second
    connection cannot see."""
    every = settings.NIGHTLY_HEARTBEAT_SECONDS
    name = str(connection.settings_dict.get("NAME", ""))
    if every <= 0 or (connection.vendor == "sqlite" and "memory" in name):
        yield
        return
    stop = threading.Event()
    beater = threading.Thread(
        target=_beating, args=([run.pk for run in runs], stop, every), daemon=True
    )
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join(timeout=every + 5)


def jobrun_progress(*, run: JobRun, progress: str) -> None:
    """Record how far a running job has got (shown on the job runs page); also a heartbeat."""
    JobRun.objects.filter(pk=run.pk).update(progress=progress[:200], heartbeat_at=timezone.now())
    run.progress = progress[:200]


# --- progress: written in one form, read back in the reader's language ------------------------
#
# A run's progress is stored as a short fixed form ("chunk 1/4, 20,000 members", "step 2/9:
# tier_recompute") that `jobrun_progress_text` says in the language of whoever reads it.

#: (pattern of the stored form, sentence it reads as); groups: done, total, members or step
_PROGRESS_FORMS = [
    (re.compile(r"^chunk (\d+)/(\d+), ([\d,]+) members$"), "chunks"),
    (re.compile(r"^(\d+)/(\d+) chunks, ([\d,]+) members$"), "chunks"),
    (re.compile(r"^(\d+)/(\d+) chunks done$"), "chunks_done"),
    (re.compile(r"^step (\d+)/(\d+): (\w+)$"), "step"),
    (re.compile(r"^(\d+)/(\d+) steps done$"), "steps_done"),
]


def progress_chunks(done: int, total: int, members: int) -> str:
    """The stored progress of a chunked step: "chunk 1/4, 20,000 members"."""
    return f"chunk {done}/{total}, {members:,} members"


def progress_step(position: int, total: int, kind: str) -> str:
    """The stored progress of a chain: "step 2/9: tier_recompute"."""
    return f"step {position}/{total}: {kind}"


def progress_steps_done(done: int, total: int) -> str:
    return f"{done}/{total} steps done"


def jobrun_progress_text(progress: str, *, step_label: Callable[[str], str] = str) -> str:
    """A run's stored progress as a sentence in the active language ("第 1/1 批，2,000 名会员";
    a chain's step by `step_label`); a progress of another form as it was stored."""
    for pattern, form in _PROGRESS_FORMS:
        match = pattern.match(progress or "")
        if match is None:
            continue
        done, total = match.group(1), match.group(2)
        if form == "chunks":
            members = int(match.group(3).replace(",", ""))
            return _("chunk %(done)s/%(total)s, %(members)s members") % {
                "done": done,
                "total": total,
                "members": number_format(members, force_grouping=True),
            }
        if form == "chunks_done":
            return _("%(done)s/%(total)s chunks done") % {"done": done, "total": total}
        if form == "step":
            return _("step %(done)s/%(total)s: %(step)s") % {
                "done": done,
                "total": total,
                "step": step_label(match.group(3)),
            }
        return _("%(done)s/%(total)s steps done") % {"done": done, "total": total}
    return progress


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
def jobrun_record(
    *, kind: str, business_date: date, actor=None, runner: str = ""
) -> Iterator[JobRun]:
    """Record one run of a batch job as a `JobRun` committed before and after the work, with
    heartbeats while it runs.

    The work runs inside the block and sets `run.counts` (and `run.message` with
    `run.status = JobStatus.WARNING` for a warning). An exception marks the run FAILED with
    the error and what to do next, then propagates.
    """
    run = jobrun_start(kind=kind, business_date=business_date, actor=actor, runner=runner)
    try:
        job = f"job {kind} {business_date.isoformat()} (run #{run.pk})"
        with (
            jobrun_heartbeats(run),
            audit_context(job=job, **({"user": actor.pk} if getattr(actor, "pk", None) else {})),
        ):
            yield run
    except Exception as exc:
        jobrun_fail(
            run=run, cause=f"{type(exc).__name__}: {exc}", details=traceback.format_exc(limit=5)
        )
        raise
    else:
        jobrun_finish(run=run, counts=run.counts, warning=run.message)
