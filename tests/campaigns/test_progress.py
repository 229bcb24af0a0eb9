"""Task progress and rewards as a member (and the bank) notices them: periods that reset at
their boundary, ladders, streaks, late and out-of-order events, caps, budgets, targeting,
replays, and the member centre (DESIGN.md "campaigns", API.md "POST /api/v1/events/").

Every date is relative to today (Asia/Shanghai), so the tests pass whatever day they run on;
period rules across fixed calendar dates are tested on `campaigns.rules` directly.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from benefits.models import BenefitGrant, Budget, BudgetEntry
from campaigns.events import EventRow, event_parse
from campaigns.models import MemberEvent, TaskCapCounter, TaskCompletion, TaskProgress
from campaigns.rules import MEASURES, RECURRENCES, ProgressState
from members.models import Member, PointsEntry, Tier
from portal.choices import Role
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    MemberFactory,
    SegmentFactory,
    TaskFactory,
    TaskStepFactory,
)

from .conftest import SHANGHAI, event, today

pytestmark = pytest.mark.django_db


# --- helpers -----------------------------------------------------------------------------------


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)


def first_of_this_month() -> date:
    return today().replace(day=1)


def last_of_previous_month() -> date:
    return first_of_this_month() - timedelta(days=1)


def this_monday() -> date:
    """The Monday of the current ISO week (today, when today is a Monday)."""
    return today() - timedelta(days=today().weekday())


def iso_week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def event_at(member, occurred_at: str, **kw) -> dict:
    """An event with an exact `occurred_at` text (offset or Z as given)."""
    return {**event(member, **kw), "occurred_at": occurred_at}


def progress_rows(member, task) -> dict[str, TaskProgress]:
    return {p.period_key: p for p in TaskProgress.objects.filter(member=member, task=task)}


def completions(member, task) -> list[tuple[str, int, str]]:
    return list(
        TaskCompletion.objects.filter(member=member, task=task)
        .order_by("period_key", "step_no")
        .values_list("period_key", "step_no", "reward_status")
    )


def balance(member) -> int:
    """The member's points balance, checked against the ledger it must equal."""
    member.refresh_from_db()
    ledger = PointsEntry.objects.filter(member=member).aggregate(s=Sum("points"))["s"] or 0
    assert member.points_balance == ledger, "balance drifted from the points ledger"
    return member.points_balance


def consumed(budget) -> int:
    """The budget's consumed fen, checked against its amount and its entries."""
    budget.refresh_from_db()
    entries = BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0
    assert budget.consumed_fen == entries, "budget consumption drifted from its entries"
    assert 0 <= budget.consumed_fen <= budget.amount_fen
    return budget.consumed_fen


def gold() -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")


# --- period rules on fixed dates (campaigns.rules) ---------------------------------------------


def _period(recurrence: str, day: date):
    return RECURRENCES[recurrence].period(
        day, starts_on=date(2025, 10, 1), ends_on=date(2027, 3, 31)
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 12, 29), ("2026-W01", date(2025, 12, 29), date(2026, 1, 4))),
        (date(2025, 12, 28), ("2025-W52", date(2025, 12, 22), date(2025, 12, 28))),
        (date(2026, 11, 26), ("2026-W48", date(2026, 11, 23), date(2026, 11, 29))),
        (date(2026, 11, 29), ("2026-W48", date(2026, 11, 23), date(2026, 11, 29))),
        (date(2026, 11, 30), ("2026-W49", date(2026, 11, 30), date(2026, 12, 6))),
        (date(2027, 1, 3), ("2026-W53", date(2026, 12, 28), date(2027, 1, 3))),
    ],
    ids=lambda value: value.isoformat() if isinstance(value, date) else value[0],
)
def test_weekly_period_is_the_iso_week_with_its_iso_year(day, expected):
    assert _period("WEEKLY", day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 12, 31), ("2026-12", date(2026, 12, 1), date(2026, 12, 31))),
        (date(2027, 1, 1), ("2027-01", date(2027, 1, 1), date(2027, 1, 31))),
        (date(2026, 2, 28), ("2026-02", date(2026, 2, 1), date(2026, 2, 28))),
        (date(2026, 11, 30), ("2026-11", date(2026, 11, 1), date(2026, 11, 30))),
    ],
    ids=lambda value: value.isoformat() if isinstance(value, date) else value[0],
)
def test_monthly_period_is_the_calendar_month(day, expected):
    assert _period("MONTHLY", day) == expected


def test_daily_period_is_the_shanghai_date_the_event_occurred():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)

    def day_of(occurred_at: str) -> date:
        raw = {"event_id": "e", "member_no": "M1", "type": "SIGN_IN", "occurred_at": occurred_at}
        row = event_parse(0, raw, now)
        assert isinstance(row, EventRow), row
        return row.occurred_on

    before = day_of("2026-11-26T23:59:59+08:00")
    after = day_of("2026-11-27T00:00:00+08:00")
    utc = day_of("2026-11-26T16:30:00Z")  # 00:30 on the 27th in Shanghai

    assert (before, after, utc) == (date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 27))
    assert _period("DAILY", before)[0] == "2026-11-26"
    assert _period("DAILY", after)[0] == _period("DAILY", utc)[0] == "2026-11-27"


