"""What an approver reads before approving a cost-bearing change is what happens after it:
the impact lines are computed by the code that applies the change, and a night after the
approval spends exactly what the preview said (DESIGN.md "Change management").

Three ACTIVE GOLD customers and one STANDARD; LOUNGE costs ¥120.00.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import translation

from benefits.models import BenefitGrant, TierEntitlement
from benefits.services import (
    benefit_update,
    entitlement_change_request,
    entitlement_grants_run,
    entitlement_matrix_changes,
)
from members.models import Tier
from portal.approvals import approval_decide, approval_impact
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.models import ApprovalRequest
from portal.money import fen_to_decimal
from tests.factories import BenefitFactory, MemberFactory


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


@pytest.fixture
def staff(make_user):
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
    }


@pytest.fixture
def bank(org):
    for n in range(3):
        MemberFactory(member_no=f"M000000{n}", branch=org["B01S1"], tier=tier("GOLD"))
    MemberFactory(member_no="M0000009", branch=org["B01S1"], tier=tier("STANDARD"))
    return BenefitFactory(code="LOUNGE", unit_cost_fen=12_000)


def impact_of(approval) -> dict[str, str]:
    with translation.override("en"):
        return dict(approval_impact(approval))


def spent_by_the_night() -> Decimal:
    entitlement_grants_run(business_date=today_in_shanghai())
    return fen_to_decimal(BenefitGrant.objects.aggregate(total=Sum("cost_fen"))["total"] or 0)


def test_an_entitlement_change_preview_is_what_the_next_night_spends(bank, staff):
    changes = entitlement_matrix_changes(typed={(bank, tier("GOLD")): ("2", "MONTH")})
    approval = entitlement_change_request(changes=changes, actor=staff["operator"])

    impact = impact_of(approval)

    assert impact["Monthly cost of these entitlements now"] == "CNY 0.00"
    assert impact["Monthly cost if approved"] == "CNY 720.00"  # 3 members × 2 × ¥120.00
    assert impact["Change per month"] == "+CNY 720.00"
    assert impact["Members of tier Gold"] == "3"
    assert not TierEntitlement.objects.exists()

    approval_decide(approval=approval, approve=True, actor=staff["approver"])

    assert spent_by_the_night() == Decimal("720.00")


def test_a_unit_cost_change_preview_is_what_the_next_night_spends(bank, staff):
    TierEntitlement.objects.create(benefit=bank, tier=tier("GOLD"), quantity=1, period="MONTH")
    _benefit, approval = benefit_update(
        benefit=bank, changes={"unit_cost_fen": 15_000}, actor=staff["operator"]
    )

    impact = impact_of(approval)

    assert impact["Monthly entitlement cost now"] == "CNY 360.00"
    assert impact["Monthly entitlement cost if approved"] == "CNY 450.00"
    bank.refresh_from_db()
    assert bank.unit_cost_fen == 12_000

    approval_decide(approval=approval, approve=True, actor=staff["approver"])

    assert spent_by_the_night() == Decimal("450.00")


def test_the_approval_page_shows_the_impact_in_the_users_language(client, bank, staff):
    changes = entitlement_matrix_changes(typed={(bank, tier("GOLD")): ("1", "QUARTER")})
    approval = entitlement_change_request(changes=changes, actor=staff["operator"])
    client.force_login(staff["approver"])
    page = reverse("approval-detail", args=[approval.pk])

    client.cookies["django_language"] = "zh-hans"
    chinese = client.get(page).content.decode()
    client.cookies["django_language"] = "en"
    english = client.get(page).content.decode()

    assert "批准后的影响" in chinese and "批准后每月成本" in chinese
    assert "Impact if approved" in english and "CNY 120.00" in english  # 3 × ¥120 ÷ 3 months


def test_the_api_gives_the_impact_with_the_request(api_client_for, bank, staff):
    changes = entitlement_matrix_changes(typed={(bank, tier("GOLD")): ("1", "YEAR")})
    approval = entitlement_change_request(changes=changes, actor=staff["operator"])

    response = api_client_for(staff["approver"]).get(
        f"/api/v1/approvals/{approval.pk}/", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 200
    impact = {line["what"]: line["value"] for line in response.json()["impact"]}
    assert impact["Monthly cost if approved"] == "CNY 30.00"  # 3 × ¥120 ÷ 12 months


def test_a_manual_grant_preview_is_what_approving_charges(org, make_user, settings):
    """The approval page names the customer (masked), the benefit at its cost and what each
    budget charged will have left; after approval, that is what they have left."""
    from benefits.models import Budget
    from benefits.services import manual_grant
    from tests.approvals import decide_pending
    from tests.factories import BudgetFactory

    settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN = 50_000
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    approver = make_user(Role.BUDGET_APPROVER, username="approver", branch="HO")
    parent = BudgetFactory(code="RETAIL", name="零售权益", amount_fen=1_000_000_00)
    child = BudgetFactory(
        code="LOUNGE-Q",
        name="贵宾厅",
        parent=parent,
        department=parent.department,
        amount_fen=300_000_00,
    )
    lounge = BenefitFactory(
        code="LOUNGE",
        name="机场贵宾厅",
        name_en="Airport lounge",
        unit_cost_fen=800_00,
        budget=child,
    )
    member = MemberFactory(
        member_no="M0000001", name="张三丰", branch=org["B01S1"], account_manager=am
    )
    request = manual_grant(member=member, benefit=lounge, reason="投诉补偿", actor=am)
    approval = ApprovalRequest.objects.get(kind="MANUAL_GRANT")

    impact = impact_of(approval)

    assert impact["Customer"] == "M0000001 张**"  # masked
    assert impact["Benefit"] == "Airport lounge (CNY 800.00)"
    assert impact["Left in 贵宾厅"] == "CNY 300,000.00 now → CNY 299,200.00 if approved"
    assert impact["Left in 零售权益"] == "CNY 1,000,000.00 now → CNY 999,200.00 if approved"
    decide_pending(request, "MANUAL_GRANT", approve=True, actor=approver)
    assert Budget.objects.get(pk=child.pk).remaining == Decimal("299200.00")
    assert Budget.objects.get(pk=parent.pk).remaining == Decimal("999200.00")


def test_a_budget_request_reads_in_business_words(client, make_user):
    """The approval page names the budget and its parent and says amounts in ¥ with
    separators (the request keeps the raw values it applies)."""
    from decimal import Decimal as D

    from benefits.services import budget_increase_request
    from benefits.services.budget_changes import budget_parent_change_request
    from tests.factories import BudgetFactory

    maker = make_user(Role.BUDGET_APPROVER, username="maker", branch="HO")
    checker = make_user(Role.BUDGET_APPROVER, username="checker", branch="HO")
    top = BudgetFactory(code="RETAIL", name="零售权益总预算", amount_fen=9_000_000_00)
    other = BudgetFactory(
        code="WEALTH", name="财富权益总预算", amount_fen=9_000_000_00, department=top.department
    )
    lounge = BudgetFactory(
        code="LOUNGE-Q4",
        name="贵宾厅预算",
        parent=top,
        department=top.department,
        amount_fen=3_000_000_00,
    )
    increase = budget_increase_request(budget=lounge, amount=D("4500000.00"), actor=maker)
    client.force_login(checker)

    page = client.get(f"/approvals/{increase.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "贵宾厅预算: CNY 3,000,000.00 → CNY 4,500,000.00" in page
    assert "CNY 4,500,000.00</td>" in page and "4500000.00" not in page
    approval_decide(approval=increase, approve=True, actor=checker)
    moved = budget_parent_change_request(budget=lounge, parent=other, actor=maker)
    page = client.get(f"/approvals/{moved.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<td class="old">零售权益总预算</td>' in page
    assert '<td class="new">财富权益总预算</td>' in page
    assert "parent_code" not in page


@pytest.mark.parametrize(
    ("language", "words"), [("en", "has given to the budgets under it"), ("zh-hans", "下级预算")]
)
def test_a_parent_budget_is_never_lowered_below_what_it_gave_its_children(
    make_user, language, words
):
    from benefits.models import Budget
    from benefits.services import budget_amount_lower
    from benefits.services.budget_changes import BudgetProposalError
    from tests.factories import BudgetFactory

    approver = make_user(Role.BUDGET_APPROVER, username="ba", branch="HO")
    parent = BudgetFactory(code="RETAIL", amount_fen=1_000_000_00)
    BudgetFactory(code="LOUNGE", parent=parent, department=parent.department, amount_fen=600_000_00)

    with translation.override(language), pytest.raises(BudgetProposalError, match=words) as refused:
        budget_amount_lower(budget=parent, amount=Decimal("500000.00"), actor=approver)
    assert refused.value.field == "amount"
    assert Budget.objects.get(pk=parent.pk).amount == Decimal("1000000.00")

    budget_amount_lower(budget=parent, amount=Decimal("600000.00"), actor=approver)
    assert Budget.objects.get(pk=parent.pk).amount == Decimal("600000.00")
