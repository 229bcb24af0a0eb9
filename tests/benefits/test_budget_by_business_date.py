"""Budgets follow the business date (DESIGN.md "Budgets"): a grant, a task reward and an alert
for business date D are charged to the budget whose period contains D — the budget named, or
the budget of its line (e.g. the lounge budgets of 2026 Q3 and 2026 Q4) that covers D. A past
date run again after its budget's period ended still grants against that period's budget; a
date no budget of the line covers is refused, saying so, with nothing written.

Today (the wall clock) is deliberately left alone: the budgets below are chosen so that the
one open today is never the one the business date needs.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import translation

from benefits.choices import EntitlementPeriod
from benefits.models import BenefitGrant, Budget, BudgetAlert, BudgetEntry, TierEntitlement
from benefits.services import (
    BudgetNotOpen,
    BudgetProposalError,
    budget_alerts_raise,
    budget_create_request,
    budget_for_date,
    entitlement_grants_run,
    grant_create,
)
from members.models import Tier
from portal.choices import Role
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

COST = 12_000  # 120.00 CNY


def quarter(year: int, q: int) -> tuple[date, date]:
    start = date(year, 3 * q - 2, 1)
    end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1) - timedelta(days=1)
    return start, end


@pytest.fixture
def lounge_line(db):
    """The lounge budgets of 2026 Q3 and Q4 (line LOUNGE), ¥1,200 each, and the LOUNGE
    benefit configured on the Q3 one (as a product operator set it up in the summer)."""
    q3 = BudgetFactory(
        code="LOUNGE-26Q3", line="LOUNGE", amount_fen=10 * COST, period_start=quarter(2026, 3)[0]
    )
    q3.period_end = quarter(2026, 3)[1]
    q3.save()
    q4_start, q4_end = quarter(2026, 4)
    q4 = BudgetFactory(
        code="LOUNGE-26Q4",
        line="LOUNGE",
        amount_fen=10 * COST,
        period_start=q4_start,
        period_end=q4_end,
        department=q3.department,
    )
    benefit = BenefitFactory(code="LOUNGE", unit_cost_fen=COST, budget=q3)
    return {"q3": q3, "q4": q4, "benefit": benefit}


def consumed(budget: Budget) -> tuple[int, int]:
    """(consumed, the ledger's sum) of a budget: they always agree."""
    budget.refresh_from_db()
    ledger = BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0
    return budget.consumed_fen, ledger


def test_the_budget_for_a_date_is_the_one_of_its_line_whose_period_contains_it(lounge_line):
    q3, q4 = lounge_line["q3"], lounge_line["q4"]

    assert budget_for_date(q3, date(2026, 8, 15)) == q3
    assert budget_for_date(q3, date(2026, 11, 26)) == q4
    assert budget_for_date(q4.pk, date(2026, 7, 1)) == q3
    with pytest.raises(BudgetNotOpen, match="2027-01-10") as refused:
        budget_for_date(q3, date(2027, 1, 10))
    assert "LOUNGE" in str(refused.value)
    assert refused.value.code == "budget_not_open"


def test_a_grant_for_a_date_is_charged_to_the_budget_of_that_period(lounge_line):
    member = MemberFactory()
    q3, q4, benefit = lounge_line["q3"], lounge_line["q4"], lounge_line["benefit"]

    november = grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source="TASK_REWARD",
        idempotency_key="nov",
        expires_on=date(2026, 12, 31),
        on=date(2026, 11, 26),
    )
    august = grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source="TASK_REWARD",
        idempotency_key="aug",
        expires_on=date(2026, 12, 31),
        on=date(2026, 8, 15),
    )

    assert november.budget == q4
    assert august.budget == q3
    assert consumed(q3) == (COST, COST)
    assert consumed(q4) == (COST, COST)


def test_a_date_no_budget_of_the_line_covers_grants_nothing_and_says_why(lounge_line):
    benefit = lounge_line["benefit"]

    with pytest.raises(BudgetNotOpen, match="在 2027-01-10 不在有效期内"):
        grant_create(
            member=MemberFactory(),
            benefit=benefit,
            budget=benefit.budget,
            source="TASK_REWARD",
            idempotency_key="jan",
            expires_on=date(2027, 3, 31),
            on=date(2027, 1, 10),
        )

    assert not BenefitGrant.objects.exists()
    assert consumed(lounge_line["q3"]) == (0, 0)
    assert consumed(lounge_line["q4"]) == (0, 0)


