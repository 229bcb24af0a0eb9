"""Configuration writes of the campaigns app: campaigns and their tasks with ladder steps
(member segments are written by `members.services.segments`). The configuration API and
the admin both call these, so the rules hold whichever door a change comes through:

- only a campaign in `EDITABLE_STATUSES` (a draft, or a rejected one) changes here, tasks
  included; anything later was approved as it is (`CampaignNotEditable`), except what
  `campaigns.services.changes` lets a launched campaign change (names at once; rewards,
  caps and the budget through approval, with these same checks). Editing a rejected
  campaign (or its tasks) makes it a draft again;
- every such edit row-locks the campaign first (`select_for_update`, in pk order, like
  `campaign_submit` and the launch decision), so it cannot slip in between a colleague's
  submit and its approval;
- targets are above 0 and whole for COUNT and CONSECUTIVE_DAYS; ladder steps are numbered
  1..n with strictly rising targets; stages are lifecycle stage codes, tiers those of the
  active scheme (`ValidationError` keyed by field);
- the rules of a segment that a pending, scheduled, active or paused campaign targets are
  frozen, and a segment any campaign targets is kept (`campaigns.segments` tells members);
- each service writes its audit entry, with the field-level diff `{field: [before,
  after]}` in business codes, in its own transaction.

The pure checks (`target_problems`, `ladder_problems`, `window_problems`, …) are public
so forms can show the same words next to the right field before anything is saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.choices import LifecycleStage, SchemeStatus
from members.models import Tier
from portal.bounds import Bound
from portal.models import User
from portal.services import audit_changes, audit_gone, audit_record

from ..choices import EDITABLE_STATUSES, CampaignStatus, Measure
from ..holdout import MAX_FOLLOW_UP_DAYS, MAX_SHARE
from ..models import Campaign, Task, TaskStep
from ..rules import MEASURES, budget_window_problems
from ..transitions import TRANSITIONS
from . import CampaignStateError

#: what a caller may set on a campaign; the status moves only through the workflow services
CAMPAIGN_CONFIG_FIELDS = (
    "code",
    "name",
    "description",
    "department",
    "budget",
    "starts_on",
    "ends_on",
    "target_tiers",
    "target_stages",
    "segments",
    "holdout_share",
    "follow_up_days",
)
TASK_CONFIG_FIELDS = (
    "name",
    "description",
    "event_type",
    "measure",
    "target",
    "recurrence",
    "difficulty",
    "min_event_amount",
    "reward_points",
    "reward_benefit",
    "max_rewards_per_member",
    "max_rewards_per_period",
    "offered_tiers",
    "offered_stages",
    "position",
)
STEP_CONFIG_FIELDS = ("step_no", "target", "reward_points", "reward_benefit")
_MANY_TO_MANY = frozenset({"target_tiers", "segments", "offered_tiers"})
_STAGE_LISTS = frozenset({"target_stages", "offered_stages"})

#: statuses of a campaign that was submitted and has not ended: the rules of its segments
#: are part of what was (or is being) approved.
LAUNCHED_STATUSES = tuple(
    s for s in CampaignStatus.values if s not in EDITABLE_STATUSES and s != CampaignStatus.ENDED
)


class CampaignNotEditable(CampaignStateError):
    """The campaign was submitted or launched: its configuration is what was approved."""

    code = "campaign_not_editable"

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        super().__init__(
            _("Campaign %(code)s is %(status)s; only a draft or a rejected campaign can be edited.")
            % {"code": campaign.code, "status": campaign.get_status_display()}
        )


# --- the pure rules ------------------------------------------------------------------------------

# Sanity bounds of a task's numbers (`portal.bounds`): far above any programme's settings,
# far below what one sign-in may cost (9,999,999,999 points for a daily sign-in).
REWARD_POINTS = Bound("reward_points", gettext_lazy("reward points"), 0, 100_000)
MAX_REWARDS_PER_MEMBER = Bound(
    "max_rewards_per_member", gettext_lazy("rewards per member"), 1, 10_000
)
MAX_REWARDS_PER_PERIOD = Bound(
    "max_rewards_per_period", gettext_lazy("rewards per period"), 1, 10_000_000
)
#: a target counted in events or days
TARGET_COUNT = Bound("target", gettext_lazy("target"), 1, 10_000)
#: a target or a minimum in CNY
TARGET_AMOUNT = Bound(
    "target",
    gettext_lazy("target"),
    Decimal("0.01"),
    Decimal("100000000.00"),
    whole=False,
    money=True,
)
MIN_EVENT_AMOUNT = Bound(
    "min_event_amount",
    gettext_lazy("minimum event amount"),
    Decimal("0.00"),
    Decimal("100000000.00"),
    whole=False,
    money=True,
)

#: the share of a campaign's audience held out, in whole percent (`holdout`)
HOLDOUT_SHARE = Bound("holdout_share", gettext_lazy("holdout share (%)"), 0, MAX_SHARE)
#: how long after its window a campaign's outcomes are still measured
FOLLOW_UP_DAYS = Bound("follow_up_days", gettext_lazy("follow-up (days)"), 0, MAX_FOLLOW_UP_DAYS)
CAMPAIGN_BOUNDS = (HOLDOUT_SHARE, FOLLOW_UP_DAYS)

#: the bounded numbers of a task (its target is bounded by `target_problems`, per measure)
TASK_BOUNDS = (REWARD_POINTS, MAX_REWARDS_PER_MEMBER, MAX_REWARDS_PER_PERIOD, MIN_EVENT_AMOUNT)


def bound_problems(values: Mapping[str, Any], bounds: Sequence[Bound]) -> dict[str, list[str]]:
    """The out-of-bounds numbers among `values` (None: not set, always fine), by field."""
    problems = {}
    for bound in bounds:
        value = values.get(bound.field)
        if value is not None and (problem := bound.problem(value)):
            problems[bound.field] = [problem]
    return problems


def target_problems(*, measure: str | None, target: Decimal | None) -> list[str]:
    """Why a task's (or a step's) target does not fit its measure: it must be above 0, and a
    whole number when the measure counts events or days."""
    if target is None:
        return []
    problems = []
    if target <= 0:
        problems.append(_("The target must be more than 0."))
    rule = MEASURES.get(measure) if measure else None
    bound = TARGET_COUNT if rule is not None and rule.whole_targets else TARGET_AMOUNT
    if target > bound.high:
        problems.append(_("The target must be %(range)s.") % {"range": bound.describe()})
    if rule is not None and rule.whole_targets and target != target.to_integral_value():
        problems.append(
            _("The target must be a whole number for the measure %(measure)s; %(target)s is not.")
            % {"measure": Measure(measure).label, "target": target}
        )
    return problems


def ladder_problems(*, measure: str | None, steps: Sequence[tuple[int, Decimal]]) -> list[str]:
    """Why ladder steps `(step_no, target)` are not a ladder: numbered 1..n without gaps,
    targets strictly rising with the step number, each target valid for the measure."""
    if not steps:
        return []
    problems = []
    numbers = sorted(step_no for step_no, _ in steps)
    if numbers != list(range(1, len(steps) + 1)):
        problems.append(
            _("Number the steps 1 to n without gaps or repeats (1, 2, 3…); got %(numbers)s.")
            % {"numbers": ", ".join(str(n) for n in numbers)}
        )
    ordered = sorted(steps, key=lambda step: step[0])
    for (lower_no, lower), (higher_no, higher) in pairwise(ordered):
        if higher <= lower:
            problems.append(
                _(
                    "Step %(higher_no)s's target (%(higher)s) must be higher than step "
                    "%(lower_no)s's (%(lower)s)."
                )
                % {"higher_no": higher_no, "higher": higher, "lower_no": lower_no, "lower": lower}
            )
    for step_no, target in ordered:
        problems.extend(
            _("Step %(step)s: %(problem)s") % {"step": step_no, "problem": problem}
            for problem in target_problems(measure=measure, target=target)
        )
    return problems


def window_problems(*, starts_on: date | None, ends_on: date | None) -> list[str]:
    """A campaign's window cannot end before it starts."""
    if starts_on and ends_on and ends_on < starts_on:
        return [
            _("The window ends (%(ends_on)s) before it starts (%(starts_on)s).")
            % {"ends_on": ends_on, "starts_on": starts_on}
        ]
    return []


