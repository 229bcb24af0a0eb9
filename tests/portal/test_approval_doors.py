"""Every kind of maker-checker request through every door that decides it, from the outside.

The doors — the approvals inbox, the approvals API, the campaigns API, the admin's Approve /
Reject dialogs and the customer page — all end in `portal.approvals.approval_decide`. For
each (kind, door) this module shows what a user gets: the maker never decides their own
request; a role without the approving right (or a branch manager outside the customer's
branch) is refused; a rejection must say why; an approval by a colleague applies the change
exactly once, and deciding again, through any door, is refused and changes nothing; a
rejection with a reason settles the request and applies nothing.

Two tables drive it: KINDS (how a request is made, by whom, who approves it, who may not, what
its effect is) and DOORS (how a decision is posted, how the refusal reads). A refusal is read
as the API's error code; the pages' English messages are mapped to the same codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.contrib.messages import constants as message_level
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from benefits.choices import BenefitApproval
from benefits.models import BenefitGrant, Budget, BudgetEntry
from benefits.services import budget_create_request, budget_increase_request, manual_grant
from campaigns.choices import CampaignApproval
from campaigns.services import campaign_submit
from members.choices import MemberApproval
from members.models import Member, Tier, TierChange, TierScheme
from members.services import tier_override_request, tier_scheme_request_activation
from portal.choices import ApprovalStatus, Role
from portal.clock import today_in_shanghai
from portal.models import ApprovalRequest
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    DepartmentFactory,
    MemberFactory,
    TaskFactory,
    UserFactory,
)
from tests.schemes import scheme_decide_entitlements

pytestmark = pytest.mark.django_db


# --- the people -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    """A user to create: their roles and branch (a code of the `org` fixture)."""

    roles: tuple[Role, ...]
    branch: str = "HO"


AM, BM, PO = Role.ACCOUNT_MANAGER, Role.BRANCH_MANAGER, Role.PRODUCT_OPERATOR
BA, RA, AD = Role.BUDGET_APPROVER, Role.RISK_AUDITOR, Role.ADMINISTRATOR


# --- the kinds: how a request is made, who decides it, what it changes ----------------------------


@dataclass(frozen=True)
class Kind:
    code: str
    requester: Staff  # holds the approving role too where the matrix allows it
    approver: Staff
    outsider: Staff  # sees every request, may decide none of this kind
    propose: Callable[[Case], object]  # as the requester; returns what the request is about
    effect: Callable[[Case], dict]  # what an approval changes, read from the database
    applied: dict  # the effect once approved
    statuses: tuple[str, str, str] | None  # the subject's status: pending, approved, rejected

    def __str__(self) -> str:
        return self.code


def _days_ahead(days: int):
    return today_in_shanghai() + timedelta(days=days)


def propose_scheme_activation(case: Case):
    scheme = TierScheme.objects.get(code="DEFAULT_POINTS")
    scheme_decide_entitlements(scheme, actor=case.people["requester"])
    return tier_scheme_request_activation(scheme=scheme, actor=case.people["requester"])


def active_scheme(case: Case) -> dict:
    """The scheme that grades now, and the one approved to take over at its night."""
    waiting = TierScheme.objects.filter(status="SCHEDULED").first()
    return {
        "active scheme": TierScheme.objects.get(status="ACTIVE").code,
        "takes effect next": waiting.code if waiting else None,
    }


def propose_tier_override(case: Case):
    member = MemberFactory(member_no="VIP001", branch=case.org["B01S1"])
    return tier_override_request(
        member=member,
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="SUNFLOWER"),
        reason="Large deposit next month",
        expires_on=_days_ahead(30),
        actor=case.people["requester"],
    )


def member_tier(case: Case) -> dict:
    member = Member.objects.get(member_no="VIP001")
    return {
        "tier": member.tier.code if member.tier_id else None,
        "tier changes": TierChange.objects.filter(member=member).count(),
    }


def propose_campaign_launch(case: Case):
    author = case.people["requester"]
    campaign = CampaignFactory(
        code="SPRING",
        status="DRAFT",
        created_by=author,
        starts_on=_days_ahead(1),
        ends_on=_days_ahead(60),
    )
    TaskFactory(campaign=campaign)
    return campaign_submit(campaign=campaign, actor=author)


def campaign_launched(case: Case) -> dict:
    status = case.subject_status()
    return {"launched": status in {"SCHEDULED", "ACTIVE"}}


LOUNGE_COST_FEN = django_settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN + 30_000


def propose_manual_grant(case: Case):
    requester = case.people["requester"]
    member = MemberFactory(member_no="VIP002", branch=case.org["B01S1"], account_manager=requester)
    lounge = BenefitFactory(
        code="LOUNGE", unit_cost_fen=LOUNGE_COST_FEN, budget=BudgetFactory(code="GOODWILL")
    )
    return manual_grant(member=member, benefit=lounge, reason="Complaint goodwill", actor=requester)


def grants_and_budget(case: Case) -> dict:
    budget = Budget.objects.get(code="GOODWILL")
    return {
        "grants": BenefitGrant.objects.filter(member__member_no="VIP002").count(),
        "consumed": budget.consumed_fen,
        "budget entries": BudgetEntry.objects.filter(budget=budget).count(),
    }


NEW_BUDGET = {
    "code": "WEALTH-2027",
    "name": "财富权益预算",
    "department": "WEALTH",
    "parent": None,
    "period_start": "2027-01-01",
    "period_end": "2027-12-31",
    "amount": "250000.00",
    "alert_percents": [80, 95],
}


def propose_budget(case: Case):
    DepartmentFactory(code="WEALTH")
    budget_create_request(values=NEW_BUDGET, actor=case.people["requester"])
    return None


def new_budgets(case: Case) -> dict:
    return {
        "budgets": list(
            Budget.objects.filter(code="WEALTH-2027").values_list("amount_fen", flat=True)
        )
    }


def propose_budget_increase(case: Case):
    budget = BudgetFactory(code="CARD", amount_fen=100_000_00)
    budget_increase_request(
        budget=budget, amount=Decimal("150000.00"), actor=case.people["requester"]
    )
    return budget


def card_budget(case: Case) -> dict:
    return {"amount": Budget.objects.get(code="CARD").amount_fen}


KINDS = [
    Kind(
        code=MemberApproval.TIER_SCHEME_ACTIVATION,
        requester=Staff((PO,)),
        approver=Staff((PO,)),
        outsider=Staff((RA,)),
        propose=propose_scheme_activation,
        effect=active_scheme,
        applied={"active scheme": "DEFAULT_MADA", "takes effect next": "DEFAULT_POINTS"},
        statuses=("PENDING", "SCHEDULED", "DRAFT"),
    ),
    Kind(
        code=MemberApproval.TIER_OVERRIDE,
        requester=Staff((BM,), branch="B01"),  # a branch manager may ask, never decide, their own
        approver=Staff((BM,), branch="B01"),
        outsider=Staff((RA,)),
        propose=propose_tier_override,
        effect=member_tier,
        applied={"tier": "SUNFLOWER", "tier changes": 1},
        statuses=("PENDING", "ACTIVE", "REJECTED"),
    ),
    Kind(
        code=CampaignApproval.CAMPAIGN_LAUNCH,
        requester=Staff((PO, BA)),  # wrote and submitted it
        approver=Staff((BA,)),
        outsider=Staff((AD,)),  # configures campaigns, approves none
        propose=propose_campaign_launch,
        effect=campaign_launched,
        applied={"launched": True},
        statuses=("PENDING_APPROVAL", "SCHEDULED", "REJECTED"),
    ),
    Kind(
        code=BenefitApproval.MANUAL_GRANT,
        requester=Staff((AM, BA), branch="B01S1"),  # the customer's account manager
        approver=Staff((BA,)),
        outsider=Staff((AD,)),
        propose=propose_manual_grant,
        effect=grants_and_budget,
        applied={"grants": 1, "consumed": LOUNGE_COST_FEN, "budget entries": 1},
        statuses=("PENDING", "APPROVED", "REJECTED"),
    ),
    Kind(
        code=BenefitApproval.BUDGET_CREATE,
        requester=Staff((BA,)),
        approver=Staff((BA,)),
        outsider=Staff((AD,)),  # configures budgets, approves none
        propose=propose_budget,
        effect=new_budgets,
        applied={"budgets": [250_000_00]},
        statuses=None,
    ),
    Kind(
        code=BenefitApproval.BUDGET_INCREASE,
        requester=Staff((BA,)),
        approver=Staff((BA,)),
        outsider=Staff((AD,)),
        propose=propose_budget_increase,
        effect=card_budget,
        applied={"amount": 150_000_00},
        statuses=None,
    ),
]


# --- the doors: how a decision is posted, how its answer reads ------------------------------------

#: the API's status for each code it answers with
API_STATUS = {
    "self_approval": 403,
    "not_approver": 403,
    "permission_denied": 403,
    "not_found": 404,
    "reason_required": 400,
    "already_decided": 409,
    "not_pending": 409,
}

#: what the pages say (in English) for each refusal, by the API's code
REFUSAL_WORDS = {
    "self_approval": "You cannot decide your own request; a colleague must.",
    "not_approver": "Your role cannot decide this request.",
    "reason_required": "Say why the request is rejected.",
    "already_decided": "This request is already",
    "not_pending": "is not waiting for a decision.",
}


def _browser(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def read_api(response) -> str:
    if response.status_code == 200:
        return "ok"
    code = response.json()["code"]
    assert response.status_code == API_STATUS.get(code), (response.status_code, code)
    return code


def read_page(response) -> str:
    """A page door answers 403 / 404, or redirects with a message: success, or the refusal."""
    if response.status_code == 403:
        return "permission_denied"
    if response.status_code == 404:
        return "not_found"
    assert response.status_code == 302, response.status_code
    shown = list(get_messages(response.wsgi_request))
    errors = [str(m) for m in shown if m.level == message_level.ERROR]
    if not errors:
        assert [m.level for m in shown] == [message_level.SUCCESS], shown
        return "ok"
    (error,) = errors
    codes = [code for code, words in REFUSAL_WORDS.items() if words in error]
    assert len(codes) == 1, f"unexpected message: {error}"
    return codes[0]


def read_admin(response) -> str:
    """The admin dialog asks again (200, a field error) when the rejection says no why."""
    if response.status_code == 200:
        assert "comment" in response.context["form"].errors
        return "reason_required"
    return read_page(response)


def _verb(approve: bool) -> str:
    return "approve" if approve else "reject"


def post_inbox(case: Case, user, approve: bool, comment: str):
    return _browser(user).post(
        reverse("approval-decide", args=[case.approval.pk]),
        {"decision": _verb(approve), "comment": comment},
    )


def post_approvals_api(case: Case, user, approve: bool, comment: str):
    return case.api(user).post(
        f"/api/v1/approvals/{case.approval.pk}/{_verb(approve)}/",
        {"comment": comment},
        format="json",
    )


def post_campaigns_api(case: Case, user, approve: bool, comment: str):
    return case.api(user).post(
        f"/api/v1/campaigns/{case.subject.pk}/{_verb(approve)}/",
        {"comment": comment},
        format="json",
    )


ADMIN_PAGES = {
    CampaignApproval.CAMPAIGN_LAUNCH: "campaigns/campaign",
    MemberApproval.TIER_SCHEME_ACTIVATION: "members/tierscheme",
    BenefitApproval.MANUAL_GRANT: "benefits/manualgrantrequest",
}


def post_admin(case: Case, user, approve: bool, comment: str):
    page = ADMIN_PAGES[case.kind.code]
    return _browser(user).post(
        f"/admin/{page}/{case.subject.pk}/{_verb(approve)}/",
        {"_form_submitted": "on", "comment": comment},
    )


def post_customer_page(case: Case, user, approve: bool, comment: str):
    decision = {"approve": "on"} if approve else {}
    return _browser(user).post(
        reverse("members:override-decide", args=[case.subject.pk]), {**decision, "comment": comment}
    )


@dataclass(frozen=True)
class Door:
    name: str
    serves: frozenset[str]  # the kinds it decides
    post: Callable
    read: Callable[[object], str]
    closed: str  # its answer to a user who sees the request but lacks the approving role
    settled: str  # its answer to a request already decided

    def __str__(self) -> str:
        return self.name


EVERY_KIND = frozenset(kind.code for kind in KINDS)

DOORS = [
    Door("inbox", EVERY_KIND, post_inbox, read_page, "not_approver", "already_decided"),
    Door(
        "approvals-api", EVERY_KIND, post_approvals_api, read_api, "not_approver", "already_decided"
    ),
    Door(
        "campaigns-api",
        frozenset({CampaignApproval.CAMPAIGN_LAUNCH}),
        post_campaigns_api,
        read_api,
        "permission_denied",
        "not_pending",
    ),
    Door(
        "admin", frozenset(ADMIN_PAGES), post_admin, read_admin, "permission_denied", "not_pending"
    ),
    Door(
        "customer-page",
        frozenset({MemberApproval.TIER_OVERRIDE}),
        post_customer_page,
        read_page,
        "permission_denied",
        "not_pending",
    ),
]


def doors_of(kind: Kind) -> list[Door]:
    return [door for door in DOORS if kind.code in door.serves]


KIND_DOORS = [
    pytest.param(kind, door, id=f"{kind.code}-{door.name}")
    for kind in KINDS
    for door in doors_of(kind)
]


def _kind_named(code: str) -> Kind:
    return next(kind for kind in KINDS if kind.code == code)


def _door_named(name: str) -> Door:
    return next(door for door in DOORS if door.name == name)


OVERRIDE_DOORS = [
    pytest.param(door, id=door.name) for door in doors_of(_kind_named(MemberApproval.TIER_OVERRIDE))
]
CAMPAIGN_DOORS = [
    pytest.param(door, id=door.name)
    for door in doors_of(_kind_named(CampaignApproval.CAMPAIGN_LAUNCH))
]


# --- opening a request ----------------------------------------------------------------------------


@dataclass
class Case:
    """One open request of `kind`, the people around it and the object it is about."""

    kind: Kind
    org: dict
    people: dict[str, object]
    api_client_for: Callable
    subject: object = None  # None: the change lives only in the request (a new budget)
    approval: ApprovalRequest | None = None
    api_clients: dict = field(default_factory=dict)

    def decide(self, door: Door, who: str, *, approve: bool, comment: str = "") -> str:
        """Post the decision as `who` through `door`; "ok" or the refusal's code."""
        return door.read(door.post(self, self.people[who], approve, comment))

    def api(self, user):
        if user.pk not in self.api_clients:
            self.api_clients[user.pk] = self.api_client_for(user)
        return self.api_clients[user.pk]

    def effect(self) -> dict:
        return self.kind.effect(self)

    def subject_status(self) -> str | None:
        if self.subject is None:
            return None
        return type(self.subject).objects.get(pk=self.subject.pk).status

    def request(self) -> ApprovalRequest:
        self.approval.refresh_from_db()
        return self.approval


