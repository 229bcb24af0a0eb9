"""Benefits services (DESIGN.md "benefits"): budgets that never overspend, grants issued
once per idempotency key, redemption and revocation, the nightly entitlement grants, expiry
of grants, budget alerts, manual grants with maker-checker, and account managers' feedback.

"Today" in Asia/Shanghai is pinned to 2026-11-26 (a Thursday in Q4) so every date below is
exact; budgets run over the calendar year 2026 unless a test says otherwise.
"""

from __future__ import annotations

import itertools
import threading
from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Sum

from benefits.choices import (
    BenefitApproval,
    BudgetEntryKind,
    EntitlementPeriod,
    GrantSource,
    GrantStatus,
    RequestStatus,
)
from benefits.models import (
    BenefitFeedback,
    BenefitGrant,
    Budget,
    BudgetAlert,
    BudgetEntry,
    ManualGrantRequest,
    TierEntitlement,
)
from benefits.services import (
    BudgetExhausted,
    GrantNotRedeemable,
    benefit_feedback_record,
    budget_alerts_raise,
    budget_consume,
    budget_release,
    entitlement_grants_run,
    grant_create,
    grant_redeem,
    grant_revoke,
    grants_expire,
    manual_grant,
    period_of,
)
from members.choices import MemberStatus
from members.models import Tier, TierScheme
from portal.choices import Role
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.models import AuditEntry, User
from tests.approvals import decide_pending
from tests.clock import benefits_today
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

TODAY = date(2026, 11, 26)
YEAR_START, YEAR_END = date(2026, 1, 1), date(2026, 12, 31)
COST = 12_000  # 120.00 CNY, in fen
_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def today(monkeypatch):
    """The services read today's date in Asia/Shanghai; pin it."""
    benefits_today(monkeypatch, TODAY)
    return TODAY


# --- helpers -------------------------------------------------------------------------------


def make_budget(amount_fen: int = 1_000 * COST, **fields) -> Budget:
    fields.setdefault("period_start", YEAR_START)
    fields.setdefault("period_end", YEAR_END)
    return BudgetFactory(amount_fen=amount_fen, **fields)


def make_benefit(budget: Budget | None = None, **fields):
    fields.setdefault("unit_cost_fen", COST)
    return BenefitFactory(budget=budget or make_budget(), **fields)


def give(member, benefit, *, budget: Budget | None = None, key: str | None = None, **fields):
    """grant_create with the usual arguments."""
    fields.setdefault("expires_on", YEAR_END)
    fields.setdefault("source", GrantSource.MANUAL)
    return grant_create(
        member=member,
        benefit=benefit,
        budget=budget or benefit.budget,
        idempotency_key=key or f"test-{next(_keys)}",
        **fields,
    )


def consumed(budget: Budget) -> int:
    return Budget.objects.values_list("consumed_fen", flat=True).get(pk=budget.pk)


def ledger_sum(budget: Budget) -> int:
    return BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


def with_extra_role(user: User, role: Role) -> User:
    user.groups.add(Group.objects.get(name=str(role)))
    return User.objects.get(pk=user.pk)  # a fresh instance: roles are cached per instance


# --- budgets and grant_create --------------------------------------------------------------


def test_grant_charges_the_unit_cost_and_writes_one_entry_per_budget_level(db):
    parent = make_budget()
    child = make_budget(parent=parent)
    benefit = make_benefit(child, code="LOUNGE")
    member = MemberFactory()

    grant = give(member, benefit, key="k-1")

    assert grant.status == GrantStatus.GRANTED
    assert grant.cost_fen == COST and grant.budget == child
    assert consumed(child) == consumed(parent) == COST
    for level in (child, parent):
        entries = list(BudgetEntry.objects.filter(budget=level).values("kind", "amount_fen"))
        assert entries == [{"kind": BudgetEntryKind.CONSUME, "amount_fen": COST}]
        assert BudgetEntry.objects.get(budget=level).grant == grant
        assert ledger_sum(level) == consumed(level)
    assert AuditEntry.objects.filter(action="grant.create", object_id=str(grant.pk)).count() == 1


def test_same_idempotency_key_twice_grants_once_and_charges_once(db):
    benefit = make_benefit()
    member = MemberFactory()

    first = give(member, benefit, key="event-7f3c")
    second = give(member, benefit, key="event-7f3c")

    assert second.pk == first.pk
    assert BenefitGrant.objects.count() == 1
    assert consumed(benefit.budget) == COST
    assert BudgetEntry.objects.count() == 1


def test_exhausted_budget_raises_and_writes_nothing(db):
    budget = make_budget(amount_fen=2 * COST + COST - 1)  # room for 2.99 grants
    benefit = make_benefit(budget)
    member = MemberFactory()
    give(member, benefit)
    give(member, benefit)
    grants_before, entries_before = BenefitGrant.objects.count(), BudgetEntry.objects.count()
    audits_before = AuditEntry.objects.count()

    with pytest.raises(BudgetExhausted) as refused:
        give(member, benefit, key="one-too-many")

    assert refused.value.budget.pk == budget.pk
    assert not BenefitGrant.objects.filter(idempotency_key="one-too-many").exists()
    assert BenefitGrant.objects.count() == grants_before == 2
    assert BudgetEntry.objects.count() == entries_before == 2
    assert AuditEntry.objects.count() == audits_before
    assert consumed(budget) == 2 * COST == ledger_sum(budget)


