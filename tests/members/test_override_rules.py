"""Manual tier requests a branch manager can decide with their eyes open (issue: "a manual
tier request for the customer's own tier was accepted, with expiry 2099-12-31, any number of
pending duplicates, no way to withdraw; approving a later request silently ended the
override approved minutes earlier").

A GOLD customer of 朝阳支行 (B01S1), their account manager, and two branch managers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse
from django.utils import translation

from members.choices import MemberApproval, OverrideStatus
from members.models import Member, Tier, TierOverride
from members.services import tier_override_request, tier_override_withdraw
from members.services.tiers import TierRuleError
from portal.approvals import approval_decide, approval_impact, approval_pending_for
from portal.choices import ApprovalStatus, Role
from portal.clock import today_in_shanghai
from portal.errors import NotAllowed, StateConflict
from portal.models import ApprovalRequest, AuditEntry
from tests.factories import MemberFactory


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


@pytest.fixture
def cast(make_user):
    return {
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
        "am2": make_user(Role.ACCOUNT_MANAGER, username="am2", branch="B01S1"),
        "bm": make_user(Role.BRANCH_MANAGER, username="bm", branch="B01"),
    }


@pytest.fixture
def customer(org, cast):
    return MemberFactory(
        member_no="M0000777",
        branch=org["B01S1"],
        account_manager=cast["am"],
        tier=tier("GOLD"),
        computed_tier=tier("GOLD"),
        tier_basis=48_000_000,  # ¥480,000.00 of MADA
    )


def ask(customer, cast, *, code="SUNFLOWER", days=30, who="am"):
    return tier_override_request(
        member=Member.objects.get(pk=customer.pk),
        tier=tier(code),
        reason="Brings a large deposit next month",
        expires_on=today_in_shanghai() + timedelta(days=days),
        actor=cast[who],
    )


def decide(override, actor, *, approve=True):
    return approval_decide(
        approval=approval_pending_for(kind=MemberApproval.TIER_OVERRIDE, obj=override),
        approve=approve,
        actor=actor,
        comment="seen",
    )


def test_a_request_for_the_tier_the_rules_give_is_refused(customer, cast):
    with translation.override("en"), pytest.raises(TierRuleError) as refused:
        ask(customer, cast, code="GOLD")

    assert refused.value.field == "tier" and "must differ" in refused.value.message
    assert not TierOverride.objects.exists()


def test_a_request_may_last_at_most_twelve_months_and_must_end_after_today(customer, cast):
    today = today_in_shanghai()
    latest = today + relativedelta(months=12)

    for days in ((latest - today).days + 1, 365 * 70, 0, -1):
        with pytest.raises(TierRuleError) as refused:
            ask(customer, cast, days=days)
        assert refused.value.field == "expires_on", days
    assert ask(customer, cast, days=(latest - today).days).expires_on == latest


def test_the_longest_expiry_follows_the_setting(customer, cast, settings):
    settings.TIER_OVERRIDE_MAX_MONTHS = 3

    with translation.override("en"), pytest.raises(TierRuleError) as refused:
        ask(customer, cast, days=100)

    assert "3 months" in refused.value.message


def test_one_request_waits_per_customer(customer, cast):
    ask(customer, cast)

    with translation.override("en"), pytest.raises(TierRuleError) as refused:
        ask(customer, cast, code="PRIVATE", who="am")

    assert "already waiting" in refused.value.message
    assert TierOverride.objects.filter(status=OverrideStatus.PENDING).count() == 1


def test_the_requester_withdraws_a_waiting_request_and_may_ask_again(customer, cast):
    first = ask(customer, cast)

    with pytest.raises(NotAllowed):
        tier_override_withdraw(override=first, actor=cast["am2"])
    withdrawn = tier_override_withdraw(override=first, actor=cast["am"], reason="wrong tier")

    assert withdrawn.status == OverrideStatus.WITHDRAWN
    approval = first_approval(first)
    assert approval.status == ApprovalStatus.WITHDRAWN and approval.comment == "wrong tier"
    assert AuditEntry.objects.filter(action="approval.withdraw", actor=cast["am"]).exists()
    with pytest.raises(StateConflict):  # nobody decides a withdrawn request
        approval_decide(approval=approval, approve=True, actor=cast["bm"], comment="")
    second = ask(customer, cast, code="PRIVATE")
    assert second.status == OverrideStatus.PENDING


def first_approval(override):
    return ApprovalRequest.objects.get(
        kind=MemberApproval.TIER_OVERRIDE, object_id=str(override.pk)
    )


def test_the_customer_page_offers_the_requester_a_withdraw_button(client, customer, cast):
    override = ask(customer, cast)
    page = reverse("members:detail", args=[customer.member_no])
    withdraw = reverse("members:override-withdraw", args=[override.pk])

    client.force_login(cast["am2"])
    assert withdraw not in client.get(page).content.decode()  # not theirs
    client.force_login(cast["am"])
    assert withdraw in client.get(page).content.decode()

    response = client.post(withdraw)

    assert response.status_code == 302
    override.refresh_from_db()
    assert override.status == OverrideStatus.WITHDRAWN


def test_the_approval_shows_the_customer_the_tiers_the_basis_and_what_it_replaces(customer, cast):
    first = ask(customer, cast)
    decide(first, cast["bm"])
    second = ask(customer, cast, code="PRIVATE", days=60)

    with translation.override("en"):
        impact = dict(approval_impact(first_approval(second)))

    assert impact["Customer"].startswith("M0000777 ") and customer.name not in impact["Customer"]
    assert impact["Tier by the rules"] == tier("GOLD").name_en  # in the reader's language
    assert impact["Tier asked for"] == tier("PRIVATE").name_en
    assert impact["Basis (latest month)"] == "CNY 480,000.00"
    assert tier("SUNFLOWER").name_en in impact["Replaces"]
    assert first.expires_on.isoformat() in impact["Replaces"]

    decide(second, cast["bm"])

    first.refresh_from_db()
    assert first.status == OverrideStatus.EXPIRED  # what the preview said it replaces
    entry = AuditEntry.objects.get(action="tier_override.approve", object_id=str(second.pk))
    assert entry.changes == {"replaces": first.pk}
    assert Member.objects.get(pk=customer.pk).tier.code == "PRIVATE"


def test_an_approval_with_nothing_in_force_says_so(customer, cast):
    override = ask(customer, cast)

    with translation.override("en"):
        impact = dict(approval_impact(first_approval(override)))

    assert impact["Replaces"] == "no manual tier in force"


def test_a_request_whose_expiry_passed_before_the_decision_is_refused(customer, cast):
    override = ask(customer, cast, days=1)
    TierOverride.objects.filter(pk=override.pk).update(expires_on=today_in_shanghai())

    with pytest.raises(StateConflict):
        decide(override, cast["bm"])

    assert Member.objects.get(pk=customer.pk).tier.code == "GOLD"
