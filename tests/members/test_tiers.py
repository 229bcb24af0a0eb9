"""The tier engine against API.md ("Defaults in a fresh database", the member centre).

Monthly data is built the way the bank delivers it: daily assets rows imported through the
real feed service (`import_csv`), written with `held(...)` so that each arrangement reads
like the bank's rule it exercises ("M1 holds 1,000,000.00 DEMAND from day 16 of 2026-10").
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction

from members.choices import MemberApproval, SchemeStatus, TierChangeCause
from members.models import (
    Member,
    MemberMonthlyStat,
    PointsIndicator,
    Tier,
    TierChange,
    TierOverride,
    TierScheme,
)
from members.selectors import member_tier_status
from members.services import (
    TierRuleError,
    tier_override_request,
    tier_recompute,
    tier_scheme_request_activation,
    tier_scheme_switch_due,
    tier_simulate,
)
from members.tiers import TierPlan, tier_explain
from portal.choices import Role
from portal.clock import SHANGHAI, today_in_shanghai
from portal.errors import NotAllowed
from portal.models import JobRun
from portal.periods import days_in
from tests.approvals import decide_pending
from tests.factories import MemberFactory
from tests.schemes import scheme_decide_entitlements, scheme_switch

pytestmark = pytest.mark.django_db

ASSETS_HEADER = "member_no,date,category,balance"
MEMBERS_HEADER = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk"
)
FINANCIAL = ["DEMAND", "TIME", "WEALTH", "FUND", "INSURANCE", "BOND"]


# --- arranging monthly data through the assets feed ----------------------------------------


@dataclass(frozen=True)
class Holding:
    """`member_no` holds `balance` CNY in `category` on every day from `first` to `last`."""

    member_no: str
    balance: str
    category: str
    first: date
    last: date

    def rows(self):
        day = self.first
        while day <= self.last:
            yield f"{self.member_no},{day.isoformat()},{self.category},{self.balance}"
            day += timedelta(days=1)


def held(
    member_no: str,
    balance: str,
    category: str = "DEMAND",
    *,
    month: str,
    days: tuple[int, int] | None = None,
) -> Holding:
    """`member_no` holds `balance` in `category` from day d1 to day d2 of `month` ("2026-10");
    every day of the month when `days` is not given."""
    start = date.fromisoformat(f"{month}-01")
    first_day, last_day = days or (1, days_in(start))
    return Holding(
        member_no, balance, category, start.replace(day=first_day), start.replace(day=last_day)
    )


def held_months(member_no: str, balance: str, *months: str, category: str = "DEMAND"):
    return [held(member_no, balance, category, month=month) for month in months]


@pytest.fixture
def load_assets(import_csv):
    """Import the holdings as one assets feed file; every row must be accepted."""
    files = iter(range(1, 10_000))

    def load(*holdings: Holding | list[Holding]):
        flat: list[Holding] = []
        for item in holdings:
            flat.extend(item if isinstance(item, list) else [item])
        lines = [ASSETS_HEADER, *(row for holding in flat for row in holding.rows())]
        batch = import_csv("assets", "\n".join(lines) + "\n", name=f"assets_{next(files)}.csv")
        assert batch.rejected == 0, list(batch.rejections.values_list("line_no", "reason"))
        return batch

    return load


def member_row(member_no: str, *, credit_risk: int = 0, branch: str = "B01S1") -> str:
    digits = "".join(ch for ch in member_no if ch.isdigit()).rjust(6, "0")
    return (
        f"{member_no},客户{member_no},138{digits[-8:].rjust(8, '0')},"
        f"110101199001{digits[-6:]},,2024-01-02,{branch},,{credit_risk}"
    )


@pytest.fixture
def load_members(import_csv):
    def load(*rows: str):
        batch = import_csv("members", "\n".join([MEMBERS_HEADER, *rows]) + "\n", name="m.csv")
        assert batch.rejected == 0, list(batch.rejections.values_list("line_no", "reason"))
        return batch

    return load


# --- reading the outcome ----------------------------------------------------------------------


def grade(*business_dates: str) -> dict:
    """Run the tier recompute for each business date in turn; the last run's counts."""
    counts: dict = {}
    for day in business_dates:
        counts = tier_recompute(business_date=date.fromisoformat(day))
    return counts


def member(member_no: str) -> Member:
    return Member.objects.select_related("tier", "computed_tier").get(member_no=member_no)


def tier_of(member_no: str) -> str | None:
    found = member(member_no)
    return found.tier.code if found.tier else None


def history(member_no: str) -> list[tuple]:
    """(from, to, cause, business date) of every TierChange of the member, oldest first."""
    return [
        (
            change.from_tier.code if change.from_tier else None,
            change.to_tier.code,
            change.cause,
            change.business_date.isoformat(),
        )
        for change in TierChange.objects.filter(member__member_no=member_no)
        .select_related("from_tier", "to_tier")
        .order_by("business_date", "id")
    ]


STATE_FIELDS = (
    "member_no",
    "tier__code",
    "computed_tier__code",
    "tier_since",
    "computed_since",
    "tier_months_below",
    "basis__value",
    "updated_at",
)


def member_states() -> dict[str, dict]:
    return {row["member_no"]: row for row in Member.objects.values(*STATE_FIELDS)}


def change_rows() -> list[tuple]:
    return sorted(
        TierChange.objects.values_list(
            "member__member_no",
            "from_tier__code",
            "to_tier__code",
            "cause",
            "business_date",
            "basis",
            "months_below",
        ),
        key=lambda row: (row[0], row[4], str(row[1]), row[2]),
    )


def mada_scheme() -> TierScheme:
    return TierScheme.objects.get(code="DEFAULT_MADA")


def points_scheme() -> TierScheme:
    return TierScheme.objects.get(code="DEFAULT_POINTS")


