"""KPI snapshots (operations/dashboard/snapshot.py): the nightly `kpi_snapshot` step stores
the dashboard's figures for a business date; every figure equals what a direct count of the
seeded bank gives, recomputing a date replaces its snapshot, and the computation runs a fixed
number of queries whatever the number of members.

The business date is Thursday 26 November 2026: "this month" is November, so the tier
migration compares the tier held on 31 October with the tier held on 26 November.
"""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benefits.choices import BudgetEntryKind, EntitlementPeriod, GrantSource, GrantStatus
from benefits.models import BenefitGrant, BudgetEntry, TierEntitlement
from benefits.selectors import budget_burn, demand_report
from campaigns.reports import campaigns_overview
from members.choices import LifecycleStage, TierChangeCause
from members.models import Member, Tier, TierChange
from operations.dashboard import kpi_latest, kpi_series, kpi_snapshot_compute, kpi_table
from operations.nightly import NIGHTLY_STEPS
from portal.choices import JobStatus
from portal.models import JobRun, KpiSnapshot
from tests.factories import BenefitFactory, BudgetFactory, CampaignFactory, MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
BUSINESS_DATE = date(2026, 11, 26)
DORMANT, ACTIVE, AT_RISK, NEW = (
    LifecycleStage.DORMANT,
    LifecycleStage.ACTIVE,
    LifecycleStage.AT_RISK,
    LifecycleStage.NEW,
)


def tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


def at(day: date, clock: time = time(10, 0)) -> datetime:
    return datetime.combine(day, clock, tzinfo=SHANGHAI)


def move(member, old: str | None, new: str, day: date, cause=TierChangeCause.UPGRADE) -> None:
    TierChange.objects.create(
        member=member,
        from_tier=tier(old) if old else None,
        to_tier=tier(new),
        cause=cause,
        business_date=day,
    )


def spend(budget, day: date, amount_fen: int, clock: time = time(10, 0)) -> None:
    """A ledger entry of the budget on that Shanghai day (created_at is auto_now_add)."""
    kind = BudgetEntryKind.CONSUME if amount_fen > 0 else BudgetEntryKind.RELEASE
    entry = BudgetEntry.objects.create(budget=budget, kind=kind, amount_fen=amount_fen, source="t")
    BudgetEntry.objects.filter(pk=entry.pk).update(created_at=at(day, clock))


def grant(benefit, member, *, redeemed: bool, on: date, key: str) -> None:
    made = BenefitGrant.objects.create(
        member=member,
        benefit=benefit,
        source=GrantSource.ENTITLEMENT,
        budget=benefit.budget,
        cost_fen=benefit.unit_cost_fen,
        status=GrantStatus.REDEEMED if redeemed else GrantStatus.GRANTED,
        idempotency_key=key,
        expires_on=date(2026, 12, 31),
    )
    BenefitGrant.objects.filter(pk=made.pk).update(granted_at=at(on))


