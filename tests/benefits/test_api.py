"""Benefits API (API.md): redeeming a member's grant, the grants of the member centre, and
the configuration endpoints `benefits/`, `entitlements/`, `budgets/`; plus the entitlement
matrix of the admin, the product team's other way to configure entitlements."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from benefits.choices import GrantSource, GrantStatus
from benefits.models import Benefit, BenefitGrant, Budget, TierEntitlement
from benefits.services import grant_create, grant_redeem, grant_revoke
from members.models import Tier
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.models import ApprovalRequest, AuditEntry
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

AMOUNT = re.compile(r"^-?\d+\.\d{2}$")
GRANT_KEYS = {"id", "member_no", "benefit", "source", "status", "expires_at", "redeemed_at"}


def redeem_url(member_no: str, grant_id: int) -> str:
    return f"/api/v1/members/{member_no}/grants/{grant_id}/redeem/"


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


@pytest.fixture
def staff(make_user):
    return {
        "am_a": make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1"),
        "am_b": make_user(Role.ACCOUNT_MANAGER, username="am_b", branch="B02S1"),
        "bm_b01": make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "admin": make_user(Role.ADMINISTRATOR, username="admin", branch="HO"),
        "mobile": make_user(Role.SYSTEM, username="mobile_banking", branch="HO"),
    }


@pytest.fixture
def members(org, staff):
    """A's customer in 朝阳支行, B's customer in 浦东支行."""
    return {
        "a": MemberFactory(
            member_no="M0000123", branch=org["B01S1"], account_manager=staff["am_a"]
        ),
        "b": MemberFactory(
            member_no="M0000300", branch=org["B02S1"], account_manager=staff["am_b"]
        ),
    }


@pytest.fixture
def lounge(db):
    return BenefitFactory(code="LOUNGE", unit_cost_fen=12_000)


def give(member, benefit, *, expires_in_days: int = 30, key: str | None = None) -> BenefitGrant:
    return grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source=GrantSource.ENTITLEMENT,
        idempotency_key=key or f"api-{member.member_no}-{BenefitGrant.objects.count()}",
        expires_on=today_in_shanghai() + timedelta(days=expires_in_days),
    )


# --- POST /api/v1/members/{member_no}/grants/{id}/redeem/ ----------------------------------


def test_the_system_integration_token_redeems_a_grant(api_client_for, staff, members, lounge):
    grant = give(members["a"], lounge)

    response = api_client_for(staff["mobile"]).post(redeem_url("M0000123", grant.pk))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == GRANT_KEYS
    assert body["id"] == grant.pk
    assert body["member_no"] == "M0000123"
    assert body["benefit"] == "LOUNGE"
    assert body["source"] == GrantSource.ENTITLEMENT
    assert body["status"] == "REDEEMED"
    assert body["expires_at"] == grant.expires_on.isoformat()
    assert body["redeemed_at"] is not None
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REDEEMED
    assert AuditEntry.objects.filter(action="grant.redeem", actor=staff["mobile"]).count() == 1


@pytest.mark.parametrize("who", ["am_a", "bm_b01"])
def test_staff_with_the_right_redeem_for_members_in_their_scope(
    api_client_for, staff, members, lounge, who
):
    grant = give(members["a"], lounge)

    response = api_client_for(staff[who]).post(redeem_url("M0000123", grant.pk))

    assert response.status_code == 200 and response.json()["status"] == "REDEEMED"


def _redeemed(grant):
    grant_redeem(grant=grant)


def _revoked(grant):
    grant_revoke(grant=grant, actor=None, reason="test")


@pytest.mark.parametrize(
    "make_unredeemable, expires_in_days, status",
    [
        (_redeemed, 30, GrantStatus.REDEEMED),
        (None, -1, GrantStatus.GRANTED),  # expired yesterday, not yet closed by the nightly
        (_revoked, 30, GrantStatus.REVOKED),
    ],
    ids=["already-redeemed", "expired", "revoked"],
)
def test_a_grant_that_is_not_redeemable_is_409_with_detail_and_code(
    api_client_for, staff, members, lounge, make_unredeemable, expires_in_days, status
):
    grant = give(members["a"], lounge, expires_in_days=expires_in_days)
    if make_unredeemable:
        make_unredeemable(grant)

    response = api_client_for(staff["mobile"]).post(redeem_url("M0000123", grant.pk))

    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "not_redeemable" and body["detail"]
    grant.refresh_from_db()
    assert grant.status == status


def test_redeeming_twice_over_the_api_is_200_then_409(api_client_for, staff, members, lounge):
    grant = give(members["a"], lounge)
    client = api_client_for(staff["mobile"])

    first = client.post(redeem_url("M0000123", grant.pk))
    second = client.post(redeem_url("M0000123", grant.pk))

    assert (first.status_code, second.status_code) == (200, 409)


def test_another_members_grant_id_is_404_and_untouched(api_client_for, staff, members, lounge):
    others = give(members["b"], lounge)

    response = api_client_for(staff["mobile"]).post(redeem_url("M0000123", others.pk))

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}
    others.refresh_from_db()
    assert others.status == GrantStatus.GRANTED


@pytest.mark.parametrize("member_no, grant_id", [("M9999999", None), ("M0000123", 987654)])
def test_an_unknown_member_or_grant_is_404(
    api_client_for, staff, members, lounge, member_no, grant_id
):
    grant = give(members["a"], lounge)

    response = api_client_for(staff["mobile"]).post(redeem_url(member_no, grant_id or grant.pk))

    assert response.status_code == 404


@pytest.mark.parametrize("who", ["am_a", "bm_b01"])
def test_a_member_outside_the_staff_members_scope_is_404(
    api_client_for, staff, members, lounge, who
):
    grant = give(members["b"], lounge)  # B's customer in 上海分行

    response = api_client_for(staff[who]).post(redeem_url("M0000300", grant.pk))

    assert response.status_code == 404
    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED


@pytest.mark.parametrize("who", ["operator", "approver", "auditor", "admin"])
def test_a_role_without_the_redeem_right_is_403(api_client_for, staff, members, lounge, who):
    grant = give(members["a"], lounge)

    response = api_client_for(staff[who]).post(redeem_url("M0000123", grant.pk))

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}
    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED


def test_redeeming_without_credentials_is_401(members, lounge):
    grant = give(members["a"], lounge)

    response = APIClient().post(redeem_url("M0000123", grant.pk))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")
    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED


def test_redeem_accepts_only_post(api_client_for, staff, members, lounge):
    grant = give(members["a"], lounge)

    response = api_client_for(staff["mobile"]).get(redeem_url("M0000123", grant.pk))

    assert response.status_code == 405


# --- the grants of the member centre -------------------------------------------------------


def test_the_member_centre_lists_the_members_grants(api_client_for, staff, members, lounge):
    gift = BenefitFactory(code="GIFT")
    later = give(members["a"], lounge, expires_in_days=60)
    sooner = give(members["a"], gift, expires_in_days=10)
    used = give(members["a"], gift, expires_in_days=20)
    give(members["b"], lounge)  # someone else's
    client = api_client_for(staff["mobile"])
    client.post(redeem_url("M0000123", used.pk))

    body = client.get("/api/v1/members/M0000123/").json()

    assert body["grants"] == [
        {
            "id": grant.pk,
            "benefit": code,
            "status": status,
            "expires_at": grant.expires_on.isoformat(),
        }
        for grant, code, status in [
            (sooner, "GIFT", "GRANTED"),
            (used, "GIFT", "REDEEMED"),
            (later, "LOUNGE", "GRANTED"),
        ]
    ]


def test_the_member_centre_leaves_out_grants_expired_over_90_days_ago(
    api_client_for, staff, members, lounge
):
    old = give(members["a"], lounge, expires_in_days=-91)
    recent = give(members["a"], lounge, expires_in_days=-5)

    grants = api_client_for(staff["mobile"]).get("/api/v1/members/M0000123/").json()["grants"]

    assert [grant["id"] for grant in grants] == [recent.pk]
    assert old.pk not in {grant["id"] for grant in grants}


# --- configuration endpoints ---------------------------------------------------------------


def test_a_product_operator_lists_benefits_with_amounts_as_strings(api_client_for, staff, lounge):
    response = api_client_for(staff["operator"]).get("/api/v1/benefits/")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert row["code"] == "LOUNGE"
    assert row["unit_cost"] == "120.00"
    assert row["budget"] == lounge.budget.code
    assert row["department"] == lounge.department.code


def test_a_product_operator_creates_a_benefit_with_a_decimal_unit_cost(api_client_for, staff):
    budget = BudgetFactory(code="RETAIL-2026")
    payload = {
        "code": "SPA",
        "name": "温泉",
        "name_en": "Spa",
        "category": "HEALTH",
        "provider": "Spa Co.",
        "unit_cost": "88.50",
        "department": budget.department.code,
        "budget": "RETAIL-2026",
        "validity_days": 30,
    }

    response = api_client_for(staff["operator"]).post("/api/v1/benefits/", payload, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["unit_cost"] == "88.50"
    benefit = Benefit.objects.get(code="SPA")
    assert benefit.unit_cost_fen == 8850
    assert benefit.budget == budget and benefit.validity_days == 30 and benefit.active


def test_a_new_unit_cost_waits_for_a_budget_approver_then_applies(api_client_for, staff, lounge):
    operator = api_client_for(staff["operator"])

    proposed = operator.patch(
        f"/api/v1/benefits/{lounge.pk}/",
        {"unit_cost": "99.9", "provider": "机场贵宾厅"},
        format="json",
    )

    assert proposed.status_code == 202, proposed.content
    body = proposed.json()
    assert body["unit_cost"] == "120.00"  # still what it was
    assert body["provider"] == "机场贵宾厅"  # a low-risk field applies at once
    assert body["approval"]["kind"] == "BENEFIT_CHANGE" and body["approval"]["status"] == "PENDING"
    lounge.refresh_from_db()
    assert lounge.unit_cost_fen == 12_000
    own = operator.post(f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json")
    assert own.status_code == 403

    approved = api_client_for(staff["approver"]).post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json"
    )

    assert approved.status_code == 200, approved.content
    lounge.refresh_from_db()
    assert lounge.unit_cost_fen == 9990


def test_a_unit_cost_with_three_decimals_is_a_field_error(api_client_for, staff, lounge):
    response = api_client_for(staff["operator"]).patch(
        f"/api/v1/benefits/{lounge.pk}/", {"unit_cost": "88.505"}, format="json"
    )

    assert response.status_code == 400
    assert "unit_cost" in response.json()
    lounge.refresh_from_db()
    assert lounge.unit_cost_fen == 12_000


def test_a_negative_unit_cost_is_refused(api_client_for, staff, lounge):
    response = api_client_for(staff["operator"]).patch(
        f"/api/v1/benefits/{lounge.pk}/", {"unit_cost": "-5.00"}, format="json"
    )

    assert response.status_code == 400
    lounge.refresh_from_db()
    assert lounge.unit_cost_fen == 12_000


def test_benefits_are_deactivated_not_deleted(api_client_for, staff, lounge):
    client = api_client_for(staff["operator"])

    deleted = client.delete(f"/api/v1/benefits/{lounge.pk}/")
    deactivated = client.patch(f"/api/v1/benefits/{lounge.pk}/", {"active": False}, format="json")

    assert deleted.status_code == 405
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False


@pytest.mark.parametrize("who", ["am_a", "bm_b01", "approver", "auditor"])
def test_roles_that_cannot_configure_benefits_cannot_create_one(api_client_for, staff, who):
    budget = BudgetFactory()
    payload = {
        "code": "SPA",
        "name": "温泉",
        "name_en": "Spa",
        "category": "HEALTH",
        "unit_cost": "88.50",
        "department": budget.department.code,
        "budget": budget.code,
    }

    response = api_client_for(staff[who]).post("/api/v1/benefits/", payload, format="json")

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}
    assert not Benefit.objects.filter(code="SPA").exists()


@pytest.mark.parametrize("path", ["/api/v1/benefits/", "/api/v1/entitlements/", "/api/v1/budgets/"])
def test_an_account_manager_gets_403_on_the_configuration_endpoints(api_client_for, staff, path):
    response = api_client_for(staff["am_a"]).get(path)

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.parametrize("path", ["/api/v1/benefits/", "/api/v1/entitlements/", "/api/v1/budgets/"])
def test_the_configuration_endpoints_need_credentials(db, path):
    response = APIClient().get(path)

    assert response.status_code == 401


def test_a_product_operator_proposes_an_entitlement_and_it_exists_once_approved(
    api_client_for, staff, lounge
):
    TierEntitlement.objects.create(benefit=lounge, tier=tier("GOLD"), quantity=1, period="YEAR")
    client = api_client_for(staff["operator"])

    created = client.post(
        "/api/v1/entitlements/",
        {"benefit": "LOUNGE", "tier": "SUNFLOWER", "quantity": 2, "period": "QUARTER"},
        format="json",
    )

    assert created.status_code == 202, created.content
    approval = created.json()["approval"]
    assert approval["kind"] == "ENTITLEMENT_CHANGE"
    assert TierEntitlement.objects.count() == 1  # nothing until approval
    assert (
        api_client_for(staff["approver"])
        .post(f"/api/v1/approvals/{approval['id']}/approve/", {}, format="json")
        .status_code
        == 200
    )
    listed = client.get("/api/v1/entitlements/")
    assert listed.status_code == 200
    rows = [
        {key: row[key] for key in ("benefit", "tier", "quantity", "period")}
        for row in listed.json()["results"]
    ]
    assert rows == [
        {"benefit": "LOUNGE", "tier": "GOLD", "quantity": 1, "period": "YEAR"},
        {"benefit": "LOUNGE", "tier": "SUNFLOWER", "quantity": 2, "period": "QUARTER"},
    ]


def test_a_second_entitlement_for_the_same_benefit_and_tier_is_400(api_client_for, staff, lounge):
    TierEntitlement.objects.create(benefit=lounge, tier=tier("GOLD"), quantity=1, period="YEAR")

    response = api_client_for(staff["operator"]).post(
        "/api/v1/entitlements/",
        {"benefit": "LOUNGE", "tier": "GOLD", "quantity": 2, "period": "MONTH"},
        format="json",
    )

    assert response.status_code == 400
    assert TierEntitlement.objects.get().quantity == 1


def test_an_entitlement_for_a_tier_of_a_draft_scheme_is_400(api_client_for, staff, lounge):
    response = api_client_for(staff["operator"]).post(
        "/api/v1/entitlements/",
        {"benefit": "LOUNGE", "tier": "STAR3", "quantity": 1, "period": "MONTH"},
        format="json",
    )

    assert response.status_code == 400
    assert "tier" in response.json()


def test_an_account_manager_cannot_create_an_entitlement(api_client_for, staff, lounge):
    response = api_client_for(staff["am_a"]).post(
        "/api/v1/entitlements/",
        {"benefit": "LOUNGE", "tier": "GOLD", "quantity": 1, "period": "MONTH"},
        format="json",
    )

    assert response.status_code == 403
    assert TierEntitlement.objects.count() == 0


@pytest.mark.parametrize("who", ["operator", "approver", "auditor", "admin"])
def test_budgets_are_listed_with_amounts_as_strings_with_two_decimals(api_client_for, staff, who):
    parent = BudgetFactory(code="RETAIL-2026", amount_fen=1_000_000_00)
    BudgetFactory(code="RETAIL-2026-LOUNGE", parent=parent, amount_fen=200_000_50)
    Budget.objects.filter(code="RETAIL-2026-LOUNGE").update(consumed_fen=12_345)

    response = api_client_for(staff[who]).get("/api/v1/budgets/")

    assert response.status_code == 200
    rows = {row["code"]: row for row in response.json()["results"]}
    child = rows["RETAIL-2026-LOUNGE"]
    assert (child["amount"], child["consumed"], child["remaining"]) == (
        "200000.50",
        "123.45",
        "199877.05",
    )
    assert child["parent"] == "RETAIL-2026" and rows["RETAIL-2026"]["parent"] is None
    for row in rows.values():
        assert all(AMOUNT.match(row[key]) for key in ("amount", "consumed", "remaining"))


@pytest.mark.parametrize("who", ["approver", "admin"])
def test_budgets_change_over_the_api_only_through_proposals(api_client_for, staff, who):
    budget = BudgetFactory(code="RETAIL-2026", amount_fen=1_000_00)
    client = api_client_for(staff[who])

    raised = client.patch(f"/api/v1/budgets/{budget.pk}/", {"amount": "999999.00"}, format="json")
    deleted = client.delete(f"/api/v1/budgets/{budget.pk}/")

    assert raised.status_code == 202, raised.content
    assert raised.json()["amount"] == "1000.00"  # still what it was
    assert raised.json()["approval"]["kind"] == "BUDGET_INCREASE"
    assert deleted.status_code == 405
    assert list(Budget.objects.values_list("code", "amount_fen")) == [("RETAIL-2026", 1_000_00)]


def test_a_product_operator_cannot_write_budgets_over_the_api(api_client_for, staff):
    budget = BudgetFactory(code="RETAIL-2026", amount_fen=1_000_00)
    client = api_client_for(staff["operator"])

    created = client.post("/api/v1/budgets/", {"code": "NEW", "name": "New"}, format="json")
    raised = client.patch(f"/api/v1/budgets/{budget.pk}/", {"amount": "1.00"}, format="json")

    assert (created.status_code, raised.status_code) == (403, 403)
    assert list(Budget.objects.values_list("code", "amount_fen")) == [("RETAIL-2026", 1_000_00)]


def test_an_account_manager_cannot_post_a_budget(api_client_for, staff):
    response = api_client_for(staff["am_a"]).post(
        "/api/v1/budgets/", {"code": "NEW", "name": "New"}, format="json"
    )

    assert response.status_code == 403
    assert Budget.objects.count() == 0


# --- the entitlement matrix of the admin ---------------------------------------------------

MATRIX = "/admin/benefits/tierentitlement/matrix/"


def cell(benefit, tier_code: str) -> tuple[str, str]:
    suffix = f"{benefit.pk}_{tier(tier_code).pk}"
    return f"q_{suffix}", f"p_{suffix}"


def test_the_matrix_shows_benefits_as_rows_and_active_tiers_as_columns(client, staff, lounge):
    TierEntitlement.objects.create(benefit=lounge, tier=tier("GOLD"), quantity=3, period="MONTH")
    client.force_login(staff["operator"])

    response = client.get(MATRIX)

    assert response.status_code == 200
    html = response.content.decode()
    for code in ("STANDARD", "GOLD", "SUNFLOWER", "PRIVATE", "LOUNGE"):
        assert code in html
    assert "STAR3" not in html  # tiers of the draft points scheme are not columns
    q, _p = cell(lounge, "GOLD")
    assert f'name="{q}" value="3"' in html


def test_the_entitlement_changelist_opens_the_matrix(client, staff):
    client.force_login(staff["operator"])

    response = client.get("/admin/benefits/tierentitlement/")

    assert response.status_code == 302 and response["Location"].endswith(MATRIX)


def test_saving_the_matrix_proposes_the_changes_and_approval_writes_them(client, staff, lounge):
    gift = BenefitFactory(code="GIFT")
    TierEntitlement.objects.create(benefit=lounge, tier=tier("GOLD"), quantity=1, period="YEAR")
    TierEntitlement.objects.create(benefit=gift, tier=tier("GOLD"), quantity=1, period="YEAR")
    client.force_login(staff["operator"])
    form = {}
    for benefit in (lounge, gift):
        for code in ("STANDARD", "GOLD", "SUNFLOWER", "PRIVATE"):
            q, p = cell(benefit, code)
            form[q], form[p] = "", "MONTH"
    form.update(dict(zip(cell(lounge, "GOLD"), ["2", "QUARTER"], strict=True)))  # changed
    form.update(dict(zip(cell(lounge, "SUNFLOWER"), ["4", "QUARTER"], strict=True)))  # new
    form.update(dict(zip(cell(gift, "GOLD"), ["0", "YEAR"], strict=True)))  # removed
    before = set(
        TierEntitlement.objects.values_list("benefit__code", "tier__code", "quantity", "period")
    )

    response = client.post(MATRIX, form)

    approval = ApprovalRequest.objects.get(kind="ENTITLEMENT_CHANGE")
    assert response.status_code == 302
    assert response["Location"] == reverse("approval-detail", args=[approval.pk])
    assert len(approval.proposal["changes"]) == 3
    assert (
        set(
            TierEntitlement.objects.values_list("benefit__code", "tier__code", "quantity", "period")
        )
        == before
    )

    client.force_login(staff["approver"])
    client.post(reverse("approval-decide", args=[approval.pk]), {"decision": "approve"})

    assert set(
        TierEntitlement.objects.values_list("benefit__code", "tier__code", "quantity", "period")
    ) == {("LOUNGE", "GOLD", 2, "QUARTER"), ("LOUNGE", "SUNFLOWER", 4, "QUARTER")}
    assert (
        AuditEntry.objects.filter(action="entitlement.change", actor=staff["approver"]).count() == 3
    )


def test_a_budget_approver_sees_the_matrix_read_only(client, staff, lounge):
    TierEntitlement.objects.create(benefit=lounge, tier=tier("GOLD"), quantity=3, period="MONTH")
    client.force_login(staff["approver"])
    q, p = cell(lounge, "GOLD")

    shown = client.get(MATRIX)
    posted = client.post(MATRIX, {q: "9", p: "MONTH"})

    assert shown.status_code == 200 and f'name="{q}"' not in shown.content.decode()
    assert posted.status_code == 403
    assert TierEntitlement.objects.get().quantity == 3


def test_an_account_manager_cannot_open_the_matrix(client, staff):
    client.force_login(staff["am_a"])

    response = client.get(MATRIX)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