def _staff(username: str, who: Staff, org):
    user = UserFactory(username=username, branch=org[who.branch])
    user.groups.add(*Group.objects.filter(name__in=[str(role) for role in who.roles]))
    return user


@pytest.fixture
def open_request(org, api_client_for) -> Callable[[Kind], Case]:
    def open_(kind: Kind) -> Case:
        people = {
            "requester": _staff("maker", kind.requester, org),
            "approver": _staff("checker", kind.approver, org),
            "outsider": _staff("outsider", kind.outsider, org),
            "other_branch_manager": _staff("bm_south", Staff((BM,), branch="B02"), org),
        }
        case = Case(kind=kind, org=org, people=people, api_client_for=api_client_for)
        case.subject = kind.propose(case)
        case.approval = ApprovalRequest.objects.get(kind=kind.code)
        return case

    return open_


def assert_untouched(case: Case, effect_before: dict) -> None:
    """The request still waits, undecided, and nothing it proposes has happened."""
    approval = case.request()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.PENDING, None)
    assert case.effect() == effect_before
    if case.kind.statuses:
        assert case.subject_status() == case.kind.statuses[0]


# --- 1. the maker never decides -------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "door"), KIND_DOORS)
def test_the_requester_cannot_approve_or_reject_their_own_request(open_request, kind, door):
    case = open_request(kind)
    before = case.effect()

    approving = case.decide(door, "requester", approve=True)
    rejecting = case.decide(door, "requester", approve=False, comment="changed my mind")

    assert (approving, rejecting) == ("self_approval", "self_approval")
    assert_untouched(case, before)


