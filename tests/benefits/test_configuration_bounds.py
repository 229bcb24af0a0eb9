"""Every benefit configuration input is bounded in the domain (`benefits.rules`) and refused
with the field named in the user's language, by every door: the entitlement matrix, the
benefit and budget forms of the admin, and the API. Nothing of a refused input is kept.

The cases of the issue: a matrix quantity of 99,999,999,999 (which killed a night), and
-3, 1.5 and abc (which silently became 0 and deleted the entitlement); a unit cost of
99,999,999.00; a ¥9,000,000 child budget under a ¥5,000,000 parent.
"""

from __future__ import annotations

from datetime import date

import pytest

from benefits.models import Benefit, TierEntitlement
from members.models import Tier
from portal.choices import Role
from portal.models import ApprovalRequest
from tests.factories import BenefitFactory, BudgetFactory

MATRIX = "/admin/benefits/tierentitlement/matrix/"

#: what the refusal says, by language (the label and the bounds)
SAYS = {
    "en": ("Quantity", "whole number", "1 to 999"),
    "zh-hans": ("数量", "整数", "1 至 999"),
}


@pytest.fixture
def staff(make_user):
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
    }


@pytest.fixture
def lounge(db):
    benefit = BenefitFactory(code="LOUNGE", unit_cost_fen=12_000)
    TierEntitlement.objects.create(benefit=benefit, tier=gold(), quantity=3, period="MONTH")
    return benefit


def gold() -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")


def matrix_form(benefit, quantity: str) -> dict:
    """The whole matrix as shown (every active tier), GOLD's cell typed as `quantity`."""
    form = {}
    for tier in Tier.objects.filter(scheme__status="ACTIVE"):
        suffix = f"{benefit.pk}_{tier.pk}"
        form[f"q_{suffix}"] = quantity if tier.code == "GOLD" else ""
        form[f"p_{suffix}"] = "MONTH"
    return form


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("typed", ["-3", "1.5", "abc", "99999999999", "1000", "1e3", "٣"])
def test_a_bad_matrix_cell_is_refused_with_its_reason_and_nothing_is_proposed_or_deleted(
    client, staff, lounge, typed, language
):
    client.force_login(staff["operator"])
    client.cookies["django_language"] = language

    response = client.post(MATRIX, matrix_form(lounge, typed))

    assert response.status_code == 200  # the matrix again, as typed, with the reason
    html = response.content.decode()
    label, kind, bounds = SAYS[language]
    assert label in html and kind in html and bounds in html
    assert f'value="{typed}"' in html and 'aria-invalid="true"' in html
    assert not ApprovalRequest.objects.exists()
    assert TierEntitlement.objects.get(benefit=lounge).quantity == 3


