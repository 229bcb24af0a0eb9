"""Effectiveness reports of task campaigns (DESIGN.md): participants, completion rate by task
and difficulty, dormant members reactivated, cost per completion and per reactivation.

Read-only selectors shared by the portal dashboard and the API. Each runs a fixed number of
aggregate queries per call, whatever the number of members; `campaigns_overview` runs one
query for any number of campaigns.

Definitions used throughout:

- a **participant** is a member with any `TaskProgress` on a task of the campaign;
- a **completer** is a member with at least one `TaskCompletion` (any step, any task, any
  reward status: a completion whose reward was refused is still a completion);
- the **completion rate** is completers / participants, a percent with one decimal, None
  when nobody took part;
- **cost** is what rewarded completions charged to the budget when the reward was issued
  (`TaskCompletion.cost_fen`: points at their value plus the benefit grant's cost); refused
  rewards cost nothing. A grant revoked later gives money back to the budget (visible in
  the budget burn) but does not change the cost of the completion that issued it;
- a **dormant participant** started some progress in the campaign while DORMANT or CHURNED
  (`stage_at_start`, the stage when the progress began, not the member's stage today);
- a **reactivated member** is a dormant participant with at least one completion in the
  campaign: the completion need not be of the task started while dormant (a member who
  came back and then finished another task of the campaign counts once).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from benefits.models import Budget
from benefits.selectors import budget_burn
from members.choices import LifecycleStage
from portal.clock import today_in_shanghai
from portal.money import fen_to_decimal

from .choices import Difficulty, RewardStatus
from .models import Campaign, Task, TaskCompletion, TaskProgress

__all__ = [
    "DORMANT_STAGES",
    "campaign_effectiveness",
    "campaigns_overview",
    "difficulty_summary",
    "task_effectiveness",
]

#: lifecycle stages whose members a campaign can reactivate
DORMANT_STAGES = (LifecycleStage.DORMANT, LifecycleStage.CHURNED)

_REWARDED = Q(reward_status=RewardStatus.REWARDED)
_PERCENT = Decimal("0.1")
_CENT = Decimal("0.01")


def _rate(part: int, whole: int) -> Decimal | None:
    """part / whole as a percent with one decimal (half up); None when whole is zero."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_PERCENT, rounding=ROUND_HALF_UP)


def _per(cost_fen: int, count: int) -> Decimal | None:
    """A cost in fen shared over `count`, in CNY to the cent (half up); None when count is 0."""
    if not count:
        return None
    return (Decimal(cost_fen) / Decimal(count) / 100).quantize(_CENT, rounding=ROUND_HALF_UP)


def _reactivated_progress() -> Q:
    """Progress rows started while dormant or churned by a member who has a completion in the
    same campaign (evaluated on `TaskProgress`; one EXISTS on the completion's member index)."""
    completed = TaskCompletion.objects.filter(
        campaign_id=OuterRef("task__campaign_id"), member_id=OuterRef("member_id")
    )
    return Q(stage_at_start__in=DORMANT_STAGES) & Q(Exists(completed))


# --- one campaign --------------------------------------------------------------------------