def test_once_period_is_the_whole_campaign_window():
    assert _period("ONCE", date(2025, 10, 1)) == _period("ONCE", date(2027, 3, 31))
    assert _period("ONCE", date(2026, 6, 1)) == ("once", date(2025, 10, 1), date(2027, 3, 31))


def test_consecutive_days_measure_restarts_after_a_gap_and_keeps_the_best():
    measure = MEASURES["CONSECUTIVE_DAYS"]
    d = date(2026, 11, 1)

    state = measure.advance(ProgressState(), [(d, 0), (d + timedelta(days=1), 0)])
    assert (state.value, state.best) == (2, 2)
    state = measure.advance(state, [(d + timedelta(days=3), 0)])  # the 3rd was missed
    assert (state.value, state.best) == (1, 2)
    state = measure.advance(state, [(d + timedelta(days=2), 0)])  # late: fills the gap
    assert (state.value, state.best) == (4, 4)
    assert state.days == [(d + timedelta(days=n)).isoformat() for n in range(4)]


# --- recurrences across their boundary, through the API -----------------------------------------


def test_daily_task_resets_at_midnight_shanghai_and_rewards_once_a_day(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="DAILY", reward_points=100)
    yesterday = days_ago(1)

    post_events(
        event_at(member, f"{yesterday.isoformat()}T23:59:59+08:00"),
        event_at(member, f"{today().isoformat()}T00:00:00+08:00"),
    )
    post_events(event(member, day=today(), hour=0))  # again today: no second reward

    rows = progress_rows(member, task)
    assert {key: row.value for key, row in rows.items()} == {
        yesterday.isoformat(): 1,
        today().isoformat(): 2,
    }
    assert completions(member, task) == [
        (yesterday.isoformat(), 1, "REWARDED"),
        (today().isoformat(), 1, "REWARDED"),
    ]
    assert balance(member) == 200
    assert consumed(task.campaign.budget) == 200


def test_utc_timestamp_counts_on_its_shanghai_date(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="DAILY")
    two_days_ago, yesterday = days_ago(2), days_ago(1)

    post_events(
        event_at(member, f"{two_days_ago.isoformat()}T15:59:59Z"),  # 23:59:59 in Shanghai
        event_at(member, f"{two_days_ago.isoformat()}T16:30:00Z"),  # 00:30 the next day
    )

    assert set(progress_rows(member, task)) == {two_days_ago.isoformat(), yesterday.isoformat()}
    assert MemberEvent.objects.filter(member=member, occurred_on=yesterday).count() == 1
    assert balance(member) == 200


def test_weekly_task_resets_from_sunday_to_monday(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="WEEKLY", reward_points=70)
    monday = this_monday()
    sunday = monday - timedelta(days=1)

    post_events(event(member, day=sunday, hour=22))
    post_events(event(member, day=monday, hour=1), event(member, day=monday, hour=2))

    rows = progress_rows(member, task)
    assert {key: row.value for key, row in rows.items()} == {
        iso_week_key(sunday): 1,
        iso_week_key(monday): 2,
    }
    assert rows[iso_week_key(monday)].period_start == monday
    assert rows[iso_week_key(sunday)].period_end == sunday
    assert completions(member, task) == [
        (iso_week_key(sunday), 1, "REWARDED"),
        (iso_week_key(monday), 1, "REWARDED"),
    ]
    assert balance(member) == 140


def test_monthly_task_resets_on_the_first_of_the_month(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="MONTHLY", reward_points=30)
    last, first = last_of_previous_month(), first_of_this_month()

    post_events(event(member, day=last, hour=23))
    post_events(event(member, day=first, hour=0), event(member, day=first, hour=1))

    rows = progress_rows(member, task)
    assert {key: row.value for key, row in rows.items()} == {
        f"{last:%Y-%m}": 1,
        f"{first:%Y-%m}": 2,
    }
    assert (rows[f"{first:%Y-%m}"].period_start, rows[f"{last:%Y-%m}"].period_end) == (first, last)
    assert [c[2] for c in completions(member, task)] == ["REWARDED", "REWARDED"]
    assert balance(member) == 60


def test_once_task_never_resets(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="ONCE", reward_points=100)

    post_events(event(member, day=last_of_previous_month()))
    post_events(event(member, day=days_ago(7)))
    post_events(event(member, day=today()))

    rows = progress_rows(member, task)
    assert list(rows) == ["once"]
    assert (rows["once"].value, rows["once"].steps_reached) == (3, 1)
    assert rows["once"].period_start == task.campaign.starts_on
    assert completions(member, task) == [("once", 1, "REWARDED")]
    assert balance(member) == 100


# --- ladders ----------------------------------------------------------------------------------