def stage_problems(stages: Iterable[str]) -> list[str]:
    """Targeted or offered stages must be lifecycle stage codes."""
    unknown = sorted(set(stages) - set(LifecycleStage.values))
    if unknown:
        return [_("Unknown lifecycle stage code(s): %(codes)s.") % {"codes": ", ".join(unknown)}]
    return []


def tier_problems(tiers: Iterable[Tier]) -> list[str]:
    """Targeted or offered tiers must be tiers of the active scheme (members are graded by
    it; a tier of a draft scheme is held by nobody)."""
    ids = [tier.pk for tier in tiers]
    if not ids:
        return []
    outside = sorted(
        Tier.objects.filter(pk__in=ids)
        .exclude(scheme__status=SchemeStatus.ACTIVE)
        .values_list("code", flat=True)
    )
    if outside:
        return [_("Not a tier of the active scheme: %(tiers)s.") % {"tiers": ", ".join(outside)}]
    return []


def task_targets_validate(
    *, measure: str | None, target: Decimal | None, steps: Sequence[tuple[int, Decimal]]
) -> None:
    """`ValidationError` keyed `target` and/or `steps` when the task's target or its ladder
    `(step_no, target)` does not fit the measure."""
    errors = {}
    if problems := target_problems(measure=measure, target=target):
        errors["target"] = problems
    if problems := ladder_problems(measure=measure, steps=steps):
        errors["steps"] = problems
    if errors:
        raise ValidationError(errors)