def fen(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


# --- defaults in a fresh database ---------------------------------------------------------


def test_fresh_database_has_default_mada_scheme_active_as_api_md_states():
    scheme = mada_scheme()

    assert (scheme.method, scheme.status) == ("MADA", SchemeStatus.ACTIVE)
    assert (scheme.window_months, scheme.downgrade_after_months) == (1, 3)
    assert scheme.max_downgrade_steps is None
    assert list(TierScheme.objects.filter(status=SchemeStatus.ACTIVE)) == [scheme]
    assert list(scheme.tiers.order_by("rank").values_list("code", "name", "name_en", "rank")) == [
        ("STANDARD", "普卡", "Standard", 0),
        ("GOLD", "金卡", "Gold", 1),
        ("SUNFLOWER", "金葵花", "Sunflower", 2),
        ("PRIVATE", "私人银行", "Private banking", 3),
    ]
    thresholds = [tier.threshold_display for tier in scheme.tiers.order_by("rank")]
    assert [str(value) for value in thresholds] == [
        "0.00",
        "50000.00",
        "500000.00",
        "10000000.00",
    ]


def test_fresh_database_has_default_points_scheme_as_a_draft():
    scheme = points_scheme()

    assert (scheme.method, scheme.status) == ("POINTS", SchemeStatus.DRAFT)
    assert (scheme.window_months, scheme.downgrade_after_months) == (1, 3)
    assert list(scheme.tiers.order_by("rank").values_list("code", "name", "rank", "threshold")) == [
        ("NONE", "无星级", 0, 0),
        ("PRE", "准星级", 1, 1),  # "> 0" points; points are whole numbers
        ("STAR3", "三星", 2, 50),
        ("STAR4", "四星", 3, 500),
        ("STAR5", "五星", 4, 2_000),
        ("STAR6", "六星", 5, 10_000),
        ("STAR7", "七星", 6, 80_000),
    ]
    ten_thousand_cny = 1_000_000  # fen
    assert sorted(
        scheme.indicators.values_list("kind", "category", "points", "per_unit", "cap")
    ) == sorted(
        [
            ("CATEGORY_BALANCE", "DEMAND", 135, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "TIME", 100, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "WEALTH", 100, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "FUND", 100, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "INSURANCE", 100, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "BOND", 100, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "MORTGAGE", 100, ten_thousand_cny, None),
            ("CATEGORY_BALANCE", "LOAN", 200, ten_thousand_cny, None),
            ("FUND_PURCHASE", "", 200, ten_thousand_cny, None),
        ]
    )


# --- MADA ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deposit_day", "expected", "mada"),
    [
        # 16 days of 1,000,000.00 over 31 days = 516,129.03 ≥ 500,000.00
        (16, "SUNFLOWER", "516129.03"),
        # 15 days = 483,870.967… shown to the cent, rounded down (as graded): 483,870.96
        (17, "GOLD", "483870.96"),
    ],
)
def test_mada_of_october_divides_by_31_days(load_assets, deposit_day, expected, mada):
    MemberFactory(member_no="M1")
    load_assets(held("M1", "1000000.00", month="2026-10", days=(deposit_day, 31)))

    grade("2026-11-02")

    assert tier_of("M1") == expected
    assert member("M1").tier_basis == fen(mada)


@pytest.mark.parametrize(
    ("balance", "expected", "mada"),
    [
        # 15 of September's 30 days: exactly half the balance
        ("1000000.00", "SUNFLOWER", "500000.00"),  # exactly on the threshold
        ("999999.98", "GOLD", "499999.99"),  # one cent under it
        ("100000.00", "GOLD", "50000.00"),
        ("99999.98", "STANDARD", "49999.99"),
    ],
)
def test_mada_of_september_divides_by_30_days(load_assets, balance, expected, mada):
    MemberFactory(member_no="M1")
    load_assets(held("M1", balance, month="2026-09", days=(16, 30)))

    grade("2026-10-02")

    assert tier_of("M1") == expected
    assert member("M1").tier_basis == fen(mada)


@pytest.mark.parametrize(
    ("balance", "expected"),
    [
        ("49999.99", "STANDARD"),
        ("50000.00", "GOLD"),
        ("499999.99", "GOLD"),
        ("500000.00", "SUNFLOWER"),
        ("9999999.99", "SUNFLOWER"),
        ("10000000.00", "PRIVATE"),
    ],
)
def test_thresholds_are_inclusive_lower_bounds(load_assets, balance, expected):
    MemberFactory(member_no="M1")
    load_assets(held("M1", balance, month="2026-10"))

    grade("2026-11-02")

    assert tier_of("M1") == expected
    assert member("M1").tier_basis == fen(balance)


def test_mortgage_and_loan_are_not_financial_assets(load_assets):
    MemberFactory(member_no="M1")
    MemberFactory(member_no="M2")
    load_assets(
        held("M1", "40000.00", "DEMAND", month="2026-10"),
        held("M1", "5000000.00", "MORTGAGE", month="2026-10"),
        held("M1", "20000000.00", "LOAN", month="2026-10"),
        # every financial category counts: 6 × 10,000.00 = 60,000.00
        *[held("M2", "10000.00", category, month="2026-10") for category in FINANCIAL],
    )

    grade("2026-11-02")

    assert (tier_of("M1"), member("M1").tier_basis) == ("STANDARD", fen("40000.00"))
    assert (tier_of("M2"), member("M2").tier_basis) == ("GOLD", fen("60000.00"))


