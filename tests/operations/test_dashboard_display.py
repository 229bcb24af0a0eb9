"""What people read on the KPI dashboard `/dashboard/` and in its CSV exports, in 简体中文
and in English: money as ¥ / CNY with 2 decimals, percentages with %, tiers, lifecycle
stages, departments, benefits and campaign statuses by name (never their codes), charts
with labelled axes and the month in progress marked month to date, and — after
`seed_demo` — trends that have a history rather than a single point.

The bank is tests/operations/test_kpi.py's `seed_small_bank` (six customers, business date
26 November 2026); the trend test seeds the demo bank once for the module.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from benefits.models import Budget
from operations.dashboard import kpi_series, kpi_snapshot_compute
from operations.dashboard.svg import nice_ticks
from operations.demo import demo_kpi_history_dates
from portal.choices import Role
from portal.models import Department, KpiSnapshot, User
from tests.crawl import visible_text
from tests.operations.test_kpi import BUSINESS_DATE, seed_small_bank
from tests.reference import ensure_reference_data

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
#: codes of the small bank that the page must show by name
CODES = {
    "STANDARD",
    "GOLD",
    "SUNFLOWER",
    "PRIVATE",
    "NEW",
    "ACTIVE",
    "AT_RISK",
    "DORMANT",
    "CHURNED",
    "REACTIVATED",
    "RETAIL",
    "LOUNGE",
    "GIFT",
    "UPGRADE",
    "OVERRIDE",
}
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dashboard(org, client, make_user):
    """The small bank with its budget in the retail department, a snapshot at the end of
    October and one on the business date, and a product operator logged in."""
    world = seed_small_bank(org)
    retail, _ = Department.objects.get_or_create(code="RETAIL", defaults={"name": "零售银行部"})
    Budget.objects.filter(code="BUD-NOV").update(department=retail)
    kpi_snapshot_compute(business_date=date(2026, 10, 31))
    kpi_snapshot_compute(business_date=BUSINESS_DATE)
    client.force_login(make_user(Role.PRODUCT_OPERATOR))
    return world


def page_text(client, headers) -> str:
    return "\n".join(visible_text(client.get("/dashboard/", **headers).content.decode()))


def read_csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]+", text))


# --- money, percentages, names -------------------------------------------------------------


def test_in_chinese_the_dashboard_shows_yuan_percentages_and_names_not_codes(client, dashboard):
    text = page_text(client, ZH)

    assert "¥2,400.00 / ¥5,000.00" in text  # the budget's remaining / amount
    assert "¥100.00" in text  # its daily burn
    assert "已消耗 52%" in text
    assert "33.3%" in text  # a tier's share of the members
    for name in (
        "普卡",
        "金卡",
        "金葵花",
        "沉睡",
        "流失预警",
        "零售银行部",
        "客户数",
        "本月至今升级",
    ):
        assert name in text, name
    assert not words(text) & CODES, words(text) & CODES
    assert "CNY" not in text


def test_in_english_the_dashboard_shows_cny_and_english_names(client, dashboard):
    text = page_text(client, EN)

    assert "CNY 2,400.00 / CNY 5,000.00" in text
    assert "52% consumed" in text
    for name in ("Standard", "Gold", "Sunflower", "Private banking", "Dormant", "At risk"):
        assert name in text, name
    assert "金卡" not in text and "沉睡" not in text and "¥" not in text
    assert not words(text) & CODES, words(text) & CODES


def test_a_code_shown_beside_a_campaign_or_budget_name_is_grey_and_never_translated(
    client, dashboard
):
    page = client.get("/dashboard/", **ZH).content.decode()

    assert '<span class="code" translate="no">C-KPI</span>' in page
    assert '<span class="code" translate="no">BUD-NOV</span>' in page


# --- charts --------------------------------------------------------------------------------


def line_charts(page: str) -> list[str]:
    return re.findall(r'<svg class="dash-line".*?</svg>', page, flags=re.S)


def tick_labels(chart: str) -> list[str]:
    return re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart)


def test_the_trend_charts_have_value_and_month_axes(client, dashboard):
    page = client.get("/dashboard/", **ZH).content.decode()

    charts = line_charts(page)
    assert len(charts) == 2  # the tier trend and the dormant trend
    for chart in charts:
        labels = tick_labels(chart)
        assert "0" in labels and len([t for t in labels if t.isdigit()]) >= 2  # y-axis values
        assert "2026年10月" in labels and "2026年11月" in labels  # x-axis months
    english = line_charts(client.get("/dashboard/", **EN).content.decode())
    assert "October 2026" in tick_labels(english[0])


def test_the_month_in_progress_is_labelled_month_to_date(client, dashboard):
    zh_page = client.get("/dashboard/", **ZH).content.decode()
    en_page = client.get("/dashboard/", **EN).content.decode()

    for chart in line_charts(zh_page):
        assert 'class="mtd"' in chart and "本月至今" in chart
    assert "本月至今，截至 2026-11-26" in zh_page  # in the legend too
    assert "Month to date, up to 2026-11-26" in en_page


def test_a_month_that_is_over_is_not_marked_month_to_date(client, dashboard):
    kpi_snapshot_compute(business_date=date(2026, 11, 30))

    page = client.get("/dashboard/", **EN).content.decode()

    assert "Month to date" not in page


def test_y_axis_steps_are_round_and_reach_the_largest_value():
    assert nice_ticks(37) == [0, 10, 20, 30, 40]
    assert nice_ticks(6) == [0, 2, 4, 6]
    assert nice_ticks(1_930) == [0, 500, 1_000, 1_500, 2_000]
    assert nice_ticks(0) == [0, 1]


# --- CSV exports ---------------------------------------------------------------------------


def test_csv_headers_and_values_are_in_the_users_language(client, dashboard):
    tiers = read_csv(client.get("/dashboard/tier-distribution.csv", **ZH))
    budgets = read_csv(client.get("/dashboard/budgets.csv", **ZH))
    demand = read_csv(client.get("/dashboard/demand.csv", **EN))

    assert tiers[0] == ["等级代码", "等级", "客户数", "占比（%）"]
    assert tiers[2] == ["GOLD", "金卡", "2", "33.3"]
    assert budgets[0][:3] == ["预算代码", "预算", "部门"]
    assert "金额（元）" in budgets[0]
    row = dict(zip(budgets[0], budgets[1], strict=True))
    assert row["部门"] == "零售银行部"
    assert row["剩余（元）"] == "2400.00"
    assert row["将在期末前用尽"] == "是"
    assert demand[0] == [
        "Benefit code",
        "Benefit",
        "Granted",
        "Redeemed",
        "Redemption rate (%)",
        "Low demand",
    ]
    assert [line[-1] for line in demand[1:]] == ["Yes", "No"]


def test_the_campaign_export_gives_the_status_by_name(client, dashboard):
    zh_lines = read_csv(client.get("/dashboard/campaigns.csv", **ZH))
    en_lines = read_csv(client.get("/dashboard/campaigns.csv", **EN))

    assert zh_lines[0][:3] == ["活动代码", "活动", "状态"]
    assert zh_lines[1][2] == "进行中"
    assert en_lines[1][2] == "Active"
    assert "Cost (CNY)" in en_lines[0]


# --- the demo's history ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_bank(django_db_setup, django_db_blocker) -> Iterator[None]:
    """`seed_demo` alone (no nightly run), in a transaction rolled back after the module."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        ensure_reference_data()
        call_command(
            "seed_demo",
            "--members",
            "40",
            "--seed",
            "7",
            "--as-of",
            "2026-11-26",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        yield
        transaction.set_rollback(True)


def test_after_seed_demo_the_tier_and_dormant_trends_have_their_history(demo_bank, client):
    client.force_login(User.objects.get(username="operator"))

    series = kpi_series()
    tier_trend = read_csv(client.get("/dashboard/tier-trend.csv", **EN))
    dormant_trend = read_csv(client.get("/dashboard/dormant-trend.csv", **EN))

    days = [point.business_date for point in series]
    assert len(days) > 10
    assert date(2026, 10, 31) in days  # a month-end
    assert days[-1] == date(2026, 11, 25)  # up to the night before the as-of date
    assert sum(series[-1].tiers.values()) == 40 == series[-1].members
    assert len(tier_trend) == len(dormant_trend) == len(days) + 1  # and the header
    # the last night's snapshot was taken after the campaigns were created
    latest = KpiSnapshot.objects.get(business_date=date(2026, 11, 25))
    assert latest.data["campaigns"]


def test_the_demo_history_has_every_month_end_and_the_last_days():
    days = demo_kpi_history_dates(first=date(2026, 10, 2), as_of=date(2026, 11, 26))

    assert days[0] == date(2026, 10, 2) and days[-1] == date(2026, 11, 25)
    assert date(2026, 10, 31) in days
    assert [date(2026, 11, d) for d in range(19, 26)] == days[-7:]
    assert len(days) == len(set(days)) == 16