@pytest.fixture
def gold_lounge(lounge_line, org):
    """Two GOLD customers entitled to one LOUNGE a month."""
    gold = Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")
    members = [MemberFactory(branch=org["B01S1"], tier=gold) for _ in range(2)]
    TierEntitlement.objects.create(
        benefit=lounge_line["benefit"], tier=gold, quantity=1, period=EntitlementPeriod.MONTH
    )
    return members


def test_the_nightly_entitlements_of_a_date_go_to_that_periods_budget(lounge_line, gold_lounge):
    q3, q4 = lounge_line["q3"], lounge_line["q4"]

    november = entitlement_grants_run(business_date=date(2026, 11, 26))
    # a past night run again after its quarter ended still grants against its quarter
    august = entitlement_grants_run(business_date=date(2026, 8, 15))

    assert november["granted"] == 2 and august["granted"] == 2
    grants = BenefitGrant.objects.order_by("period_key", "member_id")
    assert [(g.period_key, g.budget.code) for g in grants] == [
        ("2026-08", "LOUNGE-26Q3"),
        ("2026-08", "LOUNGE-26Q3"),
        ("2026-11", "LOUNGE-26Q4"),
        ("2026-11", "LOUNGE-26Q4"),
    ]
    assert consumed(q3) == (2 * COST, 2 * COST)
    assert consumed(q4) == (2 * COST, 2 * COST)


def test_a_night_no_budget_covers_reports_it_plainly_and_grants_nothing(lounge_line, gold_lounge):
    result = entitlement_grants_run(business_date=date(2027, 1, 10))

    assert result["granted"] == 0
    assert result["not_granted_budget"] == 2
    assert result["shortfalls"] == [
        "LOUNGE: 2 not granted (budget LOUNGE-26Q3 is not open on 2027-01-10)"
    ]
    assert not BenefitGrant.objects.exists()


def test_run_nightly_for_a_past_date_grants_against_that_dates_budget(lounge_line, org, import_csv):
    """The night of 2026-09-26 run today, after Q3 ended: two customers GOLD from August's
    balances get September's lounge from the Q3 budget, none from today's Q4 one."""
    gold = Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")
    TierEntitlement.objects.create(
        benefit=lounge_line["benefit"], tier=gold, quantity=1, period=EntitlementPeriod.MONTH
    )
    members = [MemberFactory(branch=org["B01S1"]) for _ in range(2)]
    august = [date(2026, 8, 1) + timedelta(days=n) for n in range(31)]
    rows = [f"{m.member_no},{day},DEMAND,100000.00" for m in members for day in august]
    import_csv("assets", "member_no,date,category,balance\n" + "\n".join(rows) + "\n")

    call_command("run_nightly", "--date", "2026-09-26", stdout=io.StringIO(), stderr=io.StringIO())

    grants = list(BenefitGrant.objects.all())
    assert [(g.period_key, g.budget.code) for g in grants] == [("2026-09", "LOUNGE-26Q3")] * 2
    assert consumed(lounge_line["q3"]) == (2 * COST, 2 * COST)
    assert consumed(lounge_line["q4"]) == (0, 0)


def test_alerts_of_a_date_are_those_of_the_budgets_open_on_it(lounge_line):
    q3, q4 = lounge_line["q3"], lounge_line["q4"]
    for budget in (q3, q4):
        budget.alert_percents = [50]
        budget.consumed_fen = budget.amount_fen
        budget.save()

    raised = budget_alerts_raise(business_date=date(2026, 8, 15))

    assert raised["alerts"] == ["LOUNGE-26Q3 ≥ 50%"]
    assert list(BudgetAlert.objects.values_list("budget__code", flat=True)) == ["LOUNGE-26Q3"]


def test_budgets_of_one_line_cannot_overlap(lounge_line, make_user):
    operator = make_user(Role.BUDGET_APPROVER)
    values = {
        "code": "LOUNGE-26Q4B",
        "name": "Lounge Q4 again",
        "department": lounge_line["q4"].department.code,
        "parent": None,
        "line": "LOUNGE",
        "period_start": "2026-12-01",
        "period_end": "2027-02-28",
        "amount": "1000.00",
        "alert_percents": [],
    }

    with (
        translation.override("en"),
        pytest.raises(
            BudgetProposalError, match="LOUNGE-26Q4 of line LOUNGE already covers"
        ) as refused,
    ):
        budget_create_request(values=values, actor=operator)
    assert refused.value.field == "line"

    values.update(period_start="2027-01-01", period_end="2027-03-31")
    assert budget_create_request(values=values, actor=operator) is not None