def test_a_day_without_a_feed_row_counts_as_zero(load_assets):
    MemberFactory(member_no="ODD")
    MemberFactory(member_no="EVEN")
    # 100,000.00 on 15 of September's 30 days is exactly 50,000.00; on 14 days it is not
    load_assets(
        [held("ODD", "100000.00", month="2026-09", days=(d, d)) for d in range(1, 30, 2)],
        [held("EVEN", "100000.00", month="2026-09", days=(d, d)) for d in range(2, 30, 2)],
    )

    grade("2026-10-02")

    assert (tier_of("ODD"), member("ODD").tier_basis) == ("GOLD", fen("50000.00"))
    assert (tier_of("EVEN"), member("EVEN").tier_basis) == ("STANDARD", fen("46666.66"))


def test_window_of_three_months_averages_the_monthly_madas(load_assets):
    TierScheme.objects.filter(code="DEFAULT_MADA").update(window_months=3)
    for no in ("ON", "UNDER", "ONE_MONTH"):
        MemberFactory(member_no=no)
    load_assets(
        held("ON", "30000.00", month="2026-07"),
        held_months("ON", "60000.00", "2026-08", "2026-09"),
        held("UNDER", "29999.97", month="2026-07"),
        held_months("UNDER", "60000.00", "2026-08", "2026-09"),
        # only the latest month has assets: the two months before count as 0
        held("ONE_MONTH", "150000.00", month="2026-09"),
    )

    grade("2026-10-02")

    # (30,000.00 + 60,000.00 + 60,000.00) / 3 = 50,000.00
    assert tier_of("ON") == "GOLD"
    # (29,999.97 + 60,000.00 + 60,000.00) / 3 = 49,999.99
    assert tier_of("UNDER") == "STANDARD"
    assert tier_of("ONE_MONTH") == "GOLD"


def test_window_basis_is_stored_in_whole_fen_as_tier_explain_computes_it(load_assets):
    TierScheme.objects.filter(code="DEFAULT_MADA").update(window_months=3)
    for no in ("ON", "UNDER", "NOTHING"):
        MemberFactory(member_no=no)
    load_assets(
        held("ON", "30000.00", month="2026-07"),
        held_months("ON", "60000.00", "2026-08", "2026-09"),
        held("UNDER", "29999.97", month="2026-07"),
        held_months("UNDER", "60000.00", "2026-08", "2026-09"),
    )

    grade("2026-10-02")

    plan = TierPlan.active(date(2026, 10, 2))
    stored = {no: member(no).tier_basis for no in ("ON", "UNDER", "NOTHING")}
    explained = {no: tier_explain(member=member(no), plan=plan).basis for no in stored}
    assert explained == {"ON": fen("50000.00"), "UNDER": fen("49999.99"), "NOTHING": 0}
    assert stored == explained


def test_new_member_without_data_is_standard():
    MemberFactory(member_no="NEW")

    counts = grade("2026-11-02")

    found = member("NEW")
    assert (found.tier.code, found.computed_tier.code) == ("STANDARD", "STANDARD")
    assert (found.tier_basis, found.tier_months_below) == (0, 0)
    assert found.tier_since == found.computed_since == date(2026, 11, 2)
    assert history("NEW") == [(None, "STANDARD", TierChangeCause.INITIAL, "2026-11-02")]
    assert counts["first_graded"] == 1


# --- upgrade and downgrade protection --------------------------------------------------------


def test_upgrade_at_the_first_recompute_whose_basis_qualifies(load_assets):
    MemberFactory(member_no="UP")
    MemberFactory(member_no="JUMP")
    load_assets(
        held("UP", "20000.00", month="2026-05"),
        held("UP", "50000.00", month="2026-06"),
        held("JUMP", "20000.00", month="2026-05"),
        held("JUMP", "600000.00", month="2026-06"),
    )

    grade("2026-06-02")
    assert tier_of("UP") == tier_of("JUMP") == "STANDARD"

    counts = grade("2026-07-02")

    assert tier_of("UP") == "GOLD"
    assert tier_of("JUMP") == "SUNFLOWER"  # straight to the tier the basis supports
    assert member("UP").tier_since == date(2026, 7, 2)
    assert history("UP") == [
        (None, "STANDARD", TierChangeCause.INITIAL, "2026-06-02"),
        ("STANDARD", "GOLD", TierChangeCause.UPGRADE, "2026-07-02"),
    ]
    assert history("JUMP")[-1] == ("STANDARD", "SUNFLOWER", "UPGRADE", "2026-07-02")
    assert counts["upgraded"] == 2


def test_downgrade_waits_three_complete_months_below(load_assets):
    MemberFactory(member_no="M1")
    load_assets(
        held("M1", "60000.00", month="2026-02"),
        held_months("M1", "40000.00", "2026-03", "2026-04", "2026-05"),
    )

    grade("2026-03-02")
    assert (tier_of("M1"), member("M1").tier_months_below) == ("GOLD", 0)
    grade("2026-04-02")
    assert (tier_of("M1"), member("M1").tier_months_below) == ("GOLD", 1)
    counts = grade("2026-05-02")
    assert (tier_of("M1"), member("M1").tier_months_below) == ("GOLD", 2)
    assert counts["held_by_protection"] == 1

    counts = grade("2026-06-02")

    assert (tier_of("M1"), member("M1").tier_months_below) == ("STANDARD", 0)
    assert member("M1").tier_since == date(2026, 6, 2)
    assert counts["downgraded"] == 1
    change = TierChange.objects.get(member__member_no="M1", cause=TierChangeCause.DOWNGRADE)
    assert (change.from_tier.code, change.to_tier.code) == ("GOLD", "STANDARD")
    assert (change.business_date, change.basis, change.months_below) == (
        date(2026, 6, 2),
        fen("40000.00"),
        3,
    )