def seed_small_bank(org) -> dict:
    """Six customers of two branches, their November tier changes, a budget burning 100.00
    a day, a campaign, and two benefits with grants.

    | member | branch | tier now  | stage   | November changes                        |
    | M1     | B01S1  | GOLD      | ACTIVE  | STANDARD → GOLD (upgrade, 2 Nov)        |
    | M2     | B01S1  | STANDARD  | DORMANT | —                                       |
    | M3     | B02S1  | GOLD      | DORMANT | SUNFLOWER → PRIVATE → GOLD (2, 20 Nov)  |
    | M4     | B02S1  | SUNFLOWER | AT_RISK | — (GOLD → SUNFLOWER on 2 October)       |
    | M5     | B02S1  | none      | NEW     | —                                       |
    | M6     | B01S1  | STANDARD  | NEW     | first graded STANDARD (3 Nov)           |
    """
    people = {}
    for no, branch, code, stage in [
        ("M1", "B01S1", "GOLD", ACTIVE),
        ("M2", "B01S1", "STANDARD", DORMANT),
        ("M3", "B02S1", "GOLD", DORMANT),
        ("M4", "B02S1", "SUNFLOWER", AT_RISK),
        ("M5", "B02S1", None, NEW),
        ("M6", "B01S1", "STANDARD", NEW),
    ]:
        people[no] = MemberFactory(
            member_no=f"KPI{no}",
            branch=org[branch],
            tier=tier(code) if code else None,
            lifecycle_stage=stage,
        )
    move(people["M1"], "STANDARD", "GOLD", date(2026, 11, 2))
    move(people["M3"], "SUNFLOWER", "PRIVATE", date(2026, 11, 2), TierChangeCause.OVERRIDE)
    move(people["M3"], "PRIVATE", "GOLD", date(2026, 11, 20), TierChangeCause.OVERRIDE_EXPIRY)
    move(people["M4"], "GOLD", "SUNFLOWER", date(2026, 10, 2))
    move(people["M6"], None, "STANDARD", date(2026, 11, 3), TierChangeCause.INITIAL)
    move(people["M2"], "STANDARD", "GOLD", date(2026, 11, 27))  # after the business date

    # 5,000.00 opened on 1 November, 100.00 consumed every day up to the business date
    budget = BudgetFactory(
        code="BUD-NOV",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 12, 31),
        amount_fen=5_000_00,
        consumed_fen=26 * 100_00,
    )
    for offset in range(26):
        spend(budget, date(2026, 11, 1) + timedelta(days=offset), 100_00)
    BudgetFactory(  # closed before the business date: not on the dashboard
        code="BUD-OLD", period_start=date(2026, 1, 1), period_end=date(2026, 6, 30)
    )
    campaign = CampaignFactory(
        code="C-KPI", budget=budget, starts_on=date(2026, 11, 1), ends_on=date(2026, 12, 31)
    )

    lounge = BenefitFactory(code="LOUNGE", budget=budget)
    gift = BenefitFactory(code="GIFT", budget=budget)
    TierEntitlement.objects.create(
        benefit=lounge, tier=tier("GOLD"), quantity=1, period=EntitlementPeriod.MONTH
    )
    # LOUNGE: 2 of 3 redeemed (M1 GOLD 2/2, M3 GOLD 0/1); GIFT: 0 of 2 (low demand)
    grant(lounge, people["M1"], redeemed=True, on=date(2026, 11, 2), key="l1")
    grant(lounge, people["M1"], redeemed=True, on=date(2026, 11, 3), key="l2")
    grant(lounge, people["M3"], redeemed=False, on=date(2026, 11, 3), key="l3")
    grant(gift, people["M2"], redeemed=False, on=date(2026, 11, 5), key="g1")
    grant(gift, people["M2"], redeemed=False, on=date(2026, 11, 6), key="g2")
    grant(gift, people["M2"], redeemed=False, on=date(2026, 6, 6), key="g-old")  # too old
    return {"members": people, "budget": budget, "campaign": campaign}


@pytest.fixture
def bank(org):
    return seed_small_bank(org)


# --- the figures equal direct counts ---------------------------------------------------------


def test_tier_distribution_equals_a_direct_count_per_tier(bank):
    data = kpi_snapshot_compute(business_date=BUSINESS_DATE).data

    shown = {row["code"]: row["members"] for row in data["tiers"]}
    for code in ("STANDARD", "GOLD", "SUNFLOWER", "PRIVATE"):
        assert shown[code] == Member.objects.filter(tier__code=code).count(), code
    assert shown[""] == Member.objects.filter(tier=None).count() == 1
    assert shown == {"STANDARD": 2, "GOLD": 2, "SUNFLOWER": 1, "PRIVATE": 0, "": 1}
    assert [row["code"] for row in data["tiers"]][:4] == [
        "STANDARD",
        "GOLD",
        "SUNFLOWER",
        "PRIVATE",
    ]
    assert data["members"] == Member.objects.count() == 6


def test_dormant_and_every_lifecycle_stage_equal_a_direct_count(bank):
    data = kpi_snapshot_compute(business_date=BUSINESS_DATE).data

    assert data["lifecycle"]["DORMANT"] == Member.objects.filter(lifecycle_stage=DORMANT).count()
    assert data["lifecycle"] == {
        stage: Member.objects.filter(lifecycle_stage=stage).count()
        for stage in LifecycleStage.values
    }
    assert data["lifecycle"]["DORMANT"] == 2


def test_tiers_are_broken_down_by_top_level_branch(bank):
    snapshot = kpi_snapshot_compute(business_date=BUSINESS_DATE)

    table = kpi_table(chart="tiers-by-branch", snapshot=snapshot)

    keys = [column.key for column in table.columns]
    rows = {row[0]: dict(zip(keys, row, strict=True)) for row in table.rows}
    assert set(rows) == {"B01", "B02"}  # the sub-branches roll up into their branch
    assert (
        rows["B01"]["GOLD"]
        == Member.objects.filter(branch__path__startswith="HO/B01/", tier__code="GOLD").count()
        == 1
    )
    assert (rows["B01"]["STANDARD"], rows["B01"]["total"]) == (2, 3)
    assert (rows["B02"]["not_graded"], rows["B02"]["total"]) == (1, 3)


