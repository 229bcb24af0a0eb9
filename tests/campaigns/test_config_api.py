"""The configuration API of campaigns, tasks and segments (API.md, "Configuration endpoints"):
who may do what, building a campaign with its tasks, the checks on targets and ladders,
the maker-checker workflow, and segments with their live size."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign, Task, TaskStep
from campaigns.services import campaign_submit
from members.models import Member, Segment, Tier
from members.segments import segment_filter
from portal.choices import Role
from portal.models import AuditEntry
from portal.permissions import PERMISSION_MATRIX
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    MemberFactory,
    SegmentFactory,
    TaskFactory,
    TaskStepFactory,
)

from .conftest import today

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/api/v1/campaigns/"
TASKS = "/api/v1/tasks/"
SEGMENTS = "/api/v1/segments/"


@pytest.fixture
def staff(make_user):
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "operator2": make_user(Role.PRODUCT_OPERATOR, username="operator2", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
    }


@pytest.fixture
def budget(db):
    return BudgetFactory(code="RETAIL-2026")


def draft(author, **kw) -> Campaign:
    """A draft whose window starts tomorrow (approval schedules it). Asked for as
    PENDING_APPROVAL, it gets a task and is submitted by its author, as in the portal."""
    kw.setdefault("starts_on", today() + timedelta(days=1))
    kw.setdefault("ends_on", today() + timedelta(days=60))
    status = kw.pop("status", "DRAFT")
    pending = status == "PENDING_APPROVAL"
    campaign = CampaignFactory(created_by=author, status="DRAFT" if pending else status, **kw)
    if pending:
        TaskFactory(campaign=campaign)
        campaign = campaign_submit(campaign=campaign, actor=author)
    return campaign


def campaign_body(budget, **kw) -> dict:
    return {
        "code": "C2026-REACT",
        "name": "沉睡客户唤醒",
        "description": "Wake dormant customers with easy tasks.",
        "department": budget.department.code,
        "budget": budget.code,
        "starts_on": (today() + timedelta(days=1)).isoformat(),
        "ends_on": (today() + timedelta(days=90)).isoformat(),
        "target_tiers": ["STANDARD", "GOLD"],
        "target_stages": ["DORMANT", "AT_RISK"],
        **kw,
    }


def task_body(campaign_code: str, **kw) -> dict:
    return {
        "campaign": campaign_code,
        "name": "Sign in 3 times",
        "event_type": "SIGN_IN",
        "measure": "COUNT",
        "target": "3",
        "recurrence": "WEEKLY",
        "reward_points": 50,
        **kw,
    }


LADDER = [
    {"step_no": 1, "target": "1000.00", "reward_points": 10},
    {"step_no": 2, "target": "5000.00", "reward_points": 60},
    {"step_no": 3, "target": "20000.00", "reward_points": 300},
]


# --- who may do what, role by role ------------------------------------------------------------


@pytest.fixture
def world(make_user, budget):
    """One object per workflow state, each written by someone who is not the caller."""
    author = make_user(Role.PRODUCT_OPERATOR, username="author", branch="HO")
    editable = draft(author, code="C-DRAFT", budget=budget)
    task = TaskFactory(campaign=editable)
    pending = draft(author, code="C-PENDING", budget=budget, status="PENDING_APPROVAL")
    TaskFactory(campaign=pending)
    active = CampaignFactory(code="C-ACTIVE", budget=budget, created_by=author)
    paused = CampaignFactory(code="C-PAUSED", budget=budget, created_by=author, status="PAUSED")
    segment = SegmentFactory(code="SEG-DORMANT", department=budget.department)
    return {
        "draft": editable,
        "task": task,
        "pending": pending,
        "active": active,
        "paused": paused,
        "segment": segment,
        "budget": budget,
    }


def _endpoints(world) -> list[tuple[str, str, str, dict | None, str]]:
    """(name, method, url, body, action of the matrix it needs)."""
    d, p, a, s = world["draft"], world["pending"], world["active"], world["segment"]
    t = world["task"]
    view, configure = "campaigns.view_campaigns", "campaigns.configure_campaigns"
    return [
        ("campaign list", "get", CAMPAIGNS, None, view),
        ("campaign read", "get", f"{CAMPAIGNS}{d.pk}/", None, view),
        ("campaign create", "post", CAMPAIGNS, campaign_body(world["budget"]), configure),
        ("campaign change", "patch", f"{CAMPAIGNS}{d.pk}/", {"name": "新名字"}, configure),
        ("submit", "post", f"{CAMPAIGNS}{d.pk}/submit/", {}, configure),
        ("approve", "post", f"{CAMPAIGNS}{p.pk}/approve/", {}, "campaigns.approve_campaign"),
        (
            "reject",
            "post",
            f"{CAMPAIGNS}{p.pk}/reject/",
            {"comment": "budget too high"},
            "campaigns.approve_campaign",
        ),
        ("pause", "post", f"{CAMPAIGNS}{a.pk}/pause/", {}, "campaigns.operate_campaign"),
        (
            "resume",
            "post",
            f"{CAMPAIGNS}{world['paused'].pk}/resume/",
            {},
            "campaigns.operate_campaign",
        ),
        ("end", "post", f"{CAMPAIGNS}{a.pk}/end/", {}, "campaigns.operate_campaign"),
        ("task list", "get", TASKS, None, view),
        ("task read", "get", f"{TASKS}{t.pk}/", None, view),
        ("task create", "post", TASKS, task_body(d.code), configure),
        ("task change", "patch", f"{TASKS}{t.pk}/", {"name": "Sign in"}, configure),
        ("task delete", "delete", f"{TASKS}{t.pk}/", None, configure),
        ("segment list", "get", SEGMENTS, None, "members.view_segments"),
        ("segment read", "get", f"{SEGMENTS}{s.pk}/", None, "members.view_segments"),
        (
            "segment create",
            "post",
            SEGMENTS,
            {"code": "SEG-NEW", "name": "New", "department": s.department.code, "rules": []},
            "members.configure_segments",
        ),
        (
            "segment change",
            "patch",
            f"{SEGMENTS}{s.pk}/",
            {"name": "x"},
            "members.configure_segments",
        ),
        ("segment delete", "delete", f"{SEGMENTS}{s.pk}/", None, "members.configure_segments"),
    ]


@pytest.mark.parametrize("role", list(Role), ids=[role.name for role in Role])
def test_each_endpoint_is_allowed_or_403_as_the_matrix_says(api_client_for, make_user, world, role):
    client = api_client_for(make_user(role, username=f"caller-{role.name}", branch="HO"))

    refused, expected_refused = set(), set()
    for name, method, url, body, action in _endpoints(world):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code != 500, (name, response.content)
        if response.status_code == 403:
            refused.add(name)
            assert set(response.json()) == {"detail", "code"}, name
        if role not in PERMISSION_MATRIX[action]:
            expected_refused.add(name)

    assert refused == expected_refused


def test_only_a_budget_approver_approves_and_only_operators_and_admins_configure():
    assert PERMISSION_MATRIX["campaigns.approve_campaign"] == {Role.BUDGET_APPROVER}
    assert PERMISSION_MATRIX["campaigns.configure_campaigns"] == {
        Role.PRODUCT_OPERATOR,
        Role.ADMINISTRATOR,
    }


@pytest.mark.parametrize("url", [CAMPAIGNS, TASKS, SEGMENTS])
def test_anonymous_caller_is_401(client, url):
    response = client.get(url)

    assert response.status_code in (401, 403)
    assert "detail" in response.json()


# --- building a campaign with its tasks -------------------------------------------------------


def test_operator_builds_a_campaign_with_two_tasks_one_laddered(api_client_for, staff, budget):
    client = api_client_for(staff["operator"])
    segment = SegmentFactory(code="SEG-DORMANT")
    lounge = BenefitFactory(code="LOUNGE")

    created = client.post(CAMPAIGNS, campaign_body(budget, segments=["SEG-DORMANT"]), format="json")
    first = client.post(TASKS, task_body("C2026-REACT", offered_stages=["DORMANT"]), format="json")
    second = client.post(
        TASKS,
        task_body(
            "C2026-REACT",
            name="Buy funds",
            event_type="FUND_PURCHASE",
            measure="AMOUNT_SUM",
            target="1000.00",
            recurrence="MONTHLY",
            difficulty="HARD",
            reward_points=0,
            min_event_amount="100.50",
            offered_tiers=["GOLD"],
            max_rewards_per_member=3,
            position=2,
            steps=[*LADDER[:2], {**LADDER[2], "reward_benefit": "LOUNGE"}],
        ),
        format="json",
    )

    assert created.status_code == 201, created.content
    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    campaign = client.get(f"{CAMPAIGNS}{created.json()['id']}/").json()
    assert campaign["status"] == "DRAFT"
    assert campaign["created_by"] == "operator"
    assert campaign["submitted_by"] is None and campaign["decided_by"] is None
    assert campaign["department"] == budget.department.code
    assert campaign["budget"] == "RETAIL-2026"
    assert sorted(campaign["target_tiers"]) == ["GOLD", "STANDARD"]
    assert campaign["target_stages"] == ["DORMANT", "AT_RISK"]
    assert campaign["segments"] == ["SEG-DORMANT"]
    assert [t["name"] for t in campaign["tasks"]] == ["Sign in 3 times", "Buy funds"]
    signin, funds = campaign["tasks"]
    assert signin["target"] == "3.00" and signin["steps"] == []
    assert signin["offered_stages"] == ["DORMANT"]
    assert funds["min_event_amount"] == "100.50"
    assert funds["offered_tiers"] == ["GOLD"]
    assert funds["steps"] == [
        {"step_no": 1, "target": "1000.00", "reward_points": 10, "reward_benefit": None},
        {"step_no": 2, "target": "5000.00", "reward_points": 60, "reward_benefit": None},
        {"step_no": 3, "target": "20000.00", "reward_points": 300, "reward_benefit": "LOUNGE"},
    ]
    stored = Task.objects.get(name="Buy funds")
    assert stored.min_event_amount == Decimal("100.50")
    assert list(stored.steps.values_list("target", flat=True)) == [
        Decimal("1000.00"),
        Decimal("5000.00"),
        Decimal("20000.00"),
    ]
    assert stored.steps.get(step_no=3).reward_benefit == lounge
    assert Campaign.objects.get(code="C2026-REACT").segments.get() == segment
    assert AuditEntry.objects.filter(action="campaign.create", actor=staff["operator"]).exists()
    assert AuditEntry.objects.filter(action="task.create").count() == 2


def test_amounts_sent_as_json_numbers_are_read_as_decimals_not_floats(
    api_client_for, staff, budget
):
    campaign = draft(staff["operator"], budget=budget)
    # numbers with a fraction, as a client would send them (not strings)
    body = (
        f'{{"campaign": "{campaign.code}", "name": "Spend", "event_type": "CARD_SPEND", '
        '"measure": "AMOUNT_SUM", "target": 0.1, "min_event_amount": 1.1, '
        '"recurrence": "ONCE", "reward_points": 5}'
    )

    response = api_client_for(staff["operator"]).post(TASKS, body, content_type="application/json")

    assert response.status_code == 201, response.content
    assert response.json()["target"] == "0.10"
    task = Task.objects.get(name="Spend")
    assert (task.target, task.min_event_amount) == (Decimal("0.10"), Decimal("1.10"))


def test_updating_a_ladder_replaces_its_steps(api_client_for, staff, budget):
    task = TaskFactory(campaign=draft(staff["operator"], budget=budget), measure="AMOUNT_SUM")
    TaskStepFactory(task=task, step_no=1, target=Decimal("10"))

    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{task.pk}/", {"steps": LADDER[:2]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert [s["target"] for s in response.json()["steps"]] == ["1000.00", "5000.00"]
    assert TaskStep.objects.filter(task=task).count() == 2


def test_tasks_can_be_listed_for_one_campaign(api_client_for, staff, budget):
    mine = draft(staff["operator"], code="C-MINE", budget=budget)
    TaskFactory(campaign=mine)
    TaskFactory(campaign=draft(staff["operator"], code="C-OTHER", budget=budget))

    body = api_client_for(staff["auditor"]).get(TASKS, {"campaign": "C-MINE"}).json()

    assert body["count"] == 1
    assert body["results"][0]["campaign"] == "C-MINE"


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"target": "2.5"}, "target", "whole number"),
        ({"measure": "CONSECUTIVE_DAYS", "target": "6.5"}, "target", "whole number"),
        ({"target": "0"}, "target", "more than 0"),
        ({"target": "-3"}, "target", "more than 0"),
        ({"target": "1.234"}, "target", "2"),
        (
            {"steps": [{"step_no": 1, "target": "5"}, {"step_no": 2, "target": "3"}]},
            "steps",
            "must be higher than step 1",
        ),
        (
            {"steps": [{"step_no": 1, "target": "5"}, {"step_no": 2, "target": "5"}]},
            "steps",
            "must be higher than step 1",
        ),
        (
            {"steps": [{"step_no": 1, "target": "1"}, {"step_no": 3, "target": "5"}]},
            "steps",
            "Number the steps 1 to n",
        ),
        (
            {"steps": [{"step_no": 1, "target": "1"}, {"step_no": 2, "target": "2.5"}]},
            "steps",
            "Step 2: The target must be a whole number",
        ),
        ({"offered_stages": ["SLEEPY"]}, "offered_stages", "SLEEPY"),
        ({"offered_tiers": ["DIAMOND"]}, "offered_tiers", "DIAMOND"),
        ({"reward_benefit": "NOPE"}, "reward_benefit", "NOPE"),
        ({"measure": "LUCK"}, "measure", "LUCK"),
    ],
    ids=[
        "non-whole-count",
        "non-whole-days",
        "zero",
        "negative",
        "three-decimals",
        "falling-ladder",
        "flat-ladder",
        "gap-in-steps",
        "non-whole-step",
        "unknown-stage",
        "unknown-tier",
        "unknown-benefit",
        "unknown-measure",
    ],
)
def test_a_task_that_does_not_add_up_is_400_naming_the_field(
    api_client_for, staff, budget, changes, field, says
):
    campaign = draft(staff["operator"], budget=budget)

    response = api_client_for(staff["operator"]).post(
        TASKS, task_body(campaign.code, **changes), format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert says in str(errors[field]), errors
    assert not Task.objects.exists()


def test_changing_the_measure_checks_the_saved_target_and_ladder(api_client_for, staff, budget):
    task = TaskFactory(
        campaign=draft(staff["operator"], budget=budget),
        measure="AMOUNT_SUM",
        target=Decimal("99.50"),
    )
    TaskStepFactory(task=task, step_no=1, target=Decimal("0.50"))

    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{task.pk}/", {"measure": "COUNT"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"target", "steps"}
    task.refresh_from_db()
    assert task.measure == "AMOUNT_SUM"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_on": (today() - timedelta(days=5)).isoformat()}, "ends_on"),
        ({"target_stages": ["SLEEPY"]}, "target_stages"),
        ({"target_tiers": ["DIAMOND"]}, "target_tiers"),
        ({"segments": ["SEG-NONE"]}, "segments"),
        ({"budget": "NO-BUDGET"}, "budget"),
        ({"department": "NO-DEPT"}, "department"),
    ],
)
def test_a_campaign_that_does_not_add_up_is_400(api_client_for, staff, budget, changes, field):
    body = {**campaign_body(budget), **changes}

    response = api_client_for(staff["operator"]).post(CAMPAIGNS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Campaign.objects.exists()


def test_status_and_author_cannot_be_written(api_client_for, staff, budget):
    response = api_client_for(staff["operator"]).post(
        CAMPAIGNS,
        campaign_body(budget, status="ACTIVE", created_by="approver", decision_comment="ok"),
        format="json",
    )

    assert response.status_code == 201
    campaign = Campaign.objects.get()
    assert campaign.status == "DRAFT"
    assert campaign.created_by == staff["operator"]
    assert campaign.decision_comment == ""


# --- editing only while editable ------------------------------------------------------------------


def test_a_submitted_campaign_and_its_tasks_cannot_be_edited_409(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    task = TaskFactory(campaign=campaign)
    client = api_client_for(staff["operator"])
    assert client.post(f"{CAMPAIGNS}{campaign.pk}/submit/").status_code == 200

    attempts = [
        client.patch(f"{CAMPAIGNS}{campaign.pk}/", {"name": "改"}, format="json"),
        client.post(TASKS, task_body(campaign.code), format="json"),
        client.patch(f"{TASKS}{task.pk}/", {"target": "9"}, format="json"),
        client.delete(f"{TASKS}{task.pk}/"),
    ]

    for response in attempts:
        assert response.status_code == 409, response.content
        body = response.json()
        assert body["code"] == "campaign_not_editable"
        assert campaign.code in body["detail"]
    campaign.refresh_from_db()
    task.refresh_from_db()
    assert campaign.name != "改" and campaign.status == "PENDING_APPROVAL"
    assert task.target == Decimal("1") and Task.objects.count() == 1


@pytest.mark.parametrize("status", ["SCHEDULED", "ACTIVE", "PAUSED", "ENDED"])
def test_a_launched_campaigns_window_cannot_be_edited_409(api_client_for, staff, budget, status):
    # a launched campaign takes names at once and rewards, caps and budget through approval
    # (tests/campaigns/test_campaign_change.py); its window was approved as it is
    campaign = CampaignFactory(status=status, budget=budget, created_by=staff["operator"])

    response = api_client_for(staff["operator"]).patch(
        f"{CAMPAIGNS}{campaign.pk}/",
        {"ends_on": (today() + timedelta(days=400)).isoformat()},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "campaign_not_editable"


def test_a_task_in_a_draft_can_be_deleted(api_client_for, staff, budget):
    task = TaskFactory(campaign=draft(staff["operator"], budget=budget))

    response = api_client_for(staff["operator"]).delete(f"{TASKS}{task.pk}/")

    assert response.status_code == 204
    assert not Task.objects.exists()


def test_a_campaign_is_not_deleted_through_the_api(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget)

    response = api_client_for(staff["operator"]).delete(f"{CAMPAIGNS}{campaign.pk}/")

    assert response.status_code == 405
    assert Campaign.objects.filter(pk=campaign.pk).exists()


# --- the workflow -------------------------------------------------------------------------------


def test_submit_then_a_budget_approver_approves(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    TaskFactory(campaign=campaign)

    submitted = api_client_for(staff["operator"]).post(f"{CAMPAIGNS}{campaign.pk}/submit/")
    approved = api_client_for(staff["approver"]).post(
        f"{CAMPAIGNS}{campaign.pk}/approve/", {"comment": "ok"}, format="json"
    )

    assert submitted.status_code == 200
    assert submitted.json()["status"] == "PENDING_APPROVAL"
    assert submitted.json()["submitted_by"] == "operator"
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["status"] == "SCHEDULED"  # the window starts tomorrow
    assert body["decided_by"] == "approver"
    assert body["decision_comment"] == "ok"
    assert AuditEntry.objects.filter(action="campaign.approve", actor=staff["approver"]).exists()


def test_approval_of_a_campaign_whose_window_has_begun_activates_it(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget, starts_on=today(), status="PENDING_APPROVAL")

    response = api_client_for(staff["approver"]).post(f"{CAMPAIGNS}{campaign.pk}/approve/")

    assert response.status_code == 200
    assert response.json()["status"] == "ACTIVE"


def test_a_campaign_without_tasks_cannot_be_submitted_409(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget)

    response = api_client_for(staff["operator"]).post(
        f"{CAMPAIGNS}{campaign.pk}/submit/", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "campaign_state"
    assert "Add at least one task" in response.json()["detail"]


def test_nobody_approves_a_campaign_they_wrote(api_client_for, make_user, budget):
    maker_checker = make_user(Role.PRODUCT_OPERATOR, username="both", branch="HO")
    maker_checker.groups.add(Group.objects.get(name=str(Role.BUDGET_APPROVER)))
    client = api_client_for(maker_checker)
    created = client.post(CAMPAIGNS, campaign_body(budget), format="json").json()
    client.post(TASKS, task_body(created["code"]), format="json")
    assert client.post(f"{CAMPAIGNS}{created['id']}/submit/").status_code == 200

    approve = client.post(f"{CAMPAIGNS}{created['id']}/approve/")
    reject = client.post(f"{CAMPAIGNS}{created['id']}/reject/", {"comment": "x"}, format="json")

    for response in (approve, reject):
        assert response.status_code == 403
        assert response.json()["code"] == "self_approval"
        assert response.json()["detail"]
    assert Campaign.objects.get(pk=created["id"]).status == "PENDING_APPROVAL"


def test_nobody_approves_a_campaign_they_submitted(api_client_for, make_user, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    TaskFactory(campaign=campaign)
    submitter = make_user(Role.PRODUCT_OPERATOR, username="submitter", branch="HO")
    submitter.groups.add(Group.objects.get(name=str(Role.BUDGET_APPROVER)))
    client = api_client_for(submitter)
    client.post(f"{CAMPAIGNS}{campaign.pk}/submit/")

    response = client.post(f"{CAMPAIGNS}{campaign.pk}/approve/")

    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}])
def test_a_rejection_needs_a_comment(api_client_for, staff, budget, body):
    campaign = draft(staff["operator"], budget=budget, status="PENDING_APPROVAL")

    response = api_client_for(staff["approver"]).post(
        f"{CAMPAIGNS}{campaign.pk}/reject/", body, format="json"
    )

    assert response.status_code == 400
    assert "comment" in response.json()
    campaign.refresh_from_db()
    assert campaign.status == "PENDING_APPROVAL"


def test_a_rejected_campaign_goes_back_to_draft_when_edited(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    TaskFactory(campaign=campaign)
    operator, approver = api_client_for(staff["operator"]), api_client_for(staff["approver"])
    operator.post(f"{CAMPAIGNS}{campaign.pk}/submit/")

    rejected = approver.post(
        f"{CAMPAIGNS}{campaign.pk}/reject/", {"comment": "Cap the rewards"}, format="json"
    )
    edited = operator.patch(f"{CAMPAIGNS}{campaign.pk}/", {"name": "改过"}, format="json")
    resubmitted = operator.post(f"{CAMPAIGNS}{campaign.pk}/submit/")

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "REJECTED"
    assert rejected.json()["decision_comment"] == "Cap the rewards"
    assert edited.status_code == 200
    assert edited.json()["status"] == "DRAFT"
    assert resubmitted.json()["status"] == "PENDING_APPROVAL"
    assert AuditEntry.objects.filter(action="campaign.reopen").count() == 1


def test_changing_a_task_of_a_rejected_campaign_makes_it_a_draft(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget, status="REJECTED")
    task = TaskFactory(campaign=campaign)

    response = api_client_for(staff["operator"]).patch(
        f"{TASKS}{task.pk}/", {"reward_points": 20}, format="json"
    )

    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.status == "DRAFT"


def test_deciding_on_a_draft_is_409(api_client_for, staff, budget):
    campaign = draft(staff["operator"], budget=budget)

    response = api_client_for(staff["approver"]).post(f"{CAMPAIGNS}{campaign.pk}/approve/")

    assert response.status_code == 409
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "not_pending"


def test_pause_resume_and_end(api_client_for, staff, budget):
    campaign = CampaignFactory(budget=budget, created_by=staff["operator2"])
    client = api_client_for(staff["operator"])

    paused = client.post(
        f"{CAMPAIGNS}{campaign.pk}/pause/", {"reason": "fraud check"}, format="json"
    )
    paused_again = client.post(f"{CAMPAIGNS}{campaign.pk}/pause/")
    resumed = client.post(f"{CAMPAIGNS}{campaign.pk}/resume/")
    ended = client.post(f"{CAMPAIGNS}{campaign.pk}/end/")
    resumed_after_end = client.post(f"{CAMPAIGNS}{campaign.pk}/resume/")

    assert (paused.status_code, paused.json()["status"]) == (200, "PAUSED")
    assert paused_again.status_code == 409
    assert (resumed.status_code, resumed.json()["status"]) == (200, "ACTIVE")
    assert (ended.status_code, ended.json()["status"]) == (200, "ENDED")
    assert resumed_after_end.status_code == 409
    assert AuditEntry.objects.filter(action="campaign.pause.reason", reason="fraud check").exists()


def test_campaigns_can_be_listed_by_status(api_client_for, staff, budget):
    draft(staff["operator"], code="C-D", budget=budget)
    CampaignFactory(code="C-A", budget=budget)

    body = api_client_for(staff["auditor"]).get(CAMPAIGNS, {"status": "ACTIVE"}).json()

    assert [c["code"] for c in body["results"]] == ["C-A"]


# --- query counts -----------------------------------------------------------------------------


def _full_campaign(budget, author, n: int) -> Campaign:
    campaign = CampaignFactory(code=f"C-Q{n:02d}", budget=budget, created_by=author)
    campaign.target_tiers.set(Tier.objects.filter(scheme__status="ACTIVE")[:2])
    campaign.segments.add(SegmentFactory())
    plain = TaskFactory(campaign=campaign)
    plain.offered_tiers.set(Tier.objects.filter(scheme__status="ACTIVE")[:1])
    laddered = TaskFactory(campaign=campaign, measure="AMOUNT_SUM", reward_benefit=BenefitFactory())
    for step_no in (1, 2, 3):
        TaskStepFactory(
            task=laddered, step_no=step_no, target=Decimal(step_no * 100), reward_benefit=None
        )
    return campaign


def test_campaign_list_queries_do_not_grow_with_campaigns(
    api_client_for, staff, budget, django_assert_max_num_queries
):
    client = api_client_for(staff["auditor"])
    _full_campaign(budget, staff["operator"], 0)
    with CaptureQueriesContext(connection) as one:
        assert client.get(CAMPAIGNS).json()["count"] == 1
    for n in range(1, 10):
        _full_campaign(budget, staff["operator"], n)

    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(CAMPAIGNS)

    assert response.json()["count"] == 10
    assert all(len(c["tasks"]) == 2 for c in response.json()["results"])


def test_task_list_queries_do_not_grow_with_tasks(
    api_client_for, staff, budget, django_assert_max_num_queries
):
    client = api_client_for(staff["auditor"])
    _full_campaign(budget, staff["operator"], 0)
    with CaptureQueriesContext(connection) as two:
        client.get(TASKS)
    for n in range(1, 10):
        _full_campaign(budget, staff["operator"], n)

    with django_assert_max_num_queries(len(two.captured_queries)):
        assert client.get(TASKS).json()["count"] == 20


def test_segment_list_queries_do_not_grow_with_segments(
    api_client_for, staff, django_assert_max_num_queries
):
    client = api_client_for(staff["auditor"])
    SegmentFactory(rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}])
    with CaptureQueriesContext(connection) as one:
        client.get(SEGMENTS)
    for _ in range(9):
        SegmentFactory(rules=[{"field": "points_balance", "op": "gte", "value": 100}])

    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get(SEGMENTS).json()["count"] == 10


# --- segments -----------------------------------------------------------------------------------


def test_segment_with_an_unknown_code_is_400_naming_the_condition(api_client_for, staff, budget):
    response = api_client_for(staff["operator"]).post(
        SEGMENTS,
        {
            "code": "SEG-BAD",
            "name": "Bad",
            "department": budget.department.code,
            "rules": [
                {"field": "tier", "op": "in", "value": ["GOLD"]},
                {"field": "lifecycle_stage", "op": "in", "value": ["SLEEPY"]},
                {"field": "shoe_size", "op": "gte", "value": 42},
            ],
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",  # the messages come in the client's language
    )

    assert response.status_code == 400
    messages = response.json()["rules"]
    assert any("Condition 2" in m and "SLEEPY" in m for m in messages), messages
    assert any("Condition 3" in m and "shoe_size" in m for m in messages), messages
    assert not Segment.objects.exists()


def test_segment_rules_that_are_not_a_list_are_400(api_client_for, staff, budget):
    response = api_client_for(staff["operator"]).post(
        SEGMENTS,
        {"code": "S", "name": "S", "department": budget.department.code, "rules": {"a": 1}},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "list of conditions" in str(response.json()["rules"])


def test_segment_is_created_with_its_author_and_live_size(api_client_for, staff, budget):
    MemberFactory(lifecycle_stage="DORMANT")
    MemberFactory(lifecycle_stage="ACTIVE")
    client = api_client_for(staff["operator"])

    created = client.post(
        SEGMENTS,
        {
            "code": "SEG-DORMANT",
            "name": "沉睡客户",
            "department": budget.department.code,
            "rules": [{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}],
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["size"] == 1
    assert body["created_by"] == "operator"
    assert body["department"] == budget.department.code
    assert Segment.objects.get(code="SEG-DORMANT").created_by == staff["operator"]


def test_segment_size_is_live(api_client_for, staff):
    segment = SegmentFactory(rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}])
    client = api_client_for(staff["auditor"])
    before = client.get(f"{SEGMENTS}{segment.pk}/").json()["size"]

    MemberFactory(lifecycle_stage="DORMANT")
    MemberFactory(lifecycle_stage="DORMANT")
    after = client.get(f"{SEGMENTS}{segment.pk}/").json()["size"]
    listed = client.get(SEGMENTS).json()["results"][0]["size"]

    assert (before, after, listed) == (0, 2, 2)


def test_segment_sizes_in_the_list_match_one_count_per_segment(api_client_for, staff, org):
    gold = Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")
    MemberFactory(tier=gold, lifecycle_stage="DORMANT", branch=org["B01S1"], points_balance=500)
    MemberFactory(tier=None, lifecycle_stage="ACTIVE", branch=org["B02S1"])
    MemberFactory(tier=gold, lifecycle_stage="ACTIVE", branch=org["B02"], points_balance=50)
    rule_sets = [
        [],
        [{"field": "tier", "op": "in", "value": ["GOLD"]}],
        [{"field": "tier", "op": "not_in", "value": ["GOLD"]}],
        [{"field": "branch", "op": "in", "value": ["B02"]}],
        [{"field": "branch", "op": "not_in", "value": ["B02"]}],
        [
            {"field": "points_balance", "op": "gte", "value": 100},
            {"field": "lifecycle_stage", "op": "not_in", "value": ["ACTIVE"]},
        ],
    ]
    segments = [SegmentFactory(code=f"S{n}", rules=rules) for n, rules in enumerate(rule_sets)]

    listed = {
        s["code"]: s["size"]
        for s in api_client_for(staff["auditor"]).get(SEGMENTS).json()["results"]
    }

    assert listed == {s.code: Member.objects.filter(segment_filter(s)).count() for s in segments}
    assert listed["S0"] == 3 and listed["S1"] == 2 and listed["S3"] == 2


def test_segment_rules_are_frozen_while_a_submitted_campaign_targets_it(
    api_client_for, staff, budget
):
    segment = SegmentFactory(
        code="SEG-D", rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]
    )
    campaign = CampaignFactory(budget=budget, created_by=staff["operator"])
    campaign.segments.add(segment)
    client = api_client_for(staff["operator"])

    renamed = client.patch(f"{SEGMENTS}{segment.pk}/", {"name": "改名"}, format="json")
    widened = client.patch(f"{SEGMENTS}{segment.pk}/", {"rules": []}, format="json")
    deleted = client.delete(f"{SEGMENTS}{segment.pk}/")

    assert renamed.status_code == 200
    assert (widened.status_code, widened.json()["code"]) == (409, "segment_in_use")
    assert campaign.code in widened.json()["detail"]
    assert (deleted.status_code, deleted.json()["code"]) == (409, "segment_in_use")
    segment.refresh_from_db()
    assert segment.rules == [{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]


def test_an_unused_segment_can_be_changed_and_deleted(api_client_for, staff):
    segment = SegmentFactory(code="SEG-X")
    client = api_client_for(staff["operator"])

    changed = client.patch(
        f"{SEGMENTS}{segment.pk}/",
        {"rules": [{"field": "age", "op": "gte", "value": "60"}]},
        format="json",
    )
    deleted = client.delete(f"{SEGMENTS}{segment.pk}/")

    assert changed.status_code == 200, changed.content
    assert changed.json()["rules"] == [{"field": "age", "op": "gte", "value": 60}]
    assert deleted.status_code == 204
    assert AuditEntry.objects.filter(action="segment.change").exists()
    assert AuditEntry.objects.filter(action="segment.delete").exists()


# --- the schema -----------------------------------------------------------------------------------


def test_the_openapi_schema_lists_the_configuration_endpoints(client, staff):
    client.force_login(staff["auditor"])

    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/campaigns/",
        "/api/v1/campaigns/{id}/approve/",
        "/api/v1/tasks/{id}/",
        "/api/v1/segments/",
    ):
        assert path in paths
