"""Campaign effectiveness reports (campaigns/reports.py): every expected number is worked
out by hand in the test, from the rows the test wrote."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benefits.choices import BudgetEntryKind
from benefits.models import BenefitGrant, BudgetEntry
from campaigns.choices import CampaignStatus
from campaigns.models import Campaign, TaskCompletion, TaskProgress
from campaigns.reports import (
    campaign_effectiveness,
    campaigns_overview,
    difficulty_summary,
    task_effectiveness,
)
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    MemberFactory,
    TaskFactory,
    TaskStepFactory,
)

from .conftest import event, today

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 26)
_keys = itertools.count(1)


def progress(member, task, *, stage="ACTIVE", steps=0) -> TaskProgress:
    """A member's progress on a once-only task, started in lifecycle stage `stage`."""
    return TaskProgress.objects.create(
        member=member,
        task=task,
        period_key="once",
        period_start=task.campaign.starts_on,
        period_end=task.campaign.ends_on,
        stage_at_start=stage,
        value=steps,
        best=steps,
        steps_reached=steps,
    )


def completion(
    row: TaskProgress, *, step_no=1, status="REWARDED", points=0, cost_fen=0, grant=None
):
    """The completion of one step of `row`, shaped as `reward_issue` writes it: the stage at
    start is the progress row's, and only a rewarded completion carries points and a cost."""
    return TaskCompletion.objects.create(
        member=row.member,
        task=row.task,
        campaign=row.task.campaign,
        period_key=row.period_key,
        step_no=step_no,
        reward_status=status,
        reward_points=points,
        grant=grant,
        cost_fen=cost_fen,
        stage_at_start=row.stage_at_start,
    )


def grant(member, benefit, budget) -> BenefitGrant:
    return BenefitGrant.objects.create(
        member=member,
        benefit=benefit,
        source="TASK_REWARD",
        budget=budget,
        cost_fen=benefit.unit_cost_fen,
        idempotency_key=f"test-grant-{next(_keys)}",
        expires_on=TODAY + timedelta(days=90),
    )


def budget_entry(budget, day: date, amount_fen: int) -> None:
    made = BudgetEntry.objects.create(
        budget=budget, kind=BudgetEntryKind.CONSUME, amount_fen=amount_fen, source="test"
    )
    created_at = datetime.combine(day, time(10), tzinfo=SHANGHAI)
    BudgetEntry.objects.filter(pk=made.pk).update(created_at=created_at)


# --- one realistic scenario through the events API -------------------------------------------