def _ladder(task, targets_and_points):
    for step_no, (target, points) in enumerate(targets_and_points, start=1):
        TaskStepFactory(task=task, step_no=step_no, target=Decimal(target), reward_points=points)


def test_ladder_rewards_each_rising_step_once(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="ONCE", reward_points=0)
    _ladder(task, [("1", 10), ("3", 20), ("5", 50)])

    post_events(event(member))
    assert completions(member, task) == [("once", 1, "REWARDED")]
    post_events(event(member), event(member))
    assert [c[1] for c in completions(member, task)] == [1, 2]
    assert balance(member) == 30
    post_events(event(member), event(member))
    post_events(event(member), event(member))  # beyond the last step: nothing more

    row = TaskProgress.objects.get(member=member, task=task)
    assert (row.value, row.steps_reached) == (7, 3)
    assert row.completed_at is not None
    assert completions(member, task) == [
        ("once", 1, "REWARDED"),
        ("once", 2, "REWARDED"),
        ("once", 3, "REWARDED"),
    ]
    assert balance(member) == 80
    assert PointsEntry.objects.filter(member=member).count() == 3


def test_one_big_amount_crossing_two_steps_issues_both_rewards(post_events):
    member = MemberFactory()
    task = TaskFactory(
        event_type="FUND_PURCHASE", measure="AMOUNT_SUM", recurrence="ONCE", reward_points=0
    )
    _ladder(task, [("1000", 10), ("5000", 50), ("10000", 100)])

    post_events(event(member, type="FUND_PURCHASE", amount="6000.00"))

    row = TaskProgress.objects.get(member=member, task=task)
    assert (row.value, row.steps_reached, row.completed_at) == (600_000, 2, None)
    assert completions(member, task) == [("once", 1, "REWARDED"), ("once", 2, "REWARDED")]
    assert balance(member) == 60

    post_events(event(member, type="FUND_PURCHASE", amount="4000.00"))
    post_events(event(member, type="FUND_PURCHASE", amount="1.00"))

    row.refresh_from_db()
    assert (row.value, row.steps_reached) == (1_000_100, 3)
    assert row.completed_at is not None
    assert [c[1] for c in completions(member, task)] == [1, 2, 3]
    assert balance(member) == 160
    assert consumed(task.campaign.budget) == 160


# --- consecutive days --------------------------------------------------------------------------


def test_streak_builds_restarts_after_a_missed_day_and_completes_at_the_target(post_events):
    member = MemberFactory()
    task = TaskFactory(measure="CONSECUTIVE_DAYS", target=Decimal("3"), reward_points=300)

    post_events(event(member, day=days_ago(6)))
    post_events(event(member, day=days_ago(5)), event(member, day=days_ago(5), hour=11))
    row = TaskProgress.objects.get(member=member, task=task)
    assert (row.value, row.best) == (2, 2)  # two events on one day are one day

    post_events(event(member, day=days_ago(3)))  # days_ago(4) was missed
    row.refresh_from_db()
    assert (row.value, row.best) == (1, 2)
    assert not completions(member, task)

    post_events(event(member, day=days_ago(2)))
    post_events(event(member, day=days_ago(1)))
    row.refresh_from_db()
    assert (row.value, row.best, row.steps_reached) == (3, 3, 1)
    assert completions(member, task) == [("once", 1, "REWARDED")]
    assert balance(member) == 300


def test_late_event_filling_the_gap_joins_the_two_runs(post_events):
    member = MemberFactory()
    task = TaskFactory(measure="CONSECUTIVE_DAYS", target=Decimal("5"), reward_points=500)

    post_events(*(event(member, day=days_ago(n)) for n in (4, 3, 1, 0)))
    row = TaskProgress.objects.get(member=member, task=task)
    assert (row.value, row.best) == (2, 2)
    assert not completions(member, task)

    post_events(event(member, day=days_ago(2)))  # arrives late, fills the gap

    row.refresh_from_db()
    assert (row.value, row.best) == (5, 5)
    assert row.days == [days_ago(n).isoformat() for n in (4, 3, 2, 1, 0)]
    assert completions(member, task) == [("once", 1, "REWARDED")]
    assert balance(member) == 500


# --- late and out-of-order events --------------------------------------------------------------


def test_late_event_counts_for_the_period_it_occurred_in(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="MONTHLY", target=Decimal("2"), reward_points=20)
    last = last_of_previous_month()
    previous_key, current_key = f"{last:%Y-%m}", f"{today():%Y-%m}"

    post_events(event(member, day=today()))
    post_events(event(member, day=last, hour=9), event(member, day=last, hour=10))  # late

    rows = progress_rows(member, task)
    assert (rows[previous_key].value, rows[previous_key].steps_reached) == (2, 1)
    assert (rows[current_key].value, rows[current_key].steps_reached) == (1, 0)
    assert rows[current_key].completed_at is None
    assert completions(member, task) == [(previous_key, 1, "REWARDED")]
    assert balance(member) == 20


