"""A bad configuration row that still reaches a night (written around the doors: a script,
an old release, a hand edit in the database) is reported by its step, which goes on with
the other rows; the chain's later steps run (DESIGN.md "Change management").

The bank of `test_nightly_benefits`: three GOLD customers, one STANDARD, a LOUNGE a month
for GOLD. A second benefit, GIFT, is entitled to GOLD with a corrupt quantity.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command

from benefits.choices import EntitlementPeriod
from benefits.models import BenefitGrant, Budget, TierEntitlement
from members.models import Tier
from operations.nightly import NIGHTLY_STEPS
from portal.choices import JobStatus
from portal.models import JobRun
from tests.clock import benefits_today
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

BUSINESS_DATE = date(2026, 11, 26)
GOLD_MEMBERS = ["M0000001", "M0000002", "M0000003"]


@pytest.fixture(autouse=True)
def today(monkeypatch):
    benefits_today(monkeypatch, BUSINESS_DATE)


@pytest.fixture
def bank(db, org, import_csv):
    for member_no in [*GOLD_MEMBERS, "M0000004"]:
        MemberFactory(member_no=member_no, branch=org["B01S1"])
    october = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)]
    rows = [f"{no},{day},DEMAND,100000.00" for no in GOLD_MEMBERS for day in october]
    rows += [f"M0000004,{day},DEMAND,1000.00" for day in october]
    import_csv("assets", "member_no,date,category,balance\n" + "\n".join(rows) + "\n")
    budget = BudgetFactory(
        code="RETAIL-2026",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=10_000_000,
        alert_percents=[80],
    )
    gold = Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=12_000, budget=budget)
    gift = BenefitFactory(code="GIFT", unit_cost_fen=5_000, budget=budget)
    TierEntitlement.objects.create(
        benefit=lounge, tier=gold, quantity=1, period=EntitlementPeriod.MONTH
    )
    TierEntitlement.objects.create(
        benefit=gift, tier=gold, quantity=1, period=EntitlementPeriod.MONTH
    )
    return {"lounge": lounge, "gift": gift, "budget": budget}


def run_nightly() -> str:
    out = io.StringIO()
    call_command(
        "run_nightly", "--date", BUSINESS_DATE.isoformat(), stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


def step(kind: str) -> JobRun:
    return JobRun.objects.filter(kind=kind, business_date=BUSINESS_DATE).latest("id")


def test_a_corrupt_entitlement_is_reported_and_the_others_and_later_steps_still_run(bank):
    # what the doors refuse, written straight into the table
    TierEntitlement.objects.filter(benefit=bank["gift"]).update(quantity=30_000)

    run_nightly()

    grants = step("entitlement_grants")
    assert grants.status == JobStatus.WARNING
    assert "GIFT/GOLD" in grants.message and "quantity" in grants.message.lower()
    assert "请在权益矩阵中更正" in grants.message  # what to do next
    assert grants.counts["entitlements_refused"] == 1 and grants.counts["granted"] == 3
    assert set(BenefitGrant.objects.values_list("benefit__code", flat=True)) == {"LOUNGE"}
    # every step of the chain ran, and the night as a whole is a warning, not a failure
    for later in NIGHTLY_STEPS:
        assert step(later.kind).status in (JobStatus.SUCCEEDED, JobStatus.WARNING), later.kind
    assert step("nightly_chain").status == JobStatus.WARNING


def test_a_corrupt_unit_cost_is_reported_and_nothing_of_it_is_charged(bank):
    Budget.objects.filter(pk=bank["budget"].pk).update(amount_fen=10**15)
    type(bank["gift"]).objects.filter(pk=bank["gift"].pk).update(unit_cost_fen=9_999_999_900)

    run_nightly()

    grants = step("entitlement_grants")
    assert grants.status == JobStatus.WARNING and "GIFT/GOLD" in grants.message
    assert not BenefitGrant.objects.filter(benefit=bank["gift"]).exists()
    bank["budget"].refresh_from_db()
    assert bank["budget"].consumed_fen == 3 * 12_000  # the three lounges only


def test_corrupt_alert_thresholds_are_reported_and_the_other_budgets_checked(bank):
    other = BudgetFactory(
        code="CARD-2026",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=100_00,
        consumed_fen=90_00,
        alert_percents=[80],
    )
    Budget.objects.filter(pk=bank["budget"].pk).update(alert_percents=["abc", 95])

    run_nightly()

    alerts = step("budget_alerts")
    assert alerts.status == JobStatus.WARNING
    assert "RETAIL-2026" in alerts.message and "CARD-2026 ≥ 80%" in alerts.message
    assert alerts.counts == {"raised": 1, "budgets_refused": 1}
    assert other.alerts.count() == 1
    assert step("kpi_snapshot").status == JobStatus.SUCCEEDED