def propose_campaign_submitted_by_a_colleague(case: Case):
    """The requester writes the campaign; a product operator colleague submits it."""
    submitter = _staff("submitter", Staff((PO,)), case.org)
    campaign = CampaignFactory(
        code="SPRING",
        status="DRAFT",
        created_by=case.people["requester"],
        starts_on=_days_ahead(1),
        ends_on=_days_ahead(60),
    )
    TaskFactory(campaign=campaign)
    return campaign_submit(campaign=campaign, actor=submitter)


@pytest.mark.parametrize("door", CAMPAIGN_DOORS)
def test_a_campaigns_author_cannot_approve_it_when_a_colleague_submitted_it(open_request, door):
    launch = _kind_named(CampaignApproval.CAMPAIGN_LAUNCH)
    case = open_request(replace(launch, propose=propose_campaign_submitted_by_a_colleague))
    assert case.approval.requested_by != case.people["requester"]
    before = case.effect()

    answer = case.decide(door, "requester", approve=True)  # the author, a budget approver too

    assert answer == "self_approval"
    assert_untouched(case, before)


# --- 2. only the approving role, within its scope -------------------------------------------------


@pytest.mark.parametrize(("kind", "door"), KIND_DOORS)
def test_a_user_without_the_approving_role_is_refused(open_request, kind, door):
    case = open_request(kind)
    before = case.effect()

    approving = case.decide(door, "outsider", approve=True)
    rejecting = case.decide(door, "outsider", approve=False, comment="not mine to decide")

    assert (approving, rejecting) == (door.closed, door.closed)
    assert_untouched(case, before)