def test_downgrade_moves_to_the_tier_the_latest_month_supports(load_assets):
    MemberFactory(member_no="TO_STANDARD")
    MemberFactory(member_no="TO_GOLD")
    load_assets(
        held("TO_STANDARD", "600000.00", month="2026-02"),
        held_months("TO_STANDARD", "100000.00", "2026-03", "2026-04"),
        held("TO_STANDARD", "10000.00", month="2026-05"),
        held("TO_GOLD", "600000.00", month="2026-02"),
        held_months("TO_GOLD", "10000.00", "2026-03", "2026-04"),
        held("TO_GOLD", "100000.00", month="2026-05"),
    )

    grade("2026-03-02", "2026-04-02", "2026-05-02")
    assert tier_of("TO_STANDARD") == tier_of("TO_GOLD") == "SUNFLOWER"

    grade("2026-06-02")

    assert tier_of("TO_STANDARD") == "STANDARD"  # past GOLD, in one move
    assert tier_of("TO_GOLD") == "GOLD"
    assert history("TO_STANDARD")[-1] == ("SUNFLOWER", "STANDARD", "DOWNGRADE", "2026-06-02")


def test_a_qualifying_month_resets_the_months_below(load_assets):
    MemberFactory(member_no="M1")
    load_assets(
        held("M1", "60000.00", month="2026-02"),
        held_months("M1", "40000.00", "2026-03", "2026-04"),
        held("M1", "50000.00", month="2026-05"),  # exactly the GOLD threshold: qualifies
        held_months("M1", "40000.00", "2026-06", "2026-07", "2026-08"),
    )
    below = {}

    for day in ("2026-03-02", "2026-04-02", "2026-05-02", "2026-06-02", "2026-07-02"):
        grade(day)
        below[day] = (tier_of("M1"), member("M1").tier_months_below)
    grade("2026-08-02")
    after_two_more = (tier_of("M1"), member("M1").tier_months_below)
    grade("2026-09-02")

    assert below == {
        "2026-03-02": ("GOLD", 0),
        "2026-04-02": ("GOLD", 1),
        "2026-05-02": ("GOLD", 2),
        "2026-06-02": ("GOLD", 0),
        "2026-07-02": ("GOLD", 1),
    }
    assert after_two_more == ("GOLD", 2)
    assert tier_of("M1") == "STANDARD"
    assert [cause for *_, cause, _day in history("M1")] == ["INITIAL", "DOWNGRADE"]


def test_max_downgrade_steps_limits_a_fall_and_protection_restarts(load_assets):
    TierScheme.objects.filter(code="DEFAULT_MADA").update(max_downgrade_steps=1)
    MemberFactory(member_no="M1")
    load_assets(
        held("M1", "10000000.00", month="2026-01"),
        held_months(
            "M1", "20000.00", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07"
        ),
    )
    seen = {}

    for day in (
        "2026-02-02",
        "2026-03-02",
        "2026-04-02",
        "2026-05-02",
        "2026-06-02",
        "2026-07-02",
        "2026-08-02",
    ):
        grade(day)
        seen[day] = (tier_of("M1"), member("M1").tier_months_below)

    assert seen == {
        "2026-02-02": ("PRIVATE", 0),
        "2026-03-02": ("PRIVATE", 1),
        "2026-04-02": ("PRIVATE", 2),
        "2026-05-02": ("SUNFLOWER", 0),  # one step only, although the basis supports STANDARD
        "2026-06-02": ("SUNFLOWER", 1),  # protection restarts for the new tier
        "2026-07-02": ("SUNFLOWER", 2),
        "2026-08-02": ("GOLD", 0),
    }
    assert [(frm, to, cause) for frm, to, cause, _ in history("M1")] == [
        (None, "PRIVATE", "INITIAL"),
        ("PRIVATE", "SUNFLOWER", "DOWNGRADE"),
        ("SUNFLOWER", "GOLD", "DOWNGRADE"),
    ]


# --- credit risk ---------------------------------------------------------------------------------


def test_credit_risk_flag_goes_to_lowest_tier_at_once_and_clearing_it_restores_the_rule(
    load_assets, load_members, org
):
    load_members(member_row("M1001"), member_row("M1002"))
    load_assets(
        held_months("M1001", "600000.00", "2026-02", "2026-03", "2026-04", "2026-05"),
    )
    grade("2026-03-02")
    assert tier_of("M1001") == "SUNFLOWER"

    load_members(member_row("M1001", credit_risk=1))
    counts = grade("2026-04-02")

    flagged = member("M1001")
    assert flagged.credit_risk is True
    assert (flagged.tier.code, flagged.computed_tier.code) == ("STANDARD", "STANDARD")
    assert flagged.tier_months_below == 0  # no protection
    assert history("M1001")[-1] == ("SUNFLOWER", "STANDARD", "CREDIT_RISK", "2026-04-02")
    assert counts["credit_risk"] == 1

    grade("2026-05-02")  # still flagged: qualifying months change nothing
    assert tier_of("M1001") == "STANDARD"
    assert len(history("M1001")) == 2

    load_members(member_row("M1001", credit_risk=0))
    grade("2026-06-02")

    assert member("M1001").credit_risk is False
    assert tier_of("M1001") == "SUNFLOWER"
    assert history("M1001")[-1] == ("STANDARD", "SUNFLOWER", "UPGRADE", "2026-06-02")


def test_credit_risk_cleared_by_a_members_file_identical_to_an_earlier_one(
    load_assets, load_members, org
):
    load_members(member_row("M1001"))  # day 1: not flagged
    load_assets(held_months("M1001", "600000.00", "2026-02", "2026-03"))
    load_members(member_row("M1001", credit_risk=1))  # day 2: flagged
    grade("2026-03-02")
    assert tier_of("M1001") == "STANDARD"

    load_members(member_row("M1001"))  # day 3: flag cleared; the file equals day 1's
    grade("2026-04-02")

    assert member("M1001").credit_risk is False
    assert tier_of("M1001") == "SUNFLOWER"


