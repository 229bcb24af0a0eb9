"""The points ledger: append-only entries, a derived balance, oldest-first spending and the
nightly expiry per policy."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command
from django.db.models import Sum

from members.models import PointsEntry
from members.services.points import (
    InsufficientPoints,
    NextYearEnd,
    RollingMonths,
    points_adjust,
    points_earn,
    points_expire,
    points_spend,
)
from portal.choices import Role
from portal.errors import InvalidInput
from portal.models import AuditEntry, JobRun
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def balance_of(member) -> int:
    member.refresh_from_db()
    ledger = PointsEntry.objects.filter(member=member).aggregate(total=Sum("points"))["total"]
    assert member.points_balance == (ledger or 0), "the balance is the sum of the ledger"
    return member.points_balance


def earn(member, points, on, key):
    return points_earn(
        member_id=member.pk, points=points, business_date=on, source="test", idempotency_key=key
    )


@pytest.mark.parametrize(
    ("earned", "expires"),
    [(date(2026, 1, 1), date(2027, 12, 31)), (date(2026, 12, 31), date(2027, 12, 31))],
)
def test_next_year_end_policy(earned, expires):
    assert NextYearEnd().expires_on(earned) == expires


@pytest.mark.parametrize(
    ("earned", "months", "expires"),
    [
        (date(2026, 11, 26), 24, date(2028, 11, 30)),
        (date(2026, 12, 15), 2, date(2027, 2, 28)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
    ],
)
def test_rolling_months_policy_ends_on_the_last_day_of_a_month(earned, months, expires):
    assert RollingMonths(months).expires_on(earned) == expires


def test_unknown_policy_names_the_setting(settings):
    settings.POINTS_EXPIRY_POLICY = "FOREVER"
    member = MemberFactory()
    with pytest.raises(ValueError, match="POINTS_EXPIRY_POLICY"):
        earn(member, 10, date(2026, 11, 1), "k")


def test_earning_twice_with_one_key_credits_once():
    member = MemberFactory()
    assert earn(member, 100, date(2026, 11, 1), "task:1") is not None
    assert earn(member, 100, date(2026, 11, 1), "task:1") is None
    assert balance_of(member) == 100


def test_spending_draws_the_oldest_earnings_first_and_refuses_an_overdraft():
    member = MemberFactory()
    old = earn(member, 100, date(2025, 6, 1), "a")  # expires 2026-12-31
    new = earn(member, 100, date(2026, 6, 1), "b")  # expires 2027-12-31

    points_spend(
        member=member,
        points=150,
        business_date=date(2026, 11, 1),
        source="gift",
        idempotency_key="s1",
    )

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.remaining, new.remaining) == (0, 50)
    assert balance_of(member) == 50
    with pytest.raises(InsufficientPoints):
        points_spend(
            member=member,
            points=51,
            business_date=date(2026, 11, 1),
            source="g",
            idempotency_key="s2",
        )
    assert balance_of(member) == 50
    assert not PointsEntry.objects.filter(idempotency_key="s2").exists()


def test_expiry_takes_what_is_left_of_expired_earnings_once(django_assert_max_num_queries):
    members = [MemberFactory() for _ in range(3)]
    for index, member in enumerate(members):
        earn(member, 100, date(2024, 5, 1), f"old{index}")  # expires 2025-12-31
        earn(member, 40, date(2025, 5, 1), f"new{index}")  # expires 2026-12-31
    points_spend(
        member=members[0],
        points=30,
        business_date=date(2025, 1, 1),
        source="g",
        idempotency_key="x",
    )

    with django_assert_max_num_queries(6):  # set-based: not one statement per member
        counts = points_expire(business_date=date(2026, 1, 1))
    again = points_expire(business_date=date(2026, 1, 1))

    assert counts == {"members": 3, "points_expired": 70 + 100 + 100}
    assert again["members"] == 0
    assert [balance_of(m) for m in members] == [40, 40, 40]
    expiry = PointsEntry.objects.get(member=members[0], kind="EXPIRE")
    assert (expiry.points, expiry.business_date) == (-70, date(2026, 1, 1))


def test_adjustment_needs_a_reason_and_is_audited(make_user):
    manager = make_user(Role.BRANCH_MANAGER)
    member = MemberFactory()
    earn(member, 100, date(2026, 11, 1), "e")
    with pytest.raises(InvalidInput, match="原因"):
        points_adjust(
            member=member, points=-10, business_date=date(2026, 11, 2), reason=" ",
            actor=manager, idempotency_key="adj0",
        )  # fmt: skip

    points_adjust(
        member=member, points=-30, business_date=date(2026, 11, 2),
        reason="Duplicate credit from a campaign", actor=manager, idempotency_key="adj1",
    )  # fmt: skip

    assert balance_of(member) == 70
    audit = AuditEntry.objects.get(action="points.adjust")
    assert audit.actor == manager and audit.changes == {"points": -30}


def test_nightly_chain_expires_points_as_a_jobrun():
    member = MemberFactory()
    earn(member, 25, date(2024, 2, 1), "e")

    call_command("run_nightly", "--date", "2026-01-01", verbosity=0)

    run = JobRun.objects.get(kind="points_expire", business_date=date(2026, 1, 1))
    assert run.counts["points_expired"] == 25
    assert balance_of(member) == 0