def _member_outcome(member) -> dict:
    return {
        "progress": sorted(
            (
                p.task_id,
                p.period_key,
                p.value,
                p.best,
                list(p.days),
                p.steps_reached,
                p.completed_at is not None,
            )
            for p in TaskProgress.objects.filter(member=member)
        ),
        "completions": sorted(
            TaskCompletion.objects.filter(member=member).values_list(
                "task_id", "period_key", "step_no", "reward_status", "reward_points", "cost_fen"
            )
        ),
        "balance": balance(member),
    }


def test_out_of_order_arrival_gives_the_same_final_state_as_in_order(post_events):
    streak = TaskFactory(measure="CONSECUTIVE_DAYS", reward_points=0)
    _ladder(streak, [("2", 20), ("4", 40)])
    daily = TaskFactory(campaign=streak.campaign, recurrence="DAILY", target=Decimal("2"))
    total = TaskFactory(
        campaign=streak.campaign, event_type="SIGN_IN", recurrence="ONCE", target=Decimal("5")
    )
    in_order, shuffled = MemberFactory(), MemberFactory()
    days = [days_ago(n) for n in (6, 5, 4, 3, 1)]

    for day in days:
        post_events(event(in_order, day=day, hour=9), event(in_order, day=day, hour=10))
    for index in (4, 1, 3, 0, 2):
        post_events(event(shuffled, day=days[index], hour=10))
    for index in (2, 0, 4, 3, 1):
        post_events(event(shuffled, day=days[index], hour=9))

    outcome = _member_outcome(in_order)
    assert outcome == _member_outcome(shuffled)
    assert outcome["balance"] == 20 + 40 + 5 * 100 + 100
    streak_row = TaskProgress.objects.get(member=shuffled, task=streak)
    assert (streak_row.value, streak_row.best, streak_row.steps_reached) == (1, 4, 2)
    assert TaskProgress.objects.get(member=shuffled, task=total).value == 10
    assert TaskCompletion.objects.filter(member=shuffled, task=daily).count() == 5


# --- caps ---------------------------------------------------------------------------------------


def test_per_member_cap_refuses_the_third_day_with_a_reason_and_no_points(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="DAILY", reward_points=100, max_rewards_per_member=2)

    for n in (2, 1, 0):
        post_events(event(member, day=days_ago(n)))

    assert [c[2] for c in completions(member, task)] == ["REWARDED", "REWARDED", "REFUSED_CAP"]
    refused = TaskCompletion.objects.get(member=member, task=task, period_key=today().isoformat())
    assert refused.refusal_reason
    assert "2" in refused.refusal_reason
    assert (refused.reward_points, refused.points_entry, refused.cost_fen) == (0, None, 0)
    assert balance(member) == 200
    assert consumed(task.campaign.budget) == 200
    # The period still counts as reached for the member: progress is kept.
    assert progress_rows(member, task)[today().isoformat()].steps_reached == 1


def test_per_period_cap_limits_the_members_rewarded_in_one_period(post_events):
    task = TaskFactory(recurrence="DAILY", reward_points=100, max_rewards_per_period=2)
    first, second, third = MemberFactory(), MemberFactory(), MemberFactory()
    key = today().isoformat()

    post_events(event(first), event(second))
    post_events(event(third))
    post_events(event(third, day=days_ago(1)))  # another period has its own places

    assert completions(first, task) == [(key, 1, "REWARDED")]
    assert completions(second, task) == [(key, 1, "REWARDED")]
    assert completions(third, task) == [
        (days_ago(1).isoformat(), 1, "REWARDED"),
        (key, 1, "REFUSED_CAP"),
    ]
    refused = TaskCompletion.objects.get(member=third, task=task, period_key=key)
    assert key in refused.refusal_reason
    assert [balance(m) for m in (first, second, third)] == [100, 100, 100]
    assert TaskCapCounter.objects.get(task=task, scope=f"period:{key}").used == 2


def test_cap_counts_rewarded_periods_and_later_ladder_steps_follow_the_first(post_events):
    member = MemberFactory()
    task = TaskFactory(recurrence="DAILY", reward_points=0, max_rewards_per_member=1)
    _ladder(task, [("1", 10), ("2", 20)])

    post_events(event(member, day=days_ago(1), hour=9), event(member, day=days_ago(1), hour=10))
    post_events(event(member, day=today(), hour=0))
    post_events(event(member, day=today(), hour=0))

    yesterday, key = days_ago(1).isoformat(), today().isoformat()
    assert completions(member, task) == [
        (yesterday, 1, "REWARDED"),
        (yesterday, 2, "REWARDED"),  # both steps of one period: one rewarded period
        (key, 1, "REFUSED_CAP"),
        (key, 2, "REFUSED_CAP"),
    ]
    refused = TaskCompletion.objects.filter(member=member, task=task, period_key=key)
    assert all(c.refusal_reason for c in refused)
    assert balance(member) == 30


def _rewarded_periods(member, task) -> set[str]:
    return set(
        TaskCompletion.objects.filter(
            member=member, task=task, reward_status="REWARDED"
        ).values_list("period_key", flat=True)
    )


