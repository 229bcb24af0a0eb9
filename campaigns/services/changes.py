"""Changing a launched campaign (scheduled, active or paused). Names and descriptions — the
campaign's and its tasks' — apply at once. What spends money is a proposal that a budget
approver other than the proposer decides (`campaigns.approvals.CampaignChange`): the tasks'
rewards (points, benefit, the rewards of ladder steps), their caps (per member, per period)
and the campaign's budget. One change waits per campaign at a time. The rest of a launched
campaign — its window, targeting, the tasks' rules and ladder targets — is what was approved
(`CampaignNotEditable`).

The bounds are the configuration's (`config._task_validate`, `config._campaign_validate`,
the same a draft passes); they are checked when the change is proposed and again when it
applies, in the approval's transaction, against the campaign as it is then: a change whose
values moved meanwhile, or of a campaign that ended, is refused.

A request keeps its change twice: in words (`current` / `proposal`, "task 1" as the draft's
launch does) and as a list of changed values, the same in both (so the diff shows only the
words), `{"task": id | None, "step": step_no | None, "field": …, "from": …, "to": …}` with
benefits and budgets by code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from benefits.models import Benefit, Budget
from portal.approvals import approval_is_pending, approval_request_create
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.models import ApprovalRequest, User
from portal.permissions import user_can
from portal.services import audit_changes, audit_record

from ..choices import CHANGEABLE_STATUSES, EDITABLE_STATUSES, CampaignApproval
from ..impact import change_words, task_terms_after
from ..models import Campaign, Task, TaskStep
from ..terms import TaskTerms, budget_text, campaign_tasks, task_key
from .config import (
    CAMPAIGN_CONFIG_FIELDS,
    STEP_CONFIG_FIELDS,
    TASK_CONFIG_FIELDS,
    CampaignNotEditable,
    _campaign_validate,
    _configuration,
    _lock_campaigns,
    _task_validate,
)

__all__ = [
    "CAMPAIGN_AT_ONCE",
    "CAMPAIGN_COST",
    "STEP_COST",
    "TASK_AT_ONCE",
    "TASK_COST",
    "CampaignChangePending",
    "LaunchedCampaignFixed",
    "campaign_change",
    "campaign_change_apply",
    "campaign_changeable_check",
    "campaign_is_launched",
]

#: what changes at once on a launched campaign, and on its tasks
CAMPAIGN_AT_ONCE = ("name", "description")
TASK_AT_ONCE = ("name", "description", "position")
#: what spends money: proposed, applied on approval
CAMPAIGN_COST = ("budget",)
TASK_COST = ("reward_points", "reward_benefit", "max_rewards_per_member", "max_rewards_per_period")
STEP_COST = ("reward_points", "reward_benefit")

_MANY = frozenset({"target_tiers", "segments", "offered_tiers"})
_LISTS = frozenset({"target_stages", "offered_stages"})


class LaunchedCampaignFixed(CampaignNotEditable):
    """A launched campaign's window, targeting and task rules are what was approved."""

    def __init__(self, campaign: Campaign, fields: Sequence[str]):
        self.campaign, self.fields = campaign, list(fields)
        StateConflict.__init__(
            self,
            _(
                "Campaign %(code)s is %(status)s: once launched, only names and descriptions "
                "(at once) and the tasks' rewards and caps and the budget (with approval) can "
                "change, not: %(fields)s."
            )
            % {
                "code": campaign.code,
                "status": campaign.get_status_display(),
                "fields": ", ".join(self.fields),
            },
        )


class CampaignChangePending(StateConflict):
    code = "change_pending"


def campaign_is_launched(campaign: Campaign) -> bool:
    """Launched and not ended: changed through `campaign_change`, not the draft services."""
    return campaign.status in CHANGEABLE_STATUSES


def campaign_changeable_check(*, campaign: Campaign) -> None:
    """`CampaignNotEditable` unless the campaign is a draft (or rejected) or launched and not
    ended — a first look without a lock, for a door that answers before reading a body."""
    if campaign.status not in (*EDITABLE_STATUSES, *CHANGEABLE_STATUSES):
        raise CampaignNotEditable(campaign)


# --- what differs --------------------------------------------------------------------------------


def _same(name: str, now, given) -> bool:
    if name in _MANY:
        return {row.pk for row in now.all()} == {row.pk for row in given}
    if name in _LISTS:
        return sorted(now or []) == sorted(given or [])
    if hasattr(now, "pk") or hasattr(given, "pk"):
        return getattr(now, "pk", None) == getattr(given, "pk", None)
    if isinstance(now, Decimal) and given is not None:
        return now == Decimal(given)
    return now == given