# --- idempotency and history ---------------------------------------------------------------


def test_recompute_twice_for_the_same_date_changes_nothing(load_assets):
    for no in ("UP", "DOWN", "HELD", "RISK", "NONE"):
        MemberFactory(member_no=no)
    load_assets(
        held_months("UP", "20000.00", "2026-02", "2026-03"),
        held("UP", "700000.00", month="2026-04"),
        held("DOWN", "600000.00", month="2026-01"),
        held_months("DOWN", "1000.00", "2026-02", "2026-03", "2026-04"),
        held("HELD", "60000.00", month="2026-03"),
        held("HELD", "1000.00", month="2026-04"),
        held_months("RISK", "600000.00", "2026-02", "2026-03", "2026-04"),
    )
    grade("2026-02-02", "2026-03-02", "2026-04-02")
    Member.objects.filter(member_no="RISK").update(credit_risk=True)
    grade("2026-05-02")
    states, changes = member_states(), change_rows()
    assert {no: row["tier__code"] for no, row in states.items()} == {
        "UP": "SUNFLOWER",
        "DOWN": "STANDARD",
        "HELD": "GOLD",
        "RISK": "STANDARD",
        "NONE": "STANDARD",
    }

    counts = grade("2026-05-02")

    assert member_states() == states
    assert change_rows() == changes
    assert counts["changed"] == 0
    assert (counts["upgraded"], counts["downgraded"], counts["first_graded"]) == (0, 0, 0)


# --- the explanation matches the engine -------------------------------------------------------

LEVELS = [
    "0",
    "20000.00",
    "49999.99",
    "50000.00",
    "120000.00",
    "499999.99",
    "500000.00",
    "900000.00",
    "9999999.99",
    "10000000.00",
    "15000000.00",
]
POPULATION_MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07"]
POPULATION_RUNS = ["2026-02-02", "2026-03-02", "2026-04-02", "2026-05-02", "2026-06-02"]
POPULATION_RUNS += ["2026-07-02", "2026-08-02"]


def build_population(load_assets, *, size: int, seed: int) -> list[str]:
    """`size` members with monthly assets near the thresholds, sticky enough that protection
    and downgrades happen; some with gaps, some in non-financial categories, some with none."""
    rng = random.Random(seed)
    numbers = [f"P{i:03d}" for i in range(size)]
    holdings = []
    for i, no in enumerate(numbers):
        MemberFactory(member_no=no)
        if i % 10 == 9:
            continue  # never any assets
        level = rng.choice(LEVELS)
        for month in POPULATION_MONTHS:
            if i % 10 == 8 and month < "2026-04":
                continue  # a customer whose assets start later
            if rng.random() < 0.45:
                level = rng.choice(LEVELS)
            if level == "0":
                continue
            category = rng.choice([*FINANCIAL, "DEMAND", "DEMAND", "MORTGAGE"])
            last = days_in(date.fromisoformat(f"{month}-01"))
            days = (1, last) if rng.random() < 0.7 else (rng.randint(1, 10), rng.randint(20, last))
            holdings.append(held(no, level, category, month=month, days=days))
    load_assets(holdings)
    return numbers


@pytest.mark.parametrize(
    ("window", "steps"),
    [
        pytest.param(1, None, id="window1"),
        pytest.param(
            3,
            1,
            id="window3-one-step",
        ),
    ],
)
def test_tier_explain_matches_what_the_engine_stored(load_assets, make_user, window, steps):
    TierScheme.objects.filter(code="DEFAULT_MADA").update(
        window_months=window, max_downgrade_steps=steps
    )
    numbers = build_population(load_assets, size=40, seed=20261126 + window)
    manager = make_user(Role.ACCOUNT_MANAGER)
    TierOverride.objects.create(
        member=Member.objects.get(member_no="P007"),
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="PRIVATE"),
        reason="VIP relationship",
        expires_on=date(2026, 5, 15),
        requested_by=manager,
        status="ACTIVE",
    )
    rules_seen: set[str] = set()
    basis_differs: dict[str, dict] = {}

    for run_no, day in enumerate(POPULATION_RUNS):
        business_date = date.fromisoformat(day)
        if run_no == 2:
            Member.objects.filter(member_no__in=["P005", "P015", "P025"]).update(credit_risk=True)
        if run_no == 4:
            Member.objects.filter(member_no="P005").update(credit_risk=False)
        plan = TierPlan.active(business_date)
        expected, expected_basis = {}, {}
        for found in Member.objects.filter(member_no__in=numbers):
            explanation = tier_explain(member=found, plan=plan)
            rules_seen.add(explanation.rule)
            expected[found.member_no] = (
                (explanation.override or explanation.computed).code,
                explanation.computed.code,
                explanation.months_below,
            )
            expected_basis[found.member_no] = explanation.basis

        tier_recompute(business_date=business_date)

        stored = {
            row[0]: row[1:]
            for row in Member.objects.values_list(
                "member_no", "tier__code", "computed_tier__code", "tier_months_below"
            )
        }
        assert stored == expected, day
        plan = TierPlan.active(business_date)
        for found in Member.objects.filter(member_no__in=numbers):
            again = tier_explain(member=found, plan=plan)
            assert (again.computed.code, again.months_below) == stored[found.member_no][1:], (
                day,
                found.member_no,
            )
        stored_basis = dict(Member.objects.values_list("member_no", "basis__value"))
        basis_differs[day] = {
            no: (stored_basis[no], basis)
            for no, basis in expected_basis.items()
            if stored_basis[no] != basis
        }

    # the population really exercised every rule of the engine
    assert {"first_grading", "upgrade", "downgrade", "protected", "qualifies"} <= rules_seen
    assert "credit_risk" in rules_seen
    assert TierChange.objects.filter(cause=TierChangeCause.OVERRIDE).exists()
    assert TierChange.objects.filter(cause=TierChangeCause.OVERRIDE_EXPIRY).exists()
    # the basis the engine stored is the explanation's, to the fen
    assert basis_differs == {day: {} for day in POPULATION_RUNS}