@pytest.mark.parametrize("first_step", ["without_reward", "refused_for_budget"])
def test_per_member_cap_counts_a_period_rewarded_only_at_a_later_ladder_step(
    post_events, first_step
):
    """Cap 1 rewarded period per member. Yesterday the member is rewarded only at step 2
    (step 1 gives nothing, or was refused while the budget was empty); today's period must
    then be refused: the member has already been rewarded in one period."""
    budget = BudgetFactory(amount_fen=5 if first_step == "refused_for_budget" else 10_000)
    task = TaskFactory(
        campaign=CampaignFactory(budget=budget),
        recurrence="DAILY",
        reward_points=0,
        max_rewards_per_member=1,
    )
    _ladder(task, [("1", 0 if first_step == "without_reward" else 10), ("2", 20)])
    member = MemberFactory()

    post_events(event(member, day=days_ago(1), hour=9))
    Budget.objects.filter(pk=budget.pk).update(amount_fen=10_000)
    post_events(event(member, day=days_ago(1), hour=10))
    assert _rewarded_periods(member, task) == {days_ago(1).isoformat()}

    post_events(event(member, day=today(), hour=0), event(member, day=today(), hour=0))

    assert _rewarded_periods(member, task) == {days_ago(1).isoformat()}, completions(member, task)
    assert balance(member) == 20


def test_per_period_cap_counts_a_member_rewarded_only_at_a_later_ladder_step(post_events):
    """Cap 1 rewarded member per day, ladder whose step 1 gives nothing: the second member
    to reach step 2 on the same day must be refused."""
    task = TaskFactory(recurrence="DAILY", reward_points=0, max_rewards_per_period=1)
    _ladder(task, [("1", 0), ("2", 20)])
    first, second = MemberFactory(), MemberFactory()

    post_events(event(first, hour=0), event(first, hour=0))
    post_events(event(second, hour=0), event(second, hour=0))

    rewarded = TaskCompletion.objects.filter(task=task, reward_status="REWARDED")
    assert rewarded.count() == 1, completions(second, task)
    assert (balance(first), balance(second)) == (20, 0)


def test_a_member_refused_by_the_period_cap_keeps_their_own_allowance(post_events):
    task = TaskFactory(
        recurrence="DAILY", reward_points=100, max_rewards_per_member=2, max_rewards_per_period=1
    )
    early, late = MemberFactory(), MemberFactory()

    post_events(event(early, day=days_ago(3)))
    post_events(event(late, day=days_ago(3)))  # the day's one place is taken
    for n in (2, 1, 0):
        post_events(event(late, day=days_ago(n)))

    assert [c[2] for c in completions(late, task)] == [
        "REFUSED_CAP",  # days_ago(3): period cap
        "REWARDED",
        "REWARDED",
        "REFUSED_CAP",  # today: the member's two rewarded periods are used
    ]
    assert balance(late) == 200
    assert TaskCapCounter.objects.get(task=task, scope=f"member:{late.pk}").used == 2


def test_a_reward_refused_for_budget_does_not_use_a_cap_place(post_events):
    budget = BudgetFactory(amount_fen=50)  # no room for 100 points
    task = TaskFactory(
        campaign=CampaignFactory(budget=budget),
        recurrence="DAILY",
        reward_points=100,
        max_rewards_per_period=1,
    )
    unlucky, later = MemberFactory(), MemberFactory()

    post_events(event(unlucky))
    Budget.objects.filter(pk=budget.pk).update(amount_fen=10_000)  # topped up
    post_events(event(later))

    assert completions(unlucky, task) == [(today().isoformat(), 1, "REFUSED_BUDGET")]
    assert completions(later, task) == [(today().isoformat(), 1, "REWARDED")]
    assert (balance(unlucky), balance(later)) == (0, 100)


# --- budgets -----------------------------------------------------------------------------------


def test_exhausted_budget_records_the_completion_and_refuses_the_reward(post_events):
    budget = BudgetFactory(amount_fen=250)  # room for two rewards of 100 points (1 fen each)
    task = TaskFactory(campaign=CampaignFactory(budget=budget), reward_points=100)
    members = [MemberFactory() for _ in range(3)]

    for member in members:
        post_events(event(member))

    statuses = [completions(m, task)[0][2] for m in members]
    assert statuses == ["REWARDED", "REWARDED", "REFUSED_BUDGET"]
    refused = TaskCompletion.objects.get(member=members[2], task=task)
    assert "no room" in refused.refusal_reason
    assert budget.code in refused.refusal_reason
    assert (refused.reward_points, refused.points_entry, refused.cost_fen) == (0, None, 0)
    assert [balance(m) for m in members] == [100, 100, 0]
    assert not PointsEntry.objects.filter(member=members[2]).exists()
    assert consumed(budget) == 200