def test_a_budget_can_be_consumed_exactly_to_its_amount(db):
    budget = make_budget(amount_fen=3 * COST)
    benefit = make_benefit(budget)
    member = MemberFactory()

    for _ in range(3):
        give(member, benefit)
    with pytest.raises(BudgetExhausted):
        give(member, benefit)

    assert consumed(budget) == budget.amount_fen == ledger_sum(budget)


@pytest.mark.parametrize(
    "period_start, period_end",
    [
        (date(2026, 1, 1), date(2026, 11, 25)),  # ended yesterday
        (date(2026, 11, 27), date(2026, 12, 31)),  # opens tomorrow
        (date(2025, 1, 1), date(2025, 12, 31)),  # last year's
    ],
    ids=["ended", "not-yet-open", "last-year"],
)
def test_a_budget_outside_its_period_refuses(db, period_start, period_end):
    budget = make_budget(period_start=period_start, period_end=period_end)
    benefit = make_benefit(budget)

    with pytest.raises(BudgetExhausted, match="不在有效期内"):
        give(MemberFactory(), benefit)

    assert BenefitGrant.objects.count() == 0
    assert BudgetEntry.objects.count() == 0
    assert consumed(budget) == 0


def test_a_budget_is_open_on_the_first_and_last_day_of_its_period(db, monkeypatch):
    budget = make_budget(period_start=TODAY, period_end=date(2026, 11, 30))
    benefit = make_benefit(budget)

    give(MemberFactory(), benefit)
    benefits_today(monkeypatch, date(2026, 11, 30))
    give(MemberFactory(), benefit)

    assert consumed(budget) == 2 * COST


def test_a_child_grant_is_refused_when_its_parent_is_closed(db):
    parent = make_budget(period_start=date(2026, 1, 1), period_end=date(2026, 6, 30))
    child = make_budget(parent=parent)
    benefit = make_benefit(child)

    with pytest.raises(BudgetExhausted, match=parent.code):
        give(MemberFactory(), benefit)

    assert consumed(child) == consumed(parent) == 0
    assert BudgetEntry.objects.count() == 0


def test_a_child_consumes_its_parent_and_the_parent_bounds_the_child(db):
    parent = make_budget(amount_fen=2 * COST)
    child = make_budget(amount_fen=10 * COST, parent=parent)
    sibling = make_budget(amount_fen=10 * COST, parent=parent)
    benefit = make_benefit(child)
    member = MemberFactory()

    give(member, benefit)
    give(member, benefit, budget=sibling)
    with pytest.raises(BudgetExhausted) as refused:
        give(member, benefit, key="third")

    assert refused.value.budget.pk == parent.pk  # the parent said no, not the child
    assert consumed(parent) == 2 * COST
    assert consumed(child) == COST  # the child's own update was rolled back
    assert consumed(sibling) == COST
    assert not BenefitGrant.objects.filter(idempotency_key="third").exists()
    for level in (parent, child, sibling):
        assert ledger_sum(level) == consumed(level)


def test_three_levels_are_all_charged_and_all_released(db):
    top = make_budget()
    middle = make_budget(parent=top)
    leaf = make_budget(parent=middle)
    benefit = make_benefit(leaf)

    grant = give(MemberFactory(), benefit)
    assert [consumed(level) for level in (leaf, middle, top)] == [COST] * 3

    grant_revoke(grant=grant, actor=None, reason="test")
    assert [consumed(level) for level in (leaf, middle, top)] == [0] * 3
    assert [ledger_sum(level) for level in (leaf, middle, top)] == [0] * 3


def test_budget_consume_and_release_move_every_level_and_keep_the_ledger(db):
    parent = make_budget()
    child = make_budget(parent=parent)

    budget_consume(budget=child, amount_fen=5_000, source="adjustment")
    budget_release(budget=child, amount_fen=2_000, source="refund")

    assert consumed(child) == consumed(parent) == 3_000
    assert ledger_sum(child) == ledger_sum(parent) == 3_000
    kinds = set(BudgetEntry.objects.filter(budget=parent).values_list("kind", flat=True))
    assert kinds == {BudgetEntryKind.CONSUME, BudgetEntryKind.RELEASE}


def test_a_free_benefit_is_granted_without_touching_the_budget(db):
    budget = make_budget(amount_fen=0)
    benefit = make_benefit(budget, unit_cost_fen=0)

    grant = give(MemberFactory(), benefit)

    assert grant.cost_fen == 0
    assert consumed(budget) == 0 and BudgetEntry.objects.count() == 0


# --- redeem and revoke ---------------------------------------------------------------------


