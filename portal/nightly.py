"""The nightly chain (DESIGN.md, "Nightly pipeline"): one ordered list of steps per business
date, each recorded as a `JobRun` and idempotent for its date.

A step is a function `(business_date) -> (counts, warning message or "")`, registered in
`NIGHTLY_STEPS` by its kind; later steps (tiers, lifecycle, entitlements…) are appended
here as their apps land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .choices import JobStatus
from .models import JobRun
from .services import jobrun_record

StepResult = tuple[dict, str]


@dataclass(frozen=True)
class NightlyStep:
    kind: str
    label: str
    run: Callable[[date], StepResult]


def _feed_check(business_date: date) -> StepResult:
    from members.services import feed_arrival_check

    counts = feed_arrival_check(business_date=business_date)
    warning = ""
    if counts["missing"]:
        warning = (
            f"No {' and '.join(counts['missing'])} feed for {counts['feed_date']} yet: later steps "
            "use the data that has arrived. Import the missing file(s), then re-run this date."
        )
    return counts, warning


NIGHTLY_STEPS: list[NightlyStep] = [
    NightlyStep("feed_check", "Feed arrival check", _feed_check),
]


def nightly_run(
    *, business_date: date, actor=None, report: Callable[[JobRun], None] | None = None
) -> list[JobRun]:
    """Run every step of the chain for `business_date`, in order; stop at the first failure
    (its JobRun says what to do next). Returns the JobRuns."""
    runs = []
    for step in NIGHTLY_STEPS:
        with jobrun_record(kind=step.kind, business_date=business_date, actor=actor) as run:
            counts, warning = step.run(business_date)
            run.counts = counts
            if warning:
                run.status = JobStatus.WARNING
                run.message = warning
        runs.append(run)
        if report:
            report(run)
    return runs