def test_benefit_reward_is_a_task_reward_grant_charged_to_the_campaign_budget(post_events):
    campaign_budget = BudgetFactory(amount_fen=1_000_00)
    benefit = BenefitFactory(unit_cost_fen=30_00)  # its own catalogue budget is not charged
    task = TaskFactory(
        campaign=CampaignFactory(budget=campaign_budget),
        reward_points=50,
        reward_benefit=benefit,
    )
    member = MemberFactory()

    post_events(event(member))

    grant = BenefitGrant.objects.get(member=member)
    assert (grant.source, grant.benefit, grant.budget) == ("TASK_REWARD", benefit, campaign_budget)
    assert grant.cost_fen == 30_00
    completion = TaskCompletion.objects.get(member=member, task=task)
    assert completion.reward_status == "REWARDED"
    assert completion.grant == grant
    assert completion.cost_fen == 30_00 + 50
    assert consumed(campaign_budget) == 30_00 + 50
    assert BudgetEntry.objects.filter(budget=campaign_budget, grant=grant).count() == 1
    assert consumed(benefit.budget) == 0
    assert balance(member) == 50


def test_benefit_reward_refused_when_the_campaign_budget_cannot_pay_it(post_events):
    budget = BudgetFactory(amount_fen=20_00)
    task = TaskFactory(
        campaign=CampaignFactory(budget=budget),
        reward_points=10,
        reward_benefit=BenefitFactory(unit_cost_fen=30_00),
    )
    member = MemberFactory()

    post_events(event(member))

    completion = TaskCompletion.objects.get(member=member, task=task)
    assert completion.reward_status == "REFUSED_BUDGET"
    assert completion.refusal_reason
    assert (completion.grant, completion.points_entry, completion.cost_fen) == (None, None, 0)
    assert not BenefitGrant.objects.exists()
    assert balance(member) == 0  # the points of the same reward are not issued either
    assert consumed(budget) == 0


# --- targeting ----------------------------------------------------------------------------------


def test_reactivation_task_is_offered_only_to_dormant_members(post_events):
    task = TaskFactory(offered_stages=["DORMANT"], reward_points=200)
    active = MemberFactory(lifecycle_stage="ACTIVE")
    dormant = MemberFactory(lifecycle_stage="DORMANT")

    body = post_events(event(active), event(dormant)).json()

    assert body["accepted"] == 2  # the active member's event is still taken (activity)
    assert not TaskProgress.objects.filter(member=active).exists()
    assert completions(active, task) == []
    assert completions(dormant, task) == [("once", 1, "REWARDED")]
    completion = TaskCompletion.objects.get(member=dormant, task=task)
    assert completion.stage_at_start == "DORMANT"
    assert (balance(active), balance(dormant)) == (0, 200)


def test_a_member_reactivated_mid_period_keeps_counting_the_period(
    post_events, system_user, api_client_for
):
    task = TaskFactory(offered_stages=["DORMANT"], measure="CONSECUTIVE_DAYS", target=Decimal("3"))
    member = MemberFactory(lifecycle_stage="DORMANT")
    never_dormant = MemberFactory(lifecycle_stage="REACTIVATED")
    client = api_client_for(system_user)

    post_events(event(member, day=days_ago(2)))
    Member.objects.filter(pk=member.pk).update(lifecycle_stage="REACTIVATED")  # the night ran
    post_events(event(member, day=days_ago(1)), event(never_dormant, day=days_ago(1)))

    (entry,) = _centre_tasks(client, member)  # still listed although no longer offered
    assert (entry["task_id"], entry["progress"], entry["target"]) == (task.pk, "2", "3")
    assert entry["completed"] is False
    assert _centre_tasks(client, never_dormant) == []

    post_events(event(member, day=today()), event(never_dormant, day=today()))

    row = TaskProgress.objects.get(member=member, task=task)
    assert (row.value, row.stage_at_start, row.steps_reached) == (3, "DORMANT", 1)
    assert completions(member, task) == [("once", 1, "REWARDED")]
    assert TaskCompletion.objects.get(member=member, task=task).stage_at_start == "DORMANT"
    assert not TaskProgress.objects.filter(member=never_dormant).exists()
    assert balance(member) == 100


@pytest.mark.parametrize("where", ["task", "campaign"])
def test_tier_targeting(post_events, where):
    task = TaskFactory()
    (task.offered_tiers if where == "task" else task.campaign.target_tiers).add(gold())
    standard = Tier.objects.get(scheme__code="DEFAULT_MADA", code="STANDARD")
    gold_member, standard_member, no_tier = (
        MemberFactory(tier=gold()),
        MemberFactory(tier=standard),
        MemberFactory(tier=None),
    )

    post_events(event(gold_member), event(standard_member), event(no_tier))

    assert completions(gold_member, task) == [("once", 1, "REWARDED")]
    assert not TaskProgress.objects.filter(member__in=[standard_member, no_tier]).exists()
    assert [balance(m) for m in (gold_member, standard_member, no_tier)] == [100, 0, 0]


