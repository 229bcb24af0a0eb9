"""The new tiers' entitlement decisions before a tier scheme switch: who may see and make
them, what each choice requires, and that they freeze once the scheme is approved."""

from __future__ import annotations

import pytest
from django.utils import translation

from benefits.choices import EntitlementDecision
from benefits.models import TierEntitlement, TierEntitlementDecision
from benefits.services.scheme_entitlements import (
    scheme_entitlement_decisions_set,
    scheme_entitlement_problems,
    scheme_entitlements_map,
)
from members.models import Tier, TierScheme
from portal.choices import Role
from portal.errors import InvalidInput, NotAllowed, StateConflict
from tests.factories import BenefitFactory


def page(scheme) -> str:
    return f"/admin/benefits/tierentitlement/scheme/{scheme.pk}/"


@pytest.fixture
def points(db):
    return TierScheme.objects.get(code="DEFAULT_POINTS")


@pytest.fixture
def staff(make_user):
    return {
        role: make_user(
            role,
            username=role.value.lower(),
            branch="HO" if role != Role.ACCOUNT_MANAGER else "B01S1",
        )
        for role in (
            Role.PRODUCT_OPERATOR,
            Role.ADMINISTRATOR,
            Role.BUDGET_APPROVER,
            Role.RISK_AUDITOR,
            Role.ACCOUNT_MANAGER,
        )
    }


def gold() -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")


@pytest.mark.parametrize(
    ("role", "reads", "decides"),
    [
        (Role.PRODUCT_OPERATOR, True, True),
        (Role.ADMINISTRATOR, True, True),
        (Role.BUDGET_APPROVER, True, False),
        (Role.RISK_AUDITOR, True, False),
        (Role.ACCOUNT_MANAGER, False, False),
    ],
)
def test_who_may_read_and_decide_the_new_tiers_entitlements(
    client, staff, points, role, reads, decides
):
    client.force_login(staff[role])
    star4 = points.tiers.get(code="STAR4")

    shown = client.get(page(points))
    posted = client.post(page(points), {f"t_{star4.pk}": f"MAP:{gold().pk}"})

    assert (shown.status_code == 200) is reads
    assert (posted.status_code == 302 and "/login/" not in posted["Location"]) is decides
    assert TierEntitlementDecision.objects.filter(tier=star4).exists() is decides
    if reads:
        assert "四星" in shown.content.decode()  # each new tier by its name


def test_each_choice_is_checked_in_the_users_language(staff, points):
    operator = staff[Role.PRODUCT_OPERATOR]
    star3, star4 = points.tiers.get(code="STAR3"), points.tiers.get(code="STAR4")
    not_old = points.tiers.get(code="STAR5")

    with (
        translation.override("en"),
        pytest.raises(InvalidInput, match="no entitlements of its own"),
    ):
        scheme_entitlement_decisions_set(
            scheme=points, decisions={star3.pk: (EntitlementDecision.OWN, None)}, actor=operator
        )
    with pytest.raises(InvalidInput, match="现行方案"):
        scheme_entitlement_decisions_set(
            scheme=points,
            decisions={star4.pk: (EntitlementDecision.MAP, not_old.pk)},
            actor=operator,
        )
    with pytest.raises(NotAllowed):
        scheme_entitlement_decisions_set(
            scheme=points,
            decisions={star4.pk: (EntitlementDecision.NONE, None)},
            actor=staff[Role.BUDGET_APPROVER],
        )
    assert not TierEntitlementDecision.objects.exists()
    # all seven undecided, named in the refusal
    assert "三星" in scheme_entitlement_problems(points)[0]


def test_decisions_freeze_once_the_scheme_is_approved(staff, points):
    points.status = "SCHEDULED"
    points.save(update_fields=["status"])
    star4 = points.tiers.get(code="STAR4")

    with pytest.raises(StateConflict):
        scheme_entitlement_decisions_set(
            scheme=points,
            decisions={star4.pk: (EntitlementDecision.NONE, None)},
            actor=staff[Role.PRODUCT_OPERATOR],
        )


def test_the_switch_copies_mapped_entitlements_and_keeps_a_tiers_own(staff, points):
    operator = staff[Role.PRODUCT_OPERATOR]
    lounge, gift = BenefitFactory(code="LOUNGE"), BenefitFactory(code="GIFT")
    TierEntitlement.objects.create(benefit=lounge, tier=gold(), quantity=2, period="MONTH")
    star4, star5 = points.tiers.get(code="STAR4"), points.tiers.get(code="STAR5")
    star3 = points.tiers.get(code="STAR3")
    TierEntitlement.objects.create(benefit=gift, tier=star5, quantity=1, period="YEAR")
    TierEntitlement.objects.create(benefit=gift, tier=star3, quantity=1, period="YEAR")
    scheme_entitlement_decisions_set(
        scheme=points,
        decisions={
            star4.pk: (EntitlementDecision.MAP, gold().pk),
            star5.pk: (EntitlementDecision.OWN, None),
            star3.pk: (EntitlementDecision.NONE, None),
        },
        actor=operator,
    )

    counts = scheme_entitlements_map(points, None, None)

    assert counts == {"entitlements_mapped": 1}
    assert list(
        TierEntitlement.objects.filter(tier__scheme=points)
        .order_by("tier__rank")
        .values_list("tier__code", "benefit__code", "quantity", "period")
    ) == [("STAR4", "LOUNGE", 2, "MONTH"), ("STAR5", "GIFT", 1, "YEAR")]
    # the old tier keeps its own
    assert TierEntitlement.objects.filter(tier=gold()).count() == 1


def test_the_matrix_edits_a_waiting_schemes_tiers(client, staff, points):
    client.force_login(staff[Role.PRODUCT_OPERATOR])

    active = client.get("/admin/benefits/tierentitlement/matrix/").content.decode()
    waiting = client.get(
        f"/admin/benefits/tierentitlement/matrix/?scheme={points.pk}"
    ).content.decode()

    assert "金卡" in active and "四星" not in active
    assert "四星" in waiting and "金卡" not in waiting
