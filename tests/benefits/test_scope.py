"""Manual grants and benefit feedback only for customers the actor may see (issue 7): an
account manager for their own customers, a branch manager for their branch and below."""

from __future__ import annotations

import pytest

from benefits.models import BenefitFeedback, BenefitGrant, BudgetEntry, ManualGrantRequest
from benefits.services import benefit_feedback_record, manual_grant
from portal.choices import Role
from portal.errors import NotAllowed
from tests.factories import BenefitFactory, MemberFactory

LIMIT = 50_000


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN = LIMIT


@pytest.fixture
def staff(make_user):
    return {
        "am1": make_user(Role.ACCOUNT_MANAGER, username="am1", branch="B01S1"),
        "am2": make_user(Role.ACCOUNT_MANAGER, username="am2", branch="B02S1"),
        "bm1": make_user(Role.BRANCH_MANAGER, username="bm1", branch="B01"),
    }


@pytest.fixture
def customers(org, staff):
    return {
        "am1": MemberFactory(branch=org["B01S1"], account_manager=staff["am1"]),
        "am2": MemberFactory(branch=org["B02S1"], account_manager=staff["am2"]),
        "b01": MemberFactory(branch=org["B01"]),
    }


def _nothing_granted() -> bool:
    return not (
        BenefitGrant.objects.exists()
        or ManualGrantRequest.objects.exists()
        or BudgetEntry.objects.exists()
    )


@pytest.mark.parametrize("cost", [10_000, LIMIT + 1], ids=["at-once", "needs-approval"])
@pytest.mark.parametrize(
    ("who", "customer"), [("am1", "am2"), ("am1", "b01"), ("bm1", "am2"), ("am2", "am1")]
)
def test_a_manual_grant_for_a_customer_outside_the_scope_is_refused(
    staff, customers, who, customer, cost
):
    benefit = BenefitFactory(unit_cost_fen=cost)

    with pytest.raises(NotAllowed, match="不在您的管辖范围内"):
        manual_grant(
            member=customers[customer], benefit=benefit, reason="goodwill", actor=staff[who]
        )

    assert _nothing_granted()
    benefit.budget.refresh_from_db()
    assert benefit.budget.consumed_fen == 0


@pytest.mark.parametrize(("who", "customer"), [("am1", "am1"), ("bm1", "am1"), ("bm1", "b01")])
def test_a_manual_grant_for_a_customer_in_the_scope_is_made(staff, customers, who, customer):
    benefit = BenefitFactory(unit_cost_fen=10_000)

    grant = manual_grant(
        member=customers[customer], benefit=benefit, reason="goodwill", actor=staff[who]
    )

    assert BenefitGrant.objects.get() == grant
    assert grant.member == customers[customer]


@pytest.mark.parametrize(("who", "customer"), [("am1", "am2"), ("am1", "b01"), ("bm1", "am2")])
def test_feedback_on_a_customer_outside_the_scope_is_refused(staff, customers, who, customer):
    with pytest.raises(NotAllowed, match="不在您的管辖范围内"):
        benefit_feedback_record(
            member=customers[customer],
            benefit=BenefitFactory(),
            useful=False,
            reason="never travels",
            actor=staff[who],
        )

    assert not BenefitFeedback.objects.exists()


@pytest.mark.parametrize(("who", "customer"), [("am1", "am1"), ("bm1", "b01")])
def test_feedback_on_a_customer_in_the_scope_is_recorded(staff, customers, who, customer):
    feedback = benefit_feedback_record(
        member=customers[customer],
        benefit=BenefitFactory(),
        useful=True,
        reason="uses it monthly",
        actor=staff[who],
    )

    assert BenefitFeedback.objects.get() == feedback
    assert feedback.author == staff[who]
