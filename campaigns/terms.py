"""A campaign's terms in business words, for the people who approve them: task names, event
types and measures by their labels, targets with their units and separators, recurrences,
rewards as points and benefit names, whole ladders (every step), caps ("at most 3 times per
member", "no limit"), the budget by name with ¥.

`TaskTerms` is a task's rule and reward as values (from a saved task, or as a proposed
change would leave it), so a proposal's words and its cost estimate (`campaigns.impact`)
read the same thing; the text is written in the language active when it is called.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from benefits.models import Benefit, Budget
from members.choices import LifecycleStage
from portal.display import percent_text
from portal.money import yuan_text

from .choices import CampaignStatus, EventType, Measure, Recurrence
from .models import Campaign, Task
from .rules import MEASURES

__all__ = [
    "StepTerms",
    "TaskTerms",
    "benefit_name",
    "budget_text",
    "campaign_launch_terms",
    "campaign_tasks",
    "joined",
    "name_of",
    "cap_per_member_text",
    "cap_per_period_text",
    "points_text",
    "reward_text",
    "status_text",
    "term_label",
]


def _english() -> bool:
    return (get_language() or "").startswith("en")


def name_of(row) -> str:
    """A benefit or a tier by its name in the user's language (its English name when set,
    else its Chinese one)."""
    if row is None:
        return "—"
    english = getattr(row, "name_en", "")
    return english if _english() and english else row.name


benefit_name = name_of


def points_text(points: int) -> str:
    """ "5 points" ("5 积分")."""
    return ngettext("%(points)s point", "%(points)s points", points) % {
        "points": number_format(points, force_grouping=True)
    }


def reward_text(*, points: int, benefit: Benefit | None) -> str:
    """Points and / or a benefit by name; "no reward" when neither."""
    parts = []
    if points:
        parts.append(points_text(points))
    if benefit is not None:
        parts.append(benefit_name(benefit))
    return " + ".join(parts) if parts else _("no reward")


def cap_per_member_text(cap: int | None) -> str:
    if cap is None:
        return _("no limit per member")
    return ngettext(
        "at most %(count)s time per member", "at most %(count)s times per member", cap
    ) % {"count": number_format(cap, force_grouping=True)}


def cap_per_period_text(cap: int | None) -> str:
    if cap is None:
        return _("no limit per period")
    return ngettext(
        "at most %(count)s member per period", "at most %(count)s members per period", cap
    ) % {"count": number_format(cap, force_grouping=True)}


def budget_text(budget: Budget) -> str:
    """A budget by name, with its amount."""
    return _("%(name)s (%(amount)s)") % {"name": budget.name, "amount": yuan_text(budget.amount)}


def status_text(status: str) -> str:
    return str(CampaignStatus(status).label)


def joined(items) -> str:
    """Names listed as the user's language lists them."""
    return (", " if _english() else "、").join(str(item) for item in items)


def _labels(choices, codes) -> str:
    return joined(choices(code).label for code in codes if code in choices.values)


@dataclass(frozen=True)
class StepTerms:
    step_no: int
    target: Decimal
    reward_points: int
    reward_benefit: Benefit | None

    def reward(self) -> str:
        return reward_text(points=self.reward_points, benefit=self.reward_benefit)


@dataclass(frozen=True)
class TaskTerms:
    """A task's rule, reward and caps as values."""

    task_id: int | None
    name: str
    event_type: str
    measure: str
    target: Decimal
    recurrence: str
    min_event_amount: Decimal
    reward_points: int
    reward_benefit: Benefit | None
    max_rewards_per_member: int | None
    max_rewards_per_period: int | None
    steps: tuple[StepTerms, ...] = ()

    @classmethod
    def of(cls, task: Task) -> TaskTerms:
        return cls(
            task_id=task.pk,
            name=task.name,
            event_type=task.event_type,
            measure=task.measure,
            target=task.target,
            recurrence=task.recurrence,
            min_event_amount=task.min_event_amount,
            reward_points=task.reward_points,
            reward_benefit=task.reward_benefit,
            max_rewards_per_member=task.max_rewards_per_member,
            max_rewards_per_period=task.max_rewards_per_period,
            steps=tuple(
                StepTerms(s.step_no, s.target, s.reward_points, s.reward_benefit)
                for s in sorted(task.steps.all(), key=lambda step: step.step_no)
            ),
        )

    def changed(self, **values) -> TaskTerms:
        return replace(self, **values)

    # --- what each level pays (a task without a ladder is its one level) ---

    def levels(self) -> tuple[StepTerms, ...]:
        if self.steps:
            return self.steps
        return (StepTerms(1, self.target, self.reward_points, self.reward_benefit),)

    # --- in words ---

    def target_text(self, target: Decimal) -> str:
        return MEASURES[self.measure].target_text(target)

    def rule_text(self) -> str:
        """What counts and how often: "Sign-in, number of events at least 1 time, daily"."""
        text = _("%(event)s, %(measure)s at least %(target)s, %(recurrence)s") % {
            "event": EventType(self.event_type).label,
            "measure": Measure(self.measure).label,
            "target": self.target_text(self.target),
            "recurrence": Recurrence(self.recurrence).label,
        }
        if self.steps:  # the steps' targets are the rule; the task's own target is unused
            text = _("%(event)s, %(measure)s, %(recurrence)s") % {
                "event": EventType(self.event_type).label,
                "measure": Measure(self.measure).label,
                "recurrence": Recurrence(self.recurrence).label,
            }
        if self.min_event_amount:
            text += _("; events of at least %(amount)s count") % {
                "amount": yuan_text(self.min_event_amount)
            }
        return text

    def reward_text(self) -> str:
        """The reward, or the whole ladder, every step."""
        if not self.steps:
            return reward_text(points=self.reward_points, benefit=self.reward_benefit)
        return "; ".join(
            _("step %(no)s: at least %(target)s → %(reward)s")
            % {"no": step.step_no, "target": self.target_text(step.target), "reward": step.reward()}
            for step in self.steps
        )

    def caps_text(self) -> str:
        return "; ".join(
            [
                cap_per_member_text(self.max_rewards_per_member),
                cap_per_period_text(self.max_rewards_per_period),
            ]
        )

    def text(self) -> str:
        """The task as a checker reads it: name, rule, reward or ladder, caps."""
        return _("%(name)s: %(rule)s → %(reward)s (%(caps)s)") % {
            "name": self.name,
            "rule": self.rule_text(),
            "reward": self.reward_text(),
            "caps": self.caps_text(),
        }