def campaign_editable_check(*, campaign: Campaign) -> None:
    """`CampaignNotEditable` unless the campaign may still be configured. A first look
    without a lock, for a caller that answers before reading a request body; the services
    check again with the row locked."""
    if campaign.status not in EDITABLE_STATUSES:
        raise CampaignNotEditable(campaign)


# --- campaigns -----------------------------------------------------------------------------------


@transaction.atomic
def campaign_create(*, actor: User, data: Mapping[str, Any]) -> Campaign:
    """A new campaign is a DRAFT authored by `actor`. Its window must not end before it
    starts, its stages are lifecycle stage codes and its tiers those of the active scheme."""
    values = _configuration(data, CAMPAIGN_CONFIG_FIELDS, "campaign")
    _campaign_validate(
        values,
        starts_on=values.get("starts_on"),
        ends_on=values.get("ends_on"),
        budget=values.get("budget"),
    )
    scalars, related = _split(values)
    campaign = Campaign.objects.create(**scalars, created_by=actor, status=CampaignStatus.DRAFT)
    for name, rows in related.items():
        getattr(campaign, name).set(rows)
    audit_record(
        actor=actor,
        action="campaign.create",
        obj=campaign,
        changes=audit_changes({}, _campaign_snapshot(campaign)),
    )
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, actor: User, changes: Mapping[str, Any]) -> Campaign:
    """Change the configuration of a campaign that is still editable (else
    `CampaignNotEditable`), its row locked; a REJECTED campaign becomes a DRAFT again. The
    merged values pass the checks of `campaign_create`."""
    values = _configuration(changes, CAMPAIGN_CONFIG_FIELDS, "campaign")
    campaign = _lock_campaigns([campaign.pk])[campaign.pk]
    _require_editable(campaign)
    _campaign_validate(
        values,
        starts_on=values.get("starts_on", campaign.starts_on),
        ends_on=values.get("ends_on", campaign.ends_on),
        budget=values.get("budget", campaign.budget),
    )
    _reopen_if_rejected(campaign, actor=actor)
    before = _campaign_snapshot(campaign)
    scalars, related = _split(values)
    for name, value in scalars.items():
        setattr(campaign, name, value)
    campaign.save()
    for name, rows in related.items():
        getattr(campaign, name).set(rows)
    audit_record(
        actor=actor,
        action="campaign.change",
        obj=campaign,
        changes=audit_changes(before, _campaign_snapshot(campaign)),
    )
    return campaign


def _campaign_validate(
    values: dict, *, starts_on: date | None, ends_on: date | None, budget=None
) -> None:
    errors = bound_problems(values, CAMPAIGN_BOUNDS)
    problems = window_problems(starts_on=starts_on, ends_on=ends_on)
    problems = problems or budget_window_problems(
        budget=budget, starts_on=starts_on, ends_on=ends_on
    )
    if problems:
        errors["ends_on"] = problems
    if "target_stages" in values and (problems := stage_problems(values["target_stages"])):
        errors["target_stages"] = problems
    if "target_tiers" in values and (problems := tier_problems(values["target_tiers"])):
        errors["target_tiers"] = problems
    if errors:
        raise ValidationError(errors)


def _campaign_snapshot(campaign: Campaign) -> dict:
    return {
        "code": campaign.code,
        "name": campaign.name,
        "description": campaign.description,
        "department": campaign.department.code,
        "budget": campaign.budget.code,
        "starts_on": _day(campaign.starts_on),
        "ends_on": _day(campaign.ends_on),
        "target_tiers": sorted(campaign.target_tiers.values_list("code", flat=True)),
        "target_stages": list(campaign.target_stages),
        "segments": sorted(campaign.segments.values_list("code", flat=True)),
        "holdout_share": campaign.holdout_share,
        "follow_up_days": campaign.follow_up_days,
        "status": campaign.status,
    }


# --- tasks ---------------------------------------------------------------------------------------


