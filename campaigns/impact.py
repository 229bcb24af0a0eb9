"""What approving a campaign's launch, or a change of a launched campaign, would do — computed
by the code that will then act on it (read-only; the approval page and the API show it):

- **audience now**: the members the campaign targets, and the members offered each task,
  counted with the rules the events ingestion applies to every event
  (`selectors.Targeting`, built by `selectors.live_task_of` exactly as the live tasks are);
- **expected completions and cost** per task, for the periods of the window still to come
  (`rules.period_count`): members offered × periods × a completion rate per member and
  period, within the task's caps, each completion costing its level's points at their value
  plus its benefit's unit cost. The rate comes from history where there is some: this task's
  and earlier tasks' of the same event type and measure (completions of each step ÷ members
  offered × periods elapsed); without history it is an assumption, said as such
  (`ASSUMED_RATE` for step 1, half as much for each further step);
- **the budget left**: amount − consumed − committed, where committed is what child budgets
  were given and have not spent, plus what the other launched campaigns on the budget are
  expected to spend in the rest of their windows (by the same estimate);
- **overlap**: members of the audience also in the audience of another scheduled or active
  campaign whose window meets this one's.

Counting runs as one aggregate over the members per preview (a filtered COUNT per
audience), whatever the number of members.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from benefits.models import Benefit, Budget
from members.models import Member
from portal.clock import today_in_shanghai
from portal.display import percent_text
from portal.money import fen_to_decimal, yuan_text

from .choices import CampaignStatus, EventType, Measure
from .models import Campaign, Task, TaskCompletion, TaskProgress
from .rules import period_count
from .selectors import campaign_targeting, live_task_of
from .terms import (
    TaskTerms,
    benefit_name,
    budget_text,
    campaign_tasks,
    cap_per_member_text,
    cap_per_period_text,
    points_text,
    task_key,
)

__all__ = [
    "ASSUMED_RATE",
    "BudgetRoom",
    "ChangePreview",
    "LaunchPreview",
    "TaskEstimate",
    "campaign_change_impact",
    "campaign_change_preview",
    "campaign_change_summary",
    "campaign_change_terms",
    "campaign_launch_impact",
    "campaign_launch_preview",
    "member_counts",
    "task_terms_after",
]

#: completion rate of step 1 per member offered and period when no similar task has history
ASSUMED_RATE = Decimal("0.10")
#: how many of the latest similar tasks the history reads
HISTORY_TASKS = 10
#: campaigns whose tasks have history (they counted events)
_HISTORY_STATUSES = (
    CampaignStatus.SCHEDULED,
    CampaignStatus.ACTIVE,
    CampaignStatus.PAUSED,
    CampaignStatus.ENDED,
)
#: campaigns on a budget that will still spend it
_SPENDING_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)
#: campaigns whose audience another campaign's overlaps
_LIVE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.ACTIVE)


def _count(value) -> str:
    return number_format(value, force_grouping=True)


def _percent(rate: Decimal) -> str:
    return number_format((rate * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP), 1)


def member_counts(conditions: dict[str, Q]) -> dict[str, int]:
    """How many members meet each condition, in one aggregate query."""
    if not conditions:
        return {}
    return Member.objects.aggregate(
        **{key: Count("pk", filter=condition) for key, condition in conditions.items()}
    )


# --- completion rates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """Completions per member offered and period; `tasks`: how many similar tasks' history
    it comes from (0: assumed)."""

    value: Decimal
    tasks: int = 0

    @property
    def from_history(self) -> bool:
        return self.tasks > 0


class History:
    """The completion rates of tasks like a given one (same event type and measure), read
    once per (event type, measure) for a preview."""

    def __init__(self, *, on: date):
        self.on = on
        self._rates: dict[tuple[str, str], dict[int, Rate]] = {}

    def rates(self, terms: TaskTerms) -> dict[int, Rate]:
        """step_no → its rate, for every level of the task."""
        known = self._read(terms.event_type, terms.measure)
        rates = {}
        for level in terms.levels():
            rate = known.get(level.step_no)
            if rate is None:  # no history: assumed, half as much for each further step
                rate = Rate(ASSUMED_RATE / (2 ** (level.step_no - 1)))
            rates[level.step_no] = rate
        return rates

    def _read(self, event_type: str, measure: str) -> dict[int, Rate]:
        key = (event_type, measure)
        if key in self._rates:
            return self._rates[key]
        similar = list(
            Task.objects.filter(
                event_type=event_type,
                measure=measure,
                campaign__status__in=_HISTORY_STATUSES,
                campaign__starts_on__lte=self.on,
            )
            .filter(Exists(TaskProgress.objects.filter(task_id=OuterRef("pk"))))
            .select_related("campaign")
            .prefetch_related(
                "steps", "offered_tiers", "campaign__target_tiers", "campaign__segments"
            )
            .order_by("-campaign__starts_on", "-id")[:HISTORY_TASKS]
        )
        rates: dict[int, Rate] = {}
        if similar:
            live = {task.pk: live_task_of(task) for task in similar}
            offered = member_counts(
                {f"t{pk}": task.targeting.condition(on=self.on) for pk, task in live.items()}
            )
            done: dict[tuple[int, int], int] = {
                (row["task_id"], row["step_no"]): row["n"]
                for row in TaskCompletion.objects.filter(task__in=similar)
                .values("task_id", "step_no")
                .annotate(n=Count("id"))
                .order_by()
            }
            chances: dict[int, int] = defaultdict(int)  # step → members offered × periods
            completions: dict[int, int] = defaultdict(int)
            tasks: dict[int, int] = defaultdict(int)
            for task in similar:
                campaign = task.campaign
                elapsed = period_count(
                    task.recurrence,
                    starts_on=campaign.starts_on,
                    ends_on=min(self.on, campaign.ends_on),
                    since=campaign.starts_on,
                )
                member_periods = offered[f"t{task.pk}"] * elapsed
                if not member_periods:
                    continue
                for level in live[task.pk].levels:
                    chances[level.step_no] += member_periods
                    completions[level.step_no] += done.get((task.pk, level.step_no), 0)
                    tasks[level.step_no] += 1
            rates = {
                step: Rate(min(Decimal(completions[step]) / Decimal(chances[step]), Decimal(1)),
                           tasks[step])
                for step in chances
            }  # fmt: skip
        self._rates[key] = rates
        return rates


# --- one task's estimate ---------------------------------------------------------------------


@dataclass(frozen=True)
class StepEstimate:
    step_no: int
    rate: Rate
    completions: int
    cost_fen: int


@dataclass(frozen=True)
class TaskEstimate:
    """A task's expected completions and cost over `periods` periods for `offered` members."""

    terms: TaskTerms
    offered: int
    periods: int
    steps: tuple[StepEstimate, ...]

    @property
    def completions(self) -> int:
        return sum(step.completions for step in self.steps)

    @property
    def cost_fen(self) -> int:
        return sum(step.cost_fen for step in self.steps)

    def basis_text(self) -> str:
        """Where the rate comes from, said: history of similar tasks, or an assumption."""
        parts = []
        for step in self.steps:
            if step.rate.from_history:
                text = ngettext(
                    "%(rate)s %% per member and period, from the history of %(count)s similar "
                    "task (%(event)s, %(measure)s)",
                    "%(rate)s %% per member and period, from the history of %(count)s similar "
                    "tasks (%(event)s, %(measure)s)",
                    step.rate.tasks,
                ) % {
                    "rate": _percent(step.rate.value),
                    "count": step.rate.tasks,
                    "event": EventType(self.terms.event_type).label,
                    "measure": Measure(self.terms.measure).label,
                }
            else:
                text = _("assumed %(rate)s %% per member and period, no history") % {
                    "rate": _percent(step.rate.value)
                }
            if len(self.steps) > 1:
                text = _("step %(no)s: %(text)s") % {"no": step.step_no, "text": text}
            parts.append(text)
        return "; ".join(parts)

    def text(self) -> str:
        """ "320 completions in 30 periods, ¥1,600.00" """
        completions = ngettext(
            "%(count)s completion", "%(count)s completions", self.completions
        ) % {"count": _count(self.completions)}
        periods = ngettext("%(count)s period", "%(count)s periods", self.periods) % {
            "count": _count(self.periods)
        }
        return _("%(completions)s in %(periods)s, %(cost)s") % {
            "completions": completions,
            "periods": periods,
            "cost": yuan_text(fen_to_decimal(self.cost_fen)),
        }