def _differing(row, values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value for name, value in values.items() if not _same(name, getattr(row, name), value)
    }


def _label(model, name: str) -> str:
    if name == "steps":
        return str(_("ladder step targets"))
    return str(capfirst(model._meta.get_field(name).verbose_name))


def _code(row) -> str | None:
    return None if row is None else row.code


def _json(field: str, value):
    """A changed value as the request keeps it (benefits and budgets by code)."""
    if field in ("reward_benefit", "budget"):
        return _code(value)
    return value


def _step_changes(task: Task, ladder: Sequence[Mapping[str, Any]] | None) -> tuple[list, bool]:
    """The reward changes of a ladder given whole, and whether its steps or targets differ
    (those are fixed once launched)."""
    if ladder is None:
        return [], False
    steps = {step.step_no: step for step in task.steps.all()}
    given = {step.get("step_no"): step for step in ladder}
    if set(given) != set(steps) or any(
        "target" in step and Decimal(step["target"]) != steps[no].target
        for no, step in given.items()
    ):
        return [], True
    changes = []
    for no in sorted(given):
        for name in STEP_COST:
            if name in given[no] and not _same(name, getattr(steps[no], name), given[no][name]):
                changes.append(
                    {
                        "task": task.pk,
                        "step": no,
                        "field": name,
                        "from": _json(name, getattr(steps[no], name)),
                        "to": _json(name, given[no][name]),
                    }
                )
    return changes, False


# --- proposing -----------------------------------------------------------------------------------


@transaction.atomic
def campaign_change(
    *,
    campaign: Campaign,
    actor: User,
    changes: Mapping[str, Any] | None = None,
    tasks: Mapping[int, Mapping[str, Any]] | None = None,
    reason: str = "",
) -> tuple[Campaign, ApprovalRequest | None]:
    """Change a launched campaign (`changes` of its own fields, `tasks` {task id: fields,
    with "steps" for the ladder as a whole}), its row locked: names and descriptions at once
    (audited), rewards, caps and the budget as one proposal. Returns `(campaign, approval or
    None)`. A value that does not change is not a change; any other field of a launched
    campaign is refused (`LaunchedCampaignFixed`), a second cost change while one waits too
    (`CampaignChangePending`), out-of-bounds values by field (`ValidationError`)."""
    if not user_can(actor, "campaigns.configure_campaigns"):
        raise NotAllowed(_("Your role cannot change campaigns."))
    campaign = _lock_campaigns([campaign.pk])[campaign.pk]
    if not campaign_is_launched(campaign):
        raise CampaignNotEditable(campaign)
    own = _differing(campaign, _configuration(changes or {}, CAMPAIGN_CONFIG_FIELDS, "campaign"))
    fixed = [
        _label(Campaign, name) for name in own if name not in (*CAMPAIGN_AT_ONCE, *CAMPAIGN_COST)
    ]
    rows = {task.pk: task for task in campaign_tasks(campaign)}
    edits = []
    for task_id, data in (tasks or {}).items():
        task = rows.get(int(task_id))
        if task is None:
            raise ValueError(f"Task {task_id} is not a task of campaign {campaign.code}.")
        data = dict(data)
        ladder = data.pop("steps", None)
        if ladder is not None:
            ladder = [_configuration(step, STEP_CONFIG_FIELDS, "ladder step") for step in ladder]
        values = _differing(task, _configuration(data, (*TASK_CONFIG_FIELDS, "campaign"), "task"))
        step_changes, ladder_fixed = _step_changes(task, ladder)
        fixed += [_label(Task, name) for name in values if name not in (*TASK_AT_ONCE, *TASK_COST)]
        if ladder_fixed:
            fixed.append(_label(Task, "steps"))
        edits.append((task, values, ladder, step_changes))
    if fixed:
        raise LaunchedCampaignFixed(campaign, fields=list(dict.fromkeys(fixed)))

    _budget_validate(campaign, own)
    cost: list[dict] = []
    if "budget" in own:
        cost.append(
            {
                "task": None,
                "step": None,
                "field": "budget",
                "from": campaign.budget.code,
                "to": own["budget"].code,
            }
        )
    for task, values, ladder, step_changes in edits:
        _task_check(task, values, ladder)
        cost += [
            {"task": task.pk, "step": None, "field": name, "from": _json(name, getattr(task, name)),
             "to": _json(name, values[name])}
            for name in TASK_COST
            if name in values
        ]  # fmt: skip
        cost += step_changes
    if cost and approval_is_pending(kind=CampaignApproval.CAMPAIGN_CHANGE, obj=campaign):
        raise CampaignChangePending(
            _(
                "A change of %(code)s's rewards, caps or budget is already waiting for "
                "approval; have it decided (or withdrawn) first."
            )
            % {"code": campaign.code}
        )

    _apply_at_once(campaign, {n: v for n, v in own.items() if n in CAMPAIGN_AT_ONCE}, actor)
    for task, values, _ladder, _steps in edits:
        _apply_at_once(task, {n: v for n, v in values.items() if n in TASK_AT_ONCE}, actor)
    approval = None
    if cost:
        approval = _propose(campaign, cost, actor=actor, reason=reason)
    return campaign, approval


