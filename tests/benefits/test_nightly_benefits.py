"""The benefits steps of the nightly chain (DESIGN.md "Nightly pipeline"), driven from the
outside with `manage.py run_nightly --date 2026-11-26`: periodic entitlement grants, expiry of
grants and budget alerts, each recorded as a JobRun and safe to run twice.

Three customers of 朝阳支行 hold 100,000.00 every day of October 2026 (GOLD from the tier
step of 2026-11-26), a fourth holds 1,000.00 (STANDARD). GOLD is entitled to one LOUNGE
(120.00) a month.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum

from benefits.choices import EntitlementPeriod, GrantSource, GrantStatus
from benefits.models import BenefitGrant, Budget, BudgetEntry, TierEntitlement
from benefits.services import grant_create
from members.models import Tier
from portal.choices import JobStatus
from portal.models import JobRun
from tests.clock import benefits_today
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

BUSINESS_DATE = date(2026, 11, 26)
COST = 12_000  # 120.00 CNY
GOLD_MEMBERS = ["M0000001", "M0000002", "M0000003"]


@pytest.fixture(autouse=True)
def today(monkeypatch):
    """Budgets are open or closed by today's date in Asia/Shanghai: the business date."""
    benefits_today(monkeypatch, BUSINESS_DATE)


@pytest.fixture
def bank(db, org, import_csv):
    for member_no in [*GOLD_MEMBERS, "M0000004"]:
        MemberFactory(member_no=member_no, branch=org["B01S1"])
    october = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)]
    rows = [f"{no},{day},DEMAND,100000.00" for no in GOLD_MEMBERS for day in october]
    rows += [f"M0000004,{day},DEMAND,1000.00" for day in october]
    import_csv("assets", "member_no,date,category,balance\n" + "\n".join(rows) + "\n")
    return org


def lounge_for_gold(*, room_for: int, **budget_fields):
    budget = BudgetFactory(
        code="RETAIL-2026",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=room_for * COST,
        **budget_fields,
    )
    benefit = BenefitFactory(code="LOUNGE", unit_cost_fen=COST, budget=budget)
    TierEntitlement.objects.create(
        benefit=benefit,
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD"),
        quantity=1,
        period=EntitlementPeriod.MONTH,
    )
    return benefit


def run_nightly(day: date = BUSINESS_DATE) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("run_nightly", "--date", day.isoformat(), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def runs(kind: str, day: date = BUSINESS_DATE) -> list[JobRun]:
    return list(JobRun.objects.filter(kind=kind, business_date=day).order_by("id"))


def budget_state(code: str = "RETAIL-2026") -> tuple[int, int, int]:
    budget = Budget.objects.get(code=code)
    ledger = BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0
    return budget.amount_fen, budget.consumed_fen, ledger


def test_running_the_night_twice_grants_the_entitlements_once(bank):
    lounge_for_gold(room_for=10)

    run_nightly()
    run_nightly()

    grants = BenefitGrant.objects.order_by("member__member_no")
    assert [g.member.member_no for g in grants] == GOLD_MEMBERS  # not the STANDARD member
    assert {(g.benefit.code, g.source, g.period_key, g.expires_on) for g in grants} == {
        ("LOUNGE", GrantSource.ENTITLEMENT, "2026-11", date(2026, 11, 30))
    }
    first, second = runs("entitlement_grants")
    assert (first.status, second.status) == (JobStatus.SUCCEEDED, JobStatus.SUCCEEDED)
    assert first.counts == {"granted": 3, "not_granted_budget": 0, "entitlements_refused": 0}
    assert second.counts == {"granted": 0, "not_granted_budget": 0, "entitlements_refused": 0}
    _amount, consumed, ledger = budget_state()
    assert consumed == ledger == 3 * COST


def test_a_short_budget_makes_the_step_a_warning_naming_the_benefit(bank):
    lounge_for_gold(room_for=2)

    _out, err = run_nightly()

    (run,) = runs("entitlement_grants")
    assert run.status == JobStatus.WARNING
    assert "LOUNGE" in run.message and "1 not granted" in run.message
    assert "重跑该日期" in run.message  # says what to do next
    assert run.message in err  # the operator sees it on the console too
    assert run.counts == {"granted": 2, "not_granted_budget": 1, "entitlements_refused": 0}
    assert BenefitGrant.objects.count() == 2
    amount, consumed, ledger = budget_state()
    assert consumed == ledger == amount == 2 * COST  # as many as fit, never more
    # the chain went on past the warning
    assert runs("grants_expire") and runs("budget_alerts")


def test_a_rerun_after_the_budget_is_raised_grants_the_rest(bank):
    lounge_for_gold(room_for=2)
    run_nightly()
    Budget.objects.filter(code="RETAIL-2026").update(amount_fen=10 * COST)

    run_nightly()

    _first, second = runs("entitlement_grants")
    assert second.status == JobStatus.SUCCEEDED and second.message == ""
    assert second.counts == {"granted": 1, "not_granted_budget": 0, "entitlements_refused": 0}
    assert BenefitGrant.objects.count() == 3
    _amount, consumed, ledger = budget_state()
    assert consumed == ledger == 3 * COST


def test_the_night_expires_grants_past_their_date_and_releases_the_cost(bank):
    benefit = lounge_for_gold(room_for=10)
    member = bank["B01S1"].members.get(member_no="M0000004")
    old = grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source=GrantSource.MANUAL,
        idempotency_key="manual-old",
        expires_on=date(2026, 11, 25),
    )

    run_nightly()
    run_nightly()

    old.refresh_from_db()
    assert old.status == GrantStatus.EXPIRED
    first, second = runs("grants_expire")
    assert first.counts == {"expired": 1, "released_fen": COST}
    assert second.counts == {"expired": 0, "released_fen": 0}
    _amount, consumed, ledger = budget_state()
    assert consumed == ledger == 3 * COST  # the three November lounges remain


def test_the_night_raises_a_budget_alert_once(bank, settings, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.bank")]
    lounge_for_gold(room_for=3, alert_percents=[80, 95])

    run_nightly()
    run_nightly()

    first, second = runs("budget_alerts")
    assert first.status == JobStatus.WARNING
    assert "RETAIL-2026 ≥ 80%" in first.message and "RETAIL-2026 ≥ 95%" in first.message
    assert first.counts == {"raised": 2, "budgets_refused": 0}
    assert second.status == JobStatus.SUCCEEDED and second.counts == {
        "raised": 0,
        "budgets_refused": 0,
    }
    assert {mail.to[0] for mail in mailoutbox} == {"ops@example.bank"}
    assert len(mailoutbox) == 2  # one per threshold, and none on the second night


def test_a_closed_budget_is_reported_as_closed_not_as_exhausted(bank):
    lounge_for_gold(room_for=10)
    Budget.objects.filter(code="RETAIL-2026").update(period_end=date(2026, 10, 31))

    run_nightly()

    (run,) = runs("entitlement_grants")
    assert run.status == JobStatus.WARNING
    assert "LOUNGE" in run.message
    assert "not open" in run.message and "exhausted" not in run.message
