"""The data-warehouse feeds against API.md ("Feeds"), through the real `feed_import`.

Every file is written as the bank would deliver it (CSV text, header on line 1) and
imported with `import_csv`; the tests read what an operator would see afterwards: the
batch counts, the rejected rows with line, field and reason, the members, the daily facts
and the month-to-date sums behind MADA.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from members.choices import FeedStatus
from members.models import (
    AssetBalance,
    ConsumptionDay,
    FeedBatch,
    FeedRejection,
    Member,
    MemberActivityDay,
    MemberMonthlyStat,
)
from members.services import FeedFileError, feed_import
from portal.clock import SHANGHAI, today_in_shanghai
from portal.models import AuditEntry
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

MEMBERS_HEADER = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk"
)
ASSETS_HEADER = "member_no,date,category,balance"
CONSUMPTION_HEADER = "member_no,date,amount,count"
HEADERS = {"members": MEMBERS_HEADER, "assets": ASSETS_HEADER, "consumption": CONSUMPTION_HEADER}

TOMORROW = (today_in_shanghai() + timedelta(days=1)).isoformat()
OCTOBER = date(2026, 10, 1)
SEPTEMBER = date(2026, 9, 1)


# --- writing feed files -----------------------------------------------------------------------


def feed(kind: str, *rows: str) -> str:
    """A feed file of `kind`: the header on line 1, then `rows` from line 2 on."""
    return "\n".join([HEADERS[kind], *rows]) + "\n"


def member_row(
    member_no: str = "M1",
    *,
    name: str = "张三",
    phone: str = "13812345678",
    id_number: str = "110101199003071234",
    birth_date: str = "1990-03-07",
    registered_at: str = "2026-10-01",
    branch_code: str = "",
    manager_username: str = "",
    credit_risk: str = "0",
) -> str:
    return ",".join(
        [
            member_no,
            name,
            phone,
            id_number,
            birth_date,
            registered_at,
            branch_code,
            manager_username,
            credit_risk,
        ]
    )


def daily(member_no: str, category: str, balance: str, first: date, last: date) -> list[str]:
    """Asset rows: `member_no` holds `balance` in `category` every day from first to last."""
    rows = []
    day = first
    while day <= last:
        rows.append(f"{member_no},{day.isoformat()},{category},{balance}")
        day += timedelta(days=1)
    return rows


def rejected(batch: FeedBatch) -> list[tuple[int, str]]:
    """(line, field) of each rejected row of the batch, in line order."""
    return list(batch.rejections.order_by("line_no").values_list("line_no", "field"))


def only_reason(batch: FeedBatch) -> str:
    (rejection,) = batch.rejections.all()
    assert rejection.reason
    return rejection.reason


def stat(member_no: str, month: date = OCTOBER) -> MemberMonthlyStat:
    return MemberMonthlyStat.objects.get(member__member_no=member_no, month=month)


def assert_reconciles(batch: FeedBatch) -> None:
    assert batch.received == batch.accepted + batch.duplicates + batch.rejected
    assert batch.rejected == batch.rejections.count()


@pytest.fixture
def members(db):
    """Members M1 and M2, known before any fact feed arrives."""
    return {no: MemberFactory(member_no=no) for no in ("M1", "M2")}


# --- assets feed -------------------------------------------------------------------------------


def test_assets_file_loads_every_row_into_daily_balances_and_the_month(import_csv, members):
    batch = import_csv(
        "assets",
        feed(
            "assets",
            "M1,2026-10-01,DEMAND,1000.50",
            "M1,2026-10-01,TIME,20000",
            "M2,2026-10-03,FUND,0.07",
        ),
    )

    assert (batch.status, batch.received, batch.accepted, batch.duplicates, batch.rejected) == (
        FeedStatus.LOADED,
        3,
        3,
        0,
        0,
    )
    assert (batch.first_date, batch.last_date) == (date(2026, 10, 1), date(2026, 10, 3))
    assert set(AssetBalance.objects.values_list("member__member_no", "date", "category")) == {
        ("M1", date(2026, 10, 1), "DEMAND"),
        ("M1", date(2026, 10, 1), "TIME"),
        ("M2", date(2026, 10, 3), "FUND"),
    }
    assert AssetBalance.objects.get(member__member_no="M1", category="DEMAND").balance_fen == 100050
    assert AssetBalance.objects.get(category="FUND").batch == batch
    m1 = stat("M1")
    assert (m1.demand_day_sum_fen, m1.time_day_sum_fen) == (100050, 2000000)
    assert m1.financial_day_sum_fen == 2100050
    assert m1.asset_days == 1


def test_a_header_only_file_is_loaded_with_nothing_in_it(import_csv):
    batch = import_csv("assets", feed("assets"))

    assert (batch.status, batch.received, batch.accepted) == (FeedStatus.LOADED, 0, 0)
    assert AssetBalance.objects.count() == 0


def test_a_header_with_a_byte_order_mark_and_blank_lines_is_accepted(import_csv, members):
    text = "\ufeff" + ASSETS_HEADER + "\n\nM1,2026-10-01,DEMAND,1.00\n\n"

    batch = import_csv("assets", text)

    assert (batch.received, batch.accepted) == (1, 1)


def test_a_file_with_windows_line_endings_and_quoted_fields_is_read_the_same(import_csv, members):
    text = (
        '"member_no","date","category","balance"\r\n'
        '"M1","2026-10-01","DEMAND","100.00"\r\n'
        "M9,2026-10-01,DEMAND,1.00\r\n"
    )

    batch = import_csv("assets", text)

    assert (batch.received, batch.accepted, batch.rejected) == (2, 1, 1)
    assert rejected(batch) == [(3, "member_no")]
    assert batch.rejections.get().raw == "M9,2026-10-01,DEMAND,1.00"
    assert stat("M1").demand_day_sum_fen == 10000


BAD_ASSET_ROWS = [
    pytest.param("M1,2026-10-02,DEMAND", "", "expected 4 columns, found 3", id="too-few-columns"),
    pytest.param(
        "M1,2026-10-02,DEMAND,1.00,x", "", "expected 4 columns, found 5", id="too-many-columns"
    ),
    pytest.param(",2026-10-02,DEMAND,1.00", "member_no", "empty", id="empty-member-no"),
    pytest.param("M 1,2026-10-02,DEMAND,1.00", "member_no", "not a valid", id="bad-member-no"),
    pytest.param("M#1,2026-10-02,DEMAND,1.00", "member_no", "not a valid", id="bad-member-no-2"),
    pytest.param("M9,2026-10-02,DEMAND,1.00", "member_no", "unknown member M9", id="unknown"),
    pytest.param("M1,2026/10/02,DEMAND,1.00", "date", "YYYY-MM-DD", id="slashed-date"),
    pytest.param("M1,02-10-2026,DEMAND,1.00", "date", "YYYY-MM-DD", id="day-first-date"),
    pytest.param("M1,2026-10-2,DEMAND,1.00", "date", "YYYY-MM-DD", id="short-date"),
    pytest.param("M1,,DEMAND,1.00", "date", "YYYY-MM-DD", id="empty-date"),
    pytest.param("M1,2026-02-30,DEMAND,1.00", "date", "2026-02-30", id="impossible-date"),
    pytest.param(f"M1,{TOMORROW},DEMAND,1.00", "date", "after today", id="future-date"),
    pytest.param("M1,2026-10-02,SAVINGS,1.00", "category", "unknown category", id="category"),
    pytest.param("M1,2026-10-02,demand,1.00", "category", "unknown category", id="lowercase"),
    pytest.param("M1,2026-10-02,,1.00", "category", "unknown category", id="empty-category"),
    pytest.param("M1,2026-10-02,DEMAND,-1.00", "balance", "negative", id="negative-balance"),
    pytest.param("M1,2026-10-02,DEMAND,1.005", "balance", "2 decimals", id="three-decimals"),
    pytest.param("M1,2026-10-02,DEMAND,abc", "balance", "2 decimals", id="not-a-number"),
    pytest.param("M1,2026-10-02,DEMAND,1e5", "balance", "2 decimals", id="exponent"),
    pytest.param("M1,2026-10-02,DEMAND,", "balance", "2 decimals", id="empty-balance"),
]


@pytest.mark.parametrize(("bad_row", "field", "reason"), BAD_ASSET_ROWS)
def test_a_bad_assets_row_is_rejected_with_its_line_field_and_reason(
    import_csv, members, bad_row, field, reason
):
    batch = import_csv(
        "assets",
        feed("assets", "M1,2026-10-01,DEMAND,100.00", bad_row, "M2,2026-10-01,DEMAND,200.00"),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (3, 2, 0, 1)
    assert_reconciles(batch)
    assert rejected(batch) == [(3, field)]
    assert reason in only_reason(batch)
    assert batch.rejections.get().raw == bad_row
    assert AssetBalance.objects.count() == 2
    assert stat("M1").financial_day_sum_fen == 10000


def test_assets_rows_keep_their_physical_line_numbers_across_blank_lines(import_csv, members):
    text = "\n".join(
        [ASSETS_HEADER, "M1,2026-10-01,DEMAND,1.00", "", "M9,2026-10-01,DEMAND,1.00", ""]
    )

    batch = import_csv("assets", text + "\n")

    assert rejected(batch) == [(4, "member_no")]


def test_every_rejected_assets_row_of_a_file_is_kept(import_csv, members):
    batch = import_csv(
        "assets",
        feed(
            "assets",
            "M9,2026-10-01,DEMAND,1.00",
            "M1,2026-10-01,DEMAND,1.00",
            "M1,2026-10-02,CASH,1.00",
            "M1,2026-10-03,DEMAND,-5",
            "M2,2026-10-01,DEMAND,1.00",
            "M2,2026-10-01,DEMAND,2.00",
        ),
    )

    assert rejected(batch) == [(2, "member_no"), (4, "category"), (5, "balance"), (7, "balance")]
    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (6, 2, 0, 4)
    assert_reconciles(batch)


def test_a_repeated_assets_row_with_the_same_balance_counts_as_a_duplicate(import_csv, members):
    batch = import_csv(
        "assets",
        feed(
            "assets",
            "M1,2026-10-01,DEMAND,100",
            "M1,2026-10-01,DEMAND,100.00",
            "M1,2026-10-01,TIME,100.00",
        ),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (3, 2, 1, 0)
    assert AssetBalance.objects.filter(category="DEMAND").count() == 1
    assert stat("M1").demand_day_sum_fen == 10000


def test_a_repeated_assets_row_with_another_balance_is_rejected_pointing_at_the_first(
    import_csv, members
):
    batch = import_csv(
        "assets",
        feed(
            "assets",
            "M1,2026-10-01,DEMAND,100.00",
            "M2,2026-10-01,DEMAND,5.00",
            "M1,2026-10-01,DEMAND,999.00",
        ),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (3, 2, 0, 1)
    assert rejected(batch) == [(4, "balance")]
    assert "line 2" in only_reason(batch)
    assert AssetBalance.objects.get(member__member_no="M1").balance_fen == 10000
    assert stat("M1").demand_day_sum_fen == 10000


def test_an_assets_row_differing_from_an_earlier_file_is_rejected_and_the_first_value_kept(
    import_csv, members
):
    first = import_csv("assets", feed("assets", "M1,2026-10-01,DEMAND,100.00"), name="d1.csv")

    batch = import_csv(
        "assets",
        feed("assets", "M1,2026-10-01,DEMAND,150.00", "M1,2026-10-02,DEMAND,100.00"),
        name="d2.csv",
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 0, 1)
    assert rejected(batch) == [(2, "balance")]
    assert f"feed batch #{first.pk}" in only_reason(batch)
    assert AssetBalance.objects.get(date=date(2026, 10, 1)).balance_fen == 10000
    assert stat("M1").demand_day_sum_fen == 20000
    assert stat("M1").asset_days == 2


def test_an_overlapping_assets_file_counts_the_overlap_as_duplicates(import_csv, members):
    import_csv(
        "assets",
        feed("assets", "M1,2026-10-01,DEMAND,100.00", "M1,2026-10-02,DEMAND,100.00"),
        name="a.csv",
    )

    batch = import_csv(
        "assets",
        feed("assets", "M1,2026-10-02,DEMAND,100.00", "M1,2026-10-03,DEMAND,100.00"),
        name="b.csv",
    )

    assert (batch.status, batch.received, batch.accepted, batch.duplicates) == (
        FeedStatus.LOADED,
        2,
        1,
        1,
    )
    assert AssetBalance.objects.count() == 3
    assert stat("M1").financial_day_sum_fen == 30000
    assert stat("M1").asset_days == 3


@pytest.mark.parametrize("kind", ["assets", "consumption", "members"])
def test_importing_the_same_file_again_changes_nothing_and_counts_every_row_duplicate(
    import_csv, members, kind
):
    rows = {
        "assets": ["M1,2026-10-01,DEMAND,100.00", "M9,2026-10-01,DEMAND,1.00"],
        "consumption": ["M1,2026-10-01,88.00,2", "M1,2026-10-01,88.00,3"],
        "members": [member_row("M3"), member_row("M4", phone="x")],
    }[kind]
    text = feed(kind, *rows)
    first = import_csv(kind, text)
    snapshot = (
        list(Member.objects.order_by("member_no").values()),
        list(AssetBalance.objects.values()),
        list(ConsumptionDay.objects.values()),
        list(MemberMonthlyStat.objects.values()),
        FeedRejection.objects.count(),
    )
    assert (first.accepted, first.rejected) == (1, 1)

    again = import_csv(kind, text)

    assert again.status == FeedStatus.DUPLICATE_FILE
    assert again.duplicate_of == first
    assert (again.received, again.accepted, again.duplicates, again.rejected) == (2, 0, 2, 0)
    assert_reconciles(again)
    assert snapshot == (
        list(Member.objects.order_by("member_no").values()),
        list(AssetBalance.objects.values()),
        list(ConsumptionDay.objects.values()),
        list(MemberMonthlyStat.objects.values()),
        FeedRejection.objects.count(),
    )


def test_a_file_sent_again_after_another_file_is_compared_row_by_row(import_csv, members):
    text = feed("assets", "M1,2026-10-01,DEMAND,100.00")
    import_csv("assets", text, name="d1.csv")
    import_csv("assets", feed("assets", "M1,2026-10-02,DEMAND,100.00"), name="d2.csv")

    again = import_csv("assets", text, name="d1.csv")

    assert again.status == FeedStatus.LOADED
    assert (again.received, again.accepted, again.duplicates, again.rejected) == (1, 0, 1, 0)
    assert stat("M1").financial_day_sum_fen == 20000


# --- MADA and the month-to-date sums ---------------------------------------------------------


@pytest.mark.parametrize(
    ("first_day", "days_held", "mada"),
    [(16, 16, "258064.51"), (17, 15, "241935.48")],
)
def test_mada_of_october_divides_by_its_31_days(import_csv, members, first_day, days_held, mada):
    import_csv(
        "assets",
        feed(
            "assets",
            *daily("M1", "DEMAND", "500000.00", OCTOBER.replace(day=first_day), date(2026, 10, 31)),
        ),
    )

    october = stat("M1")

    assert october.financial_day_sum_fen == days_held * 50_000_000
    assert october.asset_days == days_held
    assert october.days_in_month == 31
    assert str(october.mada) == mada


@pytest.mark.parametrize(
    ("first_day", "days_held", "mada"),
    [(16, 15, "250000.00"), (17, 14, "233333.33")],
)
def test_mada_of_september_divides_by_its_30_days(import_csv, members, first_day, days_held, mada):
    import_csv(
        "assets",
        feed(
            "assets",
            *daily(
                "M1", "DEMAND", "500000.00", SEPTEMBER.replace(day=first_day), date(2026, 9, 30)
            ),
        ),
    )

    september = stat("M1", SEPTEMBER)

    assert september.financial_day_sum_fen == days_held * 50_000_000
    assert september.days_in_month == 30
    assert str(september.mada) == mada


def test_a_file_spanning_two_months_adds_to_each_month(import_csv, members):
    import_csv(
        "assets",
        feed("assets", *daily("M1", "TIME", "10.00", date(2026, 9, 29), date(2026, 10, 2))),
    )

    assert (stat("M1", SEPTEMBER).time_day_sum_fen, stat("M1", SEPTEMBER).asset_days) == (2000, 2)
    assert (stat("M1").time_day_sum_fen, stat("M1").asset_days) == (2000, 2)


def test_mortgage_and_loan_are_kept_in_their_own_sums_but_not_in_financial_assets(
    import_csv, members
):
    import_csv(
        "assets",
        feed(
            "assets",
            "M1,2026-10-01,DEMAND,100.00",
            "M1,2026-10-01,TIME,200.00",
            "M1,2026-10-01,WEALTH,300.00",
            "M1,2026-10-01,FUND,400.00",
            "M1,2026-10-01,INSURANCE,500.00",
            "M1,2026-10-01,BOND,600.00",
            "M1,2026-10-01,MORTGAGE,900000.00",
            "M1,2026-10-01,LOAN,50000.00",
        ),
    )

    october = stat("M1")

    assert october.financial_day_sum_fen == 210000
    assert (october.mortgage_day_sum_fen, october.loan_day_sum_fen) == (90000000, 5000000)
    assert (october.demand_day_sum_fen, october.bond_day_sum_fen) == (10000, 60000)
    assert october.products_held == 8
    assert october.asset_days == 1


def test_a_day_with_only_a_mortgage_adds_nothing_to_mada(import_csv, members):
    import_csv(
        "assets",
        feed("assets", *daily("M1", "MORTGAGE", "1000000.00", OCTOBER, date(2026, 10, 31))),
    )

    october = stat("M1")

    assert october.financial_day_sum_fen == 0
    assert str(october.mada) == "0.00"
    assert october.mortgage_day_sum_fen == 31 * 100_000_000


def test_asset_days_count_a_day_once_across_categories_and_across_files(import_csv, members):
    import_csv(
        "assets",
        feed("assets", "M1,2026-10-05,DEMAND,1.00", "M1,2026-10-05,TIME,1.00"),
        name="deposits.csv",
    )
    import_csv(
        "assets",
        feed("assets", "M1,2026-10-05,FUND,1.00", "M1,2026-10-05,LOAN,1.00"),
        name="funds.csv",
    )
    import_csv("assets", feed("assets", "M1,2026-10-06,FUND,1.00"), name="next-day.csv")

    october = stat("M1")

    assert october.asset_days == 2
    assert october.financial_day_sum_fen == 400
    assert october.loan_day_sum_fen == 100


def test_monthly_sums_are_kept_per_member(import_csv, members):
    import_csv(
        "assets",
        feed("assets", "M1,2026-10-01,DEMAND,1.00", "M2,2026-10-01,DEMAND,7.00"),
    )

    assert (stat("M1").demand_day_sum_fen, stat("M2").demand_day_sum_fen) == (100, 700)


# --- consumption feed --------------------------------------------------------------------------


def test_consumption_file_loads_daily_spending_and_month_sums(import_csv, members):
    batch = import_csv(
        "consumption",
        feed(
            "consumption",
            "M1,2026-10-01,120.50,3",
            "M1,2026-10-02,79.50,1",
            "M2,2026-10-02,0,0",
        ),
    )

    assert (batch.status, batch.received, batch.accepted, batch.rejected) == (
        FeedStatus.LOADED,
        3,
        3,
        0,
    )
    assert ConsumptionDay.objects.get(member__member_no="M1", date=date(2026, 10, 1)).count == 3
    assert ConsumptionDay.objects.get(member__member_no="M1", date=date(2026, 10, 1)).batch == batch
    m1 = stat("M1")
    assert (m1.consumption_amount_fen, m1.consumption_count) == (20000, 4)
    assert str(m1.consumption_amount) == "200.00"
    assert m1.active_days == 2
    assert m1.financial_day_sum_fen == 0
    m2 = stat("M2")
    assert (m2.consumption_amount_fen, m2.consumption_count, m2.active_days) == (0, 0, 0)


BAD_CONSUMPTION_ROWS = [
    pytest.param("M1,2026-10-02,1.00", "", "expected 4 columns, found 3", id="too-few-columns"),
    pytest.param("M1,2026-10-02,1,00,1", "", "expected 4 columns, found 5", id="decimal-comma"),
    pytest.param(",2026-10-02,1.00,1", "member_no", "empty", id="empty-member-no"),
    pytest.param("M/1,2026-10-02,1.00,1", "member_no", "not a valid", id="bad-member-no"),
    pytest.param("M9,2026-10-02,1.00,1", "member_no", "unknown member M9", id="unknown"),
    pytest.param("M1,20261002,1.00,1", "date", "YYYY-MM-DD", id="compact-date"),
    pytest.param("M1,2026-13-01,1.00,1", "date", "YYYY-MM-DD", id="month-13"),
    pytest.param("M1,2026-02-30,1.00,1", "date", "2026-02-30", id="impossible-date"),
    pytest.param(f"M1,{TOMORROW},1.00,1", "date", "after today", id="future-date"),
    pytest.param("M1,2026-10-02,-1.00,1", "amount", "negative", id="negative-amount"),
    pytest.param("M1,2026-10-02,1.234,1", "amount", "2 decimals", id="three-decimals"),
    pytest.param("M1,2026-10-02,ten,1", "amount", "2 decimals", id="amount-not-a-number"),
    pytest.param("M1,2026-10-02,1.00,two", "count", "whole number", id="count-not-a-number"),
    pytest.param("M1,2026-10-02,1.00,1.5", "count", "whole number", id="fractional-count"),
    pytest.param("M1,2026-10-02,1.00,-1", "count", "whole number", id="negative-count"),
    pytest.param("M1,2026-10-02,1.00,", "count", "whole number", id="empty-count"),
]


@pytest.mark.parametrize(("bad_row", "field", "reason"), BAD_CONSUMPTION_ROWS)
def test_a_bad_consumption_row_is_rejected_with_its_line_field_and_reason(
    import_csv, members, bad_row, field, reason
):
    batch = import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-01,10.00,1", bad_row, "M2,2026-10-01,20.00,2"),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (3, 2, 0, 1)
    assert_reconciles(batch)
    assert rejected(batch) == [(3, field)]
    assert reason in only_reason(batch)
    assert ConsumptionDay.objects.count() == 2
    assert (stat("M1").consumption_amount_fen, stat("M1").consumption_count) == (1000, 1)


def test_a_repeated_consumption_row_with_the_same_values_counts_as_a_duplicate(import_csv, members):
    batch = import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-01,10.00,1", "M1,2026-10-01,10,1"),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 1, 0)
    assert (stat("M1").consumption_amount_fen, stat("M1").consumption_count) == (1000, 1)
    assert stat("M1").active_days == 1


def test_a_repeated_consumption_row_with_another_amount_is_rejected(import_csv, members):
    batch = import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-01,10.00,1", "M1,2026-10-01,12.00,1"),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 0, 1)
    assert rejected(batch) == [(3, "amount")]
    assert "line 2" in only_reason(batch)
    assert stat("M1").consumption_amount_fen == 1000


@pytest.mark.parametrize("earlier_file", [False, True], ids=["same-file", "earlier-file"])
def test_a_consumption_row_differing_only_in_count_is_rejected_on_the_count(
    import_csv, members, earlier_file
):
    if earlier_file:
        import_csv("consumption", feed("consumption", "M1,2026-10-01,10.00,1"), name="a.csv")
        text = feed("consumption", "M1,2026-10-01,10.00,4")
    else:
        text = feed("consumption", "M1,2026-10-01,10.00,1", "M1,2026-10-01,10.00,4")

    batch = import_csv("consumption", text, name="b.csv")

    assert batch.rejected == 1
    assert batch.rejections.get().field == "count"


def test_a_consumption_row_differing_from_an_earlier_file_is_rejected(import_csv, members):
    first = import_csv("consumption", feed("consumption", "M1,2026-10-01,10.00,1"), name="a.csv")

    batch = import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-01,10.00,2", "M1,2026-10-02,5.00,1"),
        name="b.csv",
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 0, 1)
    assert rejected(batch)[0][0] == 2
    assert f"feed batch #{first.pk}" in only_reason(batch)
    assert ConsumptionDay.objects.get(date=date(2026, 10, 1)).count == 1
    assert (stat("M1").consumption_amount_fen, stat("M1").consumption_count) == (1500, 2)


def test_an_overlapping_consumption_file_counts_the_overlap_as_duplicates(import_csv, members):
    import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-01,10.00,1", "M1,2026-10-02,20.00,2"),
        name="a.csv",
    )

    batch = import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-02,20.00,2", "M1,2026-10-03,30.00,3"),
        name="b.csv",
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 1, 0)
    m1 = stat("M1")
    assert (m1.consumption_amount_fen, m1.consumption_count, m1.active_days) == (6000, 6, 3)


def test_only_days_with_transactions_are_active_days(import_csv, members):
    import_csv(
        "consumption",
        feed(
            "consumption",
            "M1,2026-10-01,10.00,1",
            "M1,2026-10-02,0.00,0",
            "M1,2026-10-03,25.00,0",
            "M1,2026-10-04,0.00,2",
        ),
    )

    assert stat("M1").active_days == 2
    assert set(
        MemberActivityDay.objects.filter(member__member_no="M1").values_list("date", flat=True)
    ) == {date(2026, 10, 1), date(2026, 10, 4)}


def test_active_days_are_not_counted_twice_across_files(import_csv, members):
    import_csv("consumption", feed("consumption", "M1,2026-10-01,10.00,1"), name="a.csv")
    import_csv(
        "consumption",
        feed("consumption", "M1,2026-10-01,10.00,1", "M1,2026-10-02,10.00,1"),
        name="b.csv",
    )
    import_csv("consumption", feed("consumption", "M1,2026-10-02,10.00,1"), name="c.csv")

    assert stat("M1").active_days == 2
    assert MemberActivityDay.objects.filter(member__member_no="M1").count() == 2


def test_active_days_are_counted_per_month(import_csv, members):
    import_csv(
        "consumption",
        feed("consumption", "M1,2026-09-30,1.00,1", "M1,2026-10-01,1.00,1", "M1,2026-10-02,1,1"),
    )

    assert (stat("M1", SEPTEMBER).active_days, stat("M1").active_days) == (1, 2)


def test_last_active_on_moves_to_the_latest_day_with_transactions(import_csv, members):
    import_csv(
        "consumption",
        feed(
            "consumption",
            "M1,2026-10-03,10.00,1",
            "M1,2026-10-09,10.00,2",
            "M1,2026-10-12,0.00,0",
            "M2,2026-10-12,99.00,0",
        ),
    )

    assert Member.objects.get(member_no="M1").last_active_on == date(2026, 10, 9)
    assert Member.objects.get(member_no="M2").last_active_on is None


def test_last_active_on_never_moves_back_for_an_older_file(import_csv, members):
    import_csv("consumption", feed("consumption", "M1,2026-10-20,10.00,1"), name="late.csv")

    import_csv("consumption", feed("consumption", "M1,2026-10-05,10.00,1"), name="early.csv")

    assert Member.objects.get(member_no="M1").last_active_on == date(2026, 10, 20)
    assert stat("M1").active_days == 2


def test_last_active_on_advances_with_a_later_file(import_csv, members):
    import_csv("consumption", feed("consumption", "M1,2026-10-05,10.00,1"), name="a.csv")

    import_csv("consumption", feed("consumption", "M1,2026-10-21,10.00,1"), name="b.csv")

    assert Member.objects.get(member_no="M1").last_active_on == date(2026, 10, 21)


def test_consumption_and_assets_add_to_the_same_month(import_csv, members):
    import_csv("consumption", feed("consumption", "M1,2026-10-01,10.00,1"))
    import_csv("assets", feed("assets", "M1,2026-10-01,DEMAND,100.00"))

    october = stat("M1")

    assert (october.consumption_amount_fen, october.financial_day_sum_fen) == (1000, 10000)
    assert MemberMonthlyStat.objects.filter(member__member_no="M1").count() == 1


# --- members feed ------------------------------------------------------------------------------


@pytest.fixture
def manager(make_user):
    return make_user(username="am_wang")


def test_members_file_creates_members_with_every_field(import_csv, org, manager):
    batch = import_csv(
        "members",
        feed(
            "members",
            member_row(
                "M1",
                id_number="11010119900307123x",
                registered_at="2026-10-01",
                branch_code="B01S1",
                manager_username="am_wang",
                credit_risk="1",
            ),
            member_row(
                "M2",
                name="李四",
                phone="+8613900001111",
                id_number="110101900307123",
                birth_date="",
                registered_at="2026-10-02T09:30:00+08:00",
                credit_risk="",
            ),
        ),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 2, 0, 0)
    m1 = Member.objects.get(member_no="M1")
    assert (m1.name, m1.phone, m1.id_number) == ("张三", "13812345678", "11010119900307123X")
    assert m1.birth_date == date(1990, 3, 7)
    assert m1.registered_at == datetime(2026, 10, 1, tzinfo=SHANGHAI)
    assert (m1.branch, m1.account_manager, m1.credit_risk) == (org["B01S1"], manager, True)
    m2 = Member.objects.get(member_no="M2")
    assert m2.registered_at == datetime(2026, 10, 2, 1, 30, tzinfo=UTC)
    assert (m2.birth_date, m2.branch, m2.account_manager, m2.credit_risk) == (
        None,
        None,
        None,
        False,
    )


def test_a_changed_members_row_updates_the_member_and_an_unchanged_one_is_a_duplicate(
    import_csv, org, manager
):
    import_csv(
        "members",
        feed("members", member_row("M1", credit_risk="1"), member_row("M2", name="李四")),
        name="day1.csv",
    )
    m2_updated_at = Member.objects.get(member_no="M2").updated_at

    batch = import_csv(
        "members",
        feed(
            "members",
            member_row(
                "M1",
                name="张三丰",
                phone="13900002222",
                branch_code="B02",
                manager_username="am_wang",
                credit_risk="0",
            ),
            member_row("M2", name="李四"),
        ),
        name="day2.csv",
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 1, 0)
    m1 = Member.objects.get(member_no="M1")
    assert (m1.name, m1.phone, m1.branch, m1.account_manager, m1.credit_risk) == (
        "张三丰",
        "13900002222",
        org["B02"],
        manager,
        False,
    )
    assert Member.objects.count() == 2
    assert Member.objects.get(member_no="M2").updated_at == m2_updated_at


def test_a_members_file_sent_again_after_another_one_applies_its_values_again(import_csv, db):
    first = feed("members", member_row("M1", credit_risk="0"))
    import_csv("members", first, name="monday.csv")
    import_csv("members", feed("members", member_row("M1", credit_risk="1")), name="tue.csv")

    again = import_csv("members", first, name="monday.csv")

    assert again.status == FeedStatus.LOADED
    assert (again.accepted, again.duplicates) == (1, 0)
    assert Member.objects.get(member_no="M1").credit_risk is False


def test_a_members_row_with_the_same_moment_written_differently_is_a_duplicate(import_csv, db):
    import_csv("members", feed("members", member_row("M1", id_number="11010119900307123X")))

    batch = import_csv(
        "members",
        feed(
            "members",
            member_row("M1", id_number="11010119900307123x", registered_at="2026-09-30T16:00:00Z"),
        ),
        name="other.csv",
    )

    assert (batch.accepted, batch.duplicates) == (0, 1)


def test_a_members_update_keeps_what_the_portal_computed(import_csv, members):
    member = members["M1"]
    Member.objects.filter(pk=member.pk).update(
        last_active_on=date(2026, 10, 9), points_balance=120, lifecycle_stage="ACTIVE"
    )

    import_csv("members", feed("members", member_row("M1", name="新名字")))

    member.refresh_from_db()
    assert member.name == "新名字"
    assert (member.last_active_on, member.points_balance, member.lifecycle_stage) == (
        date(2026, 10, 9),
        120,
        "ACTIVE",
    )


BAD_MEMBER_ROWS = [
    pytest.param(
        "M3,王五,13812345678,110101199003071234,,2026-10-01,,", "", "found 8", id="8-columns"
    ),
    pytest.param(member_row("M3") + ",x", "", "found 10", id="10-columns"),
    pytest.param(member_row(""), "member_no", "empty", id="empty-member-no"),
    pytest.param(member_row("M#3"), "member_no", "not a valid", id="bad-member-no"),
    pytest.param(member_row("M" * 33), "member_no", "not a valid", id="member-no-too-long"),
    pytest.param(member_row("M3", name=""), "name", "empty", id="empty-name"),
    pytest.param(member_row("M3", name="名" * 101), "name", "100", id="name-too-long"),
    pytest.param(member_row("M3", phone=""), "phone", "7 to 15 digits", id="empty-phone"),
    pytest.param(member_row("M3", phone="138-1234-5678"), "phone", "digits", id="dashed-phone"),
    pytest.param(member_row("M3", phone="12345"), "phone", "digits", id="short-phone"),
    pytest.param(member_row("M3", phone="1381234567890123"), "phone", "digits", id="long-phone"),
    pytest.param(member_row("M3", id_number=""), "id_number", "18", id="empty-id"),
    pytest.param(member_row("M3", id_number="11010119900307123"), "id_number", "18", id="17"),
    pytest.param(member_row("M3", id_number="11010119900307123Y"), "id_number", "18", id="Y"),
    pytest.param(member_row("M3", birth_date="1990/03/07"), "birth_date", "YYYY", id="birth"),
    pytest.param(member_row("M3", birth_date="1990-02-30"), "birth_date", "YYYY", id="birth-30"),
    pytest.param(member_row("M3", birth_date=TOMORROW), "birth_date", "future", id="birth-future"),
    pytest.param(member_row("M3", registered_at=""), "registered_at", "empty", id="reg-empty"),
    pytest.param(
        member_row("M3", registered_at="2026/10/01"), "registered_at", "neither", id="reg-slashed"
    ),
    pytest.param(
        member_row("M3", registered_at="2026-02-30"), "registered_at", "neither", id="reg-feb-30"
    ),
    pytest.param(
        member_row("M3", registered_at="2026-10-01T09:00:00"),
        "registered_at",
        "UTC offset",
        id="reg-naive-timestamp",
    ),
    pytest.param(
        member_row("M3", registered_at="2026-10-01 09:00"),
        "registered_at",
        "UTC offset",
        id="reg-naive-with-space",
    ),
    pytest.param(
        member_row("M3", registered_at="2026-10-01T25:00:00+08:00"),
        "registered_at",
        "ISO 8601",
        id="reg-hour-25",
    ),
    pytest.param(
        member_row("M3", registered_at=TOMORROW), "registered_at", "future", id="reg-future"
    ),
    pytest.param(member_row("M3", credit_risk="2"), "credit_risk", "0, 1 or empty", id="risk-2"),
    pytest.param(member_row("M3", credit_risk="yes"), "credit_risk", "0, 1", id="risk-yes"),
    pytest.param(member_row("M3", branch_code="B99"), "branch_code", "unknown branch", id="branch"),
    pytest.param(
        member_row("M3", manager_username="nobody"),
        "manager_username",
        "unknown manager 'nobody'",
        id="manager",
    ),
]


@pytest.mark.parametrize(("bad_row", "field", "reason"), BAD_MEMBER_ROWS)
def test_a_bad_members_row_is_rejected_with_its_line_field_and_reason(
    import_csv, org, manager, bad_row, field, reason
):
    batch = import_csv(
        "members",
        feed("members", member_row("M1"), bad_row, member_row("M2", branch_code="B01")),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (3, 2, 0, 1)
    assert_reconciles(batch)
    assert rejected(batch) == [(3, field)]
    assert reason in only_reason(batch)
    assert set(Member.objects.values_list("member_no", flat=True)) == {"M1", "M2"}


def test_a_member_repeated_with_the_same_values_in_one_file_is_a_duplicate(import_csv, db):
    batch = import_csv("members", feed("members", member_row("M1"), member_row("M1")))

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 1, 0)
    assert Member.objects.count() == 1


def test_a_member_repeated_with_other_values_in_one_file_is_rejected(import_csv, db):
    batch = import_csv(
        "members",
        feed("members", member_row("M1"), member_row("M2"), member_row("M1", name="别人")),
    )

    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (3, 2, 0, 1)
    assert rejected(batch) == [(4, "member_no")]
    assert "line 2" in only_reason(batch)
    assert Member.objects.get(member_no="M1").name == "张三"


def test_a_rejected_members_row_shows_phone_and_id_number_masked(import_csv, db):
    batch = import_csv("members", feed("members", member_row("M1", credit_risk="maybe")))

    shown = batch.rejections.get().masked_raw()

    assert "13812345678" not in shown
    assert "110101199003071234" not in shown
    assert "138****5678" in shown
    assert shown.startswith("M1,张三,")


def test_a_rejected_members_row_with_shifted_columns_is_still_masked(import_csv, db):
    batch = import_csv(
        "members",
        feed("members", "M1,张三,,13812345678,110101199003071234,1990-03-07,2026-10-01,,,0"),
    )

    shown = batch.rejections.get().masked_raw()

    assert "13812345678" not in shown
    assert "110101199003071234" not in shown


@pytest.mark.parametrize("id_number", ["11010119900307123", "1101011990030712345"])
def test_a_row_rejected_for_a_mistyped_id_number_shows_it_masked(import_csv, db, id_number):
    batch = import_csv("members", feed("members", member_row("M1", id_number=id_number)))

    shown = batch.rejections.get().masked_raw()

    assert rejected(batch) == [(2, "id_number")]
    assert id_number not in shown


@pytest.mark.parametrize("phone", ["138-1234-5678", "138 1234 5678", "1381234567890123"])
def test_a_row_rejected_for_a_malformed_phone_shows_it_masked(import_csv, db, phone):
    batch = import_csv("members", feed("members", member_row("M1", phone=phone)))

    shown = batch.rejections.get().masked_raw()

    assert rejected(batch) == [(2, "phone")]
    assert phone not in shown
    assert "1234" not in shown.replace("110101199003071234", "")


def test_asset_rows_keep_amounts_readable_when_masked(import_csv, members):
    batch = import_csv("assets", feed("assets", "M1,2026-10-01,CASH,12345678.90"))

    assert batch.rejections.get().masked_raw() == "M1,2026-10-01,CASH,12345678.90"


# --- files that cannot be imported -----------------------------------------------------------


def _nothing_imported() -> None:
    assert not Member.objects.exclude(member_no__in=["M1", "M2"]).exists()
    assert not AssetBalance.objects.exists()
    assert not ConsumptionDay.objects.exists()
    assert not MemberActivityDay.objects.exists()
    assert not MemberMonthlyStat.objects.exists()
    assert not FeedRejection.objects.exists()
    assert not FeedBatch.objects.exclude(status=FeedStatus.FAILED).exists()
    assert not AuditEntry.objects.filter(action="feed.import").exists()


WRONG_HEADERS = [
    pytest.param("member_no,date,balance,category", id="columns-swapped"),
    pytest.param("member_no,date,category", id="column-missing"),
    pytest.param("member_no;date;category;balance", id="semicolons"),
    pytest.param("MEMBER_NO,DATE,CATEGORY,BALANCE", id="upper-case"),
    pytest.param("M1,2026-10-01,DEMAND,1.00", id="no-header"),
    pytest.param(CONSUMPTION_HEADER, id="another-kinds-header"),
]


@pytest.mark.parametrize("header", WRONG_HEADERS)
def test_a_file_with_the_wrong_header_fails_and_imports_nothing(import_csv, members, header):
    with pytest.raises(FeedFileError, match="header"):
        import_csv("assets", f"{header}\nM1,2026-10-01,DEMAND,1.00\n", name="bad.csv")

    failed = FeedBatch.objects.get()
    assert (failed.status, failed.kind, failed.file_name) == (
        FeedStatus.FAILED,
        "assets",
        "bad.csv",
    )
    assert "expected exactly 'member_no,date,category,balance'" in failed.error
    assert failed.finished_at is not None
    _nothing_imported()


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("members", feed("assets", "M1,2026-10-01,DEMAND,1.00")),
        ("members", MEMBERS_HEADER.replace(",credit_risk", "") + "\nM3,王五,13812345678,,,,,\n"),
        ("consumption", "member_no,date,amount\nM1,2026-10-01,1.00\n"),
        ("consumption", "member_no,date,count,amount\nM1,2026-10-01,1,1.00\n"),
    ],
)
def test_members_and_consumption_files_with_the_wrong_header_fail(import_csv, members, kind, text):
    with pytest.raises(FeedFileError, match="wrong header"):
        import_csv(kind, text)

    assert FeedBatch.objects.get().status == FeedStatus.FAILED
    assert HEADERS[kind] in FeedBatch.objects.get().error
    _nothing_imported()


@pytest.mark.parametrize("kind", ["members", "assets", "consumption"])
def test_an_empty_file_fails_naming_the_expected_header(import_csv, members, kind):
    with pytest.raises(FeedFileError, match="empty"):
        import_csv(kind, "")

    failed = FeedBatch.objects.get()
    assert failed.status == FeedStatus.FAILED
    assert "empty" in failed.error
    assert HEADERS[kind] in failed.error
    _nothing_imported()


def _gbk_after_good_rows(kind: str, good_rows: list[str], bad_row: str) -> bytes:
    """Many good UTF-8 rows, then one row in GBK (a common export mistake)."""
    good = feed(kind, *good_rows).encode("utf-8")
    return good + (bad_row + "\n").encode("gbk")


@pytest.mark.parametrize(
    ("kind", "good_rows", "bad_row"),
    [
        pytest.param(
            "members",
            [member_row(f"N{n:05d}", phone=f"139{n:08d}") for n in range(2_500)],
            member_row("M3", name="王五"),
            id="members",
        ),
        pytest.param(
            "assets",
            [
                row
                for member_no in ("M1", "M2")
                for category in ("DEMAND", "TIME", "WEALTH", "FUND", "BOND", "LOAN")
                for row in daily(member_no, category, "1.00", OCTOBER, date(2026, 10, 31))
            ],
            "M2,2026-10-01,DEMAND,1.00,备注",
            id="assets",
        ),
        pytest.param(
            "consumption",
            [
                f"{member_no},{date(2025, 1, 1) + timedelta(days=n)},1.00,1"
                for member_no in ("M1", "M2")
                for n in range(640)
            ],
            "M2,2026-10-01,1.00,1,消费",
            id="consumption",
        ),
    ],
)
def test_a_file_that_is_not_utf8_fails_and_imports_nothing(members, kind, good_rows, bad_row):
    data = _gbk_after_good_rows(kind, good_rows, bad_row)

    with pytest.raises(FeedFileError, match="UTF-8"):
        feed_import(kind=kind, file=io.BytesIO(data), file_name="gbk.csv")

    failed = FeedBatch.objects.get()
    assert failed.status == FeedStatus.FAILED
    assert "UTF-8" in failed.error
    _nothing_imported()


def test_a_file_fixed_after_a_failure_imports_normally(import_csv, members):
    with pytest.raises(FeedFileError):
        import_csv("assets", "member_no,date,balance\nM1,2026-10-01,1.00\n")

    batch = import_csv("assets", feed("assets", "M1,2026-10-01,DEMAND,1.00"))

    assert (batch.status, batch.accepted) == (FeedStatus.LOADED, 1)
    assert FeedBatch.objects.filter(status=FeedStatus.FAILED).count() == 1


def test_an_unknown_feed_kind_is_refused(import_csv):
    with pytest.raises(FeedFileError, match="unknown feed kind"):
        import_csv("balances", feed("assets"))


@pytest.mark.parametrize("kind", ["members", "assets", "consumption"])
def test_a_row_with_a_nul_character_is_accounted_for_like_any_other_row(members, kind):
    bad = {
        "members": member_row("M3", name="王\x00五"),
        "assets": "M\x001,2026-10-01,DEMAND,1.00",
        "consumption": "M1,2026-10-01,1.00,1\x00",
    }[kind]
    good = {
        "members": member_row("M4"),
        "assets": "M2,2026-10-01,DEMAND,1.00",
        "consumption": "M2,2026-10-01,1.00,1",
    }[kind]
    data = feed(kind, good, bad).encode("utf-8")

    batch = feed_import(kind=kind, file=io.BytesIO(data), file_name="nul.csv")

    assert batch.status == FeedStatus.LOADED
    assert batch.received == 2
    assert batch.accepted >= 1
    assert_reconciles(batch)


# --- audit -------------------------------------------------------------------------------------


def test_every_import_is_audited_with_its_counts_and_who_imported_it(
    import_csv, members, make_user
):
    operator = make_user(username="ops")

    batch = import_csv(
        "assets",
        feed(
            "assets", "M1,2026-10-01,DEMAND,1.00", "M1,2026-10-01,DEMAND,1", "M9,2026-10-01,BOND,1"
        ),
        actor=operator,
    )

    entry = AuditEntry.objects.get(action="feed.import")
    assert (entry.actor, entry.object_id) == (operator, str(batch.pk))
    assert entry.object_type == "members.feedbatch"
    assert entry.changes == {"received": 3, "accepted": 1, "duplicates": 1, "rejected": 1}
    assert batch.imported_by == operator


def test_a_duplicate_file_is_audited_too(import_csv, members):
    text = feed("assets", "M1,2026-10-01,DEMAND,1.00")
    import_csv("assets", text)

    again = import_csv("assets", text)

    entries = AuditEntry.objects.filter(action="feed.import")
    assert entries.count() == 2
    assert entries.filter(object_id=str(again.pk)).get().changes["duplicates"] == 1


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_imports_of_one_assets_file_store_each_row_once():
    for member_no in ("M1", "M2"):
        MemberFactory(member_no=member_no)
    rows = [
        *daily("M1", "DEMAND", "1000.00", OCTOBER, date(2026, 10, 31)),
        *daily("M2", "FUND", "250.00", OCTOBER, date(2026, 10, 15)),
    ]
    data = feed("assets", *rows).encode("utf-8")
    barrier = threading.Barrier(2)
    lock = threading.Lock()
    outcome: dict[str, list] = {"batches": [], "errors": []}

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            batch = feed_import(kind="assets", file=io.BytesIO(data), file_name="race.csv")
            with lock:
                outcome["batches"].append(batch.pk)
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            with lock:
                outcome["errors"].append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert outcome["errors"] == []
    batches = {b.status: b for b in FeedBatch.objects.filter(pk__in=outcome["batches"])}
    assert set(batches) == {FeedStatus.LOADED, FeedStatus.DUPLICATE_FILE}
    loaded, duplicate = batches[FeedStatus.LOADED], batches[FeedStatus.DUPLICATE_FILE]
    assert (loaded.received, loaded.accepted, loaded.duplicates) == (46, 46, 0)
    assert (duplicate.received, duplicate.accepted, duplicate.duplicates) == (46, 0, 46)
    assert AssetBalance.objects.count() == 46
    assert stat("M1").financial_day_sum_fen == 31 * 100_000
    assert stat("M1").asset_days == 31
    assert stat("M2").fund_day_sum_fen == 15 * 25_000