# --- chunked recompute through the nightly command ----------------------------------------------


def nightly_outcome() -> tuple:
    counts = {
        run.business_date: {k: v for k, v in run.counts.items() if k != "chunks"}
        for run in JobRun.objects.filter(kind="tier_recompute")
    }
    states = {
        no: {k: v for k, v in row.items() if k != "updated_at"}
        for no, row in member_states().items()
    }
    return states, change_rows(), counts


def test_chunked_nightly_recompute_gives_the_same_result_as_one_chunk(load_assets, settings):
    build_population(load_assets, size=20, seed=7)
    runs = ["2026-03-02", "2026-04-02", "2026-05-02", "2026-06-02"]

    def run_nightly_for(chunks: int) -> tuple:
        settings.TIER_RECOMPUTE_CHUNKS = chunks
        for day in runs:
            call_command("run_nightly", "--date", day, stdout=io.StringIO(), stderr=io.StringIO())
        return nightly_outcome()

    with transaction.atomic():
        one_chunk = run_nightly_for(1)
        transaction.set_rollback(True)
    assert not TierChange.objects.exists()

    three_chunks = run_nightly_for(3)

    assert three_chunks == one_chunk
    assert {run.counts["chunks"] for run in JobRun.objects.filter(kind="tier_recompute")} == {3}
    assert sum(counts["evaluated"] for counts in three_chunks[2].values()) == 20 * len(runs)
    assert len(one_chunk[1]) > 20  # more than the first grading happened


# --- POINTS scheme --------------------------------------------------------------------------


def activate_points_scheme(make_user) -> TierScheme:
    """Maker-checker: one product operator proposes, another approves."""
    maker = make_user(Role.PRODUCT_OPERATOR, username="po_maker")
    checker = make_user(Role.PRODUCT_OPERATOR, username="po_checker")
    scheme_switch(points_scheme(), maker=maker, checker=checker)
    return points_scheme()


def worked_example_member(load_assets, member_no: str = "STAR") -> None:
    """API.md's worked example for October 2026."""
    MemberFactory(member_no=member_no)
    load_assets(
        held(member_no, "100000.00", "DEMAND", month="2026-10"),
        held(member_no, "500000.00", "MORTGAGE", month="2026-10"),
    )
    # FUND_PURCHASE comes from member events (POST /api/v1/events/), which do not feed the
    # monthly statistics yet, so the month's 1,000,000.00 of fund purchases is set directly.
    MemberMonthlyStat.objects.filter(member__member_no=member_no, month=date(2026, 10, 1)).update(
        fund_purchase_fen=fen("1000000.00")
    )


def points_by_indicator(found: Member) -> dict[tuple[str, str], int]:
    """The explanation's non-zero points of the basis month, by (kind, category)."""
    plan = TierPlan.active(date(2026, 11, 2))
    explanation = tier_explain(member=found, plan=plan)
    assert explanation.basis == found.tier_basis
    points = [points for _label, points in explanation.months[0].breakdown]
    return {
        (indicator.kind, indicator.category): value
        for indicator, value in zip(plan.indicators, points, strict=True)
        if value
    }


def test_points_worked_example_after_maker_checker_activation(load_assets, make_user):
    worked_example_member(load_assets)
    MemberFactory(member_no="EMPTY")
    grade("2026-11-02")
    assert (tier_of("STAR"), tier_of("EMPTY")) == ("GOLD", "STANDARD")
    maker = make_user(Role.PRODUCT_OPERATOR, username="po_maker")
    checker = make_user(Role.PRODUCT_OPERATOR, username="po_checker")

    scheme_decide_entitlements(points_scheme(), actor=maker)
    tier_scheme_request_activation(scheme=points_scheme(), actor=maker)
    with pytest.raises(NotAllowed):
        decide_pending(
            points_scheme(), MemberApproval.TIER_SCHEME_ACTIVATION, approve=True, actor=maker
        )
    assert points_scheme().status == SchemeStatus.PENDING
    decide_pending(
        points_scheme(), MemberApproval.TIER_SCHEME_ACTIVATION, approve=True, actor=checker
    )
    # approved: it waits for the night of its effective date; until then the old one grades
    assert points_scheme().status == SchemeStatus.SCHEDULED
    assert mada_scheme().status == SchemeStatus.ACTIVE
    assert tier_scheme_switch_due(business_date=points_scheme().effective_on - timedelta(1)) == {}
    assert points_scheme().status == SchemeStatus.SCHEDULED

    tier_scheme_switch_due(business_date=points_scheme().effective_on)

    assert points_scheme().status == SchemeStatus.ACTIVE
    assert mada_scheme().status == SchemeStatus.RETIRED
    assert tier_of("STAR") == "GOLD"  # regraded by the recompute of that night

    grade("2026-11-02")

    star = member("STAR")
    assert (star.tier.code, star.tier_basis) == ("STAR6", 26_350)
    assert history("STAR")[-1] == ("GOLD", "STAR6", TierChangeCause.SCHEME_CHANGE, "2026-11-02")
    assert history("EMPTY")[-1] == ("STANDARD", "NONE", TierChangeCause.SCHEME_CHANGE, "2026-11-02")
    assert points_by_indicator(star) == {
        ("CATEGORY_BALANCE", "DEMAND"): 1_350,
        ("CATEGORY_BALANCE", "MORTGAGE"): 5_000,
        ("FUND_PURCHASE", ""): 20_000,
    }
    assert member_tier_status(member=star)["next_tier"] == {
        "code": "STAR7",
        "measure": "POINTS",
        "missing": 80_000 - 26_350,
    }