def test_a_grant_is_redeemed_once(db):
    grant = give(MemberFactory(), make_benefit())

    redeemed = grant_redeem(grant=grant)
    with pytest.raises(GrantNotRedeemable):
        grant_redeem(grant=grant)

    assert redeemed.status == GrantStatus.REDEEMED
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REDEEMED
    assert grant.redeemed_at == redeemed.redeemed_at is not None
    assert AuditEntry.objects.filter(action="grant.redeem").count() == 1


def test_a_grant_is_redeemable_on_its_expiry_date(db):
    grant = give(MemberFactory(), make_benefit(), expires_on=TODAY)

    assert grant.is_redeemable(TODAY)
    assert grant_redeem(grant=grant).status == GrantStatus.REDEEMED


def test_an_expired_grant_is_not_redeemable(db):
    benefit = make_benefit()
    grant = give(MemberFactory(), benefit, expires_on=date(2026, 11, 25))

    with pytest.raises(GrantNotRedeemable, match="已过期"):
        grant_redeem(grant=grant)

    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED and grant.redeemed_at is None
    assert not grant.is_redeemable(TODAY)


def test_a_revoked_grant_is_not_redeemable(db):
    grant = give(MemberFactory(), make_benefit())
    grant_revoke(grant=grant, actor=None, reason="duplicate")

    with pytest.raises(GrantNotRedeemable):
        grant_redeem(grant=grant)

    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKED


def test_revoke_releases_the_cost_on_every_level_and_the_ledger_sums_to_consumed(db, make_user):
    parent = make_budget()
    child = make_budget(parent=parent)
    benefit = make_benefit(child)
    member = MemberFactory()
    kept = give(member, benefit)
    revoked = give(member, benefit)
    operator = make_user(Role.BRANCH_MANAGER)

    grant_revoke(grant=revoked, actor=operator, reason="granted by mistake")

    revoked.refresh_from_db()
    assert revoked.status == GrantStatus.REVOKED and revoked.closed_at is not None
    assert kept.status == GrantStatus.GRANTED
    for level in (child, parent):
        assert consumed(level) == COST
        assert ledger_sum(level) == consumed(level)
        release = BudgetEntry.objects.get(budget=level, kind=BudgetEntryKind.RELEASE)
        assert release.amount_fen == -COST and release.grant == revoked
    audit = AuditEntry.objects.get(action="grant.revoke")
    assert audit.actor == operator and audit.reason == "granted by mistake"


@pytest.mark.parametrize("closed_by", ["revoke", "redeem"])
def test_a_closed_grant_cannot_be_revoked_and_nothing_is_released_twice(db, closed_by):
    benefit = make_benefit()
    grant = give(MemberFactory(), benefit)
    if closed_by == "revoke":
        grant_revoke(grant=grant, actor=None, reason="first")
    else:
        grant_redeem(grant=grant)
    before = consumed(benefit.budget)

    with pytest.raises(GrantNotRedeemable):
        grant_revoke(grant=grant, actor=None, reason="again")

    assert consumed(benefit.budget) == before == ledger_sum(benefit.budget)


# --- period_of -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, day, key, first, last",
    [
        ("MONTH", "2026-11-26", "2026-11", "2026-11-01", "2026-11-30"),
        ("MONTH", "2028-02-10", "2028-02", "2028-02-01", "2028-02-29"),
        ("MONTH", "2026-12-31", "2026-12", "2026-12-01", "2026-12-31"),
        ("QUARTER", "2026-11-26", "2026-Q4", "2026-10-01", "2026-12-31"),
        ("QUARTER", "2026-03-31", "2026-Q1", "2026-01-01", "2026-03-31"),
        ("QUARTER", "2026-04-01", "2026-Q2", "2026-04-01", "2026-06-30"),
        ("QUARTER", "2026-09-30", "2026-Q3", "2026-07-01", "2026-09-30"),
        ("YEAR", "2026-11-26", "2026", "2026-01-01", "2026-12-31"),
        ("YEAR", "2027-01-01", "2027", "2027-01-01", "2027-12-31"),
    ],
)
def test_period_of_gives_the_key_and_the_first_and_last_day(kind, day, key, first, last):
    iso = date.fromisoformat

    assert period_of(EntitlementPeriod(kind), iso(day)) == (key, iso(first), iso(last))


# --- entitlement_grants_run ----------------------------------------------------------------


@pytest.fixture
def gold_members(db):
    return [MemberFactory(tier=tier("GOLD")) for _ in range(3)]


def entitle(benefit, tier_code: str = "GOLD", quantity: int = 2, period=EntitlementPeriod.MONTH):
    return TierEntitlement.objects.create(
        benefit=benefit, tier=tier(tier_code), quantity=quantity, period=period
    )


def grants_of(member, benefit=None) -> list[BenefitGrant]:
    grants = BenefitGrant.objects.filter(member=member)
    if benefit is not None:
        grants = grants.filter(benefit=benefit)
    return list(grants)


