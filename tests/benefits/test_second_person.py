"""Every change that spends money waits for a second person (issue 14, DESIGN.md "Change
management"), through both doors a maker uses — the admin and the API — and what the
approver is shown before approving is what is in force after.

Six changes: a benefit's unit cost, a benefit's budget, an entitlement matrix change, a new
budget, a budget increase and a budget's parent. For each, through each door: the maker's
change answers with a pending approval (the admin sends the maker to the approval page, the
API answers 202 with the request), nothing has changed yet, the maker cannot approve it
(though they hold the approving role), a second person with the approving role approves it
(the inbox for the admin's maker, the approvals API for the API's), and then the change is
in force. "Preview equals result": the figures of the impact shown before approval (the
approval page's lines; the API's `impact`) equal what is in force afterwards — a budget's
left, forecast and its parent's room, or what the next night charges.

The bank: three GOLD customers and one STANDARD; LOUNGE (¥120.00, GOLD 1 a month) charged to
CARD (¥100,000.00, ¥75,000.00 spent five days ago) under RETAIL (¥1,000,000.00); WEALTH
(¥500,000.00) is another top-level budget and GOODWILL (¥50,000.00) another one a benefit
may be charged to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import constants as message_level
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import translation

from benefits.choices import BenefitApproval
from benefits.models import Benefit, BenefitGrant, Budget, BudgetEntry, TierEntitlement
from benefits.rules import budget_parent_room
from benefits.services import budget_consume, budget_forecast, entitlement_grants_run
from members.models import Tier
from portal.approvals import approval_impact
from portal.choices import ApprovalStatus, Role
from portal.clock import day_start, today_in_shanghai
from portal.models import ApprovalRequest
from portal.money import fen_to_decimal, yuan_text
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = today_in_shanghai()
MATRIX = "/admin/benefits/tierentitlement/matrix/"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


def _budget(code: str, name: str, yuan: int, *, parent=None, department=None) -> Budget:
    values = {"department": department} if department is not None else {}
    return BudgetFactory(
        code=code,
        name=name,
        parent=parent,
        period_start=TODAY - timedelta(days=60),
        period_end=TODAY + timedelta(days=40),
        amount_fen=yuan * 100,
        **values,
    )


def _staff(username: str, *roles: Role, org) -> object:
    user = UserFactory(username=username, branch=org["HO"])
    user.groups.add(*Group.objects.filter(name__in=[str(role) for role in roles]))
    return user


@pytest.fixture
def bank(org):
    for n in range(3):
        MemberFactory(member_no=f"M000000{n}", branch=org["B01S1"], tier=tier("GOLD"))
    MemberFactory(member_no="M0000009", branch=org["B01S1"], tier=tier("STANDARD"))
    retail = _budget("RETAIL", "零售权益预算", 1_000_000)
    card = _budget("CARD", "信用卡权益预算", 100_000, parent=retail, department=retail.department)
    wealth = _budget("WEALTH", "财富权益预算", 500_000)
    goodwill = _budget("GOODWILL", "客诉关怀预算", 50_000)
    since = BudgetEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    budget_consume(budget=card, amount_fen=75_000_00, source="card rewards")
    BudgetEntry.objects.filter(pk__gt=since).update(  # spent five business days ago
        created_at=day_start(TODAY - timedelta(days=5)) + timedelta(hours=10)
    )
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=120_00, budget=card)
    TierEntitlement.objects.create(benefit=lounge, tier=tier("GOLD"), quantity=1, period="MONTH")
    return {
        "org": org,
        "retail": retail,
        "card": card,
        "wealth": wealth,
        "goodwill": goodwill,
        "lounge": lounge,
        # a product operator who approves budgets too, and a colleague approver
        "benefit maker": _staff("po_ba", Role.PRODUCT_OPERATOR, Role.BUDGET_APPROVER, org=org),
        "budget maker": _staff("ba_maker", Role.BUDGET_APPROVER, org=org),
        "approver": _staff("ba_checker", Role.BUDGET_APPROVER, org=org),
    }


def fresh(bank: dict, key: str):
    return type(bank[key]).objects.get(pk=bank[key].pk)


def night(bank: dict) -> dict[str, str]:
    """Run the entitlement grants of today's business date: what they charged, per budget."""
    before = dict(Budget.objects.values_list("code", "consumed_fen"))
    granted = BenefitGrant.objects.count()
    entitlement_grants_run(business_date=TODAY)
    assert BenefitGrant.objects.count() > granted
    return {
        code: yuan_text(fen_to_decimal(consumed - before[code]))
        for code, consumed in Budget.objects.values_list("code", "consumed_fen")
        if consumed != before[code]
    }