@transaction.atomic
def task_create(
    *,
    campaign: Campaign,
    actor: User,
    data: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]] = (),
) -> Task:
    """Add a task, with its ladder `steps` ({step_no, target, reward_points,
    reward_benefit}), to a campaign that is still editable (else `CampaignNotEditable`), its
    row locked; a REJECTED campaign becomes a DRAFT again. The target and the ladder must
    fit the measure, the stages and tiers offered must exist."""
    values = _configuration(data, TASK_CONFIG_FIELDS, "task")
    ladder = [_configuration(step, STEP_CONFIG_FIELDS, "ladder step") for step in steps]
    _task_validate(
        values,
        measure=values.get("measure"),
        target=values.get("target"),
        steps=_rungs(ladder),
        ladder=ladder,
    )
    campaign = _lock_campaigns([campaign.pk])[campaign.pk]
    _require_editable(campaign)
    _reopen_if_rejected(campaign, actor=actor)
    scalars, related = _split(values)
    task = Task.objects.create(campaign=campaign, **scalars)
    for name, rows in related.items():
        getattr(task, name).set(rows)
    TaskStep.objects.bulk_create(TaskStep(task=task, **step) for step in ladder)
    audit_record(
        actor=actor, action="task.create", obj=task, changes=audit_changes({}, _task_snapshot(task))
    )
    return task


@transaction.atomic
def task_update(
    *,
    task: Task,
    actor: User,
    changes: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]] | None = None,
) -> Task:
    """Change a task of a campaign that is still editable (else `CampaignNotEditable`), the
    campaign row locked; a REJECTED campaign becomes a DRAFT again. `changes["campaign"]`
    moves the task, and the campaign it moves to must be editable too. `steps`, when given,
    replaces the ladder as a whole; otherwise the saved ladder must still fit the measure."""
    values = _configuration(changes, (*TASK_CONFIG_FIELDS, "campaign"), "task")
    destination = values.pop("campaign", None)
    task, campaigns = _lock_task(task.pk, also=destination.pk if destination else None)
    _require_editable(campaigns[task.campaign_id])
    if destination is not None:
        _require_editable(campaigns[destination.pk])
    ladder = (
        None
        if steps is None
        else [_configuration(s, STEP_CONFIG_FIELDS, "ladder step") for s in steps]
    )
    _task_validate(
        values,
        measure=values.get("measure", task.measure),
        target=values.get("target", task.target),
        steps=(
            list(task.steps.values_list("step_no", "target")) if ladder is None else _rungs(ladder)
        ),
        ladder=ladder,
    )
    for campaign in campaigns.values():
        _reopen_if_rejected(campaign, actor=actor)
    before = _task_snapshot(task)
    scalars, related = _split(values)
    for name, value in scalars.items():
        setattr(task, name, value)
    if destination is not None:
        task.campaign = campaigns[destination.pk]
    task.save()
    for name, rows in related.items():
        getattr(task, name).set(rows)
    if ladder is not None:  # the campaign is a draft: no progress refers to these rows
        task.steps.all().delete()
        TaskStep.objects.bulk_create(TaskStep(task=task, **step) for step in ladder)
    audit_record(
        actor=actor,
        action="task.change",
        obj=task,
        changes=audit_changes(before, _task_snapshot(task)),
    )
    return task


@transaction.atomic
def task_delete(*, task: Task, actor: User) -> None:
    """Remove a task and its ladder from a campaign that is still editable (else
    `CampaignNotEditable`), the campaign row locked; a REJECTED campaign becomes a DRAFT
    again. The audit entry keeps what the task was."""
    task, campaigns = _lock_task(task.pk)
    campaign = campaigns[task.campaign_id]
    _require_editable(campaign)
    _reopen_if_rejected(campaign, actor=actor)
    audit_record(
        actor=actor, action="task.delete", obj=task, changes=audit_gone(_task_snapshot(task))
    )
    task.delete()