@pytest.mark.parametrize(
    "period, key, expires",
    [
        (EntitlementPeriod.MONTH, "2026-11", date(2026, 11, 30)),
        (EntitlementPeriod.QUARTER, "2026-Q4", date(2026, 12, 31)),
        (EntitlementPeriod.YEAR, "2026", date(2026, 12, 31)),
    ],
)
def test_members_of_a_tier_get_quantity_grants_for_the_period(gold_members, period, key, expires):
    benefit = make_benefit(code="LOUNGE")
    entitle(benefit, quantity=2, period=period)
    standard = MemberFactory(tier=tier("STANDARD"))

    result = entitlement_grants_run(business_date=TODAY)

    assert result == {
        "granted": 6,
        "not_granted_budget": 0,
        "entitlements_refused": 0,
        "shortfalls": [],
        "refused": [],
    }
    for member in gold_members:
        grants = grants_of(member)
        assert len(grants) == 2
        for grant in grants:
            assert grant.benefit == benefit and grant.budget == benefit.budget
            assert grant.source == GrantSource.ENTITLEMENT
            assert grant.status == GrantStatus.GRANTED
            assert grant.period_key == key
            assert grant.expires_on == expires
            assert grant.cost_fen == COST
    assert grants_of(standard) == []
    budget = benefit.budget
    assert consumed(budget) == 6 * COST == ledger_sum(budget)
    entries = BudgetEntry.objects.filter(budget=budget)
    assert entries.count() == 6  # one per grant, each pointing at its grant
    assert set(entries.values_list("grant_id", flat=True)) == set(
        BenefitGrant.objects.values_list("id", flat=True)
    )


def test_running_twice_in_one_period_grants_once(gold_members):
    benefit = make_benefit()
    entitle(benefit, quantity=2, period=EntitlementPeriod.MONTH)
    entitlement_grants_run(business_date=TODAY)

    again = entitlement_grants_run(business_date=TODAY)
    later_same_month = entitlement_grants_run(business_date=date(2026, 11, 30))

    assert again["granted"] == later_same_month["granted"] == 0
    assert BenefitGrant.objects.count() == 6
    assert consumed(benefit.budget) == 6 * COST == ledger_sum(benefit.budget)


def test_a_new_period_grants_again(gold_members):
    benefit = make_benefit()
    entitle(benefit, quantity=1, period=EntitlementPeriod.MONTH)
    entitlement_grants_run(business_date=TODAY)

    december = entitlement_grants_run(business_date=date(2026, 12, 1))

    assert december["granted"] == 3
    keys = sorted(BenefitGrant.objects.values_list("period_key", flat=True))
    assert keys == ["2026-11"] * 3 + ["2026-12"] * 3


def test_a_larger_quantity_mid_period_grants_only_the_extra_units(gold_members):
    benefit = make_benefit()
    entitlement = entitle(benefit, quantity=1, period=EntitlementPeriod.QUARTER)
    entitlement_grants_run(business_date=TODAY)
    entitlement.quantity = 3
    entitlement.save()

    result = entitlement_grants_run(business_date=TODAY)

    assert result["granted"] == 6
    assert all(len(grants_of(member)) == 3 for member in gold_members)


@pytest.mark.parametrize("status", [MemberStatus.FROZEN, MemberStatus.CLOSED])
def test_a_member_who_is_not_active_gets_no_entitlement(gold_members, status):
    benefit = make_benefit()
    entitle(benefit, quantity=1)
    inactive = MemberFactory(tier=tier("GOLD"), status=status)

    result = entitlement_grants_run(business_date=TODAY)

    assert result["granted"] == 3
    assert grants_of(inactive) == []


def test_an_inactive_benefit_is_not_granted(gold_members):
    benefit = make_benefit(active=False)
    entitle(benefit, quantity=1)

    result = entitlement_grants_run(business_date=TODAY)

    assert result["granted"] == 0 and BenefitGrant.objects.count() == 0


def test_a_short_budget_grants_as_many_as_fit_and_reports_the_shortfall(gold_members):
    budget = make_budget(amount_fen=5 * COST + COST - 1)  # room for 5 of the 6 wanted
    benefit = make_benefit(budget, code="LOUNGE")
    entitle(benefit, quantity=2)

    result = entitlement_grants_run(business_date=TODAY)

    assert result == {
        "granted": 5,
        "not_granted_budget": 1,
        "entitlements_refused": 0,
        "shortfalls": ["LOUNGE: 1 not granted"],
        "refused": [],
    }
    assert BenefitGrant.objects.count() == 5
    assert consumed(budget) == 5 * COST <= budget.amount_fen
    assert ledger_sum(budget) == consumed(budget)


def test_a_short_budget_already_partly_consumed_never_overspends(gold_members):
    budget = make_budget(amount_fen=4 * COST)
    benefit = make_benefit(budget, code="LOUNGE")
    give(MemberFactory(), benefit)
    give(MemberFactory(), benefit)
    entitle(benefit, quantity=2)

    result = entitlement_grants_run(business_date=TODAY)
    again = entitlement_grants_run(business_date=TODAY)

    assert (result["granted"], result["not_granted_budget"]) == (2, 4)
    assert (again["granted"], again["not_granted_budget"]) == (0, 4)
    assert again["shortfalls"] == ["LOUNGE: 4 not granted"]
    assert consumed(budget) == budget.amount_fen == ledger_sum(budget)