def room(bank: dict, key: str) -> str:
    return yuan_text(fen_to_decimal(budget_parent_room(fresh(bank, key))))


# --- the forms each door posts ----------------------------------------------------------------


def benefit_form(benefit: Benefit, **changes) -> dict:
    return {
        "code": benefit.code,
        "name": benefit.name,
        "name_en": benefit.name_en,
        "category": benefit.category,
        "provider": benefit.provider,
        "department": benefit.department.pk,
        "budget": benefit.budget.pk,
        "validity_days": "",
        "active": "on",
        "unit_cost": f"{benefit.unit_cost:.2f}",
        **changes,
    }


def budget_form(budget: Budget, **changes) -> dict:
    return {
        "code": budget.code,
        "name": budget.name,
        "department": budget.department.pk,
        "parent": budget.parent.pk if budget.parent_id else "",
        "line": budget.line,
        "period_start": budget.period_start.isoformat(),
        "period_end": budget.period_end.isoformat(),
        "amount": f"{budget.amount:,.2f}",
        "alert_percents": json.dumps(budget.alert_percents),
        **changes,
    }


def matrix_form(quantity: str) -> dict:
    """The whole matrix as shown, LOUNGE's GOLD cell typed as `quantity` (a month)."""
    form = {}
    for benefit in Benefit.objects.filter(active=True):
        for each in Tier.objects.filter(scheme__status="ACTIVE"):
            suffix = f"{benefit.pk}_{each.pk}"
            gold = benefit.code == "LOUNGE" and each.code == "GOLD"
            form[f"q_{suffix}"], form[f"p_{suffix}"] = (quantity if gold else ""), "MONTH"
    return form


NEW_BUDGET = {"code": "LOUNGE-NEW", "name": "贵宾厅新预算", "amount": "200000.00"}


def new_budget_form(bank: dict) -> dict:
    retail = bank["retail"]
    return {
        **budget_form(retail),
        **NEW_BUDGET,
        "parent": retail.pk,
        "amount": "200,000.00",
        "alert_percents": "[]",
    }


def new_budget_json(bank: dict) -> dict:
    retail = bank["retail"]
    return {
        **NEW_BUDGET,
        "department": retail.department.code,
        "parent": "RETAIL",
        "period_start": retail.period_start.isoformat(),
        "period_end": retail.period_end.isoformat(),
    }


# --- the changes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    name: str
    kind: str
    maker: str  # who makes it (a key of the bank)
    admin: Callable[[dict, Client], object]  # the maker's POST in the admin
    api: Callable[[dict, object], object]  # the maker's API request
    state: Callable[[dict], dict]  # what the change touches, read from the database
    applied: dict  # that state once approved
    preview: Callable[[dict[str, str]], dict]  # figures the impact promises
    result: Callable[[dict], dict]  # the same figures from what is in force after approval

    def __str__(self) -> str:
        return self.name


def card_end() -> str:
    return (TODAY + timedelta(days=40)).isoformat()