def _budget_validate(campaign: Campaign, own: Mapping[str, Any]) -> None:
    """A new budget must hold the campaign's (approved) window: refused on the budget."""
    try:
        _campaign_validate(
            dict(own),
            starts_on=campaign.starts_on,
            ends_on=campaign.ends_on,
            budget=own.get("budget"),
        )
    except ValidationError as exc:
        errors = exc.message_dict
        if "ends_on" in errors:
            errors["budget"] = errors.pop("ends_on")
        raise ValidationError(errors) from exc


def _task_check(task: Task, values: Mapping[str, Any], ladder) -> None:
    """The draft's bounds for the new values, and a task keeps a reward."""
    _task_validate(
        dict(values),
        measure=task.measure,
        target=task.target,
        steps=[(step.step_no, step.target) for step in task.steps.all()],
        ladder=ladder,
    )
    points = values.get("reward_points", task.reward_points)
    benefit = values.get("reward_benefit", task.reward_benefit)
    if not (points or benefit or task.steps.all()):
        raise ValidationError(
            {"reward_points": [_("A task needs a reward: points, a benefit or ladder steps.")]}
        )


def _apply_at_once(row, values: Mapping[str, Any], actor) -> None:
    if not values:
        return
    before = {name: getattr(row, name) for name in values}
    for name, value in values.items():
        setattr(row, name, value)
    row.save(update_fields=[*values, "updated_at"] if isinstance(row, Campaign) else list(values))
    audit_record(
        actor=actor,
        action="campaign.change" if isinstance(row, Campaign) else "task.change",
        obj=row,
        changes=audit_changes(before, dict(values)),
    )


def _propose(campaign: Campaign, cost: list[dict], *, actor, reason: str) -> ApprovalRequest:
    rows = campaign_tasks(campaign)
    names = {task.pk: task.name for task in rows}
    by_task: dict[int, list[dict]] = defaultdict(list)
    for change in cost:
        if change["task"] is not None:
            by_task[change["task"]].append(change)
    current: dict[str, Any] = {}
    proposal: dict[str, Any] = {}
    budget_change = next((c for c in cost if c["field"] == "budget"), None)
    if budget_change:
        current["budget"] = budget_text(campaign.budget)
        proposal["budget"] = budget_text(Budget.objects.get(code=budget_change["to"]))
    for number, task in enumerate(rows, 1):
        if task.pk in by_task:
            terms = TaskTerms.of(task)
            current[task_key(number)] = terms.text()
            proposal[task_key(number)] = task_terms_after(terms, by_task[task.pk]).text()
    current["changes"] = proposal["changes"] = cost
    benefits = {
        benefit.code: benefit
        for benefit in Benefit.objects.filter(
            code__in={c[k] for c in cost if c["field"] == "reward_benefit" for k in ("from", "to")}
            - {None}
        )
    }
    said = [
        " ".join(change_words(c, task_name=names.get(c["task"], ""), benefits=benefits))
        for c in cost
    ]
    return approval_request_create(
        kind=CampaignApproval.CAMPAIGN_CHANGE,
        obj=campaign,
        summary=f"{campaign.code} {campaign.name}: " + "; ".join(said),
        current=current,
        proposal=proposal,
        reason=reason,
        actor=actor,
    )


# --- applying ------------------------------------------------------------------------------------


def _value_now(campaign: Campaign, tasks: dict[int, Task], change: dict):
    if change["task"] is None:
        return campaign.budget.code
    task = tasks.get(change["task"])
    if task is None:
        return _GONE
    row = task
    if change["step"] is not None:
        row = next((s for s in task.steps.all() if s.step_no == change["step"]), None)
        if row is None:
            return _GONE
    return _json(change["field"], getattr(row, change["field"]))