def test_a_rerun_after_the_budget_is_raised_grants_the_rest(gold_members):
    budget = make_budget(amount_fen=4 * COST)
    benefit = make_benefit(budget)
    entitle(benefit, quantity=2)
    entitlement_grants_run(business_date=TODAY)
    Budget.objects.filter(pk=budget.pk).update(amount_fen=10 * COST)

    result = entitlement_grants_run(business_date=TODAY)

    assert (result["granted"], result["not_granted_budget"]) == (2, 0)
    assert all(len(grants_of(member)) == 2 for member in gold_members)
    assert consumed(budget) == 6 * COST == ledger_sum(budget)


def test_entitlement_grants_are_bounded_by_the_parent_budget(gold_members):
    parent = make_budget(amount_fen=4 * COST)
    child = make_budget(amount_fen=100 * COST, parent=parent)
    benefit = make_benefit(child, code="LOUNGE")
    entitle(benefit, quantity=2)

    result = entitlement_grants_run(business_date=TODAY)

    assert (result["granted"], result["not_granted_budget"]) == (4, 2)
    assert consumed(parent) == consumed(child) == 4 * COST
    assert ledger_sum(parent) == consumed(parent)
    assert ledger_sum(child) == consumed(child)


def test_a_closed_budget_grants_no_entitlements(gold_members):
    budget = make_budget(period_start=date(2026, 1, 1), period_end=date(2026, 10, 31))
    benefit = make_benefit(budget, code="LOUNGE")
    entitle(benefit, quantity=1)

    result = entitlement_grants_run(business_date=TODAY)

    assert (result["granted"], result["not_granted_budget"]) == (0, 3)
    assert [shortfall.split(":")[0] for shortfall in result["shortfalls"]] == ["LOUNGE"]
    assert consumed(budget) == 0 and BudgetEntry.objects.count() == 0


@pytest.mark.parametrize(
    "validity_days, expires",
    [
        (3, date(2026, 11, 29)),  # shorter than the rest of the month
        (4, date(2026, 11, 30)),  # ends on the period end
        (10, date(2026, 11, 30)),  # the period end is earlier
        (None, date(2026, 11, 30)),
    ],
)
def test_the_period_end_is_the_expiry_or_validity_days_when_shorter(
    gold_members, validity_days, expires
):
    benefit = make_benefit(validity_days=validity_days)
    entitle(benefit, quantity=1, period=EntitlementPeriod.MONTH)

    entitlement_grants_run(business_date=TODAY)

    assert set(BenefitGrant.objects.values_list("expires_on", flat=True)) == {expires}


def test_each_entitlement_of_a_tier_is_granted_and_charged_to_its_own_budget(gold_members):
    lounge = make_benefit(code="LOUNGE")
    gift = make_benefit(code="GIFT", unit_cost_fen=5_000)
    entitle(lounge, quantity=1, period=EntitlementPeriod.QUARTER)
    entitle(gift, quantity=1, period=EntitlementPeriod.YEAR)
    entitle(gift, tier_code="STANDARD", quantity=1, period=EntitlementPeriod.YEAR)
    standard = MemberFactory(tier=tier("STANDARD"))

    result = entitlement_grants_run(business_date=TODAY)

    assert result["granted"] == 3 + 3 + 1
    assert consumed(lounge.budget) == 3 * COST
    assert consumed(gift.budget) == 4 * 5_000
    assert [g.benefit.code for g in grants_of(standard)] == ["GIFT"]


def test_an_entitlement_with_quantity_zero_does_not_stop_the_others(gold_members):
    lounge = make_benefit(code="LOUNGE")
    empty = make_benefit(code="AAA_EMPTY")  # ordered before LOUNGE
    entitle(empty, quantity=0)
    entitle(lounge, quantity=1)

    result = entitlement_grants_run(business_date=TODAY)

    assert result["granted"] == 3


# --- grants_expire -------------------------------------------------------------------------


def test_grants_expire_only_past_the_expiry_date_and_release_the_cost(db, monkeypatch):
    benefit = make_benefit()
    member = MemberFactory()
    past = give(member, benefit, expires_on=date(2026, 11, 25))
    on_the_day = give(member, benefit, expires_on=TODAY)
    future = give(member, benefit, expires_on=date(2026, 11, 27))
    used = give(member, benefit, expires_on=date(2026, 11, 1))
    benefits_today(monkeypatch, date(2026, 10, 30))
    grant_redeem(grant=used)  # redeemed in time, then its expiry date passed
    benefits_today(monkeypatch, TODAY)

    result = grants_expire(business_date=TODAY)

    assert result == {"expired": 1, "released_fen": COST}
    statuses = dict(BenefitGrant.objects.values_list("pk", "status"))
    assert statuses == {
        past.pk: GrantStatus.EXPIRED,
        on_the_day.pk: GrantStatus.GRANTED,
        future.pk: GrantStatus.GRANTED,
        used.pk: GrantStatus.REDEEMED,  # a redeemed grant keeps its cost
    }
    past.refresh_from_db()
    assert past.closed_at is not None
    assert consumed(benefit.budget) == 3 * COST == ledger_sum(benefit.budget)
    release = BudgetEntry.objects.get(kind=BudgetEntryKind.RELEASE)
    assert release.grant == past and release.amount_fen == -COST