CHANGES = [
    Change(
        name="unit-cost",
        kind=BenefitApproval.BENEFIT_CHANGE,
        maker="benefit maker",
        admin=lambda bank, client: client.post(
            f"/admin/benefits/benefit/{bank['lounge'].pk}/change/",
            benefit_form(bank["lounge"], unit_cost="150.00"),
        ),
        api=lambda bank, api: api.patch(
            f"/api/v1/benefits/{bank['lounge'].pk}/", {"unit_cost": "150.00"}, format="json"
        ),
        state=lambda bank: {"unit cost": fresh(bank, "lounge").unit_cost_fen},
        applied={"unit cost": 150_00},
        preview=lambda impact: {"charged a month": impact["Monthly entitlement cost if approved"]},
        result=lambda bank: {"charged a month": night(bank)["CARD"]},  # 3 × ¥150 = ¥450
    ),
    Change(
        name="benefit-budget",
        kind=BenefitApproval.BENEFIT_CHANGE,
        maker="benefit maker",
        admin=lambda bank, client: client.post(
            f"/admin/benefits/benefit/{bank['lounge'].pk}/change/",
            benefit_form(bank["lounge"], budget=bank["goodwill"].pk),
        ),
        api=lambda bank, api: api.patch(
            f"/api/v1/benefits/{bank['lounge'].pk}/", {"budget": "GOODWILL"}, format="json"
        ),
        state=lambda bank: {"budget": fresh(bank, "lounge").budget.code},
        applied={"budget": "GOODWILL"},
        preview=lambda impact: {
            "charged": {
                impact["Budget if approved"]: impact["Monthly entitlement cost if approved"]
            },
            "left before": impact["Left in 客诉关怀预算"],
        },
        result=lambda bank: {
            "left before": yuan_text(fresh(bank, "goodwill").remaining),
            "charged": {
                Budget.objects.get(code=code).name: spent for code, spent in night(bank).items()
            },
        },
    ),
    Change(
        name="entitlement-matrix",
        kind=BenefitApproval.ENTITLEMENT_CHANGE,
        maker="benefit maker",
        admin=lambda bank, client: client.post(MATRIX, matrix_form("2")),
        api=lambda bank, api: api.patch(
            f"/api/v1/entitlements/{TierEntitlement.objects.get().pk}/",
            {"quantity": 2},
            format="json",
        ),
        state=lambda bank: {"GOLD lounges a month": TierEntitlement.objects.get().quantity},
        applied={"GOLD lounges a month": 2},
        preview=lambda impact: {"charged a month": impact["Monthly cost if approved"]},
        result=lambda bank: {"charged a month": night(bank)["CARD"]},  # 3 × 2 × ¥120 = ¥720
    ),
    Change(
        name="new-budget",
        kind=BenefitApproval.BUDGET_CREATE,
        maker="budget maker",
        admin=lambda bank, client: client.post(
            "/admin/benefits/budget/add/", new_budget_form(bank)
        ),
        api=lambda bank, api: api.post("/api/v1/budgets/", new_budget_json(bank), format="json"),
        state=lambda bank: {
            "budgets": list(
                Budget.objects.filter(code="LOUNGE-NEW").values_list("parent__code", "amount_fen")
            )
        },
        applied={"budgets": [("RETAIL", 200_000_00)]},
        preview=lambda impact: {
            "left": impact["Left if approved"],
            "parent's room": impact["Left to give in 零售权益预算 if approved"],
        },
        result=lambda bank: {
            "left": yuan_text(Budget.objects.get(code="LOUNGE-NEW").remaining),
            "parent's room": room(bank, "retail"),  # ¥1,000,000 − ¥100,000 − ¥200,000
        },
    ),
    Change(
        name="budget-increase",
        kind=BenefitApproval.BUDGET_INCREASE,
        maker="budget maker",
        admin=lambda bank, client: client.post(
            f"/admin/benefits/budget/{bank['card'].pk}/change/",
            budget_form(bank["card"], amount="150,000.00"),
        ),
        api=lambda bank, api: api.patch(
            f"/api/v1/budgets/{bank['card'].pk}/", {"amount": "150000.00"}, format="json"
        ),
        state=lambda bank: {"amount": fresh(bank, "card").amount_fen},
        applied={"amount": 150_000_00},
        preview=lambda impact: {
            "left": impact["Left if approved"],
            "runs out": impact["Runs out at this rate"],
            "at the period end": impact[f"Consumed by the period end ({card_end()}) at this rate"],
            "parent's room": impact["Left to give in 零售权益预算 if approved"],
        },
        result=lambda bank: {
            # ¥75,000 over 30 days is ¥2,500 a day: the ¥75,000 left last 30 days
            "left": yuan_text(fresh(bank, "card").remaining),
            "runs out": budget_forecast(budget=bank["card"]).exhaustion.isoformat(),
            "at the period end": yuan_text(
                fen_to_decimal(budget_forecast(budget=bank["card"]).projected_end_fen)
            ),
            "parent's room": room(bank, "retail"),
        },
    ),
    Change(
        name="budget-parent",
        kind=BenefitApproval.BUDGET_PARENT_CHANGE,
        maker="budget maker",
        admin=lambda bank, client: client.post(
            f"/admin/benefits/budget/{bank['card'].pk}/change/",
            budget_form(bank["card"], parent=bank["wealth"].pk),
        ),
        api=lambda bank, api: api.patch(
            f"/api/v1/budgets/{bank['card'].pk}/", {"parent": "WEALTH"}, format="json"
        ),
        state=lambda bank: {
            "parent": fresh(bank, "card").parent.code,
            "consumed above": (
                fresh(bank, "retail").consumed_fen,
                fresh(bank, "wealth").consumed_fen,
            ),
        },
        applied={"parent": "WEALTH", "consumed above": (0, 75_000_00)},
        preview=lambda impact: {
            "parent": impact["Parent if approved"],
            "old parent's room": impact["Left to give in 零售权益预算 if approved"],
            "new parent's room": impact["Left to give in 财富权益预算 if approved"],
            "new parent's consumption": impact["Consumed so far, moving with it"],
        },
        result=lambda bank: {
            "parent": fresh(bank, "card").parent.name,
            "old parent's room": room(bank, "retail"),
            "new parent's room": room(bank, "wealth"),
            "new parent's consumption": yuan_text(fresh(bank, "wealth").consumed),
        },
    ),
]