def test_tier_migration_compares_the_end_of_last_month_with_the_business_date(bank):
    migration = kpi_snapshot_compute(business_date=BUSINESS_DATE).data["migration"]

    cells = {(old, new): n for old, new, n in migration["cells"]}
    assert cells == {
        ("STANDARD", "GOLD"): 1,  # M1 upgraded
        ("SUNFLOWER", "GOLD"): 1,  # M3: first change's from, last change's to
        ("", "STANDARD"): 1,  # M6 graded for the first time
        ("STANDARD", "STANDARD"): 1,  # M2: its 27 November change is after the date
        ("SUNFLOWER", "SUNFLOWER"): 1,  # M4 moved in October, not this month
        ("", ""): 1,  # M5 never graded
    }
    assert sum(cells.values()) == Member.objects.count()
    assert (migration["upgraded"], migration["downgraded"]) == (1, 1)
    assert (migration["first_graded"], migration["unchanged"]) == (1, 3)
    assert migration["causes"] == {
        "UPGRADE": 1,
        "OVERRIDE": 1,
        "OVERRIDE_EXPIRY": 1,
        "INITIAL": 1,
    }


def test_budget_burn_down_has_the_daily_series_and_the_projected_exhaustion_date(bank):
    (budget,) = kpi_snapshot_compute(business_date=BUSINESS_DATE).data["budgets"]

    assert budget["code"] == "BUD-NOV"  # the budget closed in June is left out
    assert budget["by_day"][0] == ["2026-11-01", "100.00"]
    assert len(budget["by_day"]) == 26
    assert (budget["amount"], budget["consumed"], budget["remaining"]) == (
        "5000.00",
        "2600.00",
        "2400.00",
    )
    assert budget["consumed_percent"] == "52.0"
    # 2,600.00 over the 26 days since the period opened = 100.00 a day;
    # 2,400.00 left / 100.00 = 24 days after 26 November
    assert budget["daily_rate"] == "100.00"
    assert budget["projected_exhaustion"] == "2026-12-20"
    assert budget["runs_out_early"] is True  # before the period ends on 31 December
    # the same rule as the budget report
    burn = budget_burn(budget=bank["budget"], today=BUSINESS_DATE)
    assert Decimal(budget["daily_rate"]) == burn.daily_rate
    assert date.fromisoformat(budget["projected_exhaustion"]) == burn.projected_exhaustion


def test_budget_consumption_after_the_business_date_is_not_in_its_snapshot(bank):
    spend(bank["budget"], date(2026, 11, 27), 1_000_00, clock=time(0, 5))

    (budget,) = kpi_snapshot_compute(business_date=BUSINESS_DATE).data["budgets"]

    assert budget["consumed"] == "2600.00"
    assert budget["by_day"][-1] == ["2026-11-26", "100.00"]


def test_money_is_stored_as_decimal_strings_never_floats(bank):
    data = kpi_snapshot_compute(business_date=BUSINESS_DATE).data

    def floats(value):
        if isinstance(value, dict):
            return [f for v in value.values() for f in floats(v)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v)]
        return [value] if isinstance(value, float) else []

    assert floats(data) == []
    assert data["campaigns"][0]["total_cost"] == "0.00"


def test_demand_and_differentiation_follow_the_benefit_reports(bank):
    data = kpi_snapshot_compute(business_date=BUSINESS_DATE).data

    by_benefit = {row["code"]: row for row in data["demand"]["benefits"]}
    report = demand_report(start=date(2026, 8, 29), end=BUSINESS_DATE)  # the last 90 days
    assert {code: (r["granted"], r["redeemed"]) for code, r in by_benefit.items()} == {
        row.key: (row.granted, row.redeemed) for row in report
    }
    assert (by_benefit["LOUNGE"]["rate"], by_benefit["LOUNGE"]["flagged"]) == ("66.7", False)
    assert (by_benefit["GIFT"]["granted"], by_benefit["GIFT"]["flagged"]) == (2, True)
    assert {(r["benefit"], r["tier"]): r["redeemed"] for r in data["demand"]["by_tier"]} == {
        ("GIFT", "STANDARD"): 0,
        ("LOUNGE", "GOLD"): 2,
    }
    first_step = data["differentiation"]["steps"][0]
    assert (first_step["lower"], first_step["higher"]) == ("STANDARD", "GOLD")
    assert first_step["new_benefits"] == ["LOUNGE"]
    assert first_step["flagged"] is False
    assert data["differentiation"]["steps"][1]["flagged"] is True  # GOLD → SUNFLOWER adds nothing


def test_campaign_effectiveness_is_the_campaign_report(bank):
    (row,) = kpi_snapshot_compute(business_date=BUSINESS_DATE).data["campaigns"]

    (expected,) = campaigns_overview()
    assert row["code"] == expected["code"] == "C-KPI"
    assert row["participants"] == expected["participants"]
    assert row["total_cost"] == str(expected["total_cost"])


# --- idempotence, trend, nightly chain ----------------------------------------------------------


