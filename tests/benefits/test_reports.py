"""Benefits reports (DESIGN.md "benefits"): the differentiation report (what each step up
the tiers adds), the demand report (grant → redemption rates, low demand flagged) and the
budget burn-down with its projected exhaustion date. Every expected figure is worked out by
hand in the comments."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from benefits.choices import BudgetEntryKind, EntitlementPeriod, GrantSource, GrantStatus
from benefits.models import BenefitGrant, BudgetEntry, TierEntitlement
from benefits.selectors import budget_burn, demand_report, differentiation_report
from members.choices import LifecycleStage
from members.models import Tier, TierScheme
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTH, QUARTER, YEAR = EntitlementPeriod.MONTH, EntitlementPeriod.QUARTER, EntitlementPeriod.YEAR


def tier(code: str, scheme: str = "DEFAULT_MADA") -> Tier:
    return Tier.objects.get(scheme__code=scheme, code=code)


def entitle(benefit, tier_code: str, quantity: int, period: str, scheme: str = "DEFAULT_MADA"):
    TierEntitlement.objects.create(
        benefit=benefit, tier=tier(tier_code, scheme), quantity=quantity, period=period
    )


def mada_scheme_id() -> int:
    return TierScheme.objects.get(code="DEFAULT_MADA").pk


def shanghai(day: date, at: time = time(10, 0)) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI)


# --- differentiation -----------------------------------------------------------------------


@pytest.fixture
def catalogue(db):
    budget = BudgetFactory()
    return {
        code: BenefitFactory(code=code, unit_cost_fen=cost, budget=budget)
        for code, cost in [
            ("BIRTHDAY", 5_000),  # 50.00
            ("COFFEE", 1_500),  # 15.00
            ("HEALTH", 30_000),  # 300.00
            ("LOUNGE", 12_000),  # 120.00
        ]
    }


def test_differentiation_report_lists_new_benefits_larger_quantities_and_added_cost(catalogue):
    b = catalogue
    # STANDARD: birthday 1/year                                  = 50.00 a year
    entitle(b["BIRTHDAY"], "STANDARD", 1, YEAR)
    # GOLD: + coffee 2/month (24 × 15) + lounge 1/quarter (4 × 120) = 50 + 360 + 480 = 890.00
    entitle(b["BIRTHDAY"], "GOLD", 1, YEAR)
    entitle(b["COFFEE"], "GOLD", 2, MONTH)
    entitle(b["LOUNGE"], "GOLD", 1, QUARTER)
    # SUNFLOWER: only more of the same: coffee 3/month (540), lounge 2/quarter (960)
    #                                                            = 50 + 540 + 960 = 1,550.00
    entitle(b["BIRTHDAY"], "SUNFLOWER", 1, YEAR)
    entitle(b["COFFEE"], "SUNFLOWER", 3, MONTH)
    entitle(b["LOUNGE"], "SUNFLOWER", 2, QUARTER)
    # PRIVATE: birthday 2/year (100), coffee unchanged (540), lounge 1/month (12 × 120 =
    # 1,440 > 8 × 120), health 1/year (300) — new    = 100 + 540 + 1,440 + 300 = 2,380.00
    entitle(b["BIRTHDAY"], "PRIVATE", 2, YEAR)
    entitle(b["COFFEE"], "PRIVATE", 3, MONTH)
    entitle(b["LOUNGE"], "PRIVATE", 1, MONTH)
    entitle(b["HEALTH"], "PRIVATE", 1, YEAR)

    steps = differentiation_report(scheme_id=mada_scheme_id())

    summary = [
        (
            step.lower.code,
            step.higher.code,
            step.new_benefits,
            step.larger_quantities,
            step.added_cost_per_member_year,
            step.flagged,
        )
        for step in steps
    ]
    assert summary == [
        ("STANDARD", "GOLD", ["COFFEE", "LOUNGE"], [], Decimal("840.00"), False),
        ("GOLD", "SUNFLOWER", [], ["COFFEE", "LOUNGE"], Decimal("660.00"), True),
        ("SUNFLOWER", "PRIVATE", ["HEALTH"], ["BIRTHDAY", "LOUNGE"], Decimal("830.00"), False),
    ]


def test_the_same_yearly_quantity_in_another_period_is_not_larger(catalogue):
    # 3 per quarter = 12 a year = 1 per month
    entitle(catalogue["LOUNGE"], "GOLD", 3, QUARTER)
    entitle(catalogue["LOUNGE"], "SUNFLOWER", 1, MONTH)

    step = differentiation_report(scheme_id=mada_scheme_id())[1]

    assert (step.lower.code, step.higher.code) == ("GOLD", "SUNFLOWER")
    assert step.new_benefits == [] and step.larger_quantities == []
    assert step.added_cost_per_member_year == Decimal("0.00")
    assert step.flagged  # a step that adds nothing is flagged too


def test_differentiation_report_reads_only_the_tiers_of_the_scheme_asked_for(catalogue):
    entitle(catalogue["HEALTH"], "STAR3", 1, YEAR, scheme="DEFAULT_POINTS")

    steps = differentiation_report(scheme_id=mada_scheme_id())

    assert [(s.lower.code, s.higher.code) for s in steps] == [
        ("STANDARD", "GOLD"),
        ("GOLD", "SUNFLOWER"),
        ("SUNFLOWER", "PRIVATE"),
    ]
    assert all(s.new_benefits == [] and s.flagged for s in steps)
    assert all(s.added_cost_per_member_year == Decimal("0.00") for s in steps)


def test_a_deactivated_benefit_adds_nothing_to_a_step(catalogue):
    lounge = catalogue["LOUNGE"]
    lounge.active = False
    lounge.save()
    entitle(catalogue["BIRTHDAY"], "STANDARD", 1, YEAR)
    entitle(catalogue["BIRTHDAY"], "GOLD", 1, YEAR)
    entitle(lounge, "GOLD", 1, QUARTER)

    step = differentiation_report(scheme_id=mada_scheme_id())[0]

    assert (step.lower.code, step.higher.code) == ("STANDARD", "GOLD")
    assert step.new_benefits == []
    assert step.added_cost_per_member_year == Decimal("0.00")
    assert step.flagged


# --- demand --------------------------------------------------------------------------------

START, END = date(2026, 11, 1), date(2026, 11, 30)


@pytest.fixture
def low_demand_20(settings):
    settings.BENEFIT_LOW_DEMAND_PERCENT = 20


def grants(benefit, member, *, granted: int, redeemed: int, on: date = date(2026, 11, 10), **kw):
    """`granted` grants of the benefit to the member on that day, `redeemed` of them used;
    the others stay GRANTED, or take `others=` (EXPIRED, REVOKED)."""
    others = kw.pop("others", GrantStatus.GRANTED)
    rows = [
        BenefitGrant(
            member=member,
            benefit=benefit,
            source=GrantSource.ENTITLEMENT,
            budget=benefit.budget,
            cost_fen=benefit.unit_cost_fen,
            status=GrantStatus.REDEEMED if i < redeemed else others,
            idempotency_key=f"{benefit.code}:{member.pk}:{on}:{i}:{others}",
            expires_on=date(2026, 12, 31),
        )
        for i in range(granted)
    ]
    created = BenefitGrant.objects.bulk_create(rows)
    # granted_at is auto_now_add: move it to the day asked for
    BenefitGrant.objects.filter(pk__in=[g.pk for g in created]).update(granted_at=shanghai(on))


@pytest.fixture
def demand(db, low_demand_20):
    budget = BudgetFactory()
    lounge = BenefitFactory(code="LOUNGE", budget=budget)
    gift = BenefitFactory(code="GIFT", budget=budget)
    edge = BenefitFactory(code="EDGE", budget=budget)
    gold_active = MemberFactory(tier=tier("GOLD"), lifecycle_stage=LifecycleStage.ACTIVE)
    sun_dormant = MemberFactory(tier=tier("SUNFLOWER"), lifecycle_stage=LifecycleStage.DORMANT)
    # LOUNGE: GOLD/ACTIVE 3 of 4 redeemed; SUNFLOWER/DORMANT 2 of 6 (4 expired unused)
    grants(lounge, gold_active, granted=4, redeemed=3)
    grants(lounge, sun_dormant, granted=6, redeemed=2, others=GrantStatus.EXPIRED)
    # GIFT: 1 of 10 redeemed (GOLD/ACTIVE), plus grants outside the window that don't count
    grants(gift, gold_active, granted=10, redeemed=1, on=date(2026, 11, 30))
    grants(gift, gold_active, granted=5, redeemed=5, on=date(2026, 10, 31))
    grants(gift, gold_active, granted=5, redeemed=5, on=date(2026, 12, 1))
    # EDGE: exactly 20 % — at the threshold, not below it
    grants(edge, sun_dormant, granted=5, redeemed=1)
    return {"lounge": lounge, "gift": gift, "edge": edge}


def rows_of(report) -> list[tuple[str, int, int, Decimal, bool]]:
    return [(row.key, row.granted, row.redeemed, row.rate, row.flagged) for row in report]


def test_demand_report_by_benefit_rates_and_flags_below_the_threshold(demand):
    report = demand_report(start=START, end=END)

    assert rows_of(report) == [
        ("EDGE", 5, 1, Decimal("20.0"), False),  # 1/5 = 20.0 %, not below 20
        ("GIFT", 10, 1, Decimal("10.0"), True),  # 1/10; October and December grants left out
        ("LOUNGE", 10, 5, Decimal("50.0"), False),  # (3 + 2) / (4 + 6)
    ]


def test_demand_report_by_tier(demand):
    report = demand_report(start=START, end=END, by="tier")

    assert rows_of(report) == [
        ("EDGE / SUNFLOWER", 5, 1, Decimal("20.0"), False),
        ("GIFT / GOLD", 10, 1, Decimal("10.0"), True),
        ("LOUNGE / GOLD", 4, 3, Decimal("75.0"), False),
        ("LOUNGE / SUNFLOWER", 6, 2, Decimal("33.3"), False),  # 2/6 = 33.33… → 33.3
    ]


def test_demand_report_by_lifecycle_stage(demand):
    report = demand_report(start=START, end=END, by="stage")

    assert rows_of(report) == [
        ("EDGE / DORMANT", 5, 1, Decimal("20.0"), False),
        ("GIFT / ACTIVE", 10, 1, Decimal("10.0"), True),
        ("LOUNGE / ACTIVE", 4, 3, Decimal("75.0"), False),
        ("LOUNGE / DORMANT", 6, 2, Decimal("33.3"), False),
    ]


def test_the_low_demand_threshold_comes_from_the_settings(demand, settings):
    settings.BENEFIT_LOW_DEMAND_PERCENT = 40

    flagged = {row.key for row in demand_report(start=START, end=END) if row.flagged}

    assert flagged == {"EDGE", "GIFT"}  # 20 % and 10 % < 40 %; LOUNGE 50 % is not


def test_the_window_is_of_shanghai_calendar_days(db, low_demand_20):
    benefit = BenefitFactory(code="LOUNGE")
    member = MemberFactory(tier=tier("GOLD"))
    grants(benefit, member, granted=1, redeemed=0)
    # 2026-11-01 00:30 in Shanghai is still 31 October in UTC: it belongs to November
    BenefitGrant.objects.update(granted_at=shanghai(START, time(0, 30)))

    assert rows_of(demand_report(start=START, end=END)) == [("LOUNGE", 1, 0, Decimal("0.0"), True)]
    assert demand_report(start=date(2026, 10, 1), end=date(2026, 10, 31)) == []


def test_a_member_without_a_tier_is_reported_under_a_dash(db, low_demand_20):
    benefit = BenefitFactory(code="LOUNGE")
    grants(benefit, MemberFactory(tier=None), granted=2, redeemed=1)

    assert [row.key for row in demand_report(start=START, end=END, by="tier")] == ["LOUNGE / —"]


def test_a_rate_just_below_the_threshold_is_flagged(db, low_demand_20):
    benefit = BenefitFactory(code="LOUNGE")
    grants(benefit, MemberFactory(tier=tier("GOLD")), granted=401, redeemed=80)

    (row,) = demand_report(start=START, end=END)

    assert Decimal(80) * 100 / Decimal(401) < 20
    assert row.flagged


# --- budget burn ---------------------------------------------------------------------------

TODAY = date(2026, 11, 26)


def entry(budget, day: date, amount_fen: int, at: time = time(10, 0)) -> None:
    kind = BudgetEntryKind.CONSUME if amount_fen > 0 else BudgetEntryKind.RELEASE
    made = BudgetEntry.objects.create(budget=budget, kind=kind, amount_fen=amount_fen, source="t")
    BudgetEntry.objects.filter(pk=made.pk).update(created_at=shanghai(day, at))


def test_budget_burn_gives_daily_consumption_and_the_projected_exhaustion_date(db):
    # Opened 10 days ago (17–26 November), 10,000.00 CNY.
    budget = BudgetFactory(
        period_start=date(2026, 11, 17),
        period_end=date(2026, 12, 31),
        amount_fen=10_000_00,
        consumed_fen=1_134_56,
    )
    entry(budget, date(2026, 11, 17), 300_00)
    entry(budget, date(2026, 11, 20), 500_00)
    entry(budget, date(2026, 11, 20), -100_00, at=time(0, 30))  # 19 Nov 16:30 in UTC
    entry(budget, date(2026, 11, 25), 434_56, at=time(23, 30))

    burn = budget_burn(budget=budget, today=TODAY)

    assert burn.by_day == [
        (date(2026, 11, 17), Decimal("300.00")),
        (date(2026, 11, 20), Decimal("400.00")),  # net of the release, on the Shanghai day
        (date(2026, 11, 25), Decimal("434.56")),
    ]
    # 1,134.56 over the 10 days since the period opened = 113.456 → 113.46 a day
    assert burn.daily_rate == Decimal("113.46")
    # remaining 8,865.44 / 113.46 = 78.13… → 78 whole days → 12 February 2027
    assert burn.projected_exhaustion == date(2027, 2, 12)


def test_budget_burn_uses_the_last_30_days_of_a_longer_period(db):
    budget = BudgetFactory(
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=100_000_00,
        consumed_fen=50_000_00 + 6_000_00,
    )
    entry(budget, date(2026, 6, 1), 50_000_00)  # long ago: in the history, not in the rate
    entry(budget, date(2026, 11, 1), 3_000_00)
    entry(budget, date(2026, 11, 20), 3_000_00)

    burn = budget_burn(budget=budget, today=TODAY)

    assert burn.by_day[0] == (date(2026, 6, 1), Decimal("50000.00"))
    # 6,000.00 over 30 days = 200.00 a day; remaining 44,000.00 / 200 = 220 days
    assert burn.daily_rate == Decimal("200.00")
    assert burn.projected_exhaustion == TODAY + timedelta(days=220) == date(2027, 7, 4)


def test_a_budget_without_consumption_has_no_exhaustion_date(db):
    budget = BudgetFactory(period_start=date(2026, 11, 1), period_end=date(2026, 12, 31))

    burn = budget_burn(budget=budget, today=TODAY)

    assert burn.by_day == [] and burn.daily_rate == Decimal("0.00")
    assert burn.projected_exhaustion is None


def test_a_budget_that_only_gave_money_back_has_no_exhaustion_date(db):
    budget = BudgetFactory(period_start=date(2026, 11, 1), period_end=date(2026, 12, 31))
    entry(budget, date(2026, 11, 25), -50_00)

    burn = budget_burn(budget=budget, today=TODAY)

    assert burn.daily_rate < 0 and burn.projected_exhaustion is None


def test_a_steady_burn_gives_that_daily_rate(db):
    budget = BudgetFactory(
        period_start=date(2026, 9, 1),
        period_end=date(2026, 12, 31),
        amount_fen=100_000_00,
        consumed_fen=87 * 100_00,
    )
    for offset in range(87):  # 100.00 every day from 1 September to 26 November
        entry(budget, date(2026, 9, 1) + timedelta(days=offset), 100_00)

    burn = budget_burn(budget=budget, today=TODAY)

    assert burn.daily_rate == Decimal("100.00")
    # remaining 91,300.00 / 100.00 = 913 days
    assert burn.projected_exhaustion == TODAY + timedelta(days=913)