def test_effectiveness_of_a_campaign_driven_through_the_events_api(post_events, settings):
    settings.POINT_VALUE_FEN = 1  # 100 points cost 1.00 CNY
    day = today()
    # 1,000.00 CNY, opened 9 days ago: 10 days of consumption history, today included
    budget = BudgetFactory(
        amount_fen=1_000_00, period_start=day - timedelta(days=9), period_end=day + timedelta(60)
    )
    campaign = CampaignFactory(budget=budget)
    sign_in = TaskFactory(
        campaign=campaign, name="签到", difficulty="EASY", reward_points=100, position=1
    )
    card_spend = TaskFactory(
        campaign=campaign,
        name="刷卡满1000",
        difficulty="HARD",
        event_type="CARD_SPEND",
        measure="AMOUNT_SUM",
        target=Decimal("1000"),
        reward_points=0,
        reward_benefit=BenefitFactory(unit_cost_fen=88_88),
        position=2,
    )
    active_1, active_2 = (
        MemberFactory(lifecycle_stage="ACTIVE"),
        MemberFactory(lifecycle_stage="ACTIVE"),
    )
    dormant_1 = MemberFactory(lifecycle_stage="DORMANT")
    dormant_2 = MemberFactory(lifecycle_stage="DORMANT")

    post_events(
        event(active_1),
        event(active_2),
        event(dormant_1),
        event(dormant_2, type="CARD_SPEND", amount="600.00"),  # short of 1,000: no completion
        event(active_1, type="CARD_SPEND", amount="1200.00"),  # completes: one 88.88 grant
    )
    report = campaign_effectiveness(campaign=campaign, today=day)

    # participants: active_1, active_2, dormant_1 (sign-in) + dormant_2 (card spend) = 4
    # completers: active_1, active_2, dormant_1 = 3 → 3 / 4 = 75.0 %
    # completions: 3 sign-ins + 1 card spend = 4, all rewarded
    # cost: 3 × 100 points × 1 fen = 3.00, plus one grant 88.88 → 91.88; per completion 22.97
    # dormant participants: dormant_1, dormant_2; reactivated: dormant_1 (completed) only
    budget_part = report.pop("budget")
    assert report == {
        "campaign_id": campaign.pk,
        "code": campaign.code,
        "name": campaign.name,
        "status": "ACTIVE",
        "participants": 4,
        "completers": 3,
        "completion_rate": Decimal("75.0"),
        "completions": 4,
        "rewarded": 4,
        "refused": {"REFUSED_BUDGET": 0, "REFUSED_CAP": 0},
        "no_reward": 0,
        "points_issued": 300,
        "points_cost": Decimal("3.00"),
        "benefit_cost": Decimal("88.88"),
        "total_cost": Decimal("91.88"),
        "cost_per_completion": Decimal("22.97"),
        "dormant_participants": 2,
        "reactivated": 1,
        "reactivation_rate": Decimal("50.0"),
        "cost_per_reactivation": Decimal("91.88"),
    }
    # consumed 91.88 of 1,000.00 → 9.188 % → 9.2 %; 91.88 over 10 days → 9.188 → 9.19 a day;
    # remaining 908.12 / 9.19 = 98.8… → 98 whole days
    assert budget_part == {
        "code": budget.code,
        "amount": Decimal("1000.00"),
        "consumed": Decimal("91.88"),
        "remaining": Decimal("908.12"),
        "consumed_percent": Decimal("9.2"),
        "daily_rate": Decimal("9.19"),
        "projected_exhaustion": day + timedelta(days=98),
    }

    assert task_effectiveness(campaign=campaign) == [
        {
            "task_id": sign_in.pk,
            "name": "签到",
            "difficulty": "EASY",
            "participants": 3,
            "completers": 3,
            "completion_rate": Decimal("100.0"),
            "completions": 3,
            "completions_by_step": [{"step_no": 1, "completions": 3}],
            "cost": Decimal("3.00"),
        },
        {
            "task_id": card_spend.pk,
            "name": "刷卡满1000",
            "difficulty": "HARD",
            "participants": 2,  # dormant_2 and active_1
            "completers": 1,
            "completion_rate": Decimal("50.0"),
            "completions": 1,
            "completions_by_step": [{"step_no": 1, "completions": 1}],
            "cost": Decimal("88.88"),
        },
    ]
    assert difficulty_summary(campaign=campaign) == [
        {"difficulty": "EASY", "tasks": 1, "participants": 3, "completers": 3,
         "completion_rate": Decimal("100.0")},
        {"difficulty": "MEDIUM", "tasks": 0, "participants": 0, "completers": 0,
         "completion_rate": None},
        {"difficulty": "HARD", "tasks": 1, "participants": 2, "completers": 1,
         "completion_rate": Decimal("50.0")},
    ]  # fmt: skip
    (row,) = campaigns_overview(campaigns=[campaign])
    assert (row["participants"], row["completion_rate"], row["total_cost"], row["reactivated"]) == (
        4,
        Decimal("75.0"),
        Decimal("91.88"),
        1,
    )