@pytest.mark.parametrize("typed", ["", "0"])
def test_an_empty_or_zero_cell_proposes_removing_the_entitlement(client, staff, lounge, typed):
    client.force_login(staff["operator"])

    client.post(MATRIX, matrix_form(lounge, typed))

    (approval,) = ApprovalRequest.objects.filter(kind="ENTITLEMENT_CHANGE")
    assert approval.proposal["changes"] == [
        {
            "benefit": "LOUNGE",
            "tier": "GOLD",
            "scheme": "DEFAULT_MADA",
            "quantity": 0,
            "period": "",
            "from_quantity": 3,
            "from_period": "MONTH",
        }
    ]
    assert TierEntitlement.objects.filter(benefit=lounge).exists()  # until approval


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 1000}, "quantity"),
        ({"quantity": 99_999_999_999}, "quantity"),
        ({"quantity": -3}, "quantity"),
        ({"quantity": "1.5"}, "quantity"),
        ({"quantity": "abc"}, "quantity"),
        ({"period": "DECADE"}, "period"),
    ],
)
def test_a_bad_entitlement_over_the_api_is_a_400_naming_the_field(
    api_client_for, staff, lounge, body, field
):
    response = api_client_for(staff["operator"]).post(
        "/api/v1/entitlements/",
        {"benefit": "LOUNGE", "tier": "SUNFLOWER", "quantity": 2, "period": "MONTH", **body},
        format="json",
    )

    assert response.status_code == 400
    assert field in response.json()
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(
    ("unit_cost", "language", "says"),
    [
        ("99999999.00", "en", "100000"),
        ("99999999.00", "zh-hans", "100000"),
        ("-5.00", "en", "0"),
    ],
)
def test_a_unit_cost_out_of_bounds_over_the_api_is_a_400(
    api_client_for, staff, lounge, unit_cost, language, says
):
    response = api_client_for(staff["operator"]).patch(
        f"/api/v1/benefits/{lounge.pk}/",
        {"unit_cost": unit_cost},
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 400
    assert says in str(response.json()["unit_cost"])
    lounge.refresh_from_db()
    assert lounge.unit_cost_fen == 12_000
    assert not ApprovalRequest.objects.exists()


def admin_benefit_form(benefit, **changes) -> dict:
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


@pytest.mark.parametrize(
    ("language", "says"), [("en", "Unit cost must be an amount"), ("zh-hans", "单位成本")]
)
def test_the_admin_refuses_a_unit_cost_out_of_bounds_naming_the_field(
    client, staff, lounge, language, says
):
    client.force_login(staff["operator"])
    client.cookies["django_language"] = language

    response = client.post(
        f"/admin/benefits/benefit/{lounge.pk}/change/",
        admin_benefit_form(lounge, unit_cost="99,999,999.00"),
    )

    assert response.status_code == 200
    assert says in response.content.decode()
    assert Benefit.objects.get(pk=lounge.pk).unit_cost_fen == 12_000
    assert not ApprovalRequest.objects.exists()


def test_the_admin_applies_a_name_at_once_and_proposes_a_unit_cost(client, staff, lounge):
    client.force_login(staff["operator"])

    response = client.post(
        f"/admin/benefits/benefit/{lounge.pk}/change/",
        admin_benefit_form(lounge, name="机场贵宾厅", unit_cost="1,500.00"),
    )

    approval = ApprovalRequest.objects.get(kind="BENEFIT_CHANGE")
    assert response.status_code == 302 and str(approval.pk) in response["Location"]
    lounge.refresh_from_db()
    assert lounge.name == "机场贵宾厅"  # low risk: at once
    assert lounge.unit_cost_fen == 12_000  # cost-bearing: on approval
    assert approval.proposal["unit_cost_fen"] == 150_000
    assert "¥120.00" in approval.summary and "¥1,500.00" in approval.summary


# --- budgets ----------------------------------------------------------------------------------


@pytest.fixture
def parent(db):
    return BudgetFactory(
        code="RETAIL-2026",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=5_000_000_00,
    )


def budget_form(parent, **changes) -> dict:
    return {
        "code": "LOUNGE-2026",
        "name": "贵宾厅 2026",
        "department": parent.department.pk,
        "parent": parent.pk,
        "line": "",
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "amount": "1,000,000.00",
        "alert_percents": "[80, 95]",
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"amount": "9,000,000.00"}, "amount", "CNY 5,000,000.00"),
        ({"amount": "0.00"}, "amount", "Amount must be an amount"),
        ({"amount": "99999999999999"}, "amount", "CNY 10,000,000,000.00"),
        ({"amount": "abc"}, "amount", "Amount must be an amount"),
        ({"period_end": "2027-03-31"}, "period_end", "RETAIL-2026"),
        ({"alert_percents": "[150]"}, "alert_percents", "1 to 100"),
        ({"alert_percents": '["abc"]'}, "alert_percents", "whole number"),
    ],
    ids=["over-parent", "zero", "huge", "text", "outside-parent", "percent-150", "percent-abc"],
)
def test_a_budget_that_breaks_a_rule_is_refused_on_its_field(
    client, staff, parent, changes, field, says
):
    client.force_login(staff["approver"])
    client.cookies["django_language"] = "en"

    response = client.post("/admin/benefits/budget/add/", budget_form(parent, **changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and says in str(errors[field]), errors
    assert not ApprovalRequest.objects.exists()


def test_a_child_fits_in_what_the_parent_has_not_given_to_its_other_children(client, staff, parent):
    BudgetFactory(
        code="CARD-2026",
        parent=parent,
        department=parent.department,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=4_500_000_00,
    )
    client.force_login(staff["approver"])
    client.cookies["django_language"] = "zh-hans"

    refused = client.post("/admin/benefits/budget/add/", budget_form(parent, amount="600,000.00"))
    fits = client.post("/admin/benefits/budget/add/", budget_form(parent, amount="500,000.00"))

    assert refused.status_code == 200
    assert "¥500,000.00" in str(refused.context["adminform"].form.errors["amount"])
    assert fits.status_code == 302  # sent for approval, with separators accepted
    approval = ApprovalRequest.objects.get(kind="BUDGET_CREATE")
    assert approval.proposal["amount"] == "500000.00"


def test_a_budget_cannot_be_put_under_its_own_child(client, staff, parent):
    child = BudgetFactory(
        code="CARD-2026",
        parent=parent,
        department=parent.department,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=1_000_00,
    )
    client.force_login(staff["approver"])
    client.cookies["django_language"] = "en"
    form = budget_form(child, code=parent.code, name=parent.name, amount="5,000,000.00")

    response = client.post(f"/admin/benefits/budget/{parent.pk}/change/", form)

    assert response.status_code == 200
    assert "own parent" in str(response.context["adminform"].form.errors["parent"])
    parent.refresh_from_db()
    assert parent.parent_id is None