def test_recomputing_a_date_keeps_one_snapshot_with_the_same_figures(bank):
    first = kpi_snapshot_compute(business_date=BUSINESS_DATE)

    again = kpi_snapshot_compute(business_date=BUSINESS_DATE)

    assert KpiSnapshot.objects.count() == 1
    assert again.pk == first.pk
    assert KpiSnapshot.objects.get().data == first.data


def test_recomputing_a_date_replaces_its_figures(bank):
    kpi_snapshot_compute(business_date=BUSINESS_DATE)
    Member.objects.filter(member_no="KPIM1").update(lifecycle_stage=DORMANT)

    kpi_snapshot_compute(business_date=BUSINESS_DATE)

    assert KpiSnapshot.objects.count() == 1
    assert kpi_latest().data["lifecycle"]["DORMANT"] == 3


def test_series_gives_the_dormant_count_of_the_last_snapshots_oldest_first(bank):
    # 2 dormant members; one more falls dormant on each of 23, 24 and 25 November
    for day, falls_dormant in [(23, "KPIM4"), (24, "KPIM5"), (25, "KPIM6"), (26, None)]:
        Member.objects.filter(member_no=falls_dormant).update(lifecycle_stage=DORMANT)
        kpi_snapshot_compute(business_date=date(2026, 11, day))

    series = kpi_series(days=3)

    assert [point.business_date for point in series] == [
        date(2026, 11, 24),
        date(2026, 11, 25),
        date(2026, 11, 26),
    ]
    assert [point.dormant for point in series] == [4, 5, 5]
    assert kpi_latest().business_date == BUSINESS_DATE
    assert [p.dormant for p in kpi_series(days=10, until=date(2026, 11, 24))] == [3, 4]


def test_the_nightly_chain_ends_with_the_kpi_snapshot_step(org):
    for no in ("N1", "N2"):
        MemberFactory(member_no=no, branch=org["B01S1"])
    out = io.StringIO()

    call_command("run_nightly", "--date", "2026-11-26", stdout=out, stderr=io.StringIO())
    call_command("run_nightly", "--date", "2026-11-26", stdout=out, stderr=io.StringIO())

    assert NIGHTLY_STEPS[-1].kind == "kpi_snapshot"
    assert [s.kind for s in NIGHTLY_STEPS].index("budget_alerts") == len(NIGHTLY_STEPS) - 2
    runs = JobRun.objects.filter(kind="kpi_snapshot", business_date=BUSINESS_DATE)
    assert runs.count() == 2
    assert {run.status for run in runs} == {JobStatus.SUCCEEDED}
    assert runs.first().counts["members"] == 2
    assert "kpi_snapshot: SUCCEEDED members=2" in out.getvalue()
    (snapshot,) = KpiSnapshot.objects.all()
    assert snapshot.business_date == BUSINESS_DATE
    assert snapshot.data["tiers"][0] == {
        "code": "STANDARD",
        "name": "普卡",
        "name_en": "Standard",
        "rank": 0,
        "active": True,
        "members": 2,  # graded by the tier recompute earlier in the same chain
    }


# --- set-based: the number of queries does not grow with the bank ---------------------------------


def grow_bank(org, size: int) -> None:
    """`size` more members, tier changes, budgets, campaigns and grants."""
    tiers = list(Tier.objects.filter(scheme__code="DEFAULT_MADA").order_by("rank"))
    benefit = BenefitFactory()
    for n in range(size):
        member = MemberFactory(
            branch=org["B01S1" if n % 2 else "B02S1"],
            tier=tiers[n % len(tiers)],
            lifecycle_stage=LifecycleStage.values[n % len(LifecycleStage.values)],
        )
        move(member, None, tiers[n % len(tiers)].code, date(2026, 11, 2 + n % 20))
        grant(benefit, member, redeemed=n % 3 == 0, on=date(2026, 11, 10), key=f"grow{member.pk}")
        budget = BudgetFactory(period_start=date(2026, 11, 1), period_end=date(2026, 12, 31))
        spend(budget, date(2026, 11, 1 + n % 25), 10_00)
        CampaignFactory(budget=budget, starts_on=date(2026, 11, 1), ends_on=date(2026, 12, 31))


def queries_to_compute(business_date: date) -> int:
    """Queries of a first computation for the date (an INSERT; a recompute UPDATEs)."""
    with CaptureQueriesContext(connection) as captured:
        kpi_snapshot_compute(business_date=business_date)
    return len(captured.captured_queries)


def test_the_snapshot_runs_the_same_number_of_queries_for_3_and_for_30_of_everything(org):
    grow_bank(org, 3)
    small = queries_to_compute(BUSINESS_DATE - timedelta(days=1))
    grow_bank(org, 27)

    large = queries_to_compute(BUSINESS_DATE)

    assert Member.objects.count() == 30
    assert large == small
    assert small <= 24  # 15 reads and the write, with their savepoints
