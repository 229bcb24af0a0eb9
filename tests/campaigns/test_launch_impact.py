"""A campaign launch is approved with its eyes open (issue 14): the approval shows the
audience now, the members offered each task, the expected completions and cost of each task
(from the history of similar tasks, or a stated assumption) against the budget left, and the
overlap with the other live campaigns; the launch's terms are in business words. After the
approval, the events do what the preview said: the members it counted are the members the
tasks are offered to, and nobody else.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from campaigns.choices import CampaignApproval
from campaigns.impact import campaign_launch_impact, campaign_launch_preview
from campaigns.models import Campaign, TaskCompletion, TaskProgress
from campaigns.selectors import campaign_targeting, live_task_of
from campaigns.services import campaign_submit
from members.models import Tier
from portal.approvals import approval_decide, approval_impact
from portal.choices import Role
from portal.models import ApprovalRequest
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


@pytest.fixture(autouse=True)
def point_value(settings):
    settings.POINT_VALUE_FEN = 1  # a point costs a fen


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


@pytest.fixture
def people(make_user):
    return {
        "author": make_user(Role.PRODUCT_OPERATOR, username="po_author", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="ba", branch="HO"),
    }


@pytest.fixture
def members(db):
    """Ten gold customers (four active, six dormant) the campaign reaches, and customers it
    must not: opted out of marketing, account closed, another tier, no tier yet."""
    gold = tier("GOLD")
    reached = {
        "active": [MemberFactory(tier=gold, lifecycle_stage="ACTIVE") for _ in range(4)],
        "dormant": [MemberFactory(tier=gold, lifecycle_stage="DORMANT") for _ in range(6)],
    }
    outside = [
        MemberFactory(tier=gold, lifecycle_stage="ACTIVE", marketing_opt_out=True),
        MemberFactory(tier=gold, lifecycle_stage="DORMANT", status="CLOSED"),
        MemberFactory(tier=tier("STANDARD"), lifecycle_stage="DORMANT"),
        MemberFactory(tier=None, lifecycle_stage="DORMANT"),
    ]
    return {**reached, "outside": outside}


@pytest.fixture
def budget(db):
    """¥10,000.00, of which ¥1,000.00 consumed and ¥1,500.00 given to a child budget and not
    yet spent by it."""
    budget = BudgetFactory(
        code="GOLD-2026", name="金卡活动预算", amount_fen=1_000_000, consumed_fen=100_000
    )
    BudgetFactory(code="GOLD-BRANCH", parent=budget, amount_fen=200_000, consumed_fen=50_000)
    return budget


@pytest.fixture
def gift(budget):
    return BenefitFactory(code="GIFT", name="绑卡礼", name_en="Card gift", unit_cost_fen=10_000)


def gold_campaign(author, budget, gift) -> Campaign:
    """Gold members, ten days from today: a daily sign-in (5 points) for all of them and a
    one-off card binding (the ¥100 gift) for the dormant ones."""
    campaign = CampaignFactory(
        code="GOLD-WINTER",
        name="金卡冬季活动",
        status="DRAFT",
        created_by=author,
        budget=budget,
        starts_on=today(),
        ends_on=today() + timedelta(days=9),
    )
    campaign.target_tiers.add(tier("GOLD"))
    TaskFactory(
        campaign=campaign,
        name="每日签到",
        event_type="SIGN_IN",
        recurrence="DAILY",
        reward_points=5,
        position=1,
    )
    TaskFactory(
        campaign=campaign,
        name="绑卡有礼",
        event_type="BIND_CARD",
        recurrence="ONCE",
        reward_points=0,
        reward_benefit=gift,
        offered_stages=["DORMANT"],
        position=2,
    )
    return campaign


@pytest.fixture
def sign_in_history(members, db):
    """An ended gold campaign of ten days whose daily sign-in was completed 20 times: 20 % per
    member offered (the ten gold customers) and day."""
    ended = CampaignFactory(
        code="GOLD-AUTUMN",
        status="ENDED",
        starts_on=today() - timedelta(days=40),
        ends_on=today() - timedelta(days=31),
    )
    ended.target_tiers.add(tier("GOLD"))
    task = TaskFactory(campaign=ended, event_type="SIGN_IN", recurrence="DAILY", reward_points=5)
    everyone = members["active"] + members["dormant"]
    for n in range(20):
        member, day = everyone[n % 10], ended.starts_on + timedelta(days=n // 10)
        TaskProgress.objects.create(
            member=member,
            task=task,
            period_key=day.isoformat(),
            period_start=day,
            period_end=day,
            value=1,
            best=1,
            steps_reached=1,
            stage_at_start=member.lifecycle_stage,
        )
        TaskCompletion.objects.create(
            member=member,
            task=task,
            campaign=ended,
            period_key=day.isoformat(),
            reward_status="REWARDED",
            reward_points=5,
            cost_fen=5,
            stage_at_start=member.lifecycle_stage,
        )
    return task


@pytest.fixture
def other_live(members, db):
    """A live campaign for active customers (it shares the four active gold ones), one that
    shares nobody, and a draft (not live) that would share everyone."""
    shared = CampaignFactory(code="ACTIVE-CARE", name="活跃客户关怀", target_stages=["ACTIVE"])
    TaskFactory(campaign=shared)
    standard = CampaignFactory(code="STD-ONLY", name="普卡专享")
    standard.target_tiers.add(tier("STANDARD"))
    CampaignFactory(code="DRAFT-ALL", name="草稿活动", status="DRAFT")
    return shared


def lines_of(campaign) -> dict[str, str]:
    with translation.override("en"):
        return dict(campaign_launch_impact(campaign=campaign))


def test_the_launch_shows_audience_tasks_cost_against_the_budget_left_and_overlap(
    people, members, budget, gift, sign_in_history, other_live
):
    campaign = gold_campaign(people["author"], budget, gift)
    campaign_submit(campaign=campaign, actor=people["author"])
    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)

    with translation.override("en"):
        lines = dict(approval_impact(approval))

    assert lines["Audience now"] == "10 members"
    assert lines["“每日签到”: members offered"] == "10 members"
    assert lines["“绑卡有礼”: members offered"] == "6 members"  # the dormant ones
    # 10 members × 10 days × 20 % (history) = 20 completions × 5 points (¥0.05)
    assert lines["“每日签到”: expected"] == "20 completions in 10 periods, CNY 1.00"
    assert lines["“每日签到”: basis"] == (
        "20.0 % per member and period, from the history of 1 similar task "
        "(Sign-in, Number of events)"
    )
    # 6 members × once × 10 % (assumed: nobody has bound a card in a campaign yet) ≈ 1 × ¥100
    assert lines["“绑卡有礼”: expected"] == "1 completion in 1 period, CNY 100.00"
    assert lines["“绑卡有礼”: basis"] == "assumed 10.0 % per member and period, no history"
    assert lines["Expected cost, total"] == "CNY 101.00"
    assert lines["Budget"] == "金卡活动预算 (CNY 10,000.00)"
    assert lines["Consumed"] == "CNY 1,000.00"
    assert lines["Committed"] == "CNY 1,500.00 (child budgets not yet spent CNY 1,500.00)"
    assert lines["Budget left"] == "CNY 7,500.00"
    assert lines["Expected cost against the budget left"] == "1.3 % of the budget left"
    assert lines["Also in the audience of “活跃客户关怀”"] == "4 members"
    assert not any("普卡专享" in what or "草稿活动" in what for what in lines)


def test_other_live_campaigns_on_the_same_budget_are_committed(people, members, budget, gift):
    sharing = CampaignFactory(code="GOLD-SHARE", name="同预算活动", budget=budget)
    sharing.target_tiers.add(tier("GOLD"))
    TaskFactory(campaign=sharing, event_type="BIND_CARD", reward_points=0, reward_benefit=gift)
    campaign = gold_campaign(people["author"], budget, gift)

    lines = lines_of(campaign)

    # the sharing campaign: 10 members × once × 10 % (assumed) = 1 gift, ¥100.00 to come
    assert lines["Committed"] == (
        "CNY 1,600.00 (同预算活动 expected CNY 100.00; child budgets not yet spent CNY 1,500.00)"
    )
    assert lines["Budget left"] == "CNY 7,400.00"


def test_a_cost_beyond_the_budget_left_is_said(people, members, gift):
    small = BudgetFactory(code="TINY", name="小预算", amount_fen=5_000)
    campaign = gold_campaign(people["author"], small, gift)

    lines = lines_of(campaign)

    assert lines["Expected cost against the budget left"] == (
        "exceeds the budget left by CNY 50.50"  # ¥100.50 expected (no history), ¥50.00 left
    )


def test_no_overlap_is_said(people, members, budget, gift):
    assert lines_of(gold_campaign(people["author"], budget, gift))[
        "Overlap with other live campaigns"
    ] == ("none")


def test_the_launch_terms_speak_business_words(people, members, budget, gift):
    campaign = gold_campaign(people["author"], budget, gift)
    ladder = TaskFactory(
        campaign=campaign,
        name="刷卡阶梯",
        event_type="CARD_SPEND",
        measure="AMOUNT_SUM",
        target=Decimal("1000"),
        recurrence="MONTHLY",
        reward_points=0,
        max_rewards_per_member=3,
        max_rewards_per_period=1000,
        position=3,
    )
    TaskStepFactory(task=ladder, step_no=1, target=Decimal("1000"), reward_points=10)
    TaskStepFactory(task=ladder, step_no=2, target=Decimal("5000"), reward_points=60)
    TaskStepFactory(
        task=ladder, step_no=3, target=Decimal("20000"), reward_points=300, reward_benefit=gift
    )

    with translation.override("en"):
        campaign_submit(campaign=campaign, actor=people["author"])
    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)

    assert approval.current == {"status": "Draft"}
    terms = approval.proposal
    assert terms["status"] == "Scheduled / Active"
    assert terms["budget"] == "金卡活动预算 (CNY 10,000.00)"
    assert terms["target tiers"] == "Gold"
    assert terms["target stages"] == "every stage"
    assert terms["segments"] == "no segment restriction"
    assert terms["task 1"] == (
        "每日签到: Sign-in, Number of events at least 1 time, Daily → 5 points "
        "(no limit per member; no limit per period)"
    )
    assert terms["task 2"] == (
        "绑卡有礼: Bind card, Number of events at least 1 time, Once → Card gift "
        "(no limit per member; no limit per period); offered to stages Dormant"
    )
    assert terms["task 3"] == (
        "刷卡阶梯: Card spend, Sum of amounts (CNY), Monthly → "
        "step 1: at least CNY 1,000.00 → 10 points; step 2: at least CNY 5,000.00 → 60 points; "
        "step 3: at least CNY 20,000.00 → 300 points + Card gift "
        "(at most 3 times per member; at most 1,000 members per period)"
    )
    raw = " ".join(str(value) for value in approval.proposal.values())
    for code in ("SIGN_IN", "COUNT", "DAILY", "GOLD", "GIFT", "DORMANT", "None", "[]"):
        assert code not in raw


def test_the_launch_terms_are_in_chinese_for_a_chinese_requester(people, members, budget, gift):
    campaign = gold_campaign(people["author"], budget, gift)

    with translation.override("zh-hans"):
        campaign_submit(campaign=campaign, actor=people["author"])

    terms = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH).proposal
    assert terms["target tiers"] == "金卡"
    assert "签到" in terms["task 1"] and "每日" in terms["task 1"]
    assert "绑卡礼" in terms["task 2"] and "沉睡" in terms["task 2"]
    assert "SIGN_IN" not in terms["task 1"] and "Sign-in" not in terms["task 1"]


def test_the_approval_page_shows_the_impact(client, people, members, budget, gift, other_live):
    campaign = gold_campaign(people["author"], budget, gift)
    campaign_submit(campaign=campaign, actor=people["author"])
    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)
    client.force_login(people["approver"])

    page = client.get(reverse("approval-detail", args=[approval.pk]), HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    for words in ("Audience now", "10 members", "Budget left", "CNY 7,500.00", "活跃客户关怀"):
        assert words in html


def test_the_approvals_api_shows_the_impact(api_client_for, people, members, budget, gift):
    campaign = gold_campaign(people["author"], budget, gift)
    campaign_submit(campaign=campaign, actor=people["author"])
    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)

    body = (
        api_client_for(people["approver"])
        .get(f"/api/v1/approvals/{approval.pk}/", HTTP_ACCEPT_LANGUAGE="en")
        .json()
    )

    impact = {line["what"]: line["value"] for line in body["impact"]}
    assert impact["Audience now"] == "10 members"
    assert impact["“绑卡有礼”: members offered"] == "6 members"


# --- preview equals result -------------------------------------------------------------------


def test_after_approval_the_events_reach_exactly_the_members_the_preview_counted(
    people, members, budget, gift, post_events
):
    campaign = gold_campaign(people["author"], budget, gift)
    campaign_submit(campaign=campaign, actor=people["author"])
    preview = campaign_launch_preview(campaign=campaign)
    sign_in, bind_card = campaign.tasks.order_by("position")
    offered = {
        task.pk: set(live_task_of(task).targeting.members().values_list("pk", flat=True))
        for task in (sign_in, bind_card)
    }
    audience = set(campaign_targeting(campaign).members().values_list("pk", flat=True))

    approval_decide(
        approval=ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH),
        approve=True,
        actor=people["approver"],
    )
    everyone = members["active"] + members["dormant"] + members["outside"]
    post_events(*(event(m, type=kind) for m in everyone for kind in ("SIGN_IN", "BIND_CARD")))

    started = {
        task.pk: set(TaskProgress.objects.filter(task=task).values_list("member_id", flat=True))
        for task in (sign_in, bind_card)
    }
    assert preview.audience == len(audience) == 10
    assert preview.offered() == {sign_in.pk: 10, bind_card.pk: 6}
    assert started == offered  # the very members, not just as many
    assert {len(ids) for ids in started.values()} == {10, 6}
    assert set().union(*started.values()) == audience
    assert not TaskProgress.objects.filter(member__in=members["outside"]).exists()


def test_a_ladder_task_is_estimated_step_by_step_within_its_caps(
    people, members, budget, gift, sign_in_history
):
    campaign = gold_campaign(people["author"], budget, gift)
    campaign.tasks.all().delete()
    ladder = TaskFactory(
        campaign=campaign,
        name="签到阶梯",
        event_type="SIGN_IN",
        recurrence="DAILY",
        reward_points=0,
        max_rewards_per_period=1,
    )
    TaskStepFactory(task=ladder, step_no=1, target=Decimal("1"), reward_points=10)
    TaskStepFactory(task=ladder, step_no=2, target=Decimal("3"), reward_points=100)

    preview = campaign_launch_preview(campaign=campaign)

    (estimate,) = preview.tasks
    # 10 members × 10 days: step 1 at 20 % (history) would be 20, but one member a day is
    # rewarded; step 2 (no similar task has one) at an assumed 5 %: 5
    assert [step.completions for step in estimate.steps] == [10, 5]
    assert estimate.cost_fen == 10 * 10 + 5 * 100
    with translation.override("en"):
        assert estimate.basis_text() == (
            "step 1: 20.0 % per member and period, from the history of 1 similar task "
            "(Sign-in, Number of events); "
            "step 2: assumed 5.0 % per member and period, no history"
        )