def test_a_reward_refused_for_budget_is_a_completion_without_cost(post_events, settings):
    settings.POINT_VALUE_FEN = 1
    budget = BudgetFactory(amount_fen=1_50)  # room for one 1.00 reward, not two
    task = TaskFactory(campaign=CampaignFactory(budget=budget), reward_points=100)
    first, second = MemberFactory(), MemberFactory()

    post_events(event(first), event(second))
    report = campaign_effectiveness(campaign=task.campaign, today=today())

    assert (report["completions"], report["rewarded"]) == (2, 1)
    assert report["refused"] == {"REFUSED_BUDGET": 1, "REFUSED_CAP": 0}
    assert report["points_issued"] == 100
    assert report["total_cost"] == Decimal("1.00") == report["points_cost"]
    assert report["cost_per_completion"] == Decimal("0.50")  # 1.00 over both completions
    assert report["completion_rate"] == Decimal("100.0")  # the refused member did complete
    assert report["budget"]["consumed"] == Decimal("1.00")


# --- built row by row ------------------------------------------------------------------------


def test_a_campaign_nobody_took_part_in_has_no_rates_and_no_division_by_zero(db):
    campaign = CampaignFactory(budget=BudgetFactory(amount_fen=500_00))
    task = TaskFactory(campaign=campaign, difficulty="MEDIUM")

    report = campaign_effectiveness(campaign=campaign, today=TODAY)

    assert report["participants"] == report["completers"] == report["completions"] == 0
    assert report["completion_rate"] is None and report["reactivation_rate"] is None
    assert report["cost_per_completion"] is None and report["cost_per_reactivation"] is None
    assert (
        report["total_cost"] == report["points_cost"] == report["benefit_cost"] == Decimal("0.00")
    )
    assert report["points_issued"] == report["dormant_participants"] == report["reactivated"] == 0
    assert report["budget"]["remaining"] == Decimal("500.00")
    assert report["budget"]["consumed_percent"] == Decimal("0.0")
    assert report["budget"]["projected_exhaustion"] is None
    assert task_effectiveness(campaign=campaign) == [
        {
            "task_id": task.pk,
            "name": task.name,
            "difficulty": "MEDIUM",
            "participants": 0,
            "completers": 0,
            "completion_rate": None,
            "completions": 0,
            "completions_by_step": [{"step_no": 1, "completions": 0}],
            "cost": Decimal("0.00"),
        }
    ]
    assert [
        (r["difficulty"], r["tasks"], r["completion_rate"])
        for r in difficulty_summary(campaign=campaign)
    ] == [("EASY", 0, None), ("MEDIUM", 1, None), ("HARD", 0, None)]
    (row,) = campaigns_overview(campaigns=[campaign])
    assert (row["participants"], row["completion_rate"], row["total_cost"], row["reactivated"]) == (
        0,
        None,
        Decimal("0.00"),
        0,
    )


def test_costs_add_up_to_the_cent_and_refused_rewards_cost_nothing(db):
    budget = BudgetFactory()
    campaign = CampaignFactory(budget=budget)
    task = TaskFactory(campaign=campaign)
    lounge = BenefitFactory(unit_cost_fen=88_88)
    points_only, with_grant, refused_budget, refused_cap, no_reward, idle = (
        MemberFactory() for _ in range(6)
    )

    completion(progress(points_only, task, steps=1), points=123, cost_fen=1_23)
    completion(
        progress(with_grant, task, steps=1),
        points=100,
        grant=grant(with_grant, lounge, budget),
        cost_fen=1_00 + 88_88,
    )
    completion(progress(refused_budget, task, steps=1), status="REFUSED_BUDGET")
    completion(progress(refused_cap, task, steps=1), status="REFUSED_CAP")
    completion(progress(no_reward, task, steps=1), status="NO_REWARD")
    progress(idle, task)

    report = campaign_effectiveness(campaign=campaign, today=TODAY)

    assert report["participants"] == 6 and report["completers"] == 5
    assert report["completion_rate"] == Decimal("83.3")  # 5 / 6 = 83.33…
    assert (report["completions"], report["rewarded"], report["no_reward"]) == (5, 2, 1)
    assert report["refused"] == {"REFUSED_BUDGET": 1, "REFUSED_CAP": 1}
    assert report["points_issued"] == 223  # 123 + 100
    assert report["points_cost"] == Decimal("2.23")  # 1.23 + 1.00
    assert report["benefit_cost"] == Decimal("88.88")
    assert report["total_cost"] == Decimal("91.11")
    assert report["cost_per_completion"] == Decimal("18.22")  # 91.11 / 5 = 18.222
    assert report["dormant_participants"] == report["reactivated"] == 0
    assert report["cost_per_reactivation"] is None


