"""Member event ingestion (API.md, `POST /api/v1/events/`): a batch of events is stored,
counted as activity, advances task progress and issues the rewards of the steps it
completes, all in one transaction and in a handful of set-based statements per batch,
never a statement per event or per reward.

Two batches may run at the same time and share members, tasks and a budget, so the order
inside the transaction matters:

1. the events (the unique event_id makes a replay or a concurrent duplicate change nothing);
2. task progress: the rows that exist locked in id order, advanced in Python and written
   back with one UPDATE; new rows inserted already advanced;
3. the completions, one INSERT … ON CONFLICT DO NOTHING (unique per member, task, period
   and step): only the rows this batch inserted issue a reward, so a reward is issued
   exactly once however often or concurrently an event arrives;
4. activity: the days and the month's counters (`members.member_activity_record_many`),
   keys in (member, day) order;
5. rewards that need handling one by one: benefit grants (through the benefits service) and
   tasks with caps (one conditional UPDATE per cap), each taking its budget row, then its
   member's row;
6. points rewards as sets per budget: one ledger INSERT (`members.points_earn_many`; its
   idempotency keys, derived from member, task, period and step, make each reward once),
   the completions inserted already linked to their entries, the budget's conditional
   UPDATE for the total (per level of its chain), then one UPDATE of the balances; members'
   last activity after that. When the total does not fit the budget, that budget's steps
   go one by one instead, so exactly the rewards that fit are issued and the rest are
   refused, visibly.

Budget rows before member rows, always. One-by-one rewards on several budgets can still
meet another batch's in a cycle; a batch that deadlocks is rolled back and retried whole.

Rows go to PostgreSQL as one JSON parameter per statement (`portal.sql.rows_source`: a short
statement whose text does not depend on the batch size); the SQLite demo database gets
VALUES. The members tables (activity, points ledger and balances, last activity) are
written by the members services for sets of rows, the budgets by the benefits services;
this module writes only the campaigns tables.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from benefits.models import Benefit, Budget
from benefits.services import BudgetExhausted, budget_consume, budget_consume_many, grant_create
from members.models import Member
from members.services import (
    ACTIVITY_COLUMNS,
    PointsCredit,
    member_activity_record_many,
    member_last_active_advance_many,
    points_balances_add,
    points_earn,
    points_earn_many,
)
from portal.clock import today_in_shanghai
from portal.errors import InvalidInput
from portal.sql import db_time, execute, rows_source

from ..choices import RewardStatus
from ..events import MAX_EVENTS_PER_BATCH, EventRefusal, EventRow, event_parse
from ..models import EventBatch, TaskCapCounter, TaskCompletion
from ..rules import MEASURES, ProgressState
from ..selectors import Level, LiveTask, live_tasks, segment_members

logger = logging.getLogger(__name__)


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


#: a batch that deadlocks with a concurrent one is rolled back and tried again this often
DEADLOCK_ATTEMPTS = 5


class BatchTooLarge(InvalidInput):
    """More events than one batch may hold (413)."""

    http_status = 413
    code = "batch_too_large"


@dataclass
class Reached:
    """A step a member reached in this batch; `completion_id` once it is recorded."""

    member_id: int
    period_key: str
    stage_at_start: str
    task: LiveTask
    level: Level
    completion_id: int | None = None

    @property
    def key(self) -> str:
        """The idempotency key of the reward (points entry, grant)."""
        return f"task:{self.task.id}:{self.member_id}:{self.period_key}:{self.level.step_no}"

    @property
    def points_cost_fen(self) -> int:
        return self.level.points * settings.POINT_VALUE_FEN


def events_ingest(*, events: list, client) -> IngestResult:
    """Take a batch of member events (API.md): each is accepted, a duplicate, or refused with
    its reasons; accepted events advance task progress and issue rewards in the same
    transaction. received = accepted + duplicates + rejected, recorded as an `EventBatch`.

    Whatever shape an event arrives in, it is refused on its own (`events.event_parse`) and
    never fails the batch. The refusals kept in `EventBatch.rejections` are the ones
    answered: index, reasons and the event_id made safe (`events.event_id_echo`: null unless
    a string, at most 64 characters, NUL and other control characters replaced by U+FFFD),
    so a NUL never reaches PostgreSQL.

    A deadlock with a concurrent batch (both touching the same members) rolls the whole
    batch back and retries it; nothing is half-written.
    """
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise BatchTooLarge(
            _(
                "At most %(max)d events per request; this one has %(count)d. Split it into "
                "smaller batches."
            )
            % {"max": MAX_EVENTS_PER_BATCH, "count": len(events)},
            details={"max": MAX_EVENTS_PER_BATCH},
        )
    now = timezone.now()
    parsed: list[EventRow] = []
    refused: list[EventRefusal] = []
    for index, raw in enumerate(events):
        row = event_parse(index, raw, now)
        (refused if isinstance(row, EventRefusal) else parsed).append(row)
    for attempt in range(DEADLOCK_ATTEMPTS):
        try:
            return _ingest(parsed=parsed, refused=list(refused), client=client, now=now)
        except OperationalError as exc:  # deadlock detected / serialization failure
            if attempt == DEADLOCK_ATTEMPTS - 1 or "deadlock" not in str(exc).lower():
                raise
            logger.warning("Event batch retried after a deadlock (attempt %d)", attempt + 1)
            time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))  # apart, not in step
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
        no: (pk, tier_id, stage, status, opted_out)
        for no, pk, tier_id, stage, status, opted_out in Member.objects.filter(
            member_no__in={row.member_no for row in parsed}
        ).values_list(
            "member_no", "pk", "tier_id", "lifecycle_stage", "status", "marketing_opt_out"
        )
    }
    seen: set[str] = set()
    candidates: list[EventRow] = []
    in_batch_duplicates = 0
    for row in parsed:
        member = members.get(row.member_no)
        if member is None:
            refused.append(
                EventRefusal(row.index, row.event_id, {"member_no": [_("unknown member")]})
            )
        elif member[3] == "CLOSED":
            refused.append(
                EventRefusal(
                    row.index, row.event_id, {"member_no": [_("the member's account is closed")]}
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
    completions = 0
    if accepted:
        today = today_in_shanghai()
        reached = _advance_tasks(accepted, members=members, today=today)
        recorded = _completions_record([r for r in reached if not _points_only(r)])
        activity = _activity(accepted, members=members)
        member_activity_record_many(source=activity)
        # From here on a batch takes budget rows, then member rows (balances, last
        # activity): always in that order, so two batches never wait on each other in a
        # cycle over a budget and a member.
        for item in recorded:
            if _needs_one_by_one(item):
                reward_issue_one(item, on=today)
        rewarded = _points_rewards_issue([r for r in reached if _points_only(r)], on=today)
        member_last_active_advance_many(source=activity)
        completions = len(recorded) + rewarded

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


# --- events and activity ------------------------------------------------------------------------


def _store_events(rows: list[EventRow], *, members: dict, batch_id: int, now: datetime) -> set[str]:
    """INSERT the events, skipping event_ids already stored (by anyone, even concurrently:
    the unique index makes the second writer wait, then skip). Returns the ids stored now.
    Rows go in event_id order, so two batches never wait on each other in a cycle."""
    if not rows:
        return set()
    source, params = rows_source(
        {
            "event_id": "varchar",
            "member_id": "bigint",
            "type": "varchar",
            "amount_fen": "bigint",
            "occurred_at": "timestamptz",
            "occurred_on": "date",
            "channel": "varchar",
        },
        [
            (
                row.event_id,
                members[row.member_no][0],
                row.type,
                row.amount_fen,
                db_time(row.occurred_at),
                row.occurred_on,
                row.channel,
            )
            for row in sorted(rows, key=lambda r: r.event_id)
        ],
    )
    found = execute(
        "INSERT INTO campaigns_memberevent (event_id, member_id, type, amount_fen, occurred_at, "
        "occurred_on, channel, batch_id, received_at) SELECT v.event_id, v.member_id, v.type, "
        f"v.amount_fen, v.occurred_at, v.occurred_on, v.channel, %s, %s FROM {source} AS v "
        "WHERE true ORDER BY v.event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [batch_id, db_time(now), *params],
    )
    return {event_id for (event_id,) in found}


def _activity(rows: list[EventRow], *, members: dict) -> tuple[str, list]:
    """The batch's activity as the members services take it: one row per member and day,
    with the day's FUND_PURCHASE and PAYROLL amounts (the tier engine's indicators)."""
    days: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        amounts = days[(members[row.member_no][0], row.occurred_on)]
        if row.type in ("FUND_PURCHASE", "PAYROLL") and row.amount_fen:
            amounts[0 if row.type == "FUND_PURCHASE" else 1] += row.amount_fen
    return rows_source(
        ACTIVITY_COLUMNS,
        [
            (member_id, day, day.replace(day=1), fund, payroll)
            for (member_id, day), (fund, payroll) in sorted(days.items())
        ],
    )


# --- task progress ------------------------------------------------------------------------------


def _advance_tasks(rows: list[EventRow], *, members: dict, today: date) -> list[Reached]:
    """Advance every live task each event counts for; return the steps newly reached.

    A member who opted out of marketing advances no targeted task (by tier, stage or
    segment: `LiveTask.targeted`), not even one begun before opting out; tasks open to all
    members (the programme's own) still count for them. A member held out of a campaign
    (`holdout`) advances none of its tasks."""
    tasks = live_tasks(on=today, event_types={row.type for row in rows})
    if not tasks:
        return []
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
        member_id, tier_id, stage, _status, opted_out = members[row.member_no]
        day = row.occurred_on
        for task in by_type.get(row.type, ()):
            if not task.starts_on <= day <= task.ends_on or row.amount_fen < task.min_amount_fen:
                continue
            if opted_out and task.targeted:
                continue  # opted out of marketing: no targeted task, not even one begun
            if task.holds_out(row.member_no):
                continue  # held out of the campaign: measured, never offered
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
        return []

    now = timezone.now()
    stage_of = {pk: stage for pk, _, stage, *_ in members.values()}
    reached: list[Reached] = []
    updates: list[tuple] = []

    def advance(key, value, best, days, steps_before, done, stage) -> tuple:
        """The row's new state after this batch's events; records the steps newly reached."""
        task = task_by_id[key[1]]
        state = MEASURES[task.measure].advance(
            ProgressState(value, best, days),
            [(row.occurred_on, row.amount_fen) for row in work[key]],
        )
        steps = max(sum(1 for level in task.levels if state.best >= level.target), steps_before)
        for level in task.levels[steps_before:steps]:
            reached.append(Reached(key[0], key[2], stage, task, level))
        if steps == len(task.levels) and done is None:
            done = now
        days = json.dumps(state.days) if state.days else "[]"  # only streaks keep days
        return state.value, state.best, days, steps, done

    # The rows that exist, locked in id order, advanced and written back with one UPDATE.
    # A member who started a period while offered keeps it (a DORMANT member's reactivation
    # streak goes on after the night marks them REACTIVATED).
    existing = _progress_lock(sorted(work))
    for pk, member_id, task_id, period_key, value, best, days, steps, done, stage in existing:
        key = (member_id, task_id, period_key)
        updates.append((pk, *advance(key, value, best, _days(days), steps, done, stage)))
    # New rows only for members offered the task now, inserted already advanced (one write,
    # not an empty row then an update), in key order so concurrent batches lock alike. A row
    # another batch inserted meanwhile is skipped here, then locked and advanced as above.
    found = {(row[1], row[2], row[3]) for row in existing}
    fresh = {}
    for key in sorted(offered - found):
        fresh[key] = advance(key, 0, 0, [], 0, None, stage_of[key[0]])
    if fresh:
        source, params = rows_source(
            {"member_id": "bigint", "task_id": "bigint", "period_key": "varchar",
             "period_start": "date", "period_end": "date", "stage": "varchar",
             "value": "bigint", "best": "bigint", "days": "text", "steps": "integer",
             "done": "timestamptz"},
            [(*key, *periods[key], stage_of[key[0]], *state[:4], db_time(state[4]))
             for key, state in fresh.items()],
        )  # fmt: skip
        days = "CAST(v.days AS jsonb)" if connection.vendor == "postgresql" else "v.days"
        inserted = execute(
            "INSERT INTO campaigns_taskprogress (member_id, task_id, period_key, period_start, "
            "period_end, stage_at_start, value, best, days, steps_reached, completed_at, "
            "started_at, updated_at) SELECT v.member_id, v.task_id, v.period_key, "
            f"v.period_start, v.period_end, v.stage, v.value, v.best, {days}, v.steps, v.done, "
            f"%s, %s FROM {source} AS v WHERE true ORDER BY v.member_id, v.task_id, "
            "v.period_key ON CONFLICT (member_id, task_id, period_key) DO NOTHING "
            "RETURNING member_id, task_id, period_key",
            [db_time(now), db_time(now), *params],
        )
        lost = set(fresh) - {tuple(row) for row in inserted}
        if lost:  # a concurrent batch inserted these first: advance its rows instead
            reached[:] = [r for r in reached if (r.member_id, r.task.id, r.period_key) not in lost]
            for (
                pk,
                member_id,
                task_id,
                period_key,
                value,
                best,
                days,
                steps,
                done,
                stage,
            ) in _progress_lock(sorted(lost)):
                key = (member_id, task_id, period_key)
                updates.append((pk, *advance(key, value, best, _days(days), steps, done, stage)))
    _write_progress(updates, now=now)
    return reached


def _days(value) -> list:
    return json.loads(value) if isinstance(value, str) else list(value)  # jsonb arrives as text


def _progress_lock(keys: list[tuple[int, int, str]]) -> list[tuple]:
    """The progress rows of these (member, task, period) keys that exist, locked, id order."""
    if not keys:
        return []
    source, params = rows_source(
        {"member_id": "bigint", "task_id": "bigint", "period_key": "varchar"}, keys
    )
    lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
    return execute(
        "SELECT p.id, p.member_id, p.task_id, p.period_key, p.value, p.best, p.days, "
        "p.steps_reached, p.completed_at, p.stage_at_start FROM campaigns_taskprogress p "
        f"JOIN {source} AS k ON p.member_id = k.member_id AND p.task_id = k.task_id "
        f"AND p.period_key = k.period_key ORDER BY p.id{lock}",
        params,
    )


def _write_progress(rows: list[tuple], *, now: datetime) -> None:
    """One UPDATE … FROM for the batch's progress rows."""
    if not rows:
        return
    source, params = rows_source(
        {"id": "bigint", "value": "bigint", "best": "bigint", "days": "text",
         "steps": "integer", "done": "timestamptz"},
        [(*row[:5], db_time(row[5])) for row in rows],
    )  # fmt: skip
    days = "CAST(v.days AS jsonb)" if connection.vendor == "postgresql" else "v.days"
    execute(
        "UPDATE campaigns_taskprogress SET value = v.value, best = v.best, "
        f"days = {days}, steps_reached = v.steps, completed_at = v.done, "
        f"updated_at = %s FROM {source} AS v WHERE campaigns_taskprogress.id = v.id",
        [db_time(now), *params],
    )


# --- completions and rewards --------------------------------------------------------------------


def _completions_record(reached: list[Reached], entries: dict | None = None) -> list[Reached]:
    """Record the steps reached (one INSERT; unique per member, task, period and step).
    Returns those recorded now: a step already recorded issued (or refused) its reward then,
    so it issues nothing again. With `entries` (idempotency key → points entry id), the
    steps are recorded as rewarded with those points entries."""
    if not reached:
        return []
    now = timezone.now()

    def reward(r: Reached) -> tuple:
        if entries is None:
            return RewardStatus.NO_REWARD, 0, None, 0
        return RewardStatus.REWARDED, r.level.points, entries[r.key], r.points_cost_fen

    source, params = rows_source(
        {"member_id": "bigint", "task_id": "bigint", "campaign_id": "bigint",
         "period_key": "varchar", "step_no": "integer", "stage": "varchar",
         "status": "varchar", "points": "integer", "entry": "bigint", "cost": "bigint"},
        sorted(
            (r.member_id, r.task.id, r.task.campaign_id, r.period_key, r.level.step_no,
             r.stage_at_start, *reward(r))
            for r in reached
        ),
    )  # fmt: skip
    by_key = {(r.member_id, r.task.id, r.period_key, r.level.step_no): r for r in reached}
    recorded = []
    for pk, member_id, task_id, period_key, step_no in execute(
        "INSERT INTO campaigns_taskcompletion (member_id, task_id, campaign_id, period_key, "
        "step_no, completed_at, reward_status, reward_points, points_entry_id, cost_fen, "
        "refusal_reason, stage_at_start) SELECT v.member_id, v.task_id, v.campaign_id, "
        "v.period_key, v.step_no, %s, v.status, v.points, v.entry, v.cost, '', v.stage "
        f"FROM {source} AS v WHERE true "
        "ORDER BY v.member_id, v.task_id, v.period_key, v.step_no "
        "ON CONFLICT (member_id, task_id, period_key, step_no) DO NOTHING "
        "RETURNING id, member_id, task_id, period_key, step_no",
        [db_time(now), *params],
    ):
        item = by_key[(member_id, task_id, period_key, step_no)]
        item.completion_id = pk
        recorded.append(item)
    return sorted(recorded, key=lambda r: r.completion_id)


def _has_reward(item: Reached) -> bool:
    return bool(item.level.points) or item.level.benefit_id is not None


def _needs_one_by_one(item: Reached) -> bool:
    """A benefit grant goes through the benefits service; a capped task takes cap places."""
    task = item.task
    return _has_reward(item) and (
        item.level.benefit_id is not None
        or task.max_per_member is not None
        or task.max_per_period is not None
    )


def _points_only(item: Reached) -> bool:
    return _has_reward(item) and not _needs_one_by_one(item)


def _points_rewards_issue(items: list[Reached], *, on: date) -> int:
    """Points rewards as sets, per budget: one ledger INSERT (its idempotency keys make a
    reward exactly once), one completion INSERT linked to the entries, the budget's
    conditional UPDATE for the total, then one balance UPDATE. If the total does not fit,
    that budget's steps are recorded and rewarded one by one (exactly those that fit).
    Returns the number of completions recorded."""
    by_budget: dict[int, list[Reached]] = defaultdict(list)
    for item in items:
        by_budget[item.task.budget_id].append(item)
    recorded = 0
    for budget_id, group in sorted(by_budget.items()):
        try:
            with transaction.atomic():
                earned = points_earn_many(credits=_points_credits(group), business_date=on)
                entries = earned.entries
                fresh = [item for item in group if item.key in entries]
                if len(_completions_record(fresh, entries)) != len(fresh):
                    raise IntegrityError(
                        "A task step was already recorded without its points entry; the batch "
                        "is refused so that no reward is issued twice."
                    )
                # One ledger entry per task of the batch (each completion keeps its cost).
                per_task: dict[int, list] = defaultdict(lambda: [0, 0, ""])
                for item in fresh:
                    charge = per_task[item.task.id]
                    charge[0] += item.points_cost_fen
                    charge[1] += 1
                    charge[2] = _points_source(item)
                budget_consume_many(
                    budget_id=budget_id,
                    on=on,
                    charges=[
                        (fen, f"{source} points ×{count}")
                        for _, (fen, count, source) in sorted(per_task.items())
                    ],
                )
                points_balances_add(balances=earned.balances)  # member rows after the budget
                recorded += len(fresh)
        except BudgetExhausted:
            for item in _completions_record(group):
                reward_issue_one(item, on=on)
                recorded += 1
    return recorded


def _points_source(item: Reached) -> str:
    return f"task reward {item.task.campaign_code} #{item.task.id}"


def _points_credits(items: list[Reached]) -> list[PointsCredit]:
    return [
        PointsCredit(
            member_id=item.member_id,
            points=item.level.points,
            source=_points_ledger_source(item),
            key=item.key,
        )
        for item in items
    ]


def _points_ledger_source(item: Reached) -> str:
    return f"task {item.task.campaign_code} #{item.task.id} step {item.level.step_no}"


def reward_issue_one(item: Reached, *, on: date) -> TaskCompletion:
    """Issue the reward of one recorded completion: points into the ledger and/or a benefit
    grant, both charged to the campaign's budget. An exhausted budget or a reached cap
    leaves the completion recorded with the reward refused and why."""
    task, level, member_id = item.task, item.level, item.member_id
    completion = TaskCompletion(
        pk=item.completion_id,
        member_id=member_id,
        task_id=task.id,
        campaign_id=task.campaign_id,
        period_key=item.period_key,
        step_no=level.step_no,
        reward_status=RewardStatus.NO_REWARD,
    )
    if not _has_reward(item):
        return completion
    refusal, took_places = _cap_take_places(item)
    if refusal:
        completion.reward_status, completion.refusal_reason = RewardStatus.REFUSED_CAP, refusal
        completion.save(update_fields=["reward_status", "refusal_reason"])
        return completion

    try:
        with transaction.atomic():
            entry = grant = None
            cost = 0
            if level.points:
                budget_consume(
                    budget=Budget(pk=task.budget_id),
                    amount_fen=item.points_cost_fen,
                    source=_points_source(item) + " points",
                    on=on,
                )
                entry = points_earn(
                    member_id=member_id,
                    points=level.points,
                    business_date=on,
                    source=_points_ledger_source(item),
                    idempotency_key=item.key,
                )
                cost += item.points_cost_fen
            if level.benefit_id is not None:
                benefit = Benefit.objects.get(pk=level.benefit_id)
                grant = grant_create(
                    member=Member.objects.get(pk=member_id),
                    benefit=benefit,
                    budget=Budget.objects.get(pk=task.budget_id),
                    source="TASK_REWARD",
                    idempotency_key=item.key,
                    expires_on=on + timedelta(days=benefit.validity_days or 90),
                    period_key=item.period_key,
                    on=on,
                )
                cost += grant.cost_fen
    except BudgetExhausted as exc:
        if took_places:  # a reward refused for budget does not use up cap places
            _cap_give_back(
                task=task,
                scopes=[
                    (f"member:{member_id}", task.max_per_member),
                    (f"period:{item.period_key}", task.max_per_period),
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


# --- caps ---------------------------------------------------------------------------------------


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


def _cap_take_places(item: Reached) -> tuple[str, bool]:
    """Caps count periods, not steps: the first reward a member gets in a period takes one
    place of the member's cap (rewarded periods) and one of the period's cap (rewarded
    members); later rewarded steps of that period need no new place. A period refused by a
    cap stays refused for its later steps. Returns (refusal, whether places were taken)."""
    task, member_id, period_key = item.task, item.member_id, item.period_key
    if task.max_per_member is None and task.max_per_period is None:
        return "", False
    earlier = list(
        TaskCompletion.objects.filter(member_id=member_id, task_id=task.id, period_key=period_key)
        .exclude(pk=item.completion_id)
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