def _task_validate(
    values: dict,
    *,
    measure: str | None,
    target: Decimal | None,
    steps: Sequence[tuple[int, Decimal]],
    ladder: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    errors = bound_problems(values, TASK_BOUNDS)
    try:
        task_targets_validate(measure=measure, target=target, steps=steps)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    for step in ladder or ():
        if (points := step.get("reward_points")) is not None and (
            problem := REWARD_POINTS.problem(points)
        ):
            errors.setdefault("steps", []).append(
                _("Step %(no)s: %(problem)s") % {"no": step.get("step_no"), "problem": problem}
            )
    if "offered_stages" in values and (problems := stage_problems(values["offered_stages"])):
        errors["offered_stages"] = problems
    if "offered_tiers" in values and (problems := tier_problems(values["offered_tiers"])):
        errors["offered_tiers"] = problems
    if errors:
        raise ValidationError(errors)


def _lock_task(task_id: int, *, also: int | None = None) -> tuple[Task, dict[int, Campaign]]:
    """The task, with its campaign (and `also`, a campaign it moves to) row-locked. The
    campaigns are locked first, like every writer of a campaign's configuration; a task
    moved by someone else meanwhile is looked up again."""
    while True:
        campaign_id = Task.objects.values_list("campaign_id", flat=True).get(pk=task_id)
        campaigns = _lock_campaigns({campaign_id} | ({also} if also else set()))
        task = Task.objects.get(pk=task_id)
        if task.campaign_id == campaign_id:
            task.campaign = campaigns[campaign_id]
            return task, campaigns


def _rungs(ladder: Sequence[Mapping[str, Any]]) -> list[tuple[int, Decimal]]:
    return [(step["step_no"], step["target"]) for step in ladder]


def _task_snapshot(task: Task) -> dict:
    return {
        "campaign": task.campaign.code,
        "name": task.name,
        "description": task.description,
        "event_type": task.event_type,
        "measure": task.measure,
        "target": _amount(task.target),
        "recurrence": task.recurrence,
        "difficulty": task.difficulty,
        "min_event_amount": _amount(task.min_event_amount),
        "reward_points": task.reward_points,
        "reward_benefit": _code(task.reward_benefit),
        "max_rewards_per_member": task.max_rewards_per_member,
        "max_rewards_per_period": task.max_rewards_per_period,
        "offered_tiers": sorted(task.offered_tiers.values_list("code", flat=True)),
        "offered_stages": list(task.offered_stages),
        "position": task.position,
        "steps": [
            {
                "step_no": step.step_no,
                "target": _amount(step.target),
                "reward_points": step.reward_points,
                "reward_benefit": _code(step.reward_benefit),
            }
            for step in task.steps.select_related("reward_benefit").order_by("step_no")
        ],
    }


# --- shared --------------------------------------------------------------------------------------


def _lock_campaigns(ids: Iterable[int]) -> dict[int, Campaign]:
    """Row-lock campaigns in pk order, as every writer does, so two writers never wait on
    each other in a cycle."""
    rows = Campaign.objects.select_for_update().filter(pk__in=sorted(set(ids))).order_by("pk")
    return {campaign.pk: campaign for campaign in rows}


def _require_editable(campaign: Campaign) -> None:
    if not campaign.is_editable:
        raise CampaignNotEditable(campaign)


def _reopen_if_rejected(campaign: Campaign, *, actor: User | None) -> None:
    """Editing a rejected campaign (or its tasks) makes it a draft again."""
    reopen = TRANSITIONS["reopen"]
    if not reopen.may_start(campaign.status):
        return
    before, campaign.status = campaign.status, reopen.target
    Campaign.objects.filter(pk=campaign.pk).update(status=reopen.target, updated_at=timezone.now())
    audit_record(
        actor=actor,
        action=reopen.action,
        obj=campaign,
        changes={"status": [before, reopen.target]},
    )


def _configuration(data: Mapping[str, Any], allowed: Sequence[str], what: str) -> dict:
    """The values given, refusing any a caller may not set here (a status, an author): a
    programming error, not the user's."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"Not {what} configuration: {', '.join(unknown)}.")
    values = dict(data)
    for name in _STAGE_LISTS & set(values):
        values[name] = list(dict.fromkeys(values[name]))  # ticked twice is meant once
    return values


def _split(values: dict) -> tuple[dict, dict]:
    """(column values, many-to-many rows): the latter are set once the row exists."""
    scalars = {k: v for k, v in values.items() if k not in _MANY_TO_MANY}
    related = {k: list(v) for k, v in values.items() if k in _MANY_TO_MANY}
    return scalars, related


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value):.2f}"


def _day(value: date | None) -> str | None:
    return None if value is None else str(value)


def _code(row) -> str | None:
    return None if row is None else row.code


__all__ = [
    "CAMPAIGN_CONFIG_FIELDS",
    "LAUNCHED_STATUSES",
    "STEP_CONFIG_FIELDS",
    "TASK_CONFIG_FIELDS",
    "CampaignNotEditable",
    "campaign_create",
    "campaign_editable_check",
    "campaign_update",
    "ladder_problems",
    "stage_problems",
    "target_problems",
    "task_create",
    "task_delete",
    "task_targets_validate",
    "task_update",
    "tier_problems",
    "window_problems",
]