@pytest.mark.parametrize("door", OVERRIDE_DOORS)
def test_a_branch_manager_of_another_branch_cannot_decide_a_customers_manual_tier(
    open_request, door
):
    case = open_request(_kind_named(MemberApproval.TIER_OVERRIDE))
    before = case.effect()

    approving = case.decide(door, "other_branch_manager", approve=True)
    rejecting = case.decide(door, "other_branch_manager", approve=False, comment="not my branch")

    assert (approving, rejecting) == ("not_found", "not_found")  # not even shown to them
    assert_untouched(case, before)


# --- 3. a rejection says why ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "door"), KIND_DOORS)
def test_a_rejection_without_a_reason_is_refused_and_the_request_still_waits(
    open_request, kind, door
):
    case = open_request(kind)
    before = case.effect()

    empty = case.decide(door, "approver", approve=False, comment="")
    blank = case.decide(door, "approver", approve=False, comment="   ")

    assert (empty, blank) == ("reason_required", "reason_required")
    assert_untouched(case, before)


# --- 4. an approval applies the change exactly once -----------------------------------------------


@pytest.mark.parametrize(("kind", "door"), KIND_DOORS)
def test_an_approval_applies_the_change_once_and_no_door_decides_it_again(open_request, kind, door):
    case = open_request(kind)
    assert case.effect() != kind.applied

    answer = case.decide(door, "approver", approve=True, comment="within plan")

    assert answer == "ok"
    assert case.effect() == kind.applied
    approval = case.request()
    assert (approval.status, approval.decided_by, approval.comment) == (
        ApprovalStatus.APPROVED,
        case.people["approver"],
        "within plan",
    )
    if kind.statuses:
        assert case.subject_status() == kind.statuses[1]
    for again in doors_of(kind):
        assert case.decide(again, "approver", approve=True) == again.settled, again
        assert case.decide(again, "approver", approve=False, comment="undo") == again.settled
    assert case.effect() == kind.applied  # e.g. one grant, the budget consumed once
    assert case.request().status == ApprovalStatus.APPROVED