def campaign_tasks(campaign: Campaign) -> list[Task]:
    """The campaign's tasks in their order, with what their words need."""
    return list(
        campaign.tasks.select_related("campaign", "reward_benefit")
        .prefetch_related(
            "steps__reward_benefit",
            "offered_tiers",
            "campaign__target_tiers",
            "campaign__segments",
        )
        .order_by("position", "id")
    )


def task_key(number: int) -> str:
    """The key of a task in a request's values ("task 1"): kept stable across languages."""
    return f"task {number}"


#: the keys of a request's values (`campaign_launch_terms`, a change's) → what the approval
#: page calls them
TERM_LABELS = {
    "status": gettext_lazy("Status"),
    "window": gettext_lazy("Campaign window"),
    "budget": gettext_lazy("Budget"),
    "target tiers": gettext_lazy("Target tiers"),
    "target stages": gettext_lazy("Target lifecycle stages"),
    "segments": gettext_lazy("Segments"),
    "holdout": gettext_lazy("Holdout"),
}


def term_label(key: str) -> str:
    """A key of a request's values as the approval page names it ("task 2" → "Task 2")."""
    if key.startswith("task ") and key[5:].isdigit():
        return _("Task %(number)s") % {"number": key[5:]}
    return str(TERM_LABELS.get(key, key))


def campaign_launch_terms(*, campaign: Campaign) -> dict[str, str]:
    """What the checker approves, in business words: the window, the budget, who is
    targeted and every task's rule, reward (whole ladders) and caps."""
    tiers = list(campaign.target_tiers.order_by("rank"))
    stages = [stage for stage in LifecycleStage.values if stage in (campaign.target_stages or [])]
    segments = list(campaign.segments.order_by("name"))
    terms = {
        "status": " / ".join(
            status_text(status) for status in (CampaignStatus.SCHEDULED, CampaignStatus.ACTIVE)
        ),
        "window": f"{campaign.starts_on.isoformat()} – {campaign.ends_on.isoformat()}",
        "budget": budget_text(campaign.budget),
        "target tiers": joined(name_of(t) for t in tiers) or _("every tier"),
        "target stages": _labels(LifecycleStage, stages) or _("every stage"),
        "segments": joined(s.name for s in segments) or _("no segment restriction"),
        "holdout": holdout_text(campaign),
    }
    for number, task in enumerate(campaign_tasks(campaign), 1):
        words = TaskTerms.of(task).text()
        offered = _offered_text(task)
        terms[task_key(number)] = f"{words}; {offered}" if offered else words
    return terms


def holdout_text(campaign: Campaign) -> str:
    """The campaign's holdout and follow-up in business words."""
    if not campaign.holdout_share:
        return _("nobody held out (no uplift can be measured)")
    return _(
        "%(share)s of the audience held out at random (not offered the tasks); outcomes "
        "measured until %(days)s days after the window"
    ) % {"share": percent_text(campaign.holdout_share, 0), "days": campaign.follow_up_days}


def _offered_text(task: Task) -> str:
    """The task's own restrictions beyond the campaign's (empty: none)."""
    parts = []
    tiers = sorted(task.offered_tiers.all(), key=lambda tier: tier.rank)
    if tiers:
        parts.append(_("offered to tiers %(tiers)s") % {"tiers": joined(name_of(t) for t in tiers)})
    stages = [stage for stage in LifecycleStage.values if stage in (task.offered_stages or [])]
    if stages:
        parts.append(
            _("offered to stages %(stages)s") % {"stages": _labels(LifecycleStage, stages)}
        )
    return "; ".join(parts)