# --- the doors ----------------------------------------------------------------------------------


def _browser(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _page_says(response) -> str:
    """A page decision: "ok", or the refusal it shows."""
    assert response.status_code == 302, response.status_code
    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level == message_level.ERROR]
    return errors[0] if errors else "ok"


@dataclass(frozen=True)
class Door:
    name: str
    make: Callable[[Change, dict], tuple[ApprovalRequest, dict[str, str]]]
    decide: Callable[[ApprovalRequest, object], str]

    def __str__(self) -> str:
        return self.name


def make_in_the_admin(change: Change, bank: dict):
    """The maker saves the change in the admin: sent to the approval page, which shows the
    impact (the page's lines are `approval_impact`'s)."""
    response = change.admin(bank, _browser(bank[change.maker]))
    approval = ApprovalRequest.objects.get(status=ApprovalStatus.PENDING)
    assert response.status_code == 302, getattr(response, "context", None)
    assert response["Location"] == reverse("approval-detail", args=[approval.pk])
    page = _browser(bank["approver"]).get(response["Location"]).content.decode()
    with translation.override("en"):
        impact = dict(approval_impact(approval))
    assert impact and all(value in page for value in impact.values())
    return approval, impact


def decide_in_the_inbox(approval: ApprovalRequest, user) -> str:
    response = _browser(user).post(
        reverse("approval-decide", args=[approval.pk]), {"decision": "approve", "comment": ""}
    )
    return _page_says(response)


def make_over_the_api(change: Change, bank: dict):
    """The maker sends the change over the API: 202 with the pending request and its impact."""
    response = change.api(bank, api_clients[bank[change.maker].pk])
    assert response.status_code == 202, response.content
    body = response.json()["approval"]
    assert body["status"] == ApprovalStatus.PENDING
    impact = {line["what"]: line["value"] for line in body["impact"]}
    return ApprovalRequest.objects.get(pk=body["id"]), impact