def test_points_are_rounded_down_per_indicator_then_summed(load_assets, make_user):
    MemberFactory(member_no="M1")
    load_assets(
        held("M1", "3700.00", "DEMAND", month="2026-10"),  # 49.95 points → 49
        held("M1", "50.00", "TIME", month="2026-10"),  # 0.5 points → 0
    )
    activate_points_scheme(make_user)

    grade("2026-11-02")

    # summing first would give floor(50.45) = 50 = STAR3
    assert (tier_of("M1"), member("M1").tier_basis) == ("PRE", 49)


def test_points_indicator_cap_limits_its_points(load_assets, make_user):
    worked_example_member(load_assets)
    PointsIndicator.objects.filter(scheme__code="DEFAULT_POINTS", kind="FUND_PURCHASE").update(
        cap=3_000
    )
    activate_points_scheme(make_user)

    grade("2026-11-02")

    star = member("STAR")
    assert (star.tier.code, star.tier_basis) == ("STAR5", 1_350 + 5_000 + 3_000)
    assert points_by_indicator(star)[("FUND_PURCHASE", "")] == 3_000


def test_points_window_average_is_rounded_down(load_assets, make_user):
    TierScheme.objects.filter(code="DEFAULT_POINTS").update(window_months=2)
    MemberFactory(member_no="M1")
    load_assets(held("M1", "7500.00", "DEMAND", month="2026-09"))  # 101.25 → 101 points
    activate_points_scheme(make_user)

    grade("2026-11-02")  # window: September and October (no assets)

    assert (tier_of("M1"), member("M1").tier_basis) == ("STAR3", 50)  # floor(101 / 2)


def test_tier_simulate_on_the_draft_gives_distribution_and_matrix_and_changes_nothing(
    load_assets,
):
    for no in ("A", "B", "C", "D", "E", "F"):
        MemberFactory(member_no=no)
    load_assets(
        held("A", "100000.00", month="2026-10"),  # GOLD; 1,350 points → STAR4
        held("B", "600000.00", month="2026-10"),  # SUNFLOWER; 8,100 → STAR5
        held("C", "40000.00", month="2026-10"),  # STANDARD; 540 → STAR4
        # D: no data: STANDARD; 0 → NONE
        held("E", "3000.00", month="2026-10"),  # STANDARD; 40 → PRE
        held("F", "10000.00", month="2026-10"),  # STANDARD; 135 + 2,000 → STAR5
        held("F", "100000.00", "LOAN", month="2026-10"),
    )
    grade("2026-11-02")
    states, changes = member_states(), change_rows()

    result = tier_simulate(scheme=points_scheme(), business_date=date(2026, 11, 2))

    assert result["scheme"] == "DEFAULT_POINTS"
    assert result["distribution"] == {
        "NONE": 1,
        "PRE": 1,
        "STAR3": 0,
        "STAR4": 2,
        "STAR5": 2,
        "STAR6": 0,
        "STAR7": 0,
    }
    assert result["matrix"] == {
        "STANDARD": {"NONE": 1, "PRE": 1, "STAR4": 1, "STAR5": 1},
        "GOLD": {"STAR4": 1},
        "SUNFLOWER": {"STAR5": 1},
    }
    assert member_states() == states
    assert change_rows() == changes
    assert points_scheme().status == SchemeStatus.DRAFT


# --- manual override ----------------------------------------------------------------------------


@pytest.fixture
def override_cast(make_user):
    """An account manager's customer in sub-branch B01S1, and the staff around them."""
    return {
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
        "other_am": make_user(Role.ACCOUNT_MANAGER, username="am2", branch="B01S1"),
        "bm": make_user(Role.BRANCH_MANAGER, username="bm", branch="B01S1"),
        "other_bm": make_user(Role.BRANCH_MANAGER, username="bm_south", branch="B02"),
    }


def test_manual_override_needs_a_branch_managers_approval_and_expires(org, override_cast):
    cast = override_cast
    MemberFactory(member_no="VIP", branch=org["B01S1"], account_manager=cast["am"])
    today = today_in_shanghai()
    expires = today + timedelta(days=10)
    sunflower = Tier.objects.get(scheme__code="DEFAULT_MADA", code="SUNFLOWER")
    tier_recompute(business_date=today)
    assert tier_of("VIP") == "STANDARD"

    with pytest.raises(TierRuleError):
        tier_override_request(
            member=member("VIP"), tier=sunflower, reason=" ", expires_on=expires, actor=cast["am"]
        )
    override = tier_override_request(
        member=member("VIP"),
        tier=sunflower,
        reason="Brings a large deposit next month",
        expires_on=expires,
        actor=cast["am"],
    )

    assert override.status == "PENDING"
    tier_recompute(business_date=today)
    assert tier_of("VIP") == "STANDARD"  # nothing changes before approval
    assert [cause for *_, cause, _day in history("VIP")] == ["INITIAL"]
    for not_allowed in ("am", "other_am", "other_bm"):
        with pytest.raises(NotAllowed):
            decide_pending(
                override, MemberApproval.TIER_OVERRIDE, approve=True, actor=cast[not_allowed]
            )
    override.refresh_from_db()
    assert override.status == "PENDING"

    decide_pending(
        override, MemberApproval.TIER_OVERRIDE, approve=True, actor=cast["bm"], comment="ok"
    )

    override.refresh_from_db()
    vip = member("VIP")
    assert override.status == "ACTIVE"
    assert (vip.tier.code, vip.computed_tier.code, vip.tier_since) == (
        "SUNFLOWER",
        "STANDARD",
        today,
    )
    assert history("VIP")[-1] == ("STANDARD", "SUNFLOWER", "OVERRIDE", today.isoformat())

    for day in (today, expires):  # the nightly chain keeps it while it is in force
        call_command(
            "run_nightly", "--date", day.isoformat(), stdout=io.StringIO(), stderr=io.StringIO()
        )
        assert (tier_of("VIP"), member("VIP").computed_tier.code) == ("SUNFLOWER", "STANDARD")
    assert len(history("VIP")) == 2

    after = expires + timedelta(days=1)
    call_command(
        "run_nightly", "--date", after.isoformat(), stdout=io.StringIO(), stderr=io.StringIO()
    )

    override.refresh_from_db()
    assert override.status == "EXPIRED"
    assert tier_of("VIP") == "STANDARD"
    assert member("VIP").tier_since == after
    assert history("VIP")[-1] == (
        "SUNFLOWER",
        "STANDARD",
        TierChangeCause.OVERRIDE_EXPIRY,
        after.isoformat(),
    )