def test_a_refused_completion_is_not_costed_even_with_a_grant_attached(db):
    """Only REWARDED completions are costed: a row refused after a grant was linked (not
    something reward_issue writes, but the report must not depend on it) costs nothing."""
    budget = BudgetFactory()
    task = TaskFactory(campaign=CampaignFactory(budget=budget))
    member = MemberFactory()
    completion(
        progress(member, task, steps=1),
        status="REFUSED_BUDGET",
        points=100,
        grant=grant(member, BenefitFactory(unit_cost_fen=50_00), budget),
        cost_fen=50_00,
    )

    report = campaign_effectiveness(campaign=task.campaign, today=TODAY)

    assert report["total_cost"] == report["benefit_cost"] == Decimal("0.00")
    assert report["points_issued"] == 0
    assert task_effectiveness(campaign=task.campaign)[0]["cost"] == Decimal("0.00")
    assert campaigns_overview(campaigns=[task.campaign])[0]["total_cost"] == Decimal("0.00")


def test_reactivated_means_started_dormant_or_churned_and_completed_in_the_campaign(db):
    campaign = CampaignFactory()
    first, second = TaskFactory(campaign=campaign), TaskFactory(campaign=campaign)
    other_task = TaskFactory()  # another campaign

    # counted: started while DORMANT / CHURNED and completed
    dormant_done = MemberFactory(lifecycle_stage="REACTIVATED")  # today's stage does not matter
    completion(progress(dormant_done, first, stage="DORMANT", steps=1), cost_fen=25)
    churned_done = MemberFactory(lifecycle_stage="CHURNED")
    completion(progress(churned_done, first, stage="CHURNED", steps=1), cost_fen=25)
    # counted once: started the first task dormant, completed the second after coming back
    came_back = MemberFactory()
    progress(came_back, first, stage="DORMANT")
    completion(progress(came_back, second, stage="REACTIVATED", steps=1), cost_fen=25)
    # dormant participant, not reactivated: never completed
    dormant_idle = MemberFactory(lifecycle_stage="DORMANT")
    progress(dormant_idle, first, stage="DORMANT")
    # not dormant at the start
    at_risk = MemberFactory()
    completion(progress(at_risk, first, stage="AT_RISK", steps=1), cost_fen=25)
    dormant_now = MemberFactory(lifecycle_stage="DORMANT")  # went dormant after starting
    completion(progress(dormant_now, first, stage="ACTIVE", steps=1), cost_fen=25)
    # dormant in another campaign only (and reactivated there)
    elsewhere = MemberFactory()
    completion(progress(elsewhere, other_task, stage="DORMANT", steps=1), cost_fen=1_00)
    completion(progress(elsewhere, first, stage="ACTIVE", steps=1), cost_fen=25)

    report = campaign_effectiveness(campaign=campaign, today=TODAY)

    # dormant participants: dormant_done, churned_done, came_back, dormant_idle
    assert report["dormant_participants"] == 4
    assert report["reactivated"] == 3  # dormant_done, churned_done, came_back
    assert report["reactivation_rate"] == Decimal("75.0")
    # 6 completions × 0.25 in this campaign = 1.50, over 3 reactivated members
    assert report["total_cost"] == Decimal("1.50")
    assert report["cost_per_reactivation"] == Decimal("0.50")
    overview = {row["code"]: row for row in campaigns_overview()}
    assert overview[campaign.code]["reactivated"] == 3
    assert overview[other_task.campaign.code]["reactivated"] == 1
    assert overview[other_task.campaign.code]["total_cost"] == Decimal("1.00")