def campaign_effectiveness(*, campaign: Campaign, today: date | None = None) -> dict:
    """Participants, completions (rewarded, refused by reason, without reward), completion
    rate, points and costs, dormant participants and reactivated members (module docstring
    for the definitions), and the burn of the campaign's budget.

    Cost per completion divides the total cost by every completion (refused ones included:
    what the campaign paid for each completion it produced); cost per reactivation divides
    the whole campaign's cost by the reactivated members. Both are None when dividing by
    zero. The budget may be shared with other campaigns: its burn is the budget's, and the
    projected exhaustion date extrapolates its net consumption over the last 30 days (or
    since the period opened) — None when nothing is being consumed.

    Keys: campaign_id, code, name, status, participants, completers, completion_rate,
    completions, rewarded, refused {REFUSED_BUDGET, REFUSED_CAP}, no_reward, points_issued,
    points_cost, benefit_cost, total_cost, cost_per_completion, dormant_participants,
    reactivated, reactivation_rate, cost_per_reactivation, budget {code, amount, consumed,
    remaining, consumed_percent, daily_rate, projected_exhaustion}.
    """
    people = TaskProgress.objects.filter(task__campaign=campaign).aggregate(
        participants=Count("member_id", distinct=True),
        dormant=Count("member_id", distinct=True, filter=Q(stage_at_start__in=DORMANT_STAGES)),
        reactivated=Count("member_id", distinct=True, filter=_reactivated_progress()),
    )
    done = TaskCompletion.objects.filter(campaign=campaign).aggregate(
        completions=Count("id"),
        completers=Count("member_id", distinct=True),
        rewarded=Count("id", filter=_REWARDED),
        refused_budget=Count("id", filter=Q(reward_status=RewardStatus.REFUSED_BUDGET)),
        refused_cap=Count("id", filter=Q(reward_status=RewardStatus.REFUSED_CAP)),
        no_reward=Count("id", filter=Q(reward_status=RewardStatus.NO_REWARD)),
        points=Coalesce(Sum("reward_points", filter=_REWARDED), 0, output_field=BigIntegerField()),
        cost_fen=Coalesce(Sum("cost_fen", filter=_REWARDED), 0, output_field=BigIntegerField()),
        benefit_fen=Coalesce(
            Sum("grant__cost_fen", filter=_REWARDED), 0, output_field=BigIntegerField()
        ),
    )
    cost_fen, benefit_fen = done["cost_fen"], done["benefit_fen"]
    budget = Budget.objects.get(pk=campaign.budget_id)  # fresh: consumption moves all day
    burn = budget_burn(budget=budget, today=today or today_in_shanghai())
    return {
        "campaign_id": campaign.pk,
        "code": campaign.code,
        "name": campaign.name,
        "status": campaign.status,
        "participants": people["participants"],
        "completers": done["completers"],
        "completion_rate": _rate(done["completers"], people["participants"]),
        "completions": done["completions"],
        "rewarded": done["rewarded"],
        "refused": {
            RewardStatus.REFUSED_BUDGET.value: done["refused_budget"],
            RewardStatus.REFUSED_CAP.value: done["refused_cap"],
        },
        "no_reward": done["no_reward"],
        "points_issued": done["points"],
        # points cost what the completion charged beyond its grant (points at their value then)
        "points_cost": fen_to_decimal(cost_fen - benefit_fen),
        "benefit_cost": fen_to_decimal(benefit_fen),
        "total_cost": fen_to_decimal(cost_fen),
        "cost_per_completion": _per(cost_fen, done["completions"]),
        "dormant_participants": people["dormant"],
        "reactivated": people["reactivated"],
        "reactivation_rate": _rate(people["reactivated"], people["dormant"]),
        "cost_per_reactivation": _per(cost_fen, people["reactivated"]),
        "budget": {
            "code": budget.code,
            "amount": budget.amount,
            "consumed": budget.consumed,
            "remaining": budget.remaining,
            "consumed_percent": budget.consumed_percent,
            "daily_rate": burn.daily_rate,
            "projected_exhaustion": burn.projected_exhaustion,
        },
    }


def task_effectiveness(*, campaign: Campaign) -> list[dict]:
    """Per task of the campaign, in its order: participants, completers and completion rate
    (of that task), completions per ladder step (every step, zeros included; a task without
    a ladder has the one step 1), and the cost of its rewarded completions.

    Keys: task_id, name, difficulty, participants, completers, completion_rate, completions,
    completions_by_step [{step_no, completions}], cost.
    """
    tasks = list(Task.objects.filter(campaign=campaign).prefetch_related("steps"))
    participants = dict(
        TaskProgress.objects.filter(task__campaign=campaign)
        .values("task_id")
        .annotate(n=Count("member_id", distinct=True))
        .order_by()
        .values_list("task_id", "n")
    )
    per_task = {
        row["task_id"]: row
        for row in TaskCompletion.objects.filter(campaign=campaign)
        .values("task_id")
        .annotate(
            completers=Count("member_id", distinct=True),
            completions=Count("id"),
            cost_fen=Coalesce(Sum("cost_fen", filter=_REWARDED), 0, output_field=BigIntegerField()),
        )
        .order_by()
    }
    per_step: dict[tuple[int, int], int] = {
        (row["task_id"], row["step_no"]): row["n"]
        for row in TaskCompletion.objects.filter(campaign=campaign)
        .values("task_id", "step_no")
        .annotate(n=Count("id"))
        .order_by()
    }
    result = []
    for task in tasks:
        taken = participants.get(task.pk, 0)
        done = per_task.get(task.pk, {"completers": 0, "completions": 0, "cost_fen": 0})
        step_nos = [step.step_no for step in task.steps.all()] or [1]
        result.append(
            {
                "task_id": task.pk,
                "name": task.name,
                "difficulty": task.difficulty,
                "participants": taken,
                "completers": done["completers"],
                "completion_rate": _rate(done["completers"], taken),
                "completions": done["completions"],
                "completions_by_step": [
                    {"step_no": no, "completions": per_step.get((task.pk, no), 0)}
                    for no in step_nos
                ],
                "cost": fen_to_decimal(done["cost_fen"]),
            }
        )
    return result