def test_grants_expire_is_idempotent(db):
    benefit = make_benefit()
    give(MemberFactory(), benefit, expires_on=date(2026, 11, 1))
    grants_expire(business_date=TODAY)
    entries = BudgetEntry.objects.count()

    again = grants_expire(business_date=TODAY)

    assert again == {"expired": 0, "released_fen": 0}
    assert BudgetEntry.objects.count() == entries
    assert consumed(benefit.budget) == 0 == ledger_sum(benefit.budget)


def test_grants_expire_releases_every_budget_level(db):
    parent = make_budget()
    child = make_budget(parent=parent)
    other = make_budget(parent=parent)
    benefit = make_benefit(child)
    member = MemberFactory()
    for _ in range(2):
        give(member, benefit, expires_on=date(2026, 11, 20))
    give(member, benefit, budget=other, expires_on=date(2026, 11, 20))
    give(member, benefit, budget=other, expires_on=YEAR_END)

    result = grants_expire(business_date=TODAY)

    assert result == {"expired": 3, "released_fen": 3 * COST}
    assert (consumed(child), consumed(other), consumed(parent)) == (0, COST, COST)
    for level in (parent, child, other):
        assert ledger_sum(level) == consumed(level)


# --- budget alerts -------------------------------------------------------------------------


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("Ops", "ops@example.bank")]


def test_budget_alerts_record_each_threshold_once_and_mail_the_admins(db, admins, mailoutbox):
    budget = make_budget(amount_fen=10 * COST, alert_percents=[80, 95], code="CARD-2026")
    benefit = make_benefit(budget)
    member = MemberFactory()
    for _ in range(7):
        give(member, benefit)

    assert budget_alerts_raise(business_date=TODAY) == {  # 70 %
        "raised": 0,
        "budgets_refused": 0,
        "alerts": [],
        "refused": [],
    }
    give(member, benefit)  # 80 % exactly
    at_80 = budget_alerts_raise(business_date=TODAY)
    again = budget_alerts_raise(business_date=TODAY)
    give(member, benefit)  # 90 %
    at_90 = budget_alerts_raise(business_date=TODAY)
    give(member, benefit)  # 100 %
    at_100 = budget_alerts_raise(business_date=TODAY)
    last = budget_alerts_raise(business_date=TODAY)

    assert at_80["raised"] == 1 and at_80["alerts"] == ["CARD-2026 ≥ 80%"]
    assert again["raised"] == at_90["raised"] == last["raised"] == 0
    assert at_100["alerts"] == ["CARD-2026 ≥ 95%"]
    alerts = dict(BudgetAlert.objects.filter(budget=budget).values_list("percent", "consumed_fen"))
    assert alerts == {80: 8 * COST, 95: 10 * COST}
    assert len(mailoutbox) == 2
    assert [mail.to for mail in mailoutbox] == [["ops@example.bank"]] * 2
    assert "CARD-2026" in mailoutbox[0].subject and "80%" in mailoutbox[0].subject
    assert "95%" in mailoutbox[1].subject


def test_a_single_crossing_sends_one_mail(db, admins, mailoutbox):
    budget = make_budget(amount_fen=100_000, alert_percents=[80, 95])
    Budget.objects.filter(pk=budget.pk).update(consumed_fen=85_000)

    budget_alerts_raise(business_date=TODAY)
    budget_alerts_raise(business_date=TODAY)

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ops@example.bank"]
    assert list(BudgetAlert.objects.values_list("percent", flat=True)) == [80]


def test_a_budget_without_thresholds_raises_no_alert(db, admins, mailoutbox):
    budget = make_budget(amount_fen=100_000)
    Budget.objects.filter(pk=budget.pk).update(consumed_fen=100_000)

    assert budget_alerts_raise(business_date=TODAY)["raised"] == 0
    assert BudgetAlert.objects.count() == 0 and mailoutbox == []


def test_both_thresholds_crossed_at_once_are_both_recorded(db, admins, mailoutbox):
    budget = make_budget(amount_fen=100_000, alert_percents=[95, 80])
    Budget.objects.filter(pk=budget.pk).update(consumed_fen=99_000)

    result = budget_alerts_raise(business_date=TODAY)

    assert result["raised"] == 2
    assert sorted(BudgetAlert.objects.values_list("percent", flat=True)) == [80, 95]
    assert budget_alerts_raise(business_date=TODAY)["raised"] == 0


# --- manual grants -------------------------------------------------------------------------

LIMIT = 50_000  # 500.00 CNY


@pytest.fixture
def limit(settings):
    settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN = LIMIT
    return LIMIT


