"""A launched campaign's rewards, caps and budget change only when a second person approves
(issue 14), whichever door the change comes through — the admin or the API: both answer with
the pending approval and change nothing until a budget approver other than the proposer
approves; names and descriptions apply at once; one change waits per campaign; approving
applies exactly what the approval showed, checked again against the campaign as it is then;
a value out of bounds is refused on its field in the user's language.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from campaigns.choices import CampaignApproval
from campaigns.impact import campaign_change_preview
from campaigns.models import Campaign, Task, TaskCompletion, TaskStep
from campaigns.services.changes import campaign_change
from campaigns.terms import TaskTerms
from members.models import Tier
from portal.approvals import approval_decide, approval_impact
from portal.choices import ApprovalStatus, Role
from portal.errors import NotAllowed, StateConflict
from portal.models import ApprovalRequest, AuditEntry
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

CAMPAIGNS = "/api/v1/campaigns/"
TASKS = "/api/v1/tasks/"
ADMIN_CAMPAIGNS = "/admin/campaigns/campaign/"
ADMIN_TASKS = "/admin/campaigns/task/"
CHANGE = CampaignApproval.CAMPAIGN_CHANGE


@pytest.fixture(autouse=True)
def point_value(settings):
    settings.POINT_VALUE_FEN = 1  # a point costs a fen


@pytest.fixture
def staff(make_user):
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
        "approver2": make_user(Role.BUDGET_APPROVER, username="approver2", branch="HO"),
    }


@pytest.fixture
def budget(db):
    return BudgetFactory(code="WINTER-2026", name="冬季活动预算", amount_fen=1_000_000)


@pytest.fixture
def launched(staff, budget):
    """An active campaign for gold members: a daily sign-in for 5 points (at most 3 times per
    member) and a monthly card-spend ladder (10 / 60 points)."""
    campaign = CampaignFactory(
        code="WINTER", name="冬季活动", budget=budget, created_by=staff["operator"]
    )
    campaign.target_tiers.add(Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD"))
    sign_in = TaskFactory(
        campaign=campaign,
        name="每日签到",
        recurrence="DAILY",
        reward_points=5,
        max_rewards_per_member=3,
        position=1,
    )
    ladder = TaskFactory(
        campaign=campaign,
        name="刷卡阶梯",
        event_type="CARD_SPEND",
        measure="AMOUNT_SUM",
        recurrence="MONTHLY",
        reward_points=0,
        position=2,
    )
    TaskStepFactory(task=ladder, step_no=1, target=Decimal("1000"), reward_points=10)
    TaskStepFactory(task=ladder, step_no=2, target=Decimal("5000"), reward_points=60)
    gold = Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")
    for _ in range(10):
        MemberFactory(tier=gold, lifecycle_stage="ACTIVE")
    return {"campaign": campaign, "sign_in": sign_in, "ladder": ladder}


def pending() -> ApprovalRequest:
    return ApprovalRequest.objects.get(kind=CHANGE, status=ApprovalStatus.PENDING)


def english_impact(approval) -> dict[str, str]:
    with translation.override("en"):
        return dict(approval_impact(approval))


# --- the API ---------------------------------------------------------------------------------


def test_a_reward_change_over_the_api_is_202_and_waits_for_a_second_person(
    api_client_for, staff, launched
):
    task = launched["sign_in"]

    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{task.pk}/", {"reward_points": 8}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["reward_points"] == 5  # the task as it still is
    assert body["approval"]["kind"] == CHANGE and body["approval"]["status"] == "PENDING"
    assert body["approval"]["proposal"]["changes"] == [
        {"task": task.pk, "step": None, "field": "reward_points", "from": 5, "to": 8}
    ]
    impact = {line["what"]: line["value"] for line in body["approval"]["impact"]}
    assert impact["“每日签到”: reward points"] == "5 points → 8 points"
    task.refresh_from_db()
    assert task.reward_points == 5

    approved = api_client_for(staff["approver"]).post(
        f"{CAMPAIGNS}{launched['campaign'].pk}/approve/", {"comment": "ok"}, format="json"
    )

    assert approved.status_code == 200, approved.content
    task.refresh_from_db()
    assert task.reward_points == 8
    entry = AuditEntry.objects.filter(action="task.change").latest("pk")
    assert entry.changes["reward_points"] == [5, 8]
    assert entry.changes["approval"] == body["approval"]["id"]


def test_names_apply_at_once_and_the_budget_waits(api_client_for, staff, launched):
    campaign = launched["campaign"]
    new_budget = BudgetFactory(code="SPRING-2027", name="春季预算", amount_fen=2_000_000)
    client = api_client_for(staff["operator"])

    renamed = client.patch(f"{TASKS}{launched['sign_in'].pk}/", {"name": "天天签到"}, format="json")
    proposed = client.patch(
        f"{CAMPAIGNS}{campaign.pk}/",
        {"name": "冬日好礼", "description": "新说明", "budget": "SPRING-2027"},
        format="json",
    )

    assert renamed.status_code == 200 and renamed.json()["name"] == "天天签到"
    assert "approval" not in renamed.json()
    assert proposed.status_code == 202, proposed.content
    campaign.refresh_from_db()
    assert (campaign.name, campaign.description) == ("冬日好礼", "新说明")
    assert campaign.budget.code == "WINTER-2026"
    approval = pending()
    assert approval.current["budget"].startswith("冬季活动预算")
    assert approval.proposal["budget"].startswith("春季预算")
    assert (
        english_impact(approval)["Charged to budget"]
        == "冬季活动预算 (CNY 10,000.00) → 春季预算 (CNY 20,000.00)"
    )

    approval_decide(approval=approval, approve=True, actor=staff["approver"])

    campaign.refresh_from_db()
    assert campaign.budget == new_budget


def test_a_ladder_step_reward_change_keeps_the_ladder_and_waits(api_client_for, staff, launched):
    ladder = launched["ladder"]
    gift = BenefitFactory(code="GIFT", name="刷卡礼", name_en="Card gift")
    steps = [
        {"step_no": 1, "target": "1000.00", "reward_points": 10},
        {"step_no": 2, "target": "5000.00", "reward_points": 80, "reward_benefit": "GIFT"},
    ]

    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{ladder.pk}/", {"steps": steps}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 202, response.content
    assert list(ladder.steps.values_list("reward_points", "reward_benefit")) == [
        (10, None),
        (60, None),
    ]
    approval = pending()
    assert approval.current["task 2"] == (
        "刷卡阶梯: Card spend, Sum of amounts (CNY), Monthly → "
        "step 1: at least CNY 1,000.00 → 10 points; step 2: at least CNY 5,000.00 → 60 points "
        "(no limit per member; no limit per period)"
    )
    assert approval.proposal["task 2"] == (
        "刷卡阶梯: Card spend, Sum of amounts (CNY), Monthly → "
        "step 1: at least CNY 1,000.00 → 10 points; step 2: at least CNY 5,000.00 → 80 points + "
        "Card gift (no limit per member; no limit per period)"
    )
    impact = english_impact(approval)
    assert impact["“刷卡阶梯” step 2: reward points"] == "60 points → 80 points"
    assert impact["“刷卡阶梯” step 2: reward benefit"] == "no benefit → Card gift"

    approval_decide(approval=approval, approve=True, actor=staff["approver"])

    assert list(
        ladder.steps.values_list("step_no", "target", "reward_points", "reward_benefit")
    ) == [
        (1, Decimal("1000.00"), 10, None),
        (2, Decimal("5000.00"), 80, gift.pk),
    ]


def test_the_maker_cannot_approve_their_own_change(api_client_for, staff, launched):
    api_client_for(staff["operator"]).patch(
        f"{TASKS}{launched['sign_in'].pk}/", {"max_rewards_per_member": None}, format="json"
    )
    approval = pending()

    with pytest.raises(NotAllowed):
        approval_decide(approval=approval, approve=True, actor=staff["operator"])
    over_api = api_client_for(staff["operator"]).post(
        f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json"
    )

    assert over_api.status_code == 403 and over_api.json()["code"] in {
        "self_approval",
        "permission_denied",
    }
    launched["sign_in"].refresh_from_db()
    assert launched["sign_in"].max_rewards_per_member == 3
    assert pending().pk == approval.pk


def test_one_change_waits_per_campaign(api_client_for, staff, launched):
    client = api_client_for(staff["operator"])
    first = client.patch(f"{TASKS}{launched['sign_in'].pk}/", {"reward_points": 8}, format="json")

    second = client.patch(
        f"{TASKS}{launched['ladder'].pk}/",
        {"max_rewards_per_period": 100},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    names = client.patch(f"{TASKS}{launched['ladder'].pk}/", {"name": "刷卡有礼"}, format="json")

    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["code"] == "change_pending"
    assert "already waiting for approval" in second.json()["detail"]
    assert names.status_code == 200  # names still apply at once
    assert ApprovalRequest.objects.filter(kind=CHANGE).count() == 1
    launched["ladder"].refresh_from_db()
    assert launched["ladder"].max_rewards_per_period is None


@pytest.mark.parametrize(
    "body",
    [{"target": "3"}, {"event_type": "LOGIN"}, {"offered_stages": ["DORMANT"]}],
    ids=["target", "event-type", "offered-stages"],
)
def test_what_was_approved_as_it_is_stays_409(api_client_for, staff, launched, body):
    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{launched['sign_in'].pk}/", body, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "campaign_not_editable"
    assert "once launched" in response.json()["detail"]
    assert not ApprovalRequest.objects.filter(kind=CHANGE).exists()


def test_a_campaign_waiting_for_its_launch_is_not_changed(api_client_for, staff, budget):
    campaign = CampaignFactory(status="PENDING_APPROVAL", budget=budget)

    response = api_client_for(staff["operator"]).patch(
        f"{CAMPAIGNS}{campaign.pk}/", {"name": "改"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "campaign_not_editable"


@pytest.mark.parametrize(
    ("language", "says"), [("en", "0 to 100,000"), ("zh-hans", "0 至 100,000")]
)
def test_a_reward_out_of_bounds_is_a_field_error_in_the_users_language(
    api_client_for, staff, launched, language, says
):
    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{launched['sign_in'].pk}/",
        {"reward_points": 9_999_999_999},
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 400, response.content
    assert says in str(response.json()["reward_points"])
    assert not ApprovalRequest.objects.filter(kind=CHANGE).exists()


@pytest.mark.parametrize(("language", "says"), [("en", "1 to 10,000"), ("zh-hans", "1 至 10,000")])
def test_the_service_refuses_a_cap_out_of_bounds_by_field(staff, launched, language, says):
    with translation.override(language), pytest.raises(ValidationError) as refused:
        campaign_change(
            campaign=launched["campaign"],
            actor=staff["operator"],
            tasks={launched["sign_in"].pk: {"max_rewards_per_member": 10_001}},
        )

    assert says in str(refused.value.message_dict["max_rewards_per_member"])
    assert not ApprovalRequest.objects.filter(kind=CHANGE).exists()


def test_a_budget_that_does_not_hold_the_window_is_refused_on_the_budget(
    api_client_for, staff, launched
):
    BudgetFactory(code="LAST-YEAR", period_start=date(2000, 1, 1), period_end=date(2000, 12, 31))

    response = api_client_for(staff["operator"]).patch(
        f"{CAMPAIGNS}{launched['campaign'].pk}/",
        {"budget": "LAST-YEAR"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400, response.content
    assert "LAST-YEAR" in str(response.json()["budget"])


# --- the admin ---------------------------------------------------------------------------------


def management(prefix: str, total: int, initial: int) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def campaign_page(campaign: Campaign, tasks: list[Task], **changes) -> dict:
    """The launched campaign's page as posted: its own values, and its tasks' changeable ones."""
    data = {
        "name": campaign.name,
        "description": campaign.description,
        "budget": str(campaign.budget_id),
        **management("tasks", len(tasks), len(tasks)),
    }
    for n, task in enumerate(tasks):
        data |= {
            f"tasks-{n}-id": str(task.pk),
            f"tasks-{n}-campaign": str(campaign.pk),
            f"tasks-{n}-name": task.name,
            f"tasks-{n}-position": str(task.position),
            f"tasks-{n}-reward_points": str(task.reward_points),
            f"tasks-{n}-reward_benefit": "",
            f"tasks-{n}-max_rewards_per_member": str(task.max_rewards_per_member or ""),
            f"tasks-{n}-max_rewards_per_period": str(task.max_rewards_per_period or ""),
            f"tasks-{n}-description": task.description,
        }
    return {**data, **changes}


def test_the_admin_page_of_a_launched_campaign_offers_only_what_may_change(client, staff, launched):
    client.force_login(staff["operator"])

    page = client.get(f"{ADMIN_CAMPAIGNS}{launched['campaign'].pk}/change/")

    html = page.content.decode()
    assert page.context["has_change_permission"] is True
    for editable in ('name="name"', 'name="budget"', 'name="tasks-0-reward_points"'):
        assert editable in html
    for fixed in ('name="starts_on"', 'name="target_stages"', 'name="tasks-0-target"'):
        assert fixed not in html
    inline = page.context["inline_admin_formsets"][0]
    assert inline.has_add_permission is False and inline.has_delete_permission is False


def test_the_admin_sends_a_reward_change_for_approval_and_a_colleague_approves_it(
    client, staff, launched
):
    campaign, sign_in, ladder = launched["campaign"], launched["sign_in"], launched["ladder"]
    client.force_login(staff["operator"])

    response = client.post(
        f"{ADMIN_CAMPAIGNS}{campaign.pk}/change/",
        campaign_page(
            campaign,
            [sign_in, ladder],
            name="冬季大礼",
            **{"tasks-0-reward_points": "8", "tasks-0-max_rewards_per_member": ""},
        ),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    approval = pending()
    assert response["Location"] == reverse("approval-detail", args=[approval.pk])
    assert any("Sent for approval" in str(m) for m in get_messages(response.wsgi_request))
    campaign.refresh_from_db()
    sign_in.refresh_from_db()
    assert campaign.name == "冬季大礼"  # at once
    assert (sign_in.reward_points, sign_in.max_rewards_per_member) == (5, 3)  # waits
    impact = english_impact(approval)
    assert impact["“每日签到”: reward points"] == "5 points → 8 points"
    assert impact["“每日签到”: cap per member"] == (
        "at most 3 times per member → no limit per member"
    )

    client.force_login(staff["approver"])
    decided = client.post(
        reverse("approval-decide", args=[approval.pk]), {"decision": "approve", "comment": ""}
    )

    assert decided.status_code == 302
    sign_in.refresh_from_db()
    assert (sign_in.reward_points, sign_in.max_rewards_per_member) == (8, None)


def test_the_admin_task_page_sends_a_step_reward_for_approval(client, staff, launched):
    ladder = launched["ladder"]
    first, second = ladder.steps.order_by("step_no")
    client.force_login(staff["operator"])
    page = client.get(f"{ADMIN_TASKS}{ladder.pk}/change/")

    response = client.post(
        f"{ADMIN_TASKS}{ladder.pk}/change/",
        {
            "name": ladder.name,
            "description": "",
            "reward_points": "0",
            "reward_benefit": "",
            "max_rewards_per_member": "",
            "max_rewards_per_period": "",
            "position": str(ladder.position),
            **management("steps", 2, 2),
            "steps-0-id": str(first.pk),
            "steps-0-task": str(ladder.pk),
            "steps-0-reward_points": "10",
            "steps-0-reward_benefit": "",
            "steps-1-id": str(second.pk),
            "steps-1-task": str(ladder.pk),
            "steps-1-reward_points": "90",
            "steps-1-reward_benefit": "",
        },
    )

    assert page.status_code == 200 and page.context["has_change_permission"] is True
    assert 'name="steps-0-target"' not in page.content.decode()
    assert response.status_code == 302, response.context and response.context["errors"]
    approval = pending()
    assert response["Location"] == reverse("approval-detail", args=[approval.pk])
    assert TaskStep.objects.get(pk=second.pk).reward_points == 60

    approval_decide(approval=approval, approve=True, actor=staff["approver"])

    assert TaskStep.objects.get(pk=second.pk).reward_points == 90
    assert TaskStep.objects.get(pk=second.pk).target == Decimal("5000")


@pytest.mark.parametrize(
    ("language", "says"), [("en", "0 to 100,000"), ("zh-hans", "0 至 100,000")]
)
def test_the_admin_refuses_a_reward_out_of_bounds_on_its_field(
    client, staff, launched, language, says
):
    campaign, sign_in, ladder = launched["campaign"], launched["sign_in"], launched["ladder"]
    client.force_login(staff["operator"])

    response = client.post(
        f"{ADMIN_CAMPAIGNS}{campaign.pk}/change/",
        campaign_page(campaign, [sign_in, ladder], **{"tasks-0-reward_points": "100001"}),
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert says in str(errors["reward_points"])
    assert not ApprovalRequest.objects.filter(kind=CHANGE).exists()


def test_the_admin_says_when_a_change_already_waits(client, staff, launched):
    campaign, sign_in, ladder = launched["campaign"], launched["sign_in"], launched["ladder"]
    campaign_change(
        campaign=campaign, actor=staff["operator"], tasks={ladder.pk: {"reward_points": 1}}
    )
    client.force_login(staff["operator"])

    response = client.post(
        f"{ADMIN_CAMPAIGNS}{campaign.pk}/change/",
        campaign_page(campaign, [sign_in, ladder], **{"tasks-0-reward_points": "8"}),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    assert response["Location"] == f"{ADMIN_CAMPAIGNS}{campaign.pk}/change/"
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("already waiting for approval" in m for m in shown)
    sign_in.refresh_from_db()
    assert sign_in.reward_points == 5
    assert ApprovalRequest.objects.filter(kind=CHANGE).count() == 1


# --- applying: what the approval showed, checked again -------------------------------------------


def test_approving_applies_exactly_what_the_preview_showed(
    staff, launched, api_client_for, post_events
):
    campaign, sign_in = launched["campaign"], launched["sign_in"]
    gold_member = MemberFactory(
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD"), lifecycle_stage="ACTIVE"
    )
    with translation.override("en"):
        campaign_change(
            campaign=campaign,
            actor=staff["operator"],
            tasks={sign_in.pk: {"reward_points": 20, "max_rewards_per_member": 5}},
        )
    approval = pending()
    shown = approval.proposal["task 1"]
    preview = campaign_change_preview(campaign=campaign, changes=approval.proposal["changes"])

    approval_decide(approval=approval, approve=True, actor=staff["approver"])

    sign_in.refresh_from_db()
    with translation.override("en"):
        assert TaskTerms.of(sign_in).text() == shown
    assert "20 points" in shown and "at most 5 times per member" in shown
    after = campaign_change_preview(campaign=campaign, changes=[])
    assert after.cost_before_fen == preview.cost_after_fen  # the estimate it was approved on
    post_events(event(gold_member))
    completion = TaskCompletion.objects.get(member=gold_member, task=sign_in)
    assert (completion.reward_status, completion.reward_points) == ("REWARDED", 20)


def test_the_impact_shows_the_expected_cost_change(staff, launched):
    with translation.override("en"):
        campaign_change(
            campaign=launched["campaign"],
            actor=staff["operator"],
            tasks={launched["sign_in"].pk: {"reward_points": 10}},
        )

    impact = english_impact(pending())

    # 10 gold members × 61 days left × 10 % (assumed) = 61, within 3 per member (30): 30
    assert impact["“每日签到”: expected now"].startswith("30 completions")
    assert impact["“每日签到”: expected if approved"] == (
        impact["“每日签到”: expected now"].replace("CNY 1.50", "CNY 3.00")
    )
    assert impact["Expected cost change"] == "+CNY 1.50"
    assert "Budget left" in impact


def test_a_change_of_a_campaign_that_ended_meanwhile_is_refused(staff, launched):
    campaign_change(
        campaign=launched["campaign"],
        actor=staff["operator"],
        tasks={launched["sign_in"].pk: {"reward_points": 8}},
    )
    Campaign.objects.filter(pk=launched["campaign"].pk).update(status="ENDED")

    with pytest.raises(StateConflict):
        approval_decide(approval=pending(), approve=True, actor=staff["approver"])

    launched["sign_in"].refresh_from_db()
    assert launched["sign_in"].reward_points == 5
    assert pending().status == ApprovalStatus.PENDING


def test_a_change_whose_values_moved_meanwhile_is_refused(staff, launched):
    campaign_change(
        campaign=launched["campaign"],
        actor=staff["operator"],
        tasks={launched["sign_in"].pk: {"reward_points": 8}},
    )
    Task.objects.filter(pk=launched["sign_in"].pk).update(reward_points=7)

    with (
        pytest.raises(StateConflict, match="changed since this proposal"),
        translation.override("en"),
    ):
        approval_decide(approval=pending(), approve=True, actor=staff["approver"])

    assert Task.objects.get(pk=launched["sign_in"].pk).reward_points == 7


def test_a_rejected_change_changes_nothing(staff, launched):
    campaign_change(
        campaign=launched["campaign"],
        actor=staff["operator"],
        tasks={launched["sign_in"].pk: {"reward_points": 8}},
    )

    approval_decide(approval=pending(), approve=False, actor=staff["approver"], comment="太贵")

    launched["sign_in"].refresh_from_db()
    assert launched["sign_in"].reward_points == 5
    assert ApprovalRequest.objects.get(kind=CHANGE).status == ApprovalStatus.REJECTED
    # and the next change may be proposed
    campaign_change(
        campaign=launched["campaign"],
        actor=staff["operator"],
        tasks={launched["sign_in"].pk: {"reward_points": 6}},
    )
    assert ApprovalRequest.objects.filter(kind=CHANGE).count() == 2


def test_a_paused_or_scheduled_campaign_changes_through_approval_too(staff, budget):
    for status, start in (("PAUSED", today()), ("SCHEDULED", today() + timedelta(days=9))):
        campaign = CampaignFactory(status=status, budget=budget, starts_on=start)
        task = TaskFactory(campaign=campaign, reward_points=5)
        _campaign, approval = campaign_change(
            campaign=campaign, actor=staff["operator"], tasks={task.pk: {"reward_points": 7}}
        )
        assert approval is not None and approval.kind == CHANGE