def test_credit_risk_ends_an_override_in_force_with_cause_credit_risk(org, override_cast):
    cast = override_cast
    MemberFactory(member_no="VIP", branch=org["B01S1"], account_manager=cast["am"])
    today = today_in_shanghai()
    tier_recompute(business_date=today)
    override = tier_override_request(
        member=member("VIP"),
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD"),
        reason="relationship",
        expires_on=today + timedelta(days=30),
        actor=cast["am"],
    )
    decide_pending(override, MemberApproval.TIER_OVERRIDE, approve=True, actor=cast["bm"])
    Member.objects.filter(member_no="VIP").update(credit_risk=True)

    tier_recompute(business_date=today + timedelta(days=1))

    assert tier_of("VIP") == "STANDARD"
    assert history("VIP")[-1][:3] == ("GOLD", "STANDARD", TierChangeCause.CREDIT_RISK)


# --- the member centre ---------------------------------------------------------------------------


def test_member_centre_shows_tier_next_tier_and_protection(load_assets, make_user, api_client_for):
    MemberFactory(member_no="M0000123")
    MemberFactory(member_no="TOP")
    load_assets(
        held("M0000123", "60000.00", month="2026-09"),
        held("M0000123", "38000.00", month="2026-10"),
        held_months("TOP", "12000000.00", "2026-09", "2026-10"),
    )
    client = api_client_for(make_user(Role.PRODUCT_OPERATOR))
    grade("2026-10-02")

    qualifying = client.get("/api/v1/members/M0000123/")

    assert qualifying.status_code == 200
    body = qualifying.json()
    assert body["member_no"] == "M0000123"
    assert body["tier"] == {"code": "GOLD", "name": "金卡", "rank": 1}
    assert body["tier_since"] == "2026-10-02"
    assert body["next_tier"] == {"code": "SUNFLOWER", "measure": "MADA", "missing": "440000.00"}
    assert body["protection"] is None
    assert not {"name", "phone", "id_number"} & set(body)

    grade("2026-11-02")
    below = client.get("/api/v1/members/M0000123/").json()

    assert below["tier"]["code"] == "GOLD"
    assert below["tier_since"] == "2026-10-02"
    assert below["next_tier"] == {"code": "SUNFLOWER", "measure": "MADA", "missing": "462000.00"}
    assert below["protection"] == {
        "months_below": 1,
        "downgrade_after_months": 3,
        "keep_tier_needs": "50000.00",
        "missing": "12000.00",
    }

    top = client.get("/api/v1/members/TOP/").json()
    assert top["tier"] == {"code": "PRIVATE", "name": "私人银行", "rank": 3}
    assert top["next_tier"] is None
    assert top["protection"] is None


def test_member_centre_of_a_member_never_graded_has_no_tier(make_user, api_client_for):
    MemberFactory(member_no="FRESH", registered_at=datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI))

    body = api_client_for(make_user(Role.PRODUCT_OPERATOR)).get("/api/v1/members/FRESH/").json()

    assert (body["tier"], body["next_tier"], body["protection"]) == (None, None, None)


def test_member_centre_warns_when_a_three_month_window_is_one_cent_short(
    load_assets, make_user, api_client_for
):
    TierScheme.objects.filter(code="DEFAULT_MADA").update(window_months=3)
    MemberFactory(member_no="M1")
    load_assets(
        held_months("M1", "50000.00", "2026-01", "2026-02", "2026-03"),
        held("M1", "49999.97", month="2026-04"),
    )
    grade("2026-04-02")
    assert tier_of("M1") == "GOLD"

    grade("2026-05-02")  # (50,000.00 + 50,000.00 + 49,999.97) / 3 = 49,999.99

    assert (tier_of("M1"), member("M1").tier_months_below) == ("GOLD", 1)
    body = api_client_for(make_user(Role.PRODUCT_OPERATOR)).get("/api/v1/members/M1/").json()
    assert body["protection"] == {
        "months_below": 1,
        "downgrade_after_months": 3,
        "keep_tier_needs": "50000.00",
        "missing": "0.01",
    }


def test_scheme_change_regrades_a_member_with_an_override_in_force(org, override_cast, make_user):
    cast = override_cast
    MemberFactory(member_no="VIP", branch=org["B01S1"], account_manager=cast["am"])
    today = today_in_shanghai()
    tier_recompute(business_date=today)
    override = tier_override_request(
        member=member("VIP"),
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD"),
        reason="relationship",
        expires_on=today + timedelta(days=30),
        actor=cast["am"],
    )
    decide_pending(override, MemberApproval.TIER_OVERRIDE, approve=True, actor=cast["bm"])
    activate_points_scheme(make_user)

    tier_recompute(business_date=today + timedelta(days=1))

    vip = member("VIP")
    assert vip.computed_tier.code == "NONE"
    assert vip.tier.scheme.code == "DEFAULT_POINTS"  # actual: GOLD of the retired DEFAULT_MADA