_GONE = object()


@transaction.atomic
def campaign_change_apply(*, campaign: Campaign, approval: ApprovalRequest, actor) -> Campaign:
    """Apply an approved change (called by the approval engine, which has checked the
    decider), the campaign row locked: refused if the campaign ended or its values moved
    since the proposal, or if a value no longer passes the bounds; otherwise written with one
    audit entry per campaign and task changed, naming the approval."""
    campaign = _lock_campaigns([campaign.pk])[campaign.pk]
    if not campaign_is_launched(campaign):
        raise StateConflict(
            _("Campaign %(code)s is %(status)s now: this change can no longer apply; reject it.")
            % {"code": campaign.code, "status": campaign.get_status_display()},
            code="campaign_state",
        )
    changes = approval.proposal["changes"]
    tasks = {task.pk: task for task in campaign_tasks(campaign)}
    if any(_value_now(campaign, tasks, change) != change["from"] for change in changes):
        raise StateConflict(
            _(
                "The rewards, caps or budget of %(code)s changed since this proposal; reject it "
                "and propose again."
            )
            % {"code": campaign.code},
            code="changed_since",
        )
    benefit_codes = {c["to"] for c in changes if c["field"] == "reward_benefit"} - {None}
    benefits = {b.code: b for b in Benefit.objects.filter(code__in=benefit_codes)}
    budget_code = next((c["to"] for c in changes if c["field"] == "budget"), None)
    budget = Budget.objects.filter(code=budget_code).first() if budget_code else None
    missing = sorted(benefit_codes - set(benefits)) + (
        [budget_code] if budget_code and budget is None else []
    )
    if missing:
        raise StateConflict(
            _("No longer found: %(codes)s; reject the change and propose again.")
            % {"codes": ", ".join(missing)},
            code="changed_since",
        )

    def resolved(change: dict):
        if change["field"] == "reward_benefit":
            return benefits.get(change["to"]) if change["to"] else None
        if change["field"] == "budget":
            return budget
        return change["to"]

    own = {c["field"]: resolved(c) for c in changes if c["task"] is None}
    by_task: dict[int, dict] = defaultdict(dict)
    by_step: dict[int, dict[int, dict]] = defaultdict(lambda: defaultdict(dict))
    for change in changes:
        if change["task"] is None:
            continue
        if change["step"] is None:
            by_task[change["task"]][change["field"]] = resolved(change)
        else:
            by_step[change["task"]][change["step"]][change["field"]] = resolved(change)
    try:  # the campaign may have moved on: the bounds once more, against what it is now
        _budget_validate(campaign, own)
        for task_id in sorted({*by_task, *by_step}):
            task = tasks[task_id]
            ladder = None
            if task_id in by_step:
                ladder = [
                    {"step_no": s.step_no, "target": s.target, "reward_points": s.reward_points,
                     **by_step[task_id].get(s.step_no, {})}
                    for s in task.steps.all()
                ]  # fmt: skip
            _task_check(task, by_task.get(task_id, {}), ladder)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), code="out_of_bounds") from exc

    if own:
        before = {"budget": campaign.budget.code}
        campaign.budget = own["budget"]
        campaign.save(update_fields=["budget", "updated_at"])
        audit_record(
            actor=actor,
            action="campaign.change",
            obj=campaign,
            changes={**audit_changes(before, {"budget": campaign.budget.code}),
                     "approval": approval.pk},
        )  # fmt: skip
    for task_id in sorted({*by_task, *by_step}):
        task = tasks[task_id]
        audited: dict[str, list] = {}
        values = by_task.get(task_id, {})
        for name, value in values.items():
            audited[name] = [_json(name, getattr(task, name)), _json(name, value)]
            setattr(task, name, value)
        if values:
            task.save(update_fields=list(values))
        for step in task.steps.all():
            step_values = by_step.get(task_id, {}).get(step.step_no)
            if not step_values:
                continue
            for name, value in step_values.items():
                audited[f"step {step.step_no} {name}"] = [
                    _json(name, getattr(step, name)),
                    _json(name, value),
                ]
                setattr(step, name, value)
            TaskStep.objects.filter(pk=step.pk).update(**step_values)
        audit_record(
            actor=actor,
            action="task.change",
            obj=task,
            changes={**audited, "approval": approval.pk},
        )
    return campaign
