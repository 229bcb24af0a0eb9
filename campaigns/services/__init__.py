"""Writes of the campaigns app: the campaign lifecycle (maker-checker launch), member event
ingestion with task progress and rewards, and the nightly period roll-over.

Event ingestion is per batch, not per event: one query finds the members, one INSERT …
ON CONFLICT DO NOTHING stores the new events (the unique event_id makes a replay or a
concurrent duplicate change nothing), a few statements update activity, and task progress
is locked and written as one set per batch. A completed step issues its reward exactly
once (`TaskCompletion` is unique per member, task, period and step).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from benefits.models import Benefit, Budget
from benefits.services import BudgetExhausted, budget_consume, grant_create
from members.feeds import today_in_shanghai
from members.models import Member
from members.services.points import points_earn
from portal.services import audit_record

from ..choices import EDITABLE_STATUSES, CampaignStatus, RewardStatus
from ..events import MAX_EVENTS_PER_BATCH, EventRefusal, EventRow, event_parse
from ..models import Campaign, EventBatch, TaskCapCounter, TaskCompletion
from ..rules import MEASURES, ProgressState
from ..selectors import Level, LiveTask, live_tasks, segment_members

logger = logging.getLogger(__name__)

# --- the campaign lifecycle -------------------------------------------------------------------


class CampaignStateError(Exception):
    """The campaign is not in a state that allows this (the message says what is)."""


def _transition(campaign: Campaign, *, to: str, actor, action: str, **fields) -> Campaign:
    before = campaign.status
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.status = to
    campaign.save()
    audit_record(
        actor=actor,
        action=action,
        obj=campaign,
        changes={"status": [before, to]},
        reason=fields.get("decision_comment", ""),
    )
    return campaign


@transaction.atomic
def campaign_submit(*, campaign: Campaign, actor) -> Campaign:
    """A draft (or rejected) campaign with at least one task goes to approval."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in EDITABLE_STATUSES:
        raise CampaignStateError(
            f"Campaign {campaign.code} is {campaign.get_status_display()}; only a draft can be "
            "submitted."
        )
    problems = campaign_launch_problems(campaign=campaign)
    if problems:
        raise CampaignStateError(" ".join(problems))
    return _transition(
        campaign,
        to=CampaignStatus.PENDING_APPROVAL,
        actor=actor,
        action="campaign.submit",
        submitted_by=actor,
        submitted_at=timezone.now(),
        decided_by=None,
        decided_at=None,
        decision_comment="",
    )


def campaign_launch_problems(*, campaign: Campaign) -> list[str]:
    """What stops a campaign from being launched, in words a product operator can act on."""
    problems = []
    tasks = list(campaign.tasks.prefetch_related("steps"))
    if not tasks:
        problems.append("Add at least one task.")
    if campaign.ends_on < today_in_shanghai():
        problems.append(f"The window ended on {campaign.ends_on}; move the end date.")
    for task in tasks:
        if not (task.reward_points or task.reward_benefit_id or task.steps.all()):
            problems.append(f"Task “{task.name}” has no reward (points, a benefit or steps).")
    return problems