@pytest.fixture
def people(make_user):
    return {
        "am": make_user(Role.ACCOUNT_MANAGER),
        "bm": make_user(Role.BRANCH_MANAGER, branch="B01"),
        "approver": make_user(Role.BUDGET_APPROVER, branch="HO"),
        "operator": make_user(Role.PRODUCT_OPERATOR, branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, branch="HO"),
        "admin": make_user(Role.ADMINISTRATOR, branch="HO"),
        "system": make_user(Role.SYSTEM, branch="HO"),
    }


def customer_of(manager):
    """A customer of `manager`, so in the scope of the branch manager of B01 as well."""
    return MemberFactory(account_manager=manager, branch=manager.branch)


@pytest.mark.parametrize("cost", [30_000, LIMIT], ids=["below", "at-the-limit"])
@pytest.mark.parametrize("role", ["am", "bm"])
def test_a_manual_grant_up_to_the_limit_is_granted_at_once(db, limit, people, cost, role):
    benefit = make_benefit(unit_cost_fen=cost, validity_days=30)
    member = customer_of(people["am"])

    grant = manual_grant(member=member, benefit=benefit, reason="complaint", actor=people[role])

    assert isinstance(grant, BenefitGrant)
    assert grant.source == GrantSource.MANUAL and grant.status == GrantStatus.GRANTED
    assert grant.member == member and grant.granted_by == people[role]
    assert grant.expires_on == date(2026, 12, 26)  # today + validity_days
    assert consumed(benefit.budget) == cost == ledger_sum(benefit.budget)
    assert ManualGrantRequest.objects.count() == 0


def test_a_manual_grant_without_validity_days_lasts_90_days(db, limit, people):
    benefit = make_benefit(unit_cost_fen=10_000)

    grant = manual_grant(
        member=customer_of(people["am"]), benefit=benefit, reason="x", actor=people["am"]
    )

    assert grant.expires_on == date(2027, 2, 24)


@pytest.fixture
def pending(db, limit, people):
    """A manual grant of 500.01 CNY requested by the account manager."""
    benefit = make_benefit(unit_cost_fen=LIMIT + 1, code="HEALTH")
    member = customer_of(people["am"])
    request = manual_grant(
        member=member, benefit=benefit, reason="VIP complaint", actor=people["am"]
    )
    return request


def test_a_manual_grant_above_the_limit_waits_for_approval(pending, people):
    assert isinstance(pending, ManualGrantRequest)
    assert pending.status == RequestStatus.PENDING
    assert pending.requested_by == people["am"] and pending.grant is None
    assert BenefitGrant.objects.count() == 0
    assert consumed(pending.budget) == 0 and BudgetEntry.objects.count() == 0
    assert AuditEntry.objects.filter(action="manual_grant.request").count() == 1


def test_a_budget_approver_approves_and_the_grant_is_made_and_charged(pending, people):
    decided = decide_pending(
        pending, BenefitApproval.MANUAL_GRANT, approve=True, actor=people["approver"]
    )

    assert decided.status == RequestStatus.APPROVED
    assert decided.decided_by == people["approver"] and decided.decided_at is not None
    grant = decided.grant
    assert grant.member == pending.member and grant.benefit == pending.benefit
    assert grant.source == GrantSource.MANUAL and grant.granted_by == people["approver"]
    assert consumed(pending.budget) == LIMIT + 1 == ledger_sum(pending.budget)
    assert AuditEntry.objects.filter(action="manual_grant.approve").count() == 1


def test_a_decided_request_cannot_be_decided_again(pending, people):
    decide_pending(pending, BenefitApproval.MANUAL_GRANT, approve=True, actor=people["approver"])
    other_approver = with_extra_role(people["admin"], Role.BUDGET_APPROVER)

    with pytest.raises(StateConflict) as refused:
        decide_pending(pending, BenefitApproval.MANUAL_GRANT, approve=True, actor=other_approver)

    assert refused.value.code == "not_pending"

    assert BenefitGrant.objects.count() == 1
    assert consumed(pending.budget) == LIMIT + 1


def test_a_budget_approver_rejects_and_nothing_is_granted(pending, people):
    decided = decide_pending(
        pending,
        BenefitApproval.MANUAL_GRANT,
        approve=False,
        actor=people["approver"],
        comment="not for this customer",
    )

    assert decided.status == RequestStatus.REJECTED and decided.grant is None
    assert BenefitGrant.objects.count() == 0 and consumed(pending.budget) == 0
    assert AuditEntry.objects.filter(action="manual_grant.reject").count() == 1


def test_the_requester_cannot_decide_their_own_request(db, limit, people):
    # An account manager who is also a budget approver: the role alone would allow it.
    maker = with_extra_role(people["am"], Role.BUDGET_APPROVER)
    benefit = make_benefit(unit_cost_fen=LIMIT + 1)
    request = manual_grant(
        member=customer_of(people["am"]), benefit=benefit, reason="r", actor=maker
    )

    with pytest.raises(NotAllowed) as refused:
        decide_pending(request, BenefitApproval.MANUAL_GRANT, approve=True, actor=maker)

    assert refused.value.code == "self_approval"

    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING and request.decided_by is None
    assert BenefitGrant.objects.count() == 0