def difficulty_summary(*, campaign: Campaign) -> list[dict]:
    """Per difficulty (easy, medium, hard, always all three): the number of tasks, distinct
    participants and completers over those tasks (a member in two easy tasks counts once),
    and the completion rate (None without participants).

    Keys: difficulty, tasks, participants, completers, completion_rate.
    """
    tasks = dict(
        Task.objects.filter(campaign=campaign)
        .values("difficulty")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("difficulty", "n")
    )
    participants = dict(
        TaskProgress.objects.filter(task__campaign=campaign)
        .values("task__difficulty")
        .annotate(n=Count("member_id", distinct=True))
        .order_by()
        .values_list("task__difficulty", "n")
    )
    completers = dict(
        TaskCompletion.objects.filter(campaign=campaign)
        .values("task__difficulty")
        .annotate(n=Count("member_id", distinct=True))
        .order_by()
        .values_list("task__difficulty", "n")
    )
    return [
        {
            "difficulty": difficulty.value,
            "tasks": tasks.get(difficulty, 0),
            "participants": participants.get(difficulty, 0),
            "completers": completers.get(difficulty, 0),
            "completion_rate": _rate(
                completers.get(difficulty, 0), participants.get(difficulty, 0)
            ),
        }
        for difficulty in Difficulty
    ]


# --- the list page ---------------------------------------------------------------------------


def _count_per_campaign(queryset: QuerySet, *, campaign_field: str) -> Coalesce:
    """COUNT(DISTINCT member) of `queryset` for the outer campaign, as a correlated subquery
    (0 when there is no row)."""
    counted = (
        queryset.filter(**{campaign_field: OuterRef("pk")})
        .order_by()
        .values(campaign_field)
        .annotate(n=Count("member_id", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def campaigns_overview(*, campaigns: Iterable[Campaign] | QuerySet | None = None) -> list[dict]:
    """One row per campaign for the list page, in one query whatever the number of campaigns
    (correlated subqueries, no query per campaign). `campaigns` is a queryset (its order is
    kept), campaign instances (their order is kept) or None for every campaign.

    Keys: campaign_id, code, name, status, status_label, participants, completers,
    completion_rate, total_cost, reactivated.
    """
    order: list[int] | None = None
    if campaigns is None:
        queryset = Campaign.objects.all()
    elif isinstance(campaigns, QuerySet):
        queryset = campaigns
    else:
        order = [campaign.pk for campaign in campaigns]
        queryset = Campaign.objects.filter(pk__in=order)
    cost = (
        TaskCompletion.objects.filter(_REWARDED, campaign=OuterRef("pk"))
        .order_by()
        .values("campaign")
        .annotate(total=Sum("cost_fen"))
        .values("total")
    )
    rows = queryset.annotate(
        participants=_count_per_campaign(
            TaskProgress.objects.all(), campaign_field="task__campaign"
        ),
        completers=_count_per_campaign(TaskCompletion.objects.all(), campaign_field="campaign"),
        reactivated=_count_per_campaign(
            TaskProgress.objects.filter(_reactivated_progress()), campaign_field="task__campaign"
        ),
        cost_fen=Coalesce(Subquery(cost, output_field=BigIntegerField()), Value(0)),
    )
    result = [
        {
            "campaign_id": row.pk,
            "code": row.code,
            "name": row.name,
            "status": row.status,
            "status_label": row.get_status_display(),
            "participants": row.participants,
            "completers": row.completers,
            "completion_rate": _rate(row.completers, row.participants),
            "total_cost": fen_to_decimal(row.cost_fen),
            "reactivated": row.reactivated,
        }
        for row in rows
    ]
    if order is not None:
        position = {pk: index for index, pk in enumerate(order)}
        result.sort(key=lambda row: position[row["campaign_id"]])
    return result