def test_projected_exhaustion_extrapolates_the_last_30_days(db):
    budget = BudgetFactory(
        period_start=TODAY - timedelta(days=59),
        period_end=TODAY + timedelta(days=365),
        amount_fen=10_000_00,
        consumed_fen=2_000_00 + 600_00 + 300_00,
    )
    budget_entry(budget, TODAY - timedelta(days=45), 2_000_00)  # before the 30-day window
    budget_entry(budget, TODAY - timedelta(days=20), 600_00)
    budget_entry(budget, TODAY - timedelta(days=3), 300_00)
    campaign = CampaignFactory(budget=budget)

    burn = campaign_effectiveness(campaign=campaign, today=TODAY)["budget"]

    assert burn["consumed"] == Decimal("2900.00")
    assert burn["remaining"] == Decimal("7100.00")
    assert burn["consumed_percent"] == Decimal("29.0")
    assert burn["daily_rate"] == Decimal("30.00")  # 900.00 over the last 30 days
    # 7,100.00 / 30.00 = 236.67 → 236 whole days after 26 Nov 2026: 4 left in November,
    # then 31 + 31 + 28 + 31 + 30 + 31 + 30 = 212 to 30 June 2027, and 20 more
    assert burn["projected_exhaustion"] == date(2027, 7, 20)


def test_task_effectiveness_counts_every_ladder_step_and_rounds_rates_to_one_place(db):
    campaign = CampaignFactory()
    ladder = TaskFactory(campaign=campaign, name="阶梯", difficulty="HARD", position=1)
    for step_no in (1, 2, 3):
        TaskStepFactory(
            task=ladder, step_no=step_no, target=Decimal(step_no), reward_points=10 * step_no
        )
    third = TaskFactory(campaign=campaign, name="三取一", position=2)
    two_thirds = TaskFactory(campaign=campaign, name="三取二", position=3)
    two_steps, one_step, refused, idle = (MemberFactory() for _ in range(4))

    row = progress(two_steps, ladder, steps=2)
    completion(row, step_no=1, points=10, cost_fen=10)
    completion(row, step_no=2, points=20, cost_fen=20)
    completion(progress(one_step, ladder, steps=1), step_no=1, points=10, cost_fen=10)
    completion(progress(refused, ladder, steps=1), step_no=1, status="REFUSED_BUDGET")
    progress(idle, ladder)
    members = [MemberFactory() for _ in range(3)]
    completion(progress(members[0], third, steps=1), cost_fen=1_00)
    progress(members[1], third)
    progress(members[2], third)
    completion(progress(members[0], two_thirds, steps=1), cost_fen=1_00)
    completion(progress(members[1], two_thirds, steps=1), cost_fen=1_00)
    progress(members[2], two_thirds)

    rows = task_effectiveness(campaign=campaign)

    assert [r["name"] for r in rows] == ["阶梯", "三取一", "三取二"]
    assert rows[0] == {
        "task_id": ladder.pk,
        "name": "阶梯",
        "difficulty": "HARD",
        "participants": 4,
        "completers": 3,  # two_steps, one_step, refused
        "completion_rate": Decimal("75.0"),
        "completions": 4,
        "completions_by_step": [
            {"step_no": 1, "completions": 3},
            {"step_no": 2, "completions": 1},
            {"step_no": 3, "completions": 0},
        ],
        "cost": Decimal("0.40"),  # 0.10 + 0.20 + 0.10; the refused step costs nothing
    }
    assert (rows[1]["participants"], rows[1]["completers"], rows[1]["completion_rate"]) == (
        3,
        1,
        Decimal("33.3"),
    )
    assert (rows[2]["completion_rate"], rows[2]["cost"]) == (Decimal("66.7"), Decimal("2.00"))