@pytest.mark.parametrize("role", ["bm", "operator", "auditor", "admin", "system"])
def test_roles_without_the_right_cannot_decide_a_manual_grant(pending, people, role):
    with pytest.raises(NotAllowed):
        decide_pending(pending, BenefitApproval.MANUAL_GRANT, approve=True, actor=people[role])

    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING
    assert BenefitGrant.objects.count() == 0


@pytest.mark.parametrize("role", ["approver", "operator", "auditor", "admin", "system"])
def test_roles_without_the_right_cannot_grant_by_hand(db, limit, people, role):
    benefit = make_benefit(unit_cost_fen=10_000)

    with pytest.raises(NotAllowed):
        manual_grant(
            member=customer_of(people["am"]), benefit=benefit, reason="r", actor=people[role]
        )

    assert BenefitGrant.objects.count() == 0 and ManualGrantRequest.objects.count() == 0


def test_a_manual_grant_needs_a_reason(db, limit, people):
    with pytest.raises(InvalidInput, match="reason"):
        manual_grant(
            member=customer_of(people["am"]),
            benefit=make_benefit(),
            reason="  ",
            actor=people["am"],
        )


def test_approval_against_an_exhausted_budget_leaves_the_request_pending(db, limit, people):
    budget = make_budget(amount_fen=LIMIT)  # one fen short
    benefit = make_benefit(budget, unit_cost_fen=LIMIT + 1)
    request = manual_grant(
        member=customer_of(people["am"]), benefit=benefit, reason="r", actor=people["am"]
    )

    with pytest.raises(BudgetExhausted):
        decide_pending(
            request, BenefitApproval.MANUAL_GRANT, approve=True, actor=people["approver"]
        )

    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING and request.grant is None
    assert BenefitGrant.objects.count() == 0 and consumed(budget) == 0


# --- feedback ------------------------------------------------------------------------------


def test_an_account_manager_records_feedback_on_a_benefit(db, people):
    member, benefit = MemberFactory(account_manager=people["am"]), make_benefit()

    feedback = benefit_feedback_record(
        member=member, benefit=benefit, useful=False, reason="never travels", actor=people["am"]
    )

    assert BenefitFeedback.objects.get() == feedback
    assert (feedback.useful, feedback.reason, feedback.author) == (
        False,
        "never travels",
        people["am"],
    )


def test_a_role_without_the_right_cannot_leave_feedback(db, people):
    member, benefit = MemberFactory(), make_benefit()

    with pytest.raises(NotAllowed):
        benefit_feedback_record(
            member=member, benefit=benefit, useful=True, reason="", actor=people["auditor"]
        )


# --- PostgreSQL: the nightly grants racing with grants at the counter ----------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_entitlement_grants_racing_with_single_grants_never_overspend():
    room_for, members_wanting, threads_n, per_thread = 20, 30, 4, 5
    budget = make_budget(amount_fen=room_for * COST)
    benefit = make_benefit(budget, code="LOUNGE")
    # A scheme of its own: an earlier transactional test may have flushed the migrations' data.
    scheme = TierScheme.objects.create(code="RACE", name="Race", method="MADA")
    gold = Tier.objects.create(
        scheme=scheme, code="GOLD", name="金卡", name_en="Gold", rank=1, threshold=0
    )
    for _ in range(members_wanting):
        MemberFactory(tier=gold)
    TierEntitlement.objects.create(benefit=benefit, tier=gold, quantity=1, period="MONTH")
    counter_member = MemberFactory()
    barrier = threading.Barrier(threads_n + 1)
    outcome = {"single": 0, "refused": 0, "errors": [], "run": None}
    lock = threading.Lock()

    def counter(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for attempt in range(per_thread):
                try:
                    give(counter_member, benefit, key=f"counter-{index}-{attempt}")
                except BudgetExhausted:
                    with lock:
                        outcome["refused"] += 1
                else:
                    with lock:
                        outcome["single"] += 1
        except Exception as exc:  # a crash in a thread must fail the test
            outcome["errors"].append(repr(exc))
        finally:
            connection.close()

    def nightly() -> None:
        try:
            barrier.wait(timeout=30)
            outcome["run"] = entitlement_grants_run(business_date=TODAY)
        except Exception as exc:
            outcome["errors"].append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=counter, args=(i,)) for i in range(threads_n)]
    threads.append(threading.Thread(target=nightly))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert outcome["errors"] == []
    run = outcome["run"]
    assert run["granted"] + run["not_granted_budget"] == members_wanting
    grants = BenefitGrant.objects.filter(budget=budget)
    assert grants.count() == run["granted"] + outcome["single"] <= room_for
    assert consumed(budget) == grants.count() * COST <= budget.amount_fen
    assert ledger_sum(budget) == consumed(budget)
    assert consumed(budget) == budget.amount_fen  # demand exceeded room: the budget is full