@transaction.atomic
def campaign_decide(*, campaign: Campaign, approve: bool, actor, comment: str = "") -> Campaign:
    """The checker's decision on a submitted campaign. Nobody decides on a campaign they
    wrote or submitted; approval schedules it (or activates it when its window has begun),
    rejection sends it back to its author as editable."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.PENDING_APPROVAL:
        raise CampaignStateError(
            f"Campaign {campaign.code} is {campaign.get_status_display()}, not pending approval."
        )
    if actor.pk in (campaign.created_by_id, campaign.submitted_by_id):
        raise PermissionError("You cannot decide on a campaign you wrote or submitted.")
    if not approve and not comment.strip():
        raise CampaignStateError("Say why the campaign is rejected.")
    if approve:
        to = (
            CampaignStatus.ACTIVE
            if campaign.starts_on <= today_in_shanghai()
            else CampaignStatus.SCHEDULED
        )
    else:
        to = CampaignStatus.REJECTED
    return _transition(
        campaign,
        to=to,
        actor=actor,
        action="campaign.approve" if approve else "campaign.reject",
        decided_by=actor,
        decided_at=timezone.now(),
        decision_comment=comment[:255],
    )


_OPERATIONS = {
    "pause": ((CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED), CampaignStatus.PAUSED),
    "resume": ((CampaignStatus.PAUSED,), CampaignStatus.ACTIVE),
    "end": ((CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED),
            CampaignStatus.ENDED),
}  # fmt: skip


@transaction.atomic
def campaign_operate(*, campaign: Campaign, operation: str, actor, reason: str = "") -> Campaign:
    """Pause, resume or end a launched campaign (a paused campaign counts no events)."""
    allowed_from, to = _OPERATIONS[operation]
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed_from:
        raise CampaignStateError(
            f"Campaign {campaign.code} is {campaign.get_status_display()}; it cannot {operation}."
        )
    if operation == "resume" and campaign.starts_on > today_in_shanghai():
        to = CampaignStatus.SCHEDULED
    _transition(campaign, to=to, actor=actor, action=f"campaign.{operation}")
    if reason:
        audit_record(
            actor=actor, action=f"campaign.{operation}.reason", obj=campaign, reason=reason
        )
    return campaign


def campaign_periods_roll(*, business_date: date) -> dict:
    """Nightly: scheduled campaigns whose window has begun become active; campaigns whose
    window ended before the business date end (after the late-event grace); counts the task
    periods that closed on the day before. Idempotent for the date."""
    grace = timedelta(days=settings.CAMPAIGN_LATE_EVENT_GRACE_DAYS)
    with transaction.atomic():
        started = Campaign.objects.filter(
            status=CampaignStatus.SCHEDULED, starts_on__lte=business_date
        ).update(status=CampaignStatus.ACTIVE, updated_at=timezone.now())
        ended = Campaign.objects.filter(
            status__in=[CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED],
            ends_on__lt=business_date - grace,
        ).update(status=CampaignStatus.ENDED, updated_at=timezone.now())
    from ..models import TaskProgress

    closed = TaskProgress.objects.filter(period_end=business_date - timedelta(days=1))
    return {
        "campaigns_started": started,
        "campaigns_ended": ended,
        "periods_closed": closed.count(),
        "periods_closed_completed": closed.filter(completed_at__isnull=False).count(),
    }


# --- event ingestion ----------------------------------------------------------------------------


@dataclass
class IngestResult:
    batch_id: int
    accepted: int
    duplicates: int
    rejected: list[dict]
    completions: int

    def as_response(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


class BatchTooLarge(Exception):
    pass


def events_ingest(*, events: list, client) -> IngestResult:
    """Take a batch of member events (API.md): each is accepted, a duplicate, or refused with
    its reasons; accepted events advance task progress and issue rewards in the same
    transaction. received = accepted + duplicates + rejected, recorded as an `EventBatch`.

    A deadlock with a concurrent batch (both touching the same members) rolls the whole
    batch back and retries it; nothing is half-written.
    """
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise BatchTooLarge(
            f"At most {MAX_EVENTS_PER_BATCH} events per request; this one has {len(events)}. "
            "Split it into smaller batches."
        )
    now = timezone.now()
    parsed: list[EventRow] = []
    refused: list[EventRefusal] = []
    for index, raw in enumerate(events):
        row = event_parse(index, raw, now)
        (refused if isinstance(row, EventRefusal) else parsed).append(row)
    for attempt in range(3):
        try:
            return _ingest(parsed=parsed, refused=list(refused), client=client, now=now)
        except OperationalError as exc:  # deadlock detected / serialization failure
            if attempt == 2 or "deadlock" not in str(exc).lower():
                raise
            logger.warning("Event batch retried after a deadlock (attempt %d)", attempt + 1)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


@transaction.atomic
def _ingest(*, parsed: list[EventRow], refused: list[EventRefusal], client, now: datetime):
    batch = EventBatch.objects.create(
        client=client if getattr(client, "pk", None) else None,
        received=0,
        accepted=0,
        duplicates=0,
        rejected=0,
    )
    members = {
        no: (pk, tier_id, stage, status)
        for no, pk, tier_id, stage, status in Member.objects.filter(
            member_no__in={row.member_no for row in parsed}
        ).values_list("member_no", "pk", "tier_id", "lifecycle_stage", "status")
    }
    seen: set[str] = set()
    candidates: list[EventRow] = []
    in_batch_duplicates = 0
    for row in parsed:
        member = members.get(row.member_no)
        if member is None:
            refused.append(EventRefusal(row.index, row.event_id, {"member_no": ["unknown member"]}))
        elif member[3] == "CLOSED":
            refused.append(
                EventRefusal(
                    row.index, row.event_id, {"member_no": ["the member's account is closed"]}
                )
            )
        elif row.event_id in seen:
            in_batch_duplicates += 1
        else:
            seen.add(row.event_id)
            candidates.append(row)

    stored = _store_events(candidates, members=members, batch_id=batch.pk, now=now)
    accepted = [row for row in candidates if row.event_id in stored]
    duplicates = in_batch_duplicates + len(candidates) - len(accepted)
    if accepted:
        _record_activity(accepted, members=members)
    completions = _advance_tasks(accepted, members=members) if accepted else 0

    refused.sort(key=lambda r: r.index)
    rejected = [r.as_dict() for r in refused]
    received = len(accepted) + duplicates + len(rejected)
    EventBatch.objects.filter(pk=batch.pk).update(
        received=received,
        accepted=len(accepted),
        duplicates=duplicates,
        rejected=len(rejected),
        rejections=rejected,
        completions=completions,
    )
    return IngestResult(batch.pk, len(accepted), duplicates, rejected, completions)


def _db_time(moment: datetime | None):
    """A timestamp as the database stores it (SQLite: UTC text; PostgreSQL: as is)."""
    return connection.ops.adapt_datetimefield_value(moment) if moment is not None else None


def _values(rows: int, width: int, casts: tuple[str, ...] | None = None) -> str:
    one = "(" + ", ".join(f"%s::{c}" if casts and connection.vendor == "postgresql" else "%s"
                          for c in (casts or ("",) * width)) + ")"  # fmt: skip
    return ", ".join([one] * rows)


def _store_events(rows: list[EventRow], *, members: dict, batch_id: int, now: datetime) -> set[str]:
    """INSERT the events, skipping event_ids already stored (by anyone, even concurrently:
    the unique index makes the second writer wait, then skip). Returns the ids stored now.
    Rows go in event_id order, so two batches never wait on each other in a cycle."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: r.event_id)
    params: list = []
    for row in rows:
        params += [
            row.event_id,
            members[row.member_no][0],
            row.type,
            row.amount_fen,
            _db_time(row.occurred_at),
            row.occurred_on,
            row.channel,
            batch_id,
            _db_time(now),
        ]
    sql = (
        "INSERT INTO campaigns_memberevent (event_id, member_id, type, amount_fen, occurred_at, "
        "occurred_on, channel, batch_id, received_at) VALUES "
        + _values(len(rows), 9)
        + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {event_id for (event_id,) in cursor.fetchall()}


def _record_activity(rows: list[EventRow], *, members: dict) -> None:
    """Events are activity (API.md, lifecycle): new activity days, the month's active-day
    count, FUND_PURCHASE / PAYROLL amounts for the tier engine's indicators, last activity."""
    days = sorted({(members[r.member_no][0], r.occurred_on) for r in rows})
    amounts: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.type in ("FUND_PURCHASE", "PAYROLL") and row.amount_fen:
            key = (members[row.member_no][0], row.occurred_on.replace(day=1))
            amounts[key][0 if row.type == "FUND_PURCHASE" else 1] += row.amount_fen
    with connection.cursor() as cursor:
        params = [v for member_id, day in days for v in (member_id, day, day.replace(day=1))]
        cursor.execute(
            "INSERT INTO members_memberactivityday (member_id, date, month) VALUES "
            + _values(len(days), 3)
            + " ON CONFLICT (member_id, date) DO NOTHING RETURNING member_id, month",
            params,
        )
        new_days: dict[tuple[int, date], int] = defaultdict(int)
        for member_id, month in cursor.fetchall():
            if isinstance(month, str):  # SQLite returns text
                month = date.fromisoformat(month)
            new_days[(member_id, month)] += 1
        stat_keys = sorted(set(new_days) | set(amounts))
        if stat_keys:
            params = []
            for key in stat_keys:
                fund, payroll = amounts.get(key, (0, 0))
                params += [key[0], key[1], new_days.get(key, 0), fund, payroll]
            cursor.execute(
                "INSERT INTO members_membermonthlystat (member_id, month, active_days, "
                "fund_purchase_fen, payroll_fen) VALUES "
                + _values(len(stat_keys), 5, ("bigint", "date", "integer", "bigint", "bigint"))
                + " ON CONFLICT (member_id, month) DO UPDATE SET "
                "active_days = members_membermonthlystat.active_days + excluded.active_days, "
                "fund_purchase_fen = members_membermonthlystat.fund_purchase_fen "
                "+ excluded.fund_purchase_fen, "
                "payroll_fen = members_membermonthlystat.payroll_fen + excluded.payroll_fen",
                params,
            )
        latest: dict[int, date] = {}
        for member_id, day in days:
            latest[member_id] = max(day, latest.get(member_id, day))
        # Only members whose last activity moves forward are written (most events of a day
        # find it already there), in id order.
        stale = sorted(Member.objects.filter(pk__in=latest).values_list("pk", "last_active_on"))
        moved = [(pk, latest[pk]) for pk, last in stale if last is None or last < latest[pk]]
        if moved:
            cursor.execute(
                "UPDATE members_member SET last_active_on = v.column2 FROM (VALUES "
                + _values(len(moved), 2, ("bigint", "date"))
                + ") AS v WHERE members_member.id = v.column1 AND (members_member.last_active_on "
                "IS NULL OR members_member.last_active_on < v.column2)",
                [v for pair in moved for v in pair],
            )


def _advance_tasks(rows: list[EventRow], *, members: dict) -> int:
    """Advance every live task each event counts for; issue the rewards of newly reached
    steps. Returns the number of completions recorded."""
    from ..models import TaskProgress

    today = today_in_shanghai()
    tasks = live_tasks(on=today, event_types={row.type for row in rows})
    if not tasks:
        return 0
    by_type: dict[str, list[LiveTask]] = defaultdict(list)
    for task in tasks:
        by_type[task.event_type].append(task)
    member_ids = {members[row.member_no][0] for row in rows}
    in_segment = segment_members(tasks, member_ids, today)

    # (member, task, period) → the events that count for it
    work: dict[tuple[int, int, str], list[EventRow]] = defaultdict(list)
    periods: dict[tuple[int, int, str], tuple[date, date]] = {}
    offered: set[tuple[int, int, str]] = set()
    task_by_id = {task.id: task for task in tasks}
    for row in rows:
        member_id, tier_id, stage, _ = members[row.member_no]
        day = row.occurred_on
        for task in by_type.get(row.type, ()):
            if not task.starts_on <= day <= task.ends_on or row.amount_fen < task.min_amount_fen:
                continue
            key_, start, end = task.period(day)
            key = (member_id, task.id, key_)
            work[key].append(row)
            periods[key] = (start, end)
            if task.offered_to(tier_id, stage) and (
                not task.segment_ids
                or any(member_id in in_segment.get(s, ()) for s in task.segment_ids)
            ):
                offered.add(key)
    if not work:
        return 0

    stage_of = {pk: stage for pk, _, stage, _ in members.values()}
    # Rows for members offered the task now; a member who started a period while offered
    # keeps it (a DORMANT member's reactivation streak goes on after the night marks them
    # REACTIVATED). Inserted in key order so concurrent batches lock in the same order.
    new_keys = sorted(offered)
    if new_keys:
        with connection.cursor() as cursor:
            params = []
            for member_id, task_id, period_key in new_keys:
                start, end = periods[(member_id, task_id, period_key)]
                params += [member_id, task_id, period_key, start, end, stage_of[member_id]]
            now = timezone.now()
            cursor.execute(
                "INSERT INTO campaigns_taskprogress (member_id, task_id, period_key, period_start, "
                "period_end, stage_at_start, value, best, days, steps_reached, started_at, "
                "updated_at) SELECT v.column1, v.column2, v.column3, v.column4, v.column5, "
                "v.column6, 0, 0, '[]', 0, %s, %s FROM (VALUES "
                + _values(
                    len(new_keys), 6, ("bigint", "bigint", "varchar", "date", "date", "varchar")
                )
                + ") AS v WHERE true ORDER BY v.column1, v.column2, v.column3 "
                "ON CONFLICT (member_id, task_id, period_key) DO NOTHING",
                [_db_time(now), _db_time(now), *params],
            )
    progress = {
        (p.member_id, p.task_id, p.period_key): p
        for p in TaskProgress.objects.select_for_update()
        .filter(
            member_id__in={k[0] for k in work},
            task_id__in={k[1] for k in work},
            period_key__in={k[2] for k in work},
        )
        .order_by("id")
        if (p.member_id, p.task_id, p.period_key) in work
    }
    updates = []
    reached: list[tuple[TaskProgress, LiveTask, Level]] = []
    now = timezone.now()
    for key, progress_row in progress.items():
        task = task_by_id[key[1]]
        measure = MEASURES[task.measure]
        state = measure.advance(
            ProgressState(progress_row.value, progress_row.best, list(progress_row.days)),
            [(row.occurred_on, row.amount_fen) for row in work[key]],
        )
        steps = sum(1 for level in task.levels if state.best >= level.target)
        for level in task.levels[progress_row.steps_reached : steps]:
            reached.append((progress_row, task, level))
        if steps == len(task.levels) and progress_row.completed_at is None:
            progress_row.completed_at = now
        progress_row.value, progress_row.best, progress_row.days = (
            state.value,
            state.best,
            state.days,
        )
        progress_row.steps_reached = max(steps, progress_row.steps_reached)
        updates.append(progress_row)
    _write_progress(updates, now=now)
    for progress_row, task, level in reached:
        reward_issue(progress=progress_row, task=task, level=level, on=today)
    return len(reached)


def _write_progress(rows, *, now: datetime) -> None:
    """One UPDATE … FROM (VALUES …) for the batch's progress rows (PostgreSQL); row by row
    on SQLite, the embedded demo database."""
    import json

    if not rows:
        return
    data = [
        (r.pk, r.value, r.best, json.dumps(r.days), r.steps_reached, r.completed_at) for r in rows
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE campaigns_taskprogress AS p SET value = v.value, best = v.best, "
                "days = v.days::jsonb, steps_reached = v.steps, completed_at = v.done, "
                "updated_at = %s FROM (VALUES "
                + _values(
                    len(data), 6, ("bigint", "bigint", "bigint", "text", "integer", "timestamptz")
                )
                + ") AS v(id, value, best, days, steps, done) WHERE p.id = v.id",  # PostgreSQL only
                [now, *[v for row in data for v in row]],
            )
        else:
            cursor.executemany(
                "UPDATE campaigns_taskprogress SET value = %s, best = %s, days = %s, "
                "steps_reached = %s, completed_at = %s, updated_at = %s WHERE id = %s",
                [(*row[1:5], _db_time(row[5]), _db_time(now), row[0]) for row in data],
            )


# --- rewards -----------------------------------------------------------------------------------


def _cap_take(*, task_id: int, scope: str, cap: int | None) -> bool:
    """Use one place under a cap with a conditional UPDATE (never read-then-write)."""
    if cap is None:
        return True
    TaskCapCounter.objects.get_or_create(task_id=task_id, scope=scope)
    return bool(
        TaskCapCounter.objects.filter(task_id=task_id, scope=scope, used__lt=cap).update(
            used=F("used") + 1
        )
    )


def reward_issue(*, progress, task: LiveTask, level: Level, on: date) -> TaskCompletion | None:
    """Record the completion of one step and issue its reward exactly once: points into the
    ledger and/or a benefit grant, both charged to the campaign's budget. An exhausted
    budget or a reached cap records the completion with the reward refused and why."""
    member_id = progress.member_id
    base = dict(
        member_id=member_id,
        task_id=task.id,
        campaign_id=task.campaign_id,
        period_key=progress.period_key,
        step_no=level.step_no,
        stage_at_start=progress.stage_at_start,
    )
    try:
        with transaction.atomic():
            completion = TaskCompletion.objects.create(**base, reward_status=RewardStatus.NO_REWARD)
    except IntegrityError:
        return None  # already recorded: the reward was issued (or refused) then
    if not level.points and level.benefit_id is None:
        return completion

    refusal, took_places = _cap_take_places(
        task=task, member_id=member_id, period_key=progress.period_key, completion=completion
    )
    if refusal:
        completion.reward_status, completion.refusal_reason = RewardStatus.REFUSED_CAP, refusal
        completion.save(update_fields=["reward_status", "refusal_reason"])
        return completion

    key = f"task:{task.id}:{member_id}:{progress.period_key}:{level.step_no}"
    points_cost = level.points * settings.POINT_VALUE_FEN
    try:
        with transaction.atomic():
            budget = Budget(pk=task.budget_id)
            entry = grant = None
            cost = 0
            if level.points:
                budget_consume(
                    budget=budget,
                    amount_fen=points_cost,
                    source=f"task reward {task.campaign_code} #{task.id} points",
                )
                entry = points_earn(
                    member_id=member_id,
                    points=level.points,
                    business_date=on,
                    source=f"task {task.campaign_code} #{task.id} step {level.step_no}",
                    idempotency_key=key,
                )
                cost += points_cost
            if level.benefit_id is not None:
                benefit = Benefit.objects.get(pk=level.benefit_id)
                grant = grant_create(
                    member=Member.objects.get(pk=member_id),
                    benefit=benefit,
                    budget=Budget.objects.get(pk=task.budget_id),
                    source="TASK_REWARD",
                    idempotency_key=key,
                    expires_on=on + timedelta(days=benefit.validity_days or 90),
                    period_key=progress.period_key,
                )
                cost += grant.cost_fen
    except BudgetExhausted as exc:
        if took_places:  # a reward refused for budget does not use up cap places
            _cap_give_back(
                task=task,
                scopes=[
                    (f"member:{member_id}", task.max_per_member),
                    (f"period:{progress.period_key}", task.max_per_period),
                ],
            )
        completion.reward_status = RewardStatus.REFUSED_BUDGET
        completion.refusal_reason = str(exc)[:255]
        completion.save(update_fields=["reward_status", "refusal_reason"])
        return completion
    completion.reward_status = RewardStatus.REWARDED
    completion.reward_points = level.points
    completion.points_entry = entry
    completion.grant = grant
    completion.cost_fen = cost
    completion.save(
        update_fields=["reward_status", "reward_points", "points_entry", "grant", "cost_fen"]
    )
    return completion


def _cap_take_places(
    *, task: LiveTask, member_id: int, period_key: str, completion
) -> tuple[str, bool]:
    """Caps count periods, not steps: the first reward a member gets in a period takes one
    place of the member's cap (rewarded periods) and one of the period's cap (rewarded
    members); later rewarded steps of that period need no new place. A period refused by a
    cap stays refused for its later steps. Returns (refusal, whether places were taken)."""
    if task.max_per_member is None and task.max_per_period is None:
        return "", False
    earlier = list(
        TaskCompletion.objects.filter(member_id=member_id, task_id=task.id, period_key=period_key)
        .exclude(pk=completion.pk)
        .values_list("reward_status", "refusal_reason")
    )
    if any(status == RewardStatus.REWARDED for status, _ in earlier):
        return "", False  # this period already holds its places
    for status, reason in earlier:
        if status == RewardStatus.REFUSED_CAP:
            return reason, False
    if not _cap_take(task_id=task.id, scope=f"member:{member_id}", cap=task.max_per_member):
        return f"This member has been rewarded for this task {task.max_per_member} time(s).", False
    if not _cap_take(task_id=task.id, scope=f"period:{period_key}", cap=task.max_per_period):
        _cap_give_back(task=task, scopes=[(f"member:{member_id}", task.max_per_member)])
        return f"{task.max_per_period} member(s) were already rewarded in {period_key}.", False
    return "", True


def _cap_give_back(*, task: LiveTask, scopes: list[tuple[str, int | None]]) -> None:
    """Give places back (the reward they were taken for was not issued after all)."""
    for scope, cap in scopes:
        if cap is not None:
            TaskCapCounter.objects.filter(task_id=task.id, scope=scope, used__gt=0).update(
                used=F("used") - 1
            )


__all__ = [
    "BatchTooLarge",
    "CampaignStateError",
    "campaign_decide",
    "campaign_operate",
    "campaign_periods_roll",
    "campaign_submit",
    "events_ingest",
    "live_tasks",
    "reward_issue",
]