def decide_over_the_api(approval: ApprovalRequest, user) -> str:
    response = api_clients[user.pk].post(
        f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    if response.status_code == 200:
        return "ok"
    return response.json()["code"]


#: the API clients of the bank's staff, by user id (set up per test)
api_clients: dict = {}

DOORS = [
    Door("admin", make_in_the_admin, decide_in_the_inbox),
    Door("api", make_over_the_api, decide_over_the_api),
]

#: what the maker is told when approving their own change, by door
SELF_APPROVAL = {
    "admin": "You cannot decide your own request; a colleague must.",
    "api": "self_approval",
}


@pytest.fixture
def doors(bank, api_client_for):
    api_clients.clear()
    for key in ("benefit maker", "budget maker", "approver"):
        api_clients[bank[key].pk] = api_client_for(bank[key])
        api_clients[bank[key].pk].defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    yield
    api_clients.clear()


@pytest.mark.parametrize("door", DOORS, ids=str)
@pytest.mark.parametrize("change", CHANGES, ids=str)
def test_a_cost_bearing_change_waits_for_a_second_person_and_its_preview_is_the_result(
    bank, doors, change, door
):
    before = change.state(bank)

    approval, impact = door.make(change, bank)

    assert approval.kind == change.kind and approval.requested_by == bank[change.maker]
    assert change.state(bank) == before  # nothing in force yet
    promised = change.preview(impact)

    refused = door.decide(approval, bank[change.maker])

    assert SELF_APPROVAL[door.name] in refused
    assert change.state(bank) == before
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING

    approved = door.decide(approval, bank["approver"])

    assert approved == "ok"
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.APPROVED, bank["approver"])
    assert change.state(bank) == change.applied
    assert change.result(bank) == promised


# --- what each door keeps at once, and what it refuses -----------------------------------------


def test_a_budgets_name_changes_at_once_with_its_new_parent_waiting(bank, doors):
    api = api_clients[bank["budget maker"].pk]

    response = api.patch(
        f"/api/v1/budgets/{bank['card'].pk}/",
        {"name": "信用卡权益预算（新）", "parent": "WEALTH"},
        format="json",
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["name"] == "信用卡权益预算（新）" and body["parent"] == "RETAIL"
    assert body["approval"]["kind"] == BenefitApproval.BUDGET_PARENT_CHANGE
    assert fresh(bank, "card").name == "信用卡权益预算（新）"


def test_lowering_a_budget_over_the_api_applies_at_once(bank, doors):
    api = api_clients[bank["budget maker"].pk]

    response = api.patch(
        f"/api/v1/budgets/{bank['card'].pk}/", {"amount": "90000.00"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["amount"] == "90000.00" and "approval" not in response.json()
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize("door", ["admin", "api"])
def test_a_new_parent_is_proposed_on_its_own_not_with_a_higher_amount(bank, doors, door):
    if door == "admin":
        response = _browser(bank["budget maker"]).post(
            f"/admin/benefits/budget/{bank['card'].pk}/change/",
            budget_form(bank["card"], parent=bank["wealth"].pk, amount="150,000.00"),
        )
        assert response.status_code == 200
        refusal = str(response.context["adminform"].form.errors["parent"])
    else:
        response = api_clients[bank["budget maker"].pk].patch(
            f"/api/v1/budgets/{bank['card'].pk}/",
            {"parent": "WEALTH", "amount": "150000.00"},
            format="json",
            HTTP_ACCEPT_LANGUAGE="en",
        )
        assert response.status_code == 400
        refusal = str(response.json())

    assert "A new parent is proposed on its own" in refusal
    assert not ApprovalRequest.objects.exists()
    assert (fresh(bank, "card").parent.code, fresh(bank, "card").amount_fen) == (
        "RETAIL",
        100_000_00,
    )


def test_a_new_parent_that_cannot_hold_the_budgets_spending_is_refused_on_the_field(bank, doors):
    tight = _budget("TIGHT", "紧张预算", 120_000)
    budget_consume(budget=tight, amount_fen=100_000_00, source="spent")  # ¥20,000 left

    response = _browser(bank["budget maker"]).post(
        f"/admin/benefits/budget/{bank['card'].pk}/change/",
        budget_form(bank["card"], parent=tight.pk),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "CNY 75,000.00" in str(errors["parent"]) and "CNY 20,000.00" in str(errors["parent"])
    assert not ApprovalRequest.objects.exists()


def test_an_operator_who_cannot_configure_budgets_gets_403_and_nothing_is_proposed(
    bank, api_client_for
):
    operator = UserFactory(username="po_only", role=Role.PRODUCT_OPERATOR, branch=bank["org"]["HO"])
    api = api_client_for(operator)

    created = api.post("/api/v1/budgets/", new_budget_json(bank), format="json")
    moved = api.patch(f"/api/v1/budgets/{bank['card'].pk}/", {"parent": "WEALTH"}, format="json")

    assert (created.status_code, moved.status_code) == (403, 403)
    assert not ApprovalRequest.objects.exists()