# --- 5. a rejection with a reason settles it and applies nothing ----------------------------------


@pytest.mark.parametrize(("kind", "door"), KIND_DOORS)
def test_a_rejection_with_a_reason_settles_the_request_and_applies_nothing(
    open_request, kind, door
):
    case = open_request(kind)
    before = case.effect()

    answer = case.decide(door, "approver", approve=False, comment="over the plan")

    assert answer == "ok"
    approval = case.request()
    assert (approval.status, approval.decided_by, approval.comment) == (
        ApprovalStatus.REJECTED,
        case.people["approver"],
        "over the plan",
    )
    assert case.effect() == before
    if kind.statuses:
        assert case.subject_status() == kind.statuses[2]
    assert case.decide(door, "approver", approve=True) == door.settled
    assert case.effect() == before


# --- the approvals API's inbox --------------------------------------------------------------------


@pytest.mark.parametrize("kind", [pytest.param(kind, id=kind.code) for kind in KINDS])
def test_a_request_waits_in_the_approvers_api_inbox_only_until_it_is_decided(open_request, kind):
    case = open_request(kind)

    def inbox(who: str) -> list[int]:
        response = case.api(case.people[who]).get("/api/v1/approvals/", {"inbox": "1"})
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    waiting = {who: inbox(who) for who in ("approver", "requester", "outsider")}
    case.decide(_door_named("approvals-api"), "approver", approve=True)

    assert waiting == {"approver": [case.approval.pk], "requester": [], "outsider": []}
    assert inbox("approver") == []