def test_campaign_and_task_stage_lists_must_both_allow_the_member(post_events):
    campaign = CampaignFactory(target_stages=["DORMANT", "AT_RISK"])
    task = TaskFactory(campaign=campaign, offered_stages=["AT_RISK", "ACTIVE"])
    at_risk, dormant, active = (
        MemberFactory(lifecycle_stage=stage) for stage in ("AT_RISK", "DORMANT", "ACTIVE")
    )

    post_events(event(at_risk), event(dormant), event(active))

    assert list(TaskProgress.objects.filter(task=task).values_list("member_id", flat=True)) == [
        at_risk.pk
    ]


def test_segment_targeting(post_events):
    segment = SegmentFactory(rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}])
    task = TaskFactory(reward_points=100)
    task.campaign.segments.add(segment)
    inside = MemberFactory(lifecycle_stage="DORMANT")
    outside = MemberFactory(lifecycle_stage="ACTIVE")

    post_events(event(inside), event(outside))

    assert completions(inside, task) == [("once", 1, "REWARDED")]
    assert not TaskProgress.objects.filter(member=outside).exists()
    assert (balance(inside), balance(outside)) == (100, 0)


# --- what does not count ------------------------------------------------------------------------


def test_paused_campaign_counts_nothing(post_events):
    task = TaskFactory(campaign=CampaignFactory(status="PAUSED"))
    member = MemberFactory()

    body = post_events(event(member)).json()

    assert body["accepted"] == 1
    assert not TaskProgress.objects.filter(task=task).exists()
    assert not TaskCompletion.objects.exists()
    assert balance(member) == 0
    assert consumed(task.campaign.budget) == 0


def test_amount_below_the_minimum_does_not_count(post_events):
    task = TaskFactory(
        event_type="FUND_PURCHASE",
        measure="AMOUNT_SUM",
        target=Decimal("3000"),
        min_event_amount=Decimal("1000.00"),
    )
    member = MemberFactory()

    post_events(event(member, type="FUND_PURCHASE", amount="999.99"))
    assert not TaskProgress.objects.filter(task=task).exists()

    post_events(
        event(member, type="FUND_PURCHASE", amount="1000.00"),
        event(member, type="FUND_PURCHASE", amount="999.99"),
        event(member, type="FUND_PURCHASE", amount="2000.00"),
    )
    row = TaskProgress.objects.get(task=task, member=member)
    assert row.value == 300_000
    assert completions(member, task) == [("once", 1, "REWARDED")]


def test_event_before_the_campaign_window_does_not_count(post_events):
    task = TaskFactory(campaign=CampaignFactory(starts_on=days_ago(10)))
    member = MemberFactory()

    post_events(event(member, day=days_ago(11)))
    assert not TaskProgress.objects.filter(task=task).exists()

    post_events(event(member, day=days_ago(10)))
    assert completions(member, task) == [("once", 1, "REWARDED")]


def test_event_after_the_campaign_window_does_not_count_even_in_the_grace(post_events):
    task = TaskFactory(
        recurrence="DAILY",
        campaign=CampaignFactory(starts_on=days_ago(30), ends_on=days_ago(1)),
    )
    member = MemberFactory()

    post_events(event(member, day=today()))
    assert not TaskProgress.objects.filter(task=task).exists()

    post_events(event(member, day=days_ago(1)))  # late, inside the window: still counts
    assert completions(member, task) == [(days_ago(1).isoformat(), 1, "REWARDED")]


# --- replays ------------------------------------------------------------------------------------


def _world() -> dict:
    return {
        "progress": sorted(
            TaskProgress.objects.values_list(
                "member_id",
                "task_id",
                "period_key",
                "value",
                "best",
                "steps_reached",
                "completed_at",
                "updated_at",
            )
        ),
        "days": sorted((p.pk, list(p.days)) for p in TaskProgress.objects.all()),
        "completions": sorted(
            TaskCompletion.objects.values_list(
                "member_id",
                "task_id",
                "period_key",
                "step_no",
                "reward_status",
                "reward_points",
                "cost_fen",
                "refusal_reason",
                "grant_id",
                "points_entry_id",
            )
        ),
        "ledger": sorted(PointsEntry.objects.values_list("id", "member_id", "points")),
        "balances": sorted(Member.objects.values_list("member_no", "points_balance")),
        "budgets": sorted(Budget.objects.values_list("code", "consumed_fen")),
        "budget_entries": sorted(BudgetEntry.objects.values_list("id", "amount_fen")),
        "grants": sorted(BenefitGrant.objects.values_list("id", "member_id", "cost_fen")),
        "events": MemberEvent.objects.count(),
    }


