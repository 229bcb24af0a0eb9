"""What a budget approver reads before deciding (DESIGN.md "Change management"): where the
budget stands — consumed, committed (granted, not yet redeemed), left — and its burn forecast
at the spend rate of the last 30 business days (the day it runs out, what it will have
consumed when its period ends), and for a budget under another the room its parent has left
to give. `benefits.services.budget_forecast` and the `budget_*_impact` functions compute it;
the approval kinds show it.

A budget's parent changes only on approval, and what the budget has consumed moves with it:
the old parent's chain gives it back, the new one's takes it (ADJUST entries, no spending),
so a grant released later gives back to the chain that holds its cost.

Every figure below is worked out by hand in the test's comments. Dates are relative to
today in Asia/Shanghai; entries are dated by moving their `created_at` into the past.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import translation

from benefits.choices import BenefitApproval, BudgetEntryKind, GrantSource
from benefits.models import Budget, BudgetEntry
from benefits.services import (
    BudgetProposalError,
    budget_consume,
    budget_create_request,
    budget_creation_impact,
    budget_forecast,
    budget_increase_impact,
    budget_increase_request,
    budget_parent_change_impact,
    budget_parent_change_request,
    budget_release,
    grant_create,
    grant_redeem,
    grant_revoke,
)
from portal.approvals import approval_decide, approval_impact
from portal.choices import ApprovalStatus, Role
from portal.clock import day_start, today_in_shanghai
from portal.errors import NotAllowed, StateConflict
from portal.models import AuditEntry
from tests.factories import BenefitFactory, BudgetFactory, DepartmentFactory, MemberFactory

pytestmark = pytest.mark.django_db

TODAY = today_in_shanghai()


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(make_user):
    return {
        "maker": make_user(Role.BUDGET_APPROVER, username="ba_maker", branch="HO"),
        "checker": make_user(Role.BUDGET_APPROVER, username="ba_checker", branch="HO"),
    }


def budget(code: str, amount_yuan: int, *, parent=None, started_days_ago=60, ends_in_days=40):
    return BudgetFactory(
        code=code,
        name=f"预算 {code}",
        parent=parent,
        period_start=TODAY - timedelta(days=started_days_ago),
        period_end=TODAY + timedelta(days=ends_in_days),
        amount_fen=amount_yuan * 100,
    )


def dated(entries_since: int, days_ago: int, *, hour: int = 10, minute: int = 0) -> None:
    """Give the ledger entries written since entry id `entries_since` the business date
    `days_ago` days before today, at hour:minute in Asia/Shanghai."""
    at = day_start(TODAY - timedelta(days=days_ago)) + timedelta(hours=hour, minutes=minute)
    BudgetEntry.objects.filter(pk__gt=entries_since).update(created_at=at)


def last_entry_id() -> int:
    return BudgetEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def spend(target: Budget, yuan: int, *, days_ago: int, hour: int = 10, minute: int = 0) -> None:
    since = last_entry_id()
    budget_consume(budget=target, amount_fen=yuan * 100, source="test spending")
    dated(since, days_ago, hour=hour, minute=minute)


def impact_of(approval) -> dict[str, str]:
    with translation.override("en"):
        return dict(approval_impact(approval))


def ledger_sum(target: Budget) -> int:
    return BudgetEntry.objects.filter(budget=target).aggregate(total=Sum("amount_fen"))["total"]


# --- standing: consumed, committed, left --------------------------------------------------------


def test_a_budget_without_spending_says_so_in_every_forecast_line(staff):
    card = budget("CARD", 10_000)
    approval = budget_increase_request(budget=card, amount=Decimal("12000"), actor=staff["maker"])

    impact = impact_of(approval)

    assert (
        impact["Consumed"] == "CNY 0.00"
        and impact["Committed (granted, not yet redeemed)"] == "CNY 0.00"
    )
    assert impact["Left now"] == "CNY 10,000.00" and impact["Left if approved"] == "CNY 12,000.00"
    assert impact["Spending per day (last 30 days)"] == "No spending yet"
    assert impact["Runs out at this rate"] == "No spending yet"
    end = card.period_end.isoformat()
    assert impact[f"Consumed by the period end ({end}) at this rate"] == "No spending yet"


def test_grants_not_yet_redeemed_are_committed_and_what_is_redeemed_or_spent_is_consumed(org):
    card = budget("CARD", 10_000)
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=120_00, budget=card)
    member = MemberFactory(branch=org["B01S1"])
    grants = [
        grant_create(
            member=member,
            benefit=lounge,
            budget=card,
            source=GrantSource.MANUAL,
            idempotency_key=f"impact-{n}",
            expires_on=TODAY + timedelta(days=30),
        )
        for n in range(4)
    ]
    grant_redeem(grant=grants[0])
    grant_revoke(grant=grants[1], actor=None, reason="duplicate")
    budget_consume(budget=card, amount_fen=500_00, source="task reward points")

    forecast = budget_forecast(budget=card)

    # 4 × ¥120 granted, one given back (revoked): ¥360 charged; 2 grants wait (¥240)
    assert forecast.committed_fen == 240_00
    assert forecast.consumed_fen == 120_00 + 500_00  # one redeemed grant, the points
    assert forecast.left_fen == 10_000_00 - 860_00
    assert forecast.consumed_fen + forecast.committed_fen + forecast.left_fen == card.amount_fen


def test_a_parent_counts_what_its_childrens_grants_commit(org):
    retail = budget("RETAIL", 100_000)
    card = budget("CARD", 10_000, parent=retail)
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=120_00, budget=card)
    grant_create(
        member=MemberFactory(branch=org["B01S1"]),
        benefit=lounge,
        budget=card,
        source=GrantSource.MANUAL,
        idempotency_key="impact-child",
        expires_on=TODAY + timedelta(days=30),
    )

    parent = budget_forecast(budget=retail)

    assert (parent.committed_fen, parent.consumed_fen, parent.left_fen) == (120_00, 0, 99_880_00)


# --- the burn forecast ----------------------------------------------------------------------------


def test_the_spend_rate_is_the_net_spending_of_the_last_30_business_days():
    card = budget("CARD", 10_000)
    spend(card, 3_000, days_ago=30)  # the 31st day back: outside the window
    spend(card, 600, days_ago=29)
    spend(card, 300, days_ago=0)
    since = last_entry_id()
    budget_release(budget=card, amount_fen=150_00, source="expired")
    dated(since, 10)

    forecast = budget_forecast(budget=card)

    # (600 + 300 − 150) / 30 days = ¥25.00 a day
    assert forecast.daily_rate == Decimal("25.00")
    # ¥10,000 − ¥3,750 consumed = ¥6,250 left: 250 days at ¥25
    assert forecast.exhaustion == TODAY + timedelta(days=250)
    assert not forecast.runs_out_in_period  # the period ends in 40 days
    # ¥3,750 now + 40 days × ¥25
    assert forecast.projected_end_fen == 3_750_00 + 40 * 25_00


def test_an_entry_counts_on_its_business_date_in_shanghai_not_in_utc():
    card = budget("CARD", 10_000)
    # 00:30 in Shanghai on the 30th day back is still the day before in UTC
    spend(card, 900, days_ago=29, hour=0, minute=30)
    # 23:50 in Shanghai on the 31st day back: outside, though it is 15:50 UTC that day
    spend(card, 9_000, days_ago=30, hour=23, minute=50)

    forecast = budget_forecast(budget=card)

    assert forecast.daily_rate == Decimal("30.00")  # ¥900 / 30 days


def test_a_budget_opened_less_than_30_days_ago_spreads_its_spending_over_its_days():
    card = budget("CARD", 10_000, started_days_ago=9)  # 10 days with today
    spend(card, 1_000, days_ago=5)

    forecast = budget_forecast(budget=card)

    assert forecast.daily_rate == Decimal("100.00")
    assert forecast.exhaustion == TODAY + timedelta(days=90)  # ¥9,000 left at ¥100
    assert not forecast.runs_out_in_period
    assert forecast.projected_end_fen == 1_000_00 + 40 * 100_00


def test_the_forecast_of_a_budget_that_runs_out_in_its_period_caps_at_its_amount(staff):
    card = budget("CARD", 10_000, ends_in_days=100)
    spend(card, 3_000, days_ago=0)  # ¥100 a day over the window
    approval = budget_increase_request(budget=card, amount=Decimal("11000"), actor=staff["maker"])

    impact = impact_of(approval)

    # ¥8,000 left if approved at ¥100 a day: 80 days, inside the 100-day period
    assert impact["Spending per day (last 30 days)"] == "CNY 100.00 a day"
    assert impact["Runs out at this rate"] == (TODAY + timedelta(days=80)).isoformat()
    end = card.period_end.isoformat()
    assert impact[f"Consumed by the period end ({end}) at this rate"] == "CNY 11,000.00"


def test_a_forecast_beyond_the_period_says_so(staff):
    card = budget("CARD", 10_000, ends_in_days=20)
    spend(card, 300, days_ago=1)
    approval = budget_increase_request(budget=card, amount=Decimal("20000"), actor=staff["maker"])

    impact = impact_of(approval)

    end = card.period_end.isoformat()
    assert impact["Runs out at this rate"] == f"Not before its period ends ({end})"
    assert (
        impact[f"Consumed by the period end ({end}) at this rate"] == "CNY 500.00"
    )  # 300 + 20 × 10


def test_a_budget_that_gave_back_more_than_it_spent_lately_does_not_run_out():
    card = budget("CARD", 10_000)
    spend(card, 500, days_ago=40)
    since = last_entry_id()
    budget_release(budget=card, amount_fen=200_00, source="expired")
    dated(since, 3)

    forecast = budget_forecast(budget=card)

    assert forecast.daily_rate == Decimal("-6.67")  # −¥200 / 30 days
    assert forecast.exhaustion is None
    assert forecast.projected_end_fen == 300_00  # nothing more spent


# --- a new budget and an increase: the parent's room ----------------------------------------------


def test_a_new_budget_shows_its_parents_room_before_and_after(staff):
    DepartmentFactory(code="WEALTH")
    retail = budget("RETAIL", 5_000_000)
    budget("CARD", 4_000_000, parent=retail)
    approval = budget_create_request(
        values={
            "code": "LOUNGE",
            "name": "贵宾厅预算",
            "department": "WEALTH",
            "parent": "RETAIL",
            "line": "",
            "period_start": retail.period_start.isoformat(),
            "period_end": retail.period_end.isoformat(),
            "amount": "600000.00",
            "alert_percents": [],
        },
        actor=staff["maker"],
    )

    impact = impact_of(approval)

    assert impact["Left if approved"] == "CNY 600,000.00"
    assert impact["Spending per day (last 30 days)"] == "No spending yet"
    assert impact["Left to give in 预算 RETAIL now"] == "CNY 1,000,000.00"
    assert impact["Left to give in 预算 RETAIL if approved"] == "CNY 400,000.00"
    assert budget_creation_impact(values=approval.proposal).rooms[0].after_fen == 400_000_00


def test_an_increase_shows_what_its_parent_gives_and_a_parent_what_it_can_give(staff):
    retail = budget("RETAIL", 1_000_000)
    card = budget("CARD", 300_000, parent=retail)
    budget("CARD-GOLD", 100_000, parent=card)

    lines = budget_increase_impact(budget=card, amount=Decimal("350000.00")).rooms

    assert [(room.code, room.before_fen, room.after_fen) for room in lines] == [
        ("RETAIL", 700_000_00, 650_000_00),  # it gives CARD ¥50,000 more
        ("CARD", 200_000_00, 250_000_00),  # CARD has ¥50,000 more to give its children
    ]


# --- a new parent ---------------------------------------------------------------------------------


@pytest.fixture
def tree():
    """BANK ¥10m over RETAIL ¥5m and WEALTH ¥3m; CARD ¥1m under RETAIL has spent ¥200,000."""
    bank = budget("BANK", 10_000_000)
    retail = budget("RETAIL", 5_000_000, parent=bank)
    wealth = budget("WEALTH", 3_000_000, parent=bank)
    card = budget("CARD", 1_000_000, parent=retail)
    spend(card, 200_000, days_ago=2)
    return {"bank": bank, "retail": retail, "wealth": wealth, "card": card}


def fresh(target: Budget) -> Budget:
    return Budget.objects.get(pk=target.pk)


def test_a_new_parent_waits_for_a_second_person_and_shows_both_parents(tree, staff):
    approval = budget_parent_change_request(
        budget=tree["card"], parent=tree["wealth"], actor=staff["maker"]
    )

    impact = impact_of(approval)

    assert approval.kind == BenefitApproval.BUDGET_PARENT_CHANGE
    assert fresh(tree["card"]).parent == tree["retail"]
    assert approval.diff()[0] == ("parent", "预算 RETAIL", "预算 WEALTH")
    assert impact["Parent now"] == "预算 RETAIL" and impact["Parent if approved"] == "预算 WEALTH"
    assert impact["Consumed so far, moving with it"] == "CNY 200,000.00"
    assert impact["Left"] == "CNY 800,000.00"
    assert impact["Left to give in 预算 RETAIL now"] == "CNY 4,000,000.00"
    assert impact["Left to give in 预算 RETAIL if approved"] == "CNY 5,000,000.00"
    assert impact["Left to give in 预算 WEALTH now"] == "CNY 3,000,000.00"
    assert impact["Left to give in 预算 WEALTH if approved"] == "CNY 2,000,000.00"
    with pytest.raises(NotAllowed):
        approval_decide(approval=approval, approve=True, actor=staff["maker"])


def test_approving_a_new_parent_moves_the_consumption_and_the_shared_parent_keeps_it(tree, staff):
    approval = budget_parent_change_request(
        budget=tree["card"], parent=tree["wealth"], actor=staff["maker"]
    )
    shown = budget_parent_change_impact(budget=tree["card"], parent=tree["wealth"])

    approval_decide(approval=approval, approve=True, actor=staff["checker"])

    card, retail, wealth, bank = (
        fresh(tree[code]) for code in ("card", "retail", "wealth", "bank")
    )
    assert card.parent == wealth
    assert (retail.consumed_fen, wealth.consumed_fen) == (0, 200_000_00)
    assert bank.consumed_fen == 200_000_00  # above both: its count never moved
    assert not BudgetEntry.objects.filter(budget=bank, kind=BudgetEntryKind.ADJUST).exists()
    assert list(
        BudgetEntry.objects.filter(kind=BudgetEntryKind.ADJUST)
        .order_by("pk")
        .values_list("budget__code", "amount_fen")
    ) == [("RETAIL", -200_000_00), ("WEALTH", 200_000_00)]
    for level in (card, retail, wealth, bank):  # the ledger still sums to what is consumed
        assert (ledger_sum(level) or 0) == level.consumed_fen
    # preview equals result: each parent's room after, what moved
    assert [room.after_fen for room in shown.rooms] == [5_000_000_00, 2_000_000_00]
    assert shown.moved_fen == wealth.consumed_fen
    entry = AuditEntry.objects.get(action="budget.parent", actor=staff["checker"])
    assert entry.changes["parent"] == ["RETAIL", "WEALTH"]
    assert entry.changes["consumption_moved"] == "200000.00"


def test_a_grant_released_after_the_move_gives_back_to_the_new_parent(tree, staff, org):
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=1_000_00, budget=tree["card"])
    grant = grant_create(
        member=MemberFactory(branch=org["B01S1"]),
        benefit=lounge,
        budget=tree["card"],
        source=GrantSource.MANUAL,
        idempotency_key="moved-grant",
        expires_on=TODAY + timedelta(days=30),
    )
    approval = budget_parent_change_request(
        budget=tree["card"], parent=tree["wealth"], actor=staff["maker"]
    )
    approval_decide(approval=approval, approve=True, actor=staff["checker"])

    grant_revoke(grant=grant, actor=None, reason="customer complaint")

    assert fresh(tree["wealth"]).consumed_fen == 200_000_00
    assert fresh(tree["retail"]).consumed_fen == 0  # never below zero
    assert fresh(tree["card"]).consumed_fen == 200_000_00


def test_consumption_moving_to_a_parent_is_no_spending_in_its_forecast(tree, staff):
    approval = budget_parent_change_request(
        budget=tree["card"], parent=tree["wealth"], actor=staff["maker"]
    )
    approval_decide(approval=approval, approve=True, actor=staff["checker"])

    moved_in = budget_forecast(budget=tree["wealth"])

    assert moved_in.daily_rate is None  # no spending yet: the ¥200,000 was spent under RETAIL
    assert (moved_in.consumed_fen, moved_in.left_fen) == (200_000_00, 2_800_000_00)


def test_a_budget_can_be_moved_to_the_top_level(tree, staff):
    approval = budget_parent_change_request(budget=tree["card"], parent=None, actor=staff["maker"])
    impact = impact_of(approval)

    approval_decide(approval=approval, approve=True, actor=staff["checker"])

    assert impact["Parent if approved"] == "None (a top-level budget)"
    assert fresh(tree["card"]).parent is None
    assert (fresh(tree["retail"]).consumed_fen, fresh(tree["bank"]).consumed_fen) == (0, 0)


def test_a_new_parent_that_cannot_hold_what_the_budget_consumed_is_refused(tree, staff):
    tight = budget("TIGHT", 1_500_000)
    spend(tight, 1_400_000, days_ago=1)  # ¥100,000 left, CARD consumed ¥200,000

    with pytest.raises(BudgetProposalError) as refused:
        budget_parent_change_request(budget=tree["card"], parent=tight, actor=staff["maker"])

    assert refused.value.field == "parent"
    assert "¥200,000.00" in refused.value.message and "¥100,000.00" in refused.value.message


def test_approval_rechecks_the_parents_room_and_refuses_when_it_is_gone(tree, staff):
    approval = budget_parent_change_request(
        budget=tree["card"], parent=tree["wealth"], actor=staff["maker"]
    )
    budget("BONDS", 2_500_000, parent=tree["wealth"])  # given meanwhile: ¥500,000 left

    with pytest.raises(StateConflict):
        approval_decide(approval=approval, approve=True, actor=staff["checker"])

    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert fresh(tree["card"]).parent == tree["retail"]
    assert fresh(tree["retail"]).consumed_fen == 200_000_00


def test_one_new_parent_waits_at_a_time_and_the_same_parent_is_no_change(tree, staff):
    budget_parent_change_request(budget=tree["card"], parent=tree["wealth"], actor=staff["maker"])

    with pytest.raises(StateConflict) as pending:
        budget_parent_change_request(budget=tree["card"], parent=None, actor=staff["maker"])
    with pytest.raises(StateConflict) as same:
        budget_parent_change_request(
            budget=tree["card"], parent=tree["retail"], actor=staff["maker"]
        )

    assert (pending.value.code, same.value.code) == ("change_pending", "no_change")


def test_an_increase_is_refused_on_approval_when_the_parent_gave_its_room_away(staff):
    retail = budget("RETAIL", 1_000_000)
    card = budget("CARD", 300_000, parent=retail)
    approval = budget_increase_request(budget=card, amount=Decimal("600000"), actor=staff["maker"])
    budget("WEALTH", 500_000, parent=retail)  # given meanwhile: ¥200,000 left for CARD's rise

    with pytest.raises(StateConflict):
        approval_decide(approval=approval, approve=True, actor=staff["checker"])

    assert fresh(card).amount_fen == 300_000_00
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
