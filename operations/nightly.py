"""The nightly chain (DESIGN.md, "Nightly pipeline"): one ordered list of steps per business
date, each recorded as a `JobRun` and idempotent for its date.

A step either runs whole (`run(business_date, job_run) -> (counts, warning or "")`) or, for
the population-wide recomputes, over member-id ranges (`chunk(business_date, job_run,
id_range) -> counts`). In-process (`run_nightly`, eager Celery) the ranges run one after the
other; with a Celery broker they fan out as a chord whose callback closes the JobRun
(`operations.tasks`), so more workers make a shorter night. Each step calls the service of
the domain whose tables it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Max, Min
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from benefits.services import budget_alerts_raise, entitlement_grants_run, grants_expire
from campaigns.services import campaign_outcomes_record, campaign_periods_roll
from members.models import Member
from members.services import (
    asset_feed_missing_days,
    feed_arrival_check,
    feed_arrival_warning,
    lifecycle_recompute,
    points_expire,
    tier_recompute,
    tier_scheme_switch_due,
)
from members.tiers import basis_month_for
from portal.choices import JobStatus
from portal.jobs import (
    jobrun_abandon_stale,
    jobrun_fail,
    jobrun_finish,
    jobrun_heartbeats,
    jobrun_progress,
    jobrun_record,
    jobrun_runner,
    jobrun_start,
    progress_chunks,
    progress_step,
    progress_steps_done,
)
from portal.models import JobRun

from .dashboard.snapshot import kpi_snapshot_compute, kpi_snapshot_counts

StepResult = tuple[dict, str]
IdRange = tuple[int, int] | None


@dataclass(frozen=True)
class NightlyStep:
    kind: str
    label: str | Promise
    run: Callable[[date, JobRun], StepResult] | None = None
    chunk: Callable[[date, JobRun, IdRange], dict] | None = None
    #: for a chunked step: a check whose message makes the run a WARNING (it still runs)
    warn: Callable[[date], str] | None = None
    #: for a chunked step: what runs once before its ranges (counts join the step's)
    prepare: Callable[[date, JobRun], dict] | None = None


def _feed_check(business_date: date, run: JobRun) -> StepResult:
    counts = feed_arrival_check(business_date=business_date)
    return counts, feed_arrival_warning(counts)


def _scheme_switch(business_date: date, run: JobRun) -> dict:
    """Before the ranges: a scheme approved for this night (or an earlier one) becomes the
    active one, so that every range grades by it (cause SCHEME_CHANGE)."""
    return tier_scheme_switch_due(business_date=business_date)


def _tier_chunk(business_date: date, run: JobRun, id_range: IdRange) -> dict:
    return tier_recompute(business_date=business_date, job_run=run, id_range=id_range)


def tier_basis_warning(business_date: date) -> str:
    """Say when the tier basis month has days without an assets feed."""
    month = basis_month_for(business_date)
    missing = asset_feed_missing_days(month=month)
    if not missing:
        return ""
    shown = ", ".join(day.isoformat() for day in missing[:5]) + (" …" if len(missing) > 5 else "")
    return ngettext(
        "The basis month %(month)s has no assets feed for %(count)s day (%(days)s); that day "
        "counts as 0. Import the missing file, then re-run this date.",
        "The basis month %(month)s has no assets feed for %(count)s days (%(days)s); those "
        "days count as 0. Import the missing files, then re-run this date.",
        len(missing),
    ) % {"month": f"{month:%Y-%m}", "count": len(missing), "days": shown}


def _lifecycle_chunk(business_date: date, run: JobRun, id_range: IdRange) -> dict:
    return lifecycle_recompute(business_date=business_date, id_range=id_range)


def refused_rows_warning(what: str, refused: list[str], remedy: str, *, shown: int = 10) -> str:
    """A step's warning for the configuration rows it refused and went on without: what
    they are, the first `shown` of them with their reasons, and what to do next."""
    if not refused:
        return ""
    more = (
        " " + _("(and %(count)s more)") % {"count": len(refused) - shown}
        if len(refused) > shown
        else ""
    )
    return f"{what}: " + "; ".join(refused[:shown]) + f"{more}. {remedy}"


def _entitlement_grants(business_date: date, run: JobRun) -> StepResult:
    counts = entitlement_grants_run(business_date=business_date)
    shortfalls = counts.pop("shortfalls")
    warnings = [
        refused_rows_warning(
            _("Entitlements not granted because their configuration is invalid"),
            counts.pop("refused"),
            _(
                "Correct them in the entitlement matrix (with approval), then re-run this date; "
                "the other entitlements were granted."
            ),
        )
    ]
    warning = ""
    if shortfalls:
        if any("not open" in shortfall for shortfall in shortfalls):
            remedy = _("Open a budget for this period (with approval)")
        else:
            remedy = _("Budget exhausted: raise the budget (with approval)")
        warning = _(
            "Some entitlements were not granted: %(shortfalls)s. %(remedy)s, then re-run this "
            "date to grant the rest."
        ) % {"shortfalls": "; ".join(shortfalls), "remedy": remedy}
    return counts, " ".join([*warnings, warning]).strip()


def _task_periods(business_date: date, run: JobRun) -> StepResult:
    return campaign_periods_roll(business_date=business_date), ""


def _points_expire(business_date: date, run: JobRun) -> StepResult:
    return points_expire(business_date=business_date), ""


def _grants_expire(business_date: date, run: JobRun) -> StepResult:
    return grants_expire(business_date=business_date), ""


def _budget_alerts(business_date: date, run: JobRun) -> StepResult:
    counts = budget_alerts_raise(business_date=business_date)
    alerts = counts.pop("alerts")
    warning = (
        (_("New budget alerts: %(alerts)s.") % {"alerts": ", ".join(alerts)}) if alerts else ""
    )
    refused = refused_rows_warning(
        _("Alert thresholds not read (invalid)"),
        counts.pop("refused"),
        _("Correct them on the budget; the other budgets were checked."),
    )
    return counts, f"{warning} {refused}".strip()


def _kpi_snapshot(business_date: date, run: JobRun) -> StepResult:
    measured = campaign_outcomes_record(business_date=business_date)  # the snapshot reads them
    counts = kpi_snapshot_counts(kpi_snapshot_compute(business_date=business_date))
    return {**counts, **measured}, ""


NIGHTLY_STEPS: list[NightlyStep] = [
    NightlyStep("feed_check", gettext_lazy("Feed arrival check"), run=_feed_check),
    NightlyStep(
        "tier_recompute",
        gettext_lazy("Tier recompute"),
        chunk=_tier_chunk,
        warn=tier_basis_warning,
        prepare=_scheme_switch,
    ),
    NightlyStep("lifecycle_recompute", gettext_lazy("Lifecycle stages"), chunk=_lifecycle_chunk),
    NightlyStep("task_periods", gettext_lazy("Task period roll-over"), run=_task_periods),
    NightlyStep(
        "entitlement_grants", gettext_lazy("Periodic entitlement grants"), run=_entitlement_grants
    ),
    NightlyStep("points_expire", gettext_lazy("Expiry of points"), run=_points_expire),
    NightlyStep("grants_expire", gettext_lazy("Expiry of grants"), run=_grants_expire),
    NightlyStep("budget_alerts", gettext_lazy("Budget alerts"), run=_budget_alerts),
    NightlyStep("kpi_snapshot", gettext_lazy("KPI snapshot"), run=_kpi_snapshot),
]


def nightly_step(kind: str) -> NightlyStep:
    return next(step for step in NIGHTLY_STEPS if step.kind == kind)


def member_id_ranges(chunks: int | None = None) -> list[IdRange]:
    """Split the member id space into `chunks` contiguous ranges (None = everyone)."""
    chunks = chunks if chunks is not None else settings.TIER_RECOMPUTE_CHUNKS
    if chunks <= 1:
        return [None]
    bounds = Member.objects.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return [None]
    lo, hi = bounds["lo"], bounds["hi"]
    size = max(1, (hi - lo + chunks) // chunks)
    return [(start, min(start + size - 1, hi)) for start in range(lo, hi + 1, size)]


def sum_counts(parts: list[dict]) -> dict:
    total: dict = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def _run_in_process(step: NightlyStep, business_date: date, run: JobRun) -> StepResult:
    if step.run is not None:
        return step.run(business_date, run)
    parts = [step.prepare(business_date, run)] if step.prepare else []
    ranges = member_id_ranges()
    for index, id_range in enumerate(ranges, start=1):
        parts.append(step.chunk(business_date, run, id_range))
        evaluated = sum(part.get("evaluated", 0) for part in parts)
        jobrun_progress(run=run, progress=progress_chunks(index, len(ranges), evaluated))
    counts = sum_counts(parts)
    counts["chunks"] = len(ranges)
    return counts, step.warn(business_date) if step.warn else ""


#: the JobRun of a whole night: held while the chain runs, so that a date is run by one
#: chain at a time (its steps have JobRuns of their own)
CHAIN_KIND = "nightly_chain"
CHAIN_LABEL = gettext_lazy("Nightly chain")


def job_label(kind: str) -> str:
    """A job (a step of the chain, or the chain) as the job runs page names it."""
    if kind == CHAIN_KIND:
        return str(CHAIN_LABEL)
    step = next((step for step in NIGHTLY_STEPS if step.kind == kind), None)
    return str(step.label) if step else kind


#: the statuses of a night that counts as done (catch-up starts after the last one)
DONE = (JobStatus.SUCCEEDED, JobStatus.WARNING)


def nightly_chain_start(*, business_date: date, actor=None, runner: str) -> JobRun:
    """Claim the business date for one chain: `JobAlreadyRunning` (naming the run) while
    another chain of the date is alive; a chain or step of the date whose process died is
    marked ABANDONED and superseded."""
    chain = jobrun_start(kind=CHAIN_KIND, business_date=business_date, actor=actor, runner=runner)
    jobrun_abandon_stale(business_date=business_date, superseded_by=f"run #{chain.pk}")
    return chain


def nightly_chain_finish(*, chain: JobRun, runs: list[JobRun]) -> JobRun:
    """Close the night: a WARNING when a step warned, with what each step ended as."""
    warned = [run.kind for run in runs if run.status == JobStatus.WARNING]
    return jobrun_finish(
        run=chain,
        counts={run.kind: run.status for run in runs},
        warning=(
            _("Steps with warnings: %(steps)s")
            % {"steps": ", ".join(str(nightly_step(kind).label) for kind in warned)}
        )
        if warned
        else "",
        progress=progress_steps_done(len(runs), len(NIGHTLY_STEPS)),
    )


def nightly_run(
    *,
    business_date: date,
    actor=None,
    report: Callable[[JobRun], None] | None = None,
    runner: str = "",
) -> list[JobRun]:
    """Run every step of the chain for `business_date`, in order, in this process, as the
    one chain of that date (`JobAlreadyRunning` while another is alive); stop at the first
    failure (its JobRun says what to do next). Returns the steps' JobRuns."""
    chain = nightly_chain_start(
        business_date=business_date, actor=actor, runner=runner or jobrun_runner("run_nightly")
    )
    runs = []
    try:
        with jobrun_heartbeats(chain):
            for index, step in enumerate(NIGHTLY_STEPS, start=1):
                jobrun_progress(
                    run=chain, progress=progress_step(index, len(NIGHTLY_STEPS), step.kind)
                )
                run = nightly_step_run(
                    step=step, business_date=business_date, actor=actor, runner=chain.runner
                )
                runs.append(run)
                if report:
                    report(run)
    except Exception as exc:
        jobrun_fail(run=chain, cause=f"{type(exc).__name__}: {exc}")
        raise
    nightly_chain_finish(chain=chain, runs=runs)
    return runs


def nightly_missed_dates(*, until: date) -> list[date]:
    """The business dates a catch-up runs, oldest first: every date after the last night
    that completed, up to `until`, at most NIGHTLY_CATCH_UP_DAYS of them (just `until` when
    no night completed yet, or the last one is `until` or later)."""
    last = (
        JobRun.objects.filter(kind=CHAIN_KIND, status__in=DONE, business_date__lte=until)
        .order_by("-business_date")
        .values_list("business_date", flat=True)
        .first()
    )
    if last is None or last >= until:
        return [until]
    days = (until - last).days
    first = until - timedelta(days=min(days, settings.NIGHTLY_CATCH_UP_DAYS) - 1)
    return [first + timedelta(days=n) for n in range((until - first).days + 1)]


def nightly_step_run(
    *, step: NightlyStep, business_date: date, actor=None, runner: str = ""
) -> JobRun:
    """Run one step in this process, recorded as a JobRun (WARNING when it has a message)."""
    with jobrun_record(
        kind=step.kind, business_date=business_date, actor=actor, runner=runner
    ) as run:
        run.counts, warning = _run_in_process(step, business_date, run)
        if warning:
            run.status, run.message = JobStatus.WARNING, warning
    return run
