"""Reads of the campaigns app, shared by the API, the portal and the nightly jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from members.choices import MemberStatus
from members.models import Member, Segment
from members.segments import segment_filter
from portal.clock import today_in_shanghai

from .choices import CampaignStatus
from .holdout import Holdout
from .models import Campaign, Task, TaskCompletion, TaskProgress
from .rules import MEASURES, RECURRENCES

#: a condition no member meets (a restriction whose lists do not overlap)
_NOBODY = Q(pk__isnull=True)

# --- who is offered a campaign's tasks ------------------------------------------------------------


@dataclass(frozen=True)
class Targeting:
    """Who a campaign (or one of its tasks) is offered to: tiers, lifecycle stages and
    segments, each empty for everyone. The events ingestion asks `offered_to` about one
    member of a batch; the launch preview counts `members` — the same rules, so the preview
    of a launch is what the events then do:

    - a closed account is offered nothing (its events are refused);
    - a member must hold one of the tiers and be in one of the stages, when they are set;
    - with segments, the member must be in at least one of them (on the business date);
    - targeted offers (by tier, stage or segment) skip members who opted out of marketing;
      an offer open to all members (the programme's own) still counts for them;
    - members the campaign holds out (`holdout`) are in its audience but offered nothing.
    """

    tiers: frozenset[int | None] = frozenset()
    stages: frozenset[str | None] = frozenset()
    segment_ids: tuple[int, ...] = ()
    holdout: Holdout | None = None

    @property
    def targeted(self) -> bool:
        """Offered by tier, lifecycle stage or segment (personalised marketing), not to every
        member. A customer who opted out of marketing is offered no targeted task; a task
        open to all members (the programme's own) still counts for them."""
        return bool(self.tiers or self.stages or self.segment_ids)

    def offered_to(self, tier_id: int | None, stage: str) -> bool:
        """Tier and stage of one member (segments and opt-out are the caller's: they need
        the batch's members)."""
        return (not self.tiers or (tier_id is not None and tier_id in self.tiers)) and (
            not self.stages or stage in self.stages
        )

    def condition(self, *, on: date) -> Q:
        """The members offered: every rule above as one condition over `Member`, for
        business date `on`."""
        condition = self.audience(on=on)
        if self.holdout is not None:
            condition &= ~self.holdout.condition()
        return condition

    def audience(self, *, on: date) -> Q:
        """The members targeted, those held out included (the cohort a holdout splits)."""
        condition = ~Q(status=MemberStatus.CLOSED)
        if self.tiers:
            tiers = sorted(t for t in self.tiers if t is not None)
            condition &= Q(tier_id__in=tiers) if tiers else _NOBODY
        if self.stages:
            stages = sorted(s for s in self.stages if s is not None)
            condition &= Q(lifecycle_stage__in=stages) if stages else _NOBODY
        if self.segment_ids:
            in_any: Q | None = None
            for segment in Segment.objects.filter(pk__in=self.segment_ids).order_by("pk"):
                rules = segment_filter(segment, on=on)
                if not rules:  # a segment without rules holds everyone
                    in_any = Q()
                    break
                in_any = rules if in_any is None else in_any | rules
            condition &= _NOBODY if in_any is None else in_any
        if self.targeted:
            condition &= Q(marketing_opt_out=False)
        return condition

    def members(self, *, on: date | None = None) -> QuerySet[Member]:
        """The members offered, on business date `on` (default today)."""
        return Member.objects.filter(self.condition(on=on or today_in_shanghai()))


def campaign_targeting(campaign: Campaign) -> Targeting:
    """Who the campaign targets, by its own tiers, stages and segments, and its holdout."""
    return Targeting(
        tiers=frozenset(t.pk for t in campaign.target_tiers.all()),
        stages=frozenset(campaign.target_stages or ()),
        segment_ids=tuple(sorted(s.pk for s in campaign.segments.all())),
        holdout=Holdout.of(campaign),
    )


# --- the tasks events can advance  ---------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    step_no: int
    target: int  # in the measure's unit
    points: int
    benefit_id: int | None


@dataclass(frozen=True)
class LiveTask:
    """A task of a live campaign, read once per batch."""

    id: int
    name: str
    campaign_id: int
    campaign_code: str
    budget_id: int
    event_type: str
    min_amount_fen: int
    measure: str
    recurrence: str
    levels: tuple[Level, ...]
    starts_on: date
    ends_on: date
    tiers: frozenset[int]
    stages: frozenset[str]
    segment_ids: tuple[int, ...]
    max_per_member: int | None
    max_per_period: int | None
    holdout: Holdout | None = None

    def period(self, day: date):
        return RECURRENCES[self.recurrence].period(
            day, starts_on=self.starts_on, ends_on=self.ends_on
        )

    @property
    def targeting(self) -> Targeting:
        """Who the task is offered to: its campaign's targeting and its own restrictions."""
        return Targeting(
            tiers=self.tiers,
            stages=self.stages,
            segment_ids=self.segment_ids,
            holdout=self.holdout,
        )

    @property
    def targeted(self) -> bool:
        return self.targeting.targeted

    def offered_to(self, tier_id: int | None, stage: str) -> bool:
        return self.targeting.offered_to(tier_id, stage)

    def holds_out(self, member_no: str) -> bool:
        """The member is held out of the task's campaign: the task never counts for them."""
        return self.holdout is not None and self.holdout.holds_out(member_no)


def _intersect(campaign_values: Iterable, task_values: Iterable) -> frozenset:
    """Both restrict: empty means everyone; two non-empty lists give only what both allow."""
    campaign_set, task_set = frozenset(campaign_values), frozenset(task_values)
    if campaign_set and task_set:
        both = campaign_set & task_set
        return both or frozenset({None})  # nobody: the lists do not overlap
    return campaign_set or task_set


def live_tasks(
    *, on: date | None = None, event_types: Iterable[str] | None = None
) -> list[LiveTask]:
    """Tasks of campaigns that count events now: active, or scheduled and begun (the night
    flips it), until the late-event grace after their window has passed. Paused and ended
    campaigns count nothing."""
    today = on or today_in_shanghai()
    grace = timedelta(days=settings.CAMPAIGN_LATE_EVENT_GRACE_DAYS)
    tasks = (
        Task.objects.filter(
            campaign__status__in=[CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED],
            campaign__starts_on__lte=today,
            campaign__ends_on__gte=today - grace,
        )
        .select_related("campaign")
        .prefetch_related("steps", "offered_tiers", "campaign__target_tiers", "campaign__segments")
        .order_by("id")
    )
    if event_types is not None:
        tasks = tasks.filter(event_type__in=list(event_types))
    return [live_task_of(task) for task in tasks]


def live_task_of(task: Task) -> LiveTask:
    """A task as the events see it: its levels in the measure's unit, who is offered it (its
    campaign's targeting and its own restrictions), its caps. Whether its campaign counts
    events now is `live_tasks`'s to decide; a launch preview reads a task not yet live."""
    campaign = task.campaign
    measure = MEASURES[task.measure]
    steps = list(task.steps.all())
    if steps:
        levels = tuple(
            Level(s.step_no, measure.to_units(s.target), s.reward_points, s.reward_benefit_id)
            for s in steps
        )
    else:
        levels = (
            Level(1, measure.to_units(task.target), task.reward_points, task.reward_benefit_id),
        )
    return LiveTask(
        id=task.pk,
        name=task.name,
        campaign_id=campaign.pk,
        campaign_code=campaign.code,
        budget_id=campaign.budget_id,
        event_type=task.event_type,
        min_amount_fen=int(task.min_event_amount * 100),
        measure=task.measure,
        recurrence=task.recurrence,
        levels=levels,
        starts_on=campaign.starts_on,
        ends_on=campaign.ends_on,
        tiers=_intersect(
            (t.pk for t in campaign.target_tiers.all()),
            (t.pk for t in task.offered_tiers.all()),
        ),
        stages=_intersect(campaign.target_stages, task.offered_stages),
        segment_ids=tuple(s.pk for s in campaign.segments.all()),
        max_per_member=task.max_rewards_per_member,
        max_per_period=task.max_rewards_per_period,
        holdout=Holdout.of(campaign),
    )


def segment_members(tasks: list[LiveTask], member_ids: set[int], on: date) -> dict[int, set[int]]:
    """segment id → the batch's members in it (one query per segment used)."""
    wanted = {segment_id for task in tasks for segment_id in task.segment_ids}
    found: dict[int, set[int]] = {}
    for segment in Segment.objects.filter(pk__in=wanted):
        found[segment.pk] = set(
            Member.objects.filter(pk__in=member_ids)
            .filter(segment_filter(segment, on=on))
            .values_list("pk", flat=True)
        )
    return found


# --- the member centre ------------------------------------------------------------------------


def member_tasks(*, member: Member, on: date | None = None) -> list[dict]:
    """The member's current tasks (API.md member centre): every task of a live campaign
    offered to the member today, and any task the member already has progress on in its
    current period; with progress, the next step's target and reward. A member who opted
    out of marketing sees no targeted task (`LiveTask.targeted`), progress or not; a member
    held out of a campaign sees none of its tasks."""
    today = on or today_in_shanghai()
    tasks = [
        t
        for t in live_tasks(on=today)
        if t.starts_on <= today <= t.ends_on
        and not (member.marketing_opt_out and t.targeted)
        and not t.holds_out(member.member_no)
    ]
    if not tasks:
        return []
    in_segment = segment_members(tasks, {member.pk}, today)
    current = {task.id: task.period(today) for task in tasks}
    progress = {
        (row.task_id, row.period_key): row
        for row in TaskProgress.objects.filter(
            member_id=member.pk,
            task_id__in=list(current),
            period_key__in={p[0] for p in current.values()},
        )
    }
    result = []
    for task in tasks:
        period_key = current[task.id][0]
        row = progress.get((task.id, period_key))
        offered = task.offered_to(member.tier_id, member.lifecycle_stage) and (
            not task.segment_ids
            or any(member.pk in in_segment.get(s, ()) for s in task.segment_ids)
        )
        if row is None and not offered:
            continue
        measure = MEASURES[task.measure]
        steps_reached = row.steps_reached if row else 0
        completed = steps_reached >= len(task.levels)
        level = task.levels[min(steps_reached, len(task.levels) - 1)]
        result.append(
            {
                "task_id": task.id,
                "campaign": task.campaign_code,
                "name": task.name,
                "period_key": period_key,
                "progress": measure.display(row.value if row else 0),
                "target": measure.display(level.target),
                "completed": completed,
                "reward_points": level.points,
                "step": level.step_no,
                "steps": len(task.levels),
                "ends_on": task.ends_on,
            }
        )
    return result


def member_completions(*, member: Member, limit: int = 20):
    """The member's latest task completions with their reward, or why it was refused."""
    return list(
        TaskCompletion.objects.filter(member_id=member.pk)
        .select_related("task", "campaign", "grant__benefit")
        .order_by("-completed_at", "-id")[:limit]
    )
