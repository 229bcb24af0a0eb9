"""Maker-checker through the approvals inbox (portal/approvals.py, /approvals/): every kind of
request is stored as a proposal, applied only on approval by a different user holding the
approving role, shown to the checker as a diff, and audited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import translation

from benefits.choices import BenefitApproval
from benefits.models import BenefitGrant, Budget
from benefits.services import (
    BudgetProposalError,
    budget_amount_lower,
    budget_create_request,
    budget_increase_request,
    manual_grant,
)
from campaigns.choices import CampaignApproval
from campaigns.models import Campaign
from campaigns.services import campaign_submit
from members.choices import MemberApproval
from members.models import Member, Tier, TierScheme
from members.services import tier_override_request, tier_scheme_request_activation
from portal.approvals import approval_decide, approval_inbox
from portal.choices import ApprovalStatus, Role
from portal.clock import today_in_shanghai
from portal.errors import DomainError, NotAllowed
from portal.models import ApprovalRequest, AuditEntry
from tests.approvals import decide_pending
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    DepartmentFactory,
    MemberFactory,
    TaskFactory,
)
from tests.schemes import scheme_decide_entitlements


def decide(client, user, approval, decision: str, comment: str = ""):
    client.force_login(user)
    return client.post(
        reverse("approval-decide", args=[approval.pk]),
        {"decision": decision, "comment": comment},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )


def page_text(response) -> str:
    return response.content.decode()


# --- budgets: creation and increase -----------------------------------------------------------


@pytest.fixture
def approvers(make_user):
    return {
        "maker": make_user(Role.BUDGET_APPROVER, username="ba_maker", branch="HO"),
        "checker": make_user(Role.BUDGET_APPROVER, username="ba_checker", branch="HO"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="po", branch="HO"),
    }


def budget_form(department, **overrides) -> dict:
    today = today_in_shanghai()
    data = {
        "code": "WEALTH-2027",
        "name": "财富权益预算",
        "department": department.pk,
        "parent": "",
        "period_start": today.isoformat(),
        "period_end": (today + timedelta(days=365)).isoformat(),
        "amount": "250000.00",
        "alert_percents": "[80, 95]",
    }
    return {**data, **overrides}


def test_a_budget_created_in_the_admin_exists_only_after_another_approver_approves(
    client, approvers
):
    department = DepartmentFactory(code="WEALTH")
    client.force_login(approvers["maker"])

    response = client.post(
        reverse("admin:benefits_budget_add"),
        budget_form(department),
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )

    assert "Sent for approval" in page_text(response)
    assert not Budget.objects.filter(code="WEALTH-2027").exists()
    approval = ApprovalRequest.objects.get(kind=BenefitApproval.BUDGET_CREATE)
    assert approval.status == ApprovalStatus.PENDING
    assert approval.proposal["amount"] == "250000.00"
    assert approval.proposal["department"] == "WEALTH"

    own = decide(client, approvers["maker"], approval, "approve")
    assert "You cannot decide your own request" in page_text(own)
    assert not Budget.objects.filter(code="WEALTH-2027").exists()

    decide(client, approvers["checker"], approval, "approve", "within plan")

    budget = Budget.objects.get(code="WEALTH-2027")
    assert budget.amount == Decimal("250000.00")
    assert budget.department == department
    assert budget.alert_percents == [80, 95]
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.comment) == (
        ApprovalStatus.APPROVED,
        approvers["checker"],
        "within plan",
    )
    assert approval.object_id == str(budget.pk)
    assert AuditEntry.objects.filter(
        action="budget.create", object_id=str(budget.pk), actor=approvers["checker"]
    ).exists()
    assert AuditEntry.objects.filter(action="approval.approve", actor=approvers["checker"]).exists()


def test_raising_a_budget_waits_for_approval_and_lowering_applies_at_once(client, approvers):
    budget = BudgetFactory(code="CARD", amount_fen=100_000_00, consumed_fen=30_000_00)
    client.force_login(approvers["maker"])
    data = budget_form(budget.department, code="CARD", name=budget.name, amount="150000.00")
    data.update(
        period_start=budget.period_start.isoformat(), period_end=budget.period_end.isoformat()
    )

    client.post(reverse("admin:benefits_budget_change", args=[budget.pk]), data)

    budget.refresh_from_db()
    assert budget.amount == Decimal("100000.00")  # not raised yet
    approval = ApprovalRequest.objects.get(kind=BenefitApproval.BUDGET_INCREASE)
    assert approval.diff() == [("amount", "100000.00", "150000.00")]

    approval_decide(approval=approval, approve=True, actor=approvers["checker"])

    budget.refresh_from_db()
    assert budget.amount == Decimal("150000.00")
    assert budget.consumed_fen == 30_000_00

    client.post(
        reverse("admin:benefits_budget_change", args=[budget.pk]), {**data, "amount": "120000.00"}
    )
    budget.refresh_from_db()
    assert budget.amount == Decimal("120000.00")  # lowering needs no approval
    assert ApprovalRequest.objects.count() == 1
    with pytest.raises(BudgetProposalError):
        budget_amount_lower(budget=budget, amount=Decimal("20000.00"), actor=approvers["maker"])


def test_an_increase_approved_after_the_budget_changed_is_refused_not_overwritten(approvers):
    budget = BudgetFactory(amount_fen=100_000_00)
    approval = budget_increase_request(
        budget=budget, amount=Decimal("200000.00"), actor=approvers["maker"]
    )
    budget_amount_lower(budget=budget, amount=Decimal("90000.00"), actor=approvers["maker"])

    with pytest.raises(DomainError, match="的金额已不是 ¥100,000.00"):
        approval_decide(approval=approval, approve=True, actor=approvers["checker"])

    budget.refresh_from_db()
    approval.refresh_from_db()
    assert budget.amount == Decimal("90000.00")
    assert approval.status == ApprovalStatus.PENDING


def test_only_budget_approvers_decide_budgets_and_a_rejection_needs_a_reason(approvers):
    department = DepartmentFactory(code="RETAIL")
    values = {
        "code": "NEW",
        "name": "New",
        "department": "RETAIL",
        "parent": None,
        "period_start": "2027-01-01",
        "period_end": "2027-12-31",
        "amount": "1000.00",
        "alert_percents": [],
    }
    approval = budget_create_request(values=values, actor=approvers["maker"])

    with translation.override("en"), pytest.raises(DomainError, match="Your role cannot"):
        approval_decide(approval=approval, approve=True, actor=approvers["operator"])
    with translation.override("en"), pytest.raises(DomainError, match="Say why"):
        approval_decide(approval=approval, approve=False, actor=approvers["checker"])
    approval_decide(approval=approval, approve=False, actor=approvers["checker"], comment="no")

    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert not Budget.objects.filter(code="NEW", department=department).exists()
    with translation.override("en"), pytest.raises(DomainError, match="already Rejected"):
        approval_decide(approval=approval, approve=True, actor=approvers["checker"])


def test_a_product_operator_cannot_propose_a_budget(approvers):
    with pytest.raises(NotAllowed):
        budget_create_request(values={}, actor=approvers["operator"])


# --- the domain flows land in the same inbox --------------------------------------------------


def test_a_manual_tier_override_is_decided_in_the_customers_branch_only(client, org, make_user):
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    bm = make_user(Role.BRANCH_MANAGER, username="bm", branch="B01")
    other_bm = make_user(Role.BRANCH_MANAGER, username="bm_south", branch="B02")
    member = MemberFactory(member_no="VIP", branch=org["B01S1"], account_manager=am)
    gold = Tier.objects.get(scheme__code="DEFAULT_MADA", code="SUNFLOWER")
    override = tier_override_request(
        member=member,
        tier=gold,
        reason="Large deposit next month",
        expires_on=today_in_shanghai() + timedelta(days=30),
        actor=am,
    )
    approval = ApprovalRequest.objects.get(kind=MemberApproval.TIER_OVERRIDE)

    assert list(approval_inbox(user=bm)) == [approval]
    assert list(approval_inbox(user=other_bm)) == []
    assert list(approval_inbox(user=am)) == []
    client.force_login(other_bm)
    assert client.get(reverse("approval-detail", args=[approval.pk])).status_code == 404
    # the diff speaks business: the tier by its name, not its code
    assert ("tier", approval.current["tier"], gold.name) in approval.diff()

    decide(client, bm, approval, "approve", "seen the deposit")

    override.refresh_from_db()
    member.refresh_from_db()
    approval.refresh_from_db()
    assert override.status == "ACTIVE"
    assert member.tier == gold
    assert (approval.status, approval.decided_by) == (ApprovalStatus.APPROVED, bm)


def test_a_manual_tier_is_decided_in_the_customers_branch_as_it_is_at_the_decision(
    client, org, make_user
):
    """The customer moved to another branch after the request: the old branch's manager no
    longer decides it; a customer with no branch has no branch manager to decide it."""
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    north_bm = make_user(Role.BRANCH_MANAGER, username="bm_north", branch="B01")
    member = MemberFactory(member_no="MOVER", branch=org["B01S1"], account_manager=am)
    sunflower = Tier.objects.get(scheme__code="DEFAULT_MADA", code="SUNFLOWER")
    tier_override_request(
        member=member,
        tier=sunflower,
        reason="Large deposit next month",
        expires_on=today_in_shanghai() + timedelta(days=30),
        actor=am,
    )
    approval = ApprovalRequest.objects.get(kind=MemberApproval.TIER_OVERRIDE)
    Member.objects.filter(pk=member.pk).update(branch=org["B02S1"])

    with pytest.raises(NotAllowed) as refused:
        approval_decide(approval=approval, approve=True, actor=north_bm, comment="ok")

    assert refused.value.code == "not_approver"
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    member.refresh_from_db()
    assert member.tier != sunflower

    Member.objects.filter(pk=member.pk).update(branch=None)
    orphan = MemberFactory(member_no="NOBRANCH", branch=None, account_manager=am)
    tier_override_request(
        member=orphan,
        tier=sunflower,
        reason="Large deposit next month",
        expires_on=today_in_shanghai() + timedelta(days=30),
        actor=am,
    )
    assert list(approval_inbox(user=north_bm)) == []


def test_a_campaigns_author_is_not_offered_its_launch_even_when_a_colleague_submitted_it(
    client, make_user
):
    author = make_user(Role.PRODUCT_OPERATOR, username="po_author", branch="HO")
    author.groups.add(Group.objects.get(name=str(Role.BUDGET_APPROVER)))
    submitter = make_user(Role.PRODUCT_OPERATOR, username="po_submitter", branch="HO")
    approver = make_user(Role.BUDGET_APPROVER, username="ba", branch="HO")
    campaign = CampaignFactory(status="DRAFT", created_by=author)
    TaskFactory(campaign=campaign, reward_points=10)
    campaign_submit(campaign=campaign, actor=submitter)
    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)

    client.force_login(author)
    detail = client.get(reverse("approval-detail", args=[approval.pk]), HTTP_ACCEPT_LANGUAGE="en")

    assert list(approval_inbox(user=author)) == []
    assert list(approval_inbox(user=approver)) == [approval]
    assert 'value="approve"' not in page_text(detail)


def test_a_campaign_launch_shows_its_tasks_and_is_approved_from_the_inbox(client, make_user):
    author = make_user(Role.PRODUCT_OPERATOR, username="po_author", branch="HO")
    approver = make_user(Role.BUDGET_APPROVER, username="ba", branch="HO")
    campaign = CampaignFactory(status="DRAFT", created_by=author)
    TaskFactory(campaign=campaign, name="每日签到", reward_points=10)
    TaskFactory(campaign=campaign, name="基金定投", event_type="FUND_PURCHASE", reward_points=50)

    with translation.override("zh-hans"):  # the requester works in Chinese
        campaign_submit(campaign=campaign, actor=author)

    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)
    client.force_login(approver)
    detail = page_text(client.get(reverse("approval-detail", args=[approval.pk])))
    assert "每日签到" in detail and "基金定投" in detail and "基金申购" in detail
    assert "FUND_PURCHASE" not in detail  # the event type by its name, not its code
    assert 'value="approve"' in detail
    client.force_login(author)
    own = page_text(
        client.get(reverse("approval-detail", args=[approval.pk]), HTTP_ACCEPT_LANGUAGE="en")
    )
    assert 'value="approve"' not in own and "your own request" in own

    decide(client, approver, approval, "approve")

    campaign.refresh_from_db()
    assert campaign.status == "ACTIVE"
    assert campaign.decided_by == approver


def test_deciding_in_the_domains_own_page_settles_the_inbox_request_too(make_user):
    author = make_user(Role.PRODUCT_OPERATOR, username="po_author", branch="HO")
    approver = make_user(Role.BUDGET_APPROVER, username="ba", branch="HO")
    campaign = CampaignFactory(status="DRAFT", created_by=author)
    TaskFactory(campaign=campaign)
    campaign_submit(campaign=campaign, actor=author)

    decide_pending(
        campaign,
        CampaignApproval.CAMPAIGN_LAUNCH,
        approve=False,
        actor=approver,
        comment="too costly",
    )

    approval = ApprovalRequest.objects.get(kind=CampaignApproval.CAMPAIGN_LAUNCH)
    assert (approval.status, approval.comment) == (ApprovalStatus.REJECTED, "too costly")
    assert list(approval_inbox(user=approver)) == []
    assert Campaign.objects.get(pk=campaign.pk).status == "REJECTED"


def test_a_tier_scheme_activation_shows_the_thresholds_that_change(make_user):
    maker = make_user(Role.PRODUCT_OPERATOR, username="po_maker", branch="HO")
    checker = make_user(Role.PRODUCT_OPERATOR, username="po_checker", branch="HO")
    points = TierScheme.objects.get(code="DEFAULT_POINTS")
    scheme_decide_entitlements(points, actor=maker)
    with translation.override("en"):
        tier_scheme_request_activation(scheme=points, actor=maker)
    approval = ApprovalRequest.objects.get(kind=MemberApproval.TIER_SCHEME_ACTIVATION)

    changed = {field for field, _now, _proposed in approval.diff()}
    assert {"Scheme", "Method", "Tier 1", "Takes effect"} <= changed
    # thresholds in the scheme's measure, with the tier's names, not codes
    assert approval.current["Tier 2"] == "金卡 (Gold) ≥ MADA CNY 50,000.00"  # English: CNY
    assert "points" in approval.proposal["Tier 2"] and "STAR" not in approval.proposal["Tier 2"]
    with pytest.raises(DomainError):
        approval_decide(approval=approval, approve=True, actor=maker)
    assert TierScheme.objects.get(code="DEFAULT_POINTS").status == "PENDING"

    approval_decide(approval=approval, approve=True, actor=checker)

    # approved, it waits for its night: the active scheme grades until then
    assert TierScheme.objects.get(code="DEFAULT_POINTS").status == "SCHEDULED"
    assert TierScheme.objects.get(code="DEFAULT_MADA").status == "ACTIVE"


def test_a_manual_grant_above_the_limit_is_granted_only_on_approval(org, make_user, settings):
    settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN = 50_000
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    approver = make_user(Role.BUDGET_APPROVER, username="ba", branch="HO")
    member = MemberFactory(branch=org["B01S1"], account_manager=am)
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=80_000)

    manual_grant(member=member, benefit=lounge, reason="Complaint goodwill", actor=am)

    assert not BenefitGrant.objects.filter(member=member).exists()
    approval = ApprovalRequest.objects.get(kind=BenefitApproval.MANUAL_GRANT)
    assert approval.proposal["cost"] == "¥800.00"
    assert approval.branch == org["B01S1"]

    approval_decide(approval=approval, approve=True, actor=approver)

    grant = BenefitGrant.objects.get(member=member)
    assert grant.benefit == lounge
    assert grant.budget.consumed_fen == 80_000


# --- the pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_staff_role_opens_the_inbox_and_the_system_account_is_refused(
    client, make_user, role
):
    client.force_login(make_user(role))

    response = client.get(reverse("approvals"))

    assert response.status_code == (403 if role == Role.SYSTEM else 200)


def test_the_inbox_lists_what_waits_for_me_and_auditors_see_every_request(client, approvers):
    make = approvers["maker"]
    for number in range(3):
        budget_increase_request(
            budget=BudgetFactory(code=f"B{number}"), amount=Decimal("200000.00"), actor=make
        )
    from tests.factories import UserFactory

    auditor = UserFactory(role=Role.RISK_AUDITOR, username="auditor")

    client.force_login(approvers["checker"])
    inbox = page_text(client.get(reverse("approvals"), HTTP_ACCEPT_LANGUAGE="en"))
    assert inbox.count("approvals/") >= 3 and "Budget B0: CNY 100,000.00 → CNY 200,000.00" in inbox
    client.force_login(make)
    mine = page_text(client.get(reverse("approvals"), HTTP_ACCEPT_LANGUAGE="en"))
    assert "Nothing is waiting for your decision" in mine
    client.force_login(auditor)
    everything = page_text(client.get(reverse("approvals") + "?show=all"))
    assert all(f"Budget B{n}: ¥100,000.00" in everything for n in range(3))
    approval = ApprovalRequest.objects.first()
    detail = page_text(client.get(reverse("approval-detail", args=[approval.pk])))
    assert 'value="approve"' not in detail  # auditors read, they do not decide
    refused = decide(client, auditor, approval, "approve")
    assert "Your role cannot decide" in page_text(refused)


def test_the_inbox_runs_the_same_number_of_queries_for_3_or_30_requests(
    client, approvers, django_assert_max_num_queries
):
    def render_inbox() -> None:
        client.force_login(approvers["checker"])
        for show in ("inbox", "mine"):
            assert client.get(reverse("approvals") + f"?show={show}").status_code == 200

    for number in range(3):
        budget_increase_request(
            budget=BudgetFactory(code=f"S{number}"), amount=Decimal("9e5"), actor=approvers["maker"]
        )
    with django_assert_max_num_queries(50) as few:
        render_inbox()
    for number in range(27):
        budget_increase_request(
            budget=BudgetFactory(code=f"L{number}"), amount=Decimal("9e5"), actor=approvers["maker"]
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        render_inbox()


def test_nothing_about_a_member_is_changed_by_a_pending_request(org, make_user):
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    member = MemberFactory(branch=org["B01S1"], account_manager=am)
    before = Member.objects.filter(pk=member.pk).values("tier_id", "tier_since").get()
    tier_override_request(
        member=member,
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="SUNFLOWER"),
        reason="r",
        expires_on=today_in_shanghai() + timedelta(days=5),
        actor=am,
    )

    assert Member.objects.filter(pk=member.pk).values("tier_id", "tier_since").get() == before