def test_replaying_the_same_batch_three_times_gives_the_same_state(post_events):
    budget = BudgetFactory(amount_fen=2_250)  # all the points (7.50) and one gift (10.00)
    campaign = CampaignFactory(budget=budget)
    ladder = TaskFactory(
        campaign=campaign, event_type="FUND_PURCHASE", measure="AMOUNT_SUM", reward_points=0
    )
    _ladder(ladder, [("1000", 100), ("5000", 150)])
    daily = TaskFactory(campaign=campaign, recurrence="DAILY", max_rewards_per_member=2)
    gift = TaskFactory(
        campaign=campaign,
        event_type="BIND_CARD",
        reward_points=0,
        reward_benefit=BenefitFactory(unit_cost_fen=1_000),
    )
    streak = TaskFactory(campaign=campaign, measure="CONSECUTIVE_DAYS", target=Decimal("3"))
    a, b = MemberFactory(), MemberFactory()
    batch = [
        event(a, type="FUND_PURCHASE", amount="6000.00", event_id="rp-1"),
        event(b, type="FUND_PURCHASE", amount="1500.00", event_id="rp-2"),
        *(event(a, day=days_ago(n), event_id=f"rp-a{n}") for n in (3, 2, 1, 0)),
        event(b, day=days_ago(1), event_id="rp-b1"),
        event(a, type="BIND_CARD", event_id="rp-3"),
        event(b, type="BIND_CARD", event_id="rp-4"),
    ]

    first = post_events(*batch).json()
    state = _world()
    replays = [post_events(*batch).json() for _ in range(3)]

    assert first == {"accepted": len(batch), "duplicates": 0, "rejected": []}
    assert replays == [{"accepted": 0, "duplicates": len(batch), "rejected": []}] * 3
    assert _world() == state
    # and the state is the one the rules give
    assert [c[2] for c in completions(a, daily)] == ["REWARDED"] * 2 + ["REFUSED_CAP"] * 2
    assert [c[2] for c in completions(a, gift)] + [c[2] for c in completions(b, gift)] in (
        ["REWARDED", "REFUSED_BUDGET"],
        ["REFUSED_BUDGET", "REWARDED"],
    )
    assert completions(a, streak) == [("once", 1, "REWARDED")]
    assert BenefitGrant.objects.count() == 1
    assert (balance(a), balance(b)) == (100 + 150 + 2 * 100 + 100, 100 + 100)
    assert consumed(budget) == 750 + 1_000


# --- the member centre ---------------------------------------------------------------------------


def _centre_tasks(client, member) -> list[dict]:
    response = client.get(f"/api/v1/members/{member.member_no}/")
    assert response.status_code == 200, response.content
    return response.json()["tasks"]


def test_member_centre_shows_progress_towards_the_target_for_the_account_manager(
    post_events, make_user, api_client_for
):
    manager = make_user(Role.ACCOUNT_MANAGER)
    member = MemberFactory(account_manager=manager)
    task = TaskFactory(recurrence="DAILY", target=Decimal("5"), reward_points=80)

    post_events(event(member, day=days_ago(1)))  # yesterday's period is not today's
    post_events(event(member, hour=0), event(member, hour=0))

    (entry,) = [
        t for t in _centre_tasks(api_client_for(manager), member) if t["task_id"] == task.pk
    ]
    assert entry["campaign"] == task.campaign.code
    assert entry["name"] == task.name
    assert entry["period_key"] == today().isoformat()
    assert (entry["progress"], entry["target"]) == ("2", "5")
    assert entry["completed"] is False
    assert entry["reward_points"] == 80


def test_member_centre_shows_a_completed_ladder_at_its_last_step(
    post_events, system_user, api_client_for
):
    member = MemberFactory()
    task = TaskFactory(
        event_type="FUND_PURCHASE", measure="AMOUNT_SUM", recurrence="MONTHLY", reward_points=0
    )
    _ladder(task, [("1000", 10), ("5000", 50), ("10000", 100)])
    client = api_client_for(system_user)

    post_events(event(member, type="FUND_PURCHASE", amount="6000.00"))
    (midway,) = _centre_tasks(client, member)
    assert (midway["progress"], midway["target"], midway["completed"]) == (
        "6000.00",
        "10000.00",
        False,
    )
    assert (midway["step"], midway["reward_points"]) == (3, 100)

    post_events(event(member, type="FUND_PURCHASE", amount="4500.00"))
    (done,) = _centre_tasks(client, member)
    assert done["period_key"] == f"{today():%Y-%m}"
    assert (done["progress"], done["target"], done["completed"]) == ("10500.00", "10000.00", True)
    assert (done["step"], done["steps"], done["reward_points"]) == (3, 3, 100)


def test_member_centre_points_balance_equals_the_ledger(post_events, system_user, api_client_for):
    member = MemberFactory()
    campaign = CampaignFactory()
    TaskFactory(campaign=campaign, recurrence="DAILY", reward_points=15)
    TaskFactory(campaign=campaign, recurrence="WEEKLY", reward_points=40)
    TaskFactory(campaign=campaign, recurrence="ONCE", reward_points=100)

    post_events(*(event(member, day=days_ago(n)) for n in range(10)))

    body = api_client_for(system_user).get(f"/api/v1/members/{member.member_no}/").json()
    ledger = PointsEntry.objects.filter(member=member).aggregate(s=Sum("points"))["s"]
    weeks = {iso_week_key(days_ago(n)) for n in range(10)}
    assert body["points_balance"] == ledger == 10 * 15 + len(weeks) * 40 + 100
    assert balance(member) == ledger
