"""The nightly chain (DESIGN.md, "Nightly pipeline"): one ordered list of steps per business
date, each recorded as a `JobRun` and idempotent for its date.

A step is a function `(business_date, job_run) -> (counts, warning message or "")`, registered in
`NIGHTLY_STEPS` by its kind; later steps (tiers, lifecycle, entitlements…) are appended
here as their apps land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .choices import JobStatus
from .models import JobRun
from .services import jobrun_progress, jobrun_record

StepResult = tuple[dict, str]


@dataclass(frozen=True)
class NightlyStep:
    kind: str
    label: str
    run: Callable[[date, JobRun], StepResult]


def _feed_check(business_date: date, run: JobRun) -> StepResult:
    from members.services import feed_arrival_check

    counts = feed_arrival_check(business_date=business_date)
    warning = ""
    if counts["missing"]:
        warning = (
            f"No {' and '.join(counts['missing'])} feed for {counts['feed_date']} yet: later steps "
            "use the data that has arrived. Import the missing file(s), then re-run this date."
        )
    return counts, warning


def member_id_ranges(chunks: int) -> list[tuple[int, int] | None]:
    """Split the member id space into `chunks` contiguous ranges (None = everyone)."""
    from django.db.models import Max, Min

    from members.models import Member

    if chunks <= 1:
        return [None]
    bounds = Member.objects.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return [None]
    lo, hi = bounds["lo"], bounds["hi"]
    size = max(1, (hi - lo + chunks) // chunks)
    return [(start, min(start + size - 1, hi)) for start in range(lo, hi + 1, size)]


def _sum_counts(parts: list[dict]) -> dict:
    total: dict = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def _in_chunks(run: JobRun, work: Callable[[tuple[int, int] | None], dict]) -> dict:
    """Run `work` over the member-id ranges, reporting progress on the JobRun."""
    from django.conf import settings

    ranges = member_id_ranges(getattr(settings, "TIER_RECOMPUTE_CHUNKS", 1))
    parts = []
    for index, id_range in enumerate(ranges, start=1):
        parts.append(work(id_range))
        evaluated = sum(part.get("evaluated", 0) for part in parts)
        jobrun_progress(run=run, progress=f"chunk {index}/{len(ranges)}, {evaluated:,} members")
    counts = _sum_counts(parts)
    counts["chunks"] = len(ranges)
    return counts


def _tier_recompute(business_date: date, run: JobRun) -> StepResult:
    from members.services import tier_recompute

    def work(id_range):
        return tier_recompute(business_date=business_date, job_run=run, id_range=id_range)

    return _in_chunks(run, work), ""


def _lifecycle_recompute(business_date: date, run: JobRun) -> StepResult:
    from members.services import lifecycle_recompute

    def work(id_range):
        return lifecycle_recompute(business_date=business_date, id_range=id_range)

    return _in_chunks(run, work), ""


NIGHTLY_STEPS: list[NightlyStep] = [
    NightlyStep("feed_check", "Feed arrival check", _feed_check),
    NightlyStep("tier_recompute", "Tier recompute", _tier_recompute),
    NightlyStep("lifecycle_recompute", "Lifecycle stages", _lifecycle_recompute),
]


def nightly_run(
    *, business_date: date, actor=None, report: Callable[[JobRun], None] | None = None
) -> list[JobRun]:
    """Run every step of the chain for `business_date`, in order; stop at the first failure
    (its JobRun says what to do next). Returns the JobRuns."""
    runs = []
    for step in NIGHTLY_STEPS:
        with jobrun_record(kind=step.kind, business_date=business_date, actor=actor) as run:
            counts, warning = step.run(business_date, run)
            run.counts = counts
            if warning:
                run.status = JobStatus.WARNING
                run.message = warning
        runs.append(run)
        if report:
            report(run)
    return runs