def _level_cost_fen(points: int, benefit: Benefit | None) -> int:
    return points * settings.POINT_VALUE_FEN + (benefit.unit_cost_fen if benefit else 0)


def task_estimate(
    *, terms: TaskTerms, offered: int, periods: int, rates: dict[int, Rate]
) -> TaskEstimate:
    """Members offered × periods × each step's rate, within the caps (a member is rewarded
    in at most `max_rewards_per_member` periods, a period rewards at most
    `max_rewards_per_period` members; a later step never more often than the one before)."""
    steps = []
    ceiling: Decimal | None = None
    for level in terms.levels():
        rate = rates[level.step_no]
        expected = Decimal(offered) * periods * rate.value
        if terms.max_rewards_per_member is not None:
            expected = min(expected, Decimal(offered) * min(terms.max_rewards_per_member, periods))
        if terms.max_rewards_per_period is not None:
            expected = min(expected, Decimal(terms.max_rewards_per_period) * periods)
        if ceiling is not None:
            expected = min(expected, ceiling)
        ceiling = expected
        completions = int(expected.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        cost = completions * _level_cost_fen(level.reward_points, level.reward_benefit)
        steps.append(StepEstimate(level.step_no, rate, completions, cost))
    return TaskEstimate(terms=terms, offered=offered, periods=periods, steps=tuple(steps))


def _estimates(
    tasks: Sequence[tuple[Task, TaskTerms]],
    *,
    on: date,
    history: History,
    extra: dict[str, Q] | None = None,
) -> tuple[list[TaskEstimate], dict[str, int]]:
    """Estimates of the tasks for the periods from `on` on, with the members offered each
    counted in one query (with the `extra` counts asked for)."""
    conditions = dict(extra or {})
    for task, _terms in tasks:
        conditions[f"task{task.pk}"] = live_task_of(task).targeting.condition(on=on)
    counts = member_counts(conditions)
    estimates = []
    for task, terms in tasks:
        campaign = task.campaign
        estimates.append(
            task_estimate(
                terms=terms,
                offered=counts[f"task{task.pk}"],
                periods=period_count(
                    terms.recurrence,
                    starts_on=campaign.starts_on,
                    ends_on=campaign.ends_on,
                    since=on,
                ),
                rates=history.rates(terms),
            )
        )
    return estimates, counts


# --- the budget left -------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetRoom:
    """A budget's amount, consumed and committed: child budgets' unspent amounts and the
    expected rest of the other launched campaigns charged to it."""

    budget: Budget
    children_fen: int
    campaigns: tuple[tuple[Campaign, int], ...] = ()

    @property
    def committed_fen(self) -> int:
        return self.children_fen + sum(cost for _campaign, cost in self.campaigns)

    @property
    def left_fen(self) -> int:
        return self.budget.amount_fen - self.budget.consumed_fen - self.committed_fen

    def committed_text(self) -> str:
        parts = [
            _("%(campaign)s expected %(cost)s")
            % {"campaign": campaign.name, "cost": yuan_text(fen_to_decimal(cost))}
            for campaign, cost in self.campaigns
        ]
        if self.children_fen:
            parts.append(
                _("child budgets not yet spent %(amount)s")
                % {"amount": yuan_text(fen_to_decimal(self.children_fen))}
            )
        total = yuan_text(fen_to_decimal(self.committed_fen))
        return f"{total} ({'; '.join(parts)})" if parts else total

    def against_text(self, cost_fen: int) -> str:
        """An expected cost against what is left."""
        left = max(self.left_fen, 0)
        if cost_fen > left:
            return _("exceeds the budget left by %(amount)s") % {
                "amount": yuan_text(fen_to_decimal(cost_fen - left))
            }
        share = Decimal(cost_fen) / Decimal(left) if left else Decimal(0)
        return _("%(percent)s %% of the budget left") % {"percent": _percent(share)}


def budget_room(*, budget: Budget, on: date, history: History, excluding: int | None) -> BudgetRoom:
    """What `budget` has left for a campaign (`excluding` it from the committed)."""
    budget = Budget.objects.get(pk=budget.pk)  # fresh: consumption moves all day
    children = (
        budget.children.aggregate(unspent=Sum("amount_fen") - Sum("consumed_fen"))["unspent"] or 0
    )
    others = list(
        Campaign.objects.filter(budget=budget, status__in=_SPENDING_STATUSES, ends_on__gte=on)
        .exclude(pk=excluding)
        .order_by("starts_on", "code")
    )
    spending = []
    if others:
        tasks = [
            (task, TaskTerms.of(task)) for campaign in others for task in campaign_tasks(campaign)
        ]
        estimates, _counts = _estimates(tasks, on=on, history=history)
        by_campaign: dict[int, int] = defaultdict(int)
        for (task, _terms), estimate in zip(tasks, estimates, strict=True):
            by_campaign[task.campaign_id] += estimate.cost_fen
        spending = [(campaign, by_campaign[campaign.pk]) for campaign in others]
    return BudgetRoom(budget=budget, children_fen=max(children, 0), campaigns=tuple(spending))


# --- a launch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchPreview:
    campaign: Campaign
    on: date
    audience: int  # offered the campaign (those held out are not)
    held_out: int
    tasks: tuple[TaskEstimate, ...]
    room: BudgetRoom
    overlaps: tuple[tuple[Campaign, int], ...] = field(default=())

    @property
    def expected_cost_fen(self) -> int:
        return sum(task.cost_fen for task in self.tasks)

    def offered(self) -> dict[int, int]:
        """task id → members offered."""
        return {task.terms.task_id: task.offered for task in self.tasks}


def campaign_launch_preview(*, campaign: Campaign, on: date | None = None) -> LaunchPreview:
    """The campaign's audience now, the members offered each task, each task's expected
    completions and cost for the rest of its window against the budget left, and its
    overlap with the other scheduled or active campaigns (module docstring)."""
    on = on or today_in_shanghai()
    campaign = Campaign.objects.select_related("budget").get(pk=campaign.pk)
    history = History(on=on)
    targeting = campaign_targeting(campaign)
    audience = targeting.condition(on=on)  # offered: the audience less those held out
    others = list(
        Campaign.objects.filter(
            status__in=_LIVE_STATUSES,
            starts_on__lte=campaign.ends_on,
            ends_on__gte=max(campaign.starts_on, on),
        )
        .exclude(pk=campaign.pk)
        .prefetch_related("target_tiers", "segments")
        .order_by("starts_on", "code")
    )
    extra = {"audience": audience}
    if targeting.holdout is not None:
        extra["held_out"] = targeting.audience(on=on) & targeting.holdout.condition()
    for other in others:
        extra[f"overlap{other.pk}"] = audience & campaign_targeting(other).condition(on=on)
    tasks = [(task, TaskTerms.of(task)) for task in campaign_tasks(campaign)]
    estimates, counts = _estimates(tasks, on=on, history=history, extra=extra)
    overlaps = tuple(
        (other, counts[f"overlap{other.pk}"]) for other in others if counts[f"overlap{other.pk}"]
    )
    return LaunchPreview(
        campaign=campaign,
        on=on,
        audience=counts["audience"],
        held_out=counts.get("held_out", 0),
        tasks=tuple(estimates),
        room=budget_room(budget=campaign.budget, on=on, history=history, excluding=campaign.pk),
        overlaps=overlaps,
    )


def _members_text(count: int) -> str:
    return ngettext("%(count)s member", "%(count)s members", count) % {"count": _count(count)}


def _budget_lines(room: BudgetRoom, cost_fen: int) -> list[tuple[str, str]]:
    budget = room.budget
    return [
        (_("Budget"), budget_text(budget)),
        (_("Consumed"), yuan_text(budget.consumed)),
        (_("Committed"), room.committed_text()),
        (_("Budget left"), yuan_text(fen_to_decimal(room.left_fen))),
        (_("Expected cost against the budget left"), room.against_text(cost_fen)),
    ]


def campaign_launch_impact(*, campaign: Campaign, on: date | None = None) -> list[tuple[str, str]]:
    """The launch preview as the approval page shows it, in business words."""
    preview = campaign_launch_preview(campaign=campaign, on=on)
    if preview.campaign.holdout_share:
        lines = [
            (_("Audience now"), _members_text(preview.audience + preview.held_out)),
            (
                _("Held out (%(share)s, not offered the tasks)")
                % {"share": percent_text(preview.campaign.holdout_share, 0)},
                _members_text(preview.held_out),
            ),
            (_("Offered the campaign"), _members_text(preview.audience)),
        ]
    else:
        lines = [
            (_("Audience now"), _members_text(preview.audience)),
            (_("Held out"), _("nobody (no uplift can be measured)")),
        ]
    for estimate in preview.tasks:
        name = estimate.terms.name
        lines += [
            (_("“%(task)s”: members offered") % {"task": name}, _members_text(estimate.offered)),
            (_("“%(task)s”: expected") % {"task": name}, estimate.text()),
            (_("“%(task)s”: basis") % {"task": name}, estimate.basis_text()),
        ]
    lines.append((_("Expected cost, total"), yuan_text(fen_to_decimal(preview.expected_cost_fen))))
    lines += _budget_lines(preview.room, preview.expected_cost_fen)
    if preview.overlaps:
        lines += [
            (
                _("Also in the audience of “%(campaign)s”") % {"campaign": other.name},
                _members_text(count),
            )
            for other, count in preview.overlaps
        ]
    else:
        lines.append((_("Overlap with other live campaigns"), _("none")))
    return lines


# --- a change of a launched campaign -----------------------------------------------------------


def task_terms_after(terms: TaskTerms, changes: Iterable[dict]) -> TaskTerms:
    """A task's terms as the proposed changes (of this task) would leave them."""
    benefits = _benefits(changes)
    values = {}
    steps = {step.step_no: step for step in terms.steps}
    for change in changes:
        value = change["to"]
        if change["field"] == "reward_benefit":
            value = benefits.get(value)
        if change.get("step") is None:
            values[change["field"]] = value
        else:
            steps[change["step"]] = replace(steps[change["step"]], **{change["field"]: value})
    if steps:
        values["steps"] = tuple(steps[no] for no in sorted(steps))
    return terms.changed(**values)


def _benefits(changes: Iterable[dict]) -> dict[str, Benefit]:
    codes = {
        code
        for change in changes
        if change["field"] == "reward_benefit"
        for code in (change["from"], change["to"])
        if code
    }
    return {benefit.code: benefit for benefit in Benefit.objects.filter(code__in=codes)}


@dataclass(frozen=True)
class ChangePreview:
    campaign: Campaign
    on: date
    before: tuple[TaskEstimate, ...]
    after: tuple[TaskEstimate, ...]
    budget_before: Budget
    budget_after: Budget
    room: BudgetRoom  # of the budget that pays after the change

    @property
    def cost_before_fen(self) -> int:
        return sum(task.cost_fen for task in self.before)

    @property
    def cost_after_fen(self) -> int:
        return sum(task.cost_fen for task in self.after)

    @property
    def delta_fen(self) -> int:
        return self.cost_after_fen - self.cost_before_fen


def campaign_change_preview(
    *, campaign: Campaign, changes: Sequence[dict], on: date | None = None
) -> ChangePreview:
    """The campaign's expected cost for the rest of its window as it is and as the changes
    (`services.changes`' list) would make it, by the launch's estimate, and the budget that
    would pay it."""
    on = on or today_in_shanghai()
    campaign = Campaign.objects.select_related("budget").get(pk=campaign.pk)
    history = History(on=on)
    by_task: dict[int, list[dict]] = defaultdict(list)
    budget_after = campaign.budget
    for change in changes:
        if change.get("task") is None and change["field"] == "budget":
            budget_after = Budget.objects.filter(code=change["to"]).first() or campaign.budget
        else:
            by_task[change["task"]].append(change)
    rows = campaign_tasks(campaign)
    before = [(task, TaskTerms.of(task)) for task in rows]
    after = [(task, task_terms_after(terms, by_task.get(task.pk, ()))) for task, terms in before]
    estimates, _counts = _estimates([*before, *after], on=on, history=history)
    return ChangePreview(
        campaign=campaign,
        on=on,
        before=tuple(estimates[: len(before)]),
        after=tuple(estimates[len(before) :]),
        budget_before=campaign.budget,
        budget_after=budget_after,
        room=budget_room(budget=budget_after, on=on, history=history, excluding=campaign.pk),
    )


def _signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + yuan_text(fen_to_decimal(fen))


def change_words(change: dict, *, task_name: str, benefits: dict[str, Benefit]) -> tuple[str, str]:
    """One changed value: (what, before → after), in business words."""
    name, step, what = task_name, change.get("step"), change["field"]

    def said(value) -> str:
        if what == "reward_points":
            return points_text(value or 0)
        if what == "reward_benefit":
            return benefit_name(benefits.get(value)) if value else _("no benefit")
        if what == "max_rewards_per_member":
            return cap_per_member_text(value)
        if what == "max_rewards_per_period":
            return cap_per_period_text(value)
        if what == "budget":
            found = Budget.objects.filter(code=value).first()
            return budget_text(found) if found else str(value)
        return str(value)

    labels = {
        "reward_points": _("reward points"),
        "reward_benefit": _("reward benefit"),
        "max_rewards_per_member": _("cap per member"),
        "max_rewards_per_period": _("cap per period"),
    }
    if what == "budget":
        label = _("Charged to budget")
    elif step is None:
        label = _("“%(task)s”: %(what)s") % {"task": name, "what": labels[what]}
    else:
        label = _("“%(task)s” step %(no)s: %(what)s") % {
            "task": name,
            "no": step,
            "what": labels[what],
        }
    return label, f"{said(change['from'])} → {said(change['to'])}"


def campaign_change_summary(*, campaign: Campaign, changes: Sequence[dict]) -> str:
    """A change request in one line: the campaign, then every changed value in words."""
    names = {task.pk: task.name for task in campaign.tasks.all()}
    benefits = _benefits(changes)
    said = [
        " ".join(
            change_words(change, task_name=names.get(change.get("task"), ""), benefits=benefits)
        )
        for change in changes
    ]
    return f"{campaign.code} {campaign.name}: " + "; ".join(said)


def campaign_change_terms(
    *, campaign: Campaign, changes: Sequence[dict]
) -> tuple[dict[str, str], dict[str, str]]:
    """What a change request shows as (now, proposed): the budget by name with its amount and
    each changed task's whole terms, as they are and as the changes would leave them."""
    current: dict[str, str] = {}
    proposal: dict[str, str] = {}
    budget_change = next((c for c in changes if c["field"] == "budget"), None)
    if budget_change:
        found = Budget.objects.filter(code=budget_change["to"]).first()
        current["budget"] = budget_text(campaign.budget)
        proposal["budget"] = budget_text(found) if found else str(budget_change["to"])
    by_task: dict[int, list[dict]] = defaultdict(list)
    for change in changes:
        if change.get("task") is not None:
            by_task[change["task"]].append(change)
    for number, task in enumerate(campaign_tasks(campaign), 1):
        if task.pk in by_task:
            terms = TaskTerms.of(task)
            current[task_key(number)] = terms.text()
            proposal[task_key(number)] = task_terms_after(terms, by_task[task.pk]).text()
    return current, proposal


def campaign_change_impact(
    *, campaign: Campaign, changes: Sequence[dict], on: date | None = None
) -> list[tuple[str, str]]:
    """The changed rewards, caps and budget in business words, and the expected cost of the
    rest of the window before and after (the launch's estimate) against the budget left."""
    preview = campaign_change_preview(campaign=campaign, changes=changes, on=on)
    names = {estimate.terms.task_id: estimate.terms.name for estimate in preview.before}
    benefits = _benefits(changes)
    lines = [
        change_words(change, task_name=names.get(change.get("task"), ""), benefits=benefits)
        for change in changes
    ]
    changed = {change.get("task") for change in changes} - {None}
    for before, after in zip(preview.before, preview.after, strict=True):
        if before.terms.task_id in changed:
            name = before.terms.name
            lines += [
                (_("“%(task)s”: expected now") % {"task": name}, before.text()),
                (_("“%(task)s”: expected if approved") % {"task": name}, after.text()),
                (_("“%(task)s”: basis") % {"task": name}, after.basis_text()),
            ]
    lines += [
        (
            _("Expected cost of the rest of the window now"),
            yuan_text(fen_to_decimal(preview.cost_before_fen)),
        ),
        (
            _("Expected cost of the rest of the window if approved"),
            yuan_text(fen_to_decimal(preview.cost_after_fen)),
        ),
        (_("Expected cost change"), _signed(preview.delta_fen)),
    ]
    lines += _budget_lines(preview.room, preview.cost_after_fen)
    return lines