def test_difficulty_summary_counts_a_member_in_two_tasks_of_a_difficulty_once(db):
    campaign = CampaignFactory()
    easy_1 = TaskFactory(campaign=campaign, difficulty="EASY")
    easy_2 = TaskFactory(campaign=campaign, difficulty="EASY")
    medium = TaskFactory(campaign=campaign, difficulty="MEDIUM")
    both, second_only, medium_only = MemberFactory(), MemberFactory(), MemberFactory()

    completion(progress(both, easy_1, steps=1))
    completion(progress(both, easy_2, steps=1))
    progress(second_only, easy_2)
    completion(progress(medium_only, medium, steps=1))

    assert difficulty_summary(campaign=campaign) == [
        # easy: both and second_only took part (both twice, counted once); both completed
        {"difficulty": "EASY", "tasks": 2, "participants": 2, "completers": 1,
         "completion_rate": Decimal("50.0")},
        {"difficulty": "MEDIUM", "tasks": 1, "participants": 1, "completers": 1,
         "completion_rate": Decimal("100.0")},
        {"difficulty": "HARD", "tasks": 0, "participants": 0, "completers": 0,
         "completion_rate": None},
    ]  # fmt: skip


# --- the list page ---------------------------------------------------------------------------


def _campaign_with_activity() -> Campaign:
    """Two participants (one started dormant), one completion costing 1.00 by the dormant one."""
    task = TaskFactory()
    dormant, active = MemberFactory(), MemberFactory()
    completion(progress(dormant, task, stage="DORMANT", steps=1), cost_fen=1_00)
    progress(active, task)
    return task.campaign


def test_overview_takes_one_query_for_one_campaign_or_ten(db, django_assert_max_num_queries):
    one = [_campaign_with_activity()]
    with CaptureQueriesContext(connection) as for_one, django_assert_max_num_queries(1):
        rows_one = campaigns_overview(campaigns=one)
    ten = one + [_campaign_with_activity() for _ in range(9)]
    with CaptureQueriesContext(connection) as for_ten, django_assert_max_num_queries(1):
        rows_ten = campaigns_overview(campaigns=ten)

    assert len(for_one.captured_queries) == len(for_ten.captured_queries)
    assert len(rows_one) == 1 and len(rows_ten) == 10
    for row in rows_ten:  # 1 of 2 completed; 1.00; the dormant one came back
        assert (row["participants"], row["completers"]) == (2, 1)
        assert (row["completion_rate"], row["total_cost"], row["reactivated"]) == (
            Decimal("50.0"),
            Decimal("1.00"),
            1,
        )


def test_overview_keeps_the_order_asked_for_and_accepts_a_queryset(db):
    quiet = CampaignFactory(code="QUIET", name="静默", status="DRAFT")
    busy = _campaign_with_activity()

    rows = campaigns_overview(campaigns=[busy, quiet])
    from_queryset = campaigns_overview(campaigns=Campaign.objects.filter(code="QUIET"))

    assert [row["campaign_id"] for row in rows] == [busy.pk, quiet.pk]
    assert rows[1] == {
        "campaign_id": quiet.pk,
        "code": "QUIET",
        "name": "静默",
        "status": "DRAFT",
        "status_label": str(CampaignStatus.DRAFT.label),
        "participants": 0,
        "completers": 0,
        "completion_rate": None,
        "total_cost": Decimal("0.00"),
        "reactivated": 0,
    }
    assert from_queryset == [rows[1]]


def test_effectiveness_queries_do_not_grow_with_members(db):
    def queries_for(members: int) -> int:
        task = TaskFactory()
        for _ in range(members):
            completion(progress(MemberFactory(), task, stage="DORMANT", steps=1), cost_fen=10)
        campaign = Campaign.objects.get(pk=task.campaign_id)
        with CaptureQueriesContext(connection) as captured:
            campaign_effectiveness(campaign=campaign, today=TODAY)
            task_effectiveness(campaign=campaign)
            difficulty_summary(campaign=campaign)
        return len(captured.captured_queries)

    assert queries_for(2) == queries_for(20)
