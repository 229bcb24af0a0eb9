"""The KPI dashboard `/dashboard/` and its CSV exports `/dashboard/<chart>.csv`
(operations/dashboard/): who may open them, what they show with and without a nightly
snapshot, that every export holds the snapshot's figures, and that neither the page nor an
export costs more queries for a larger bank (they read the snapshot, never the members).

The bank is tests/operations/test_kpi.py's `seed_small_bank` (six customers, business date
26 November 2026); every expected row below is worked out from its table there.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.utils.translation import override

from benefits.models import Benefit, Budget
from campaigns.choices import CampaignStatus
from campaigns.holdout import Holdout
from campaigns.models import Campaign
from campaigns.services.outcomes import campaign_audience_record, campaign_outcomes_record
from members.choices import LifecycleStage
from operations.dashboard import KPI_CHARTS, kpi_snapshot_compute
from portal.choices import Role
from tests.operations.test_kpi import BUSINESS_DATE, grow_bank, seed_small_bank

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
ALLOWED = {
    Role.BRANCH_MANAGER,
    Role.PRODUCT_OPERATOR,
    Role.BUDGET_APPROVER,
    Role.RISK_AUDITOR,
    Role.ADMINISTRATOR,
}
SUPERUSER = "superuser"


#: the small bank's campaign holds out half its audience with this key (groups known below)
HOLDOUT_KEY = "5eed" * 8


def held_out_members() -> set[str]:
    holdout = Holdout(HOLDOUT_KEY, 50)
    return {no for no in ("KPIM1", "KPIM2", "KPIM3", "KPIM4", "KPIM5", "KPIM6")
            if holdout.holds_out(no)}  # fmt: skip


def measure_against_holdout(campaign: Campaign | None = None) -> Campaign:
    """C-KPI (or `campaign`) holds out half its audience: recorded on the eve of its window
    (31 October), its outcomes counted on the business date."""
    campaign = campaign or Campaign.objects.get(code="C-KPI")
    Campaign.objects.filter(pk=campaign.pk).update(holdout_share=50, holdout_key=HOLDOUT_KEY)
    campaign_audience_record(campaign_id=campaign.pk, on=date(2026, 10, 31))
    campaign_outcomes_record(business_date=BUSINESS_DATE)
    return campaign


@pytest.fixture
def snapshot(org):
    world = seed_small_bank(org)
    measure_against_holdout()
    world["snapshot"] = kpi_snapshot_compute(business_date=BUSINESS_DATE)
    return world


def login(client, make_user, role):
    if role == SUPERUSER:
        user = make_user(None, is_superuser=True)
    elif role == Role.BRANCH_MANAGER:
        user = make_user(role, branch="B01")
    else:
        user = make_user(role)
    client.force_login(user)
    return user


def read_csv(response) -> tuple[str, list[list[str]]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return text[:1], list(csv.reader(io.StringIO(text[1:])))


# --- who may open it ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [*Role, SUPERUSER], ids=lambda r: getattr(r, "name", r))
@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/lifecycle.csv"])
def test_the_dashboard_is_open_to_managers_product_budget_risk_and_admin_only(
    client, make_user, snapshot, role, url
):
    login(client, make_user, role)

    response = client.get(url)

    assert response.status_code == (200 if role == SUPERUSER or role in ALLOWED else 403)


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/lifecycle.csv"])
def test_anonymous_user_is_sent_to_the_login_page(client, db, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_the_navigation_shows_the_dashboard_to_those_who_may_open_it(client, make_user, org):
    login(client, make_user, Role.PRODUCT_OPERATOR)
    assert 'href="/dashboard/"' in client.get("/", **EN).content.decode()

    login(client, make_user, Role.ACCOUNT_MANAGER)
    assert 'href="/dashboard/"' not in client.get("/", **EN).content.decode()


# --- the page ------------------------------------------------------------------------------------


def test_without_a_snapshot_the_page_says_how_to_produce_one(client, make_user, org):
    login(client, make_user, Role.PRODUCT_OPERATOR)

    response = client.get("/dashboard/", **EN)

    assert response.status_code == 200
    page = response.content.decode()
    assert "No KPI snapshot yet" in page
    assert "manage.py run_nightly" in page and "tonight" in page
    assert client.get("/dashboard/lifecycle.csv").status_code == 404


def test_the_page_shows_every_chart_with_its_numbers_and_csv_link(client, make_user, snapshot):
    login(client, make_user, Role.PRODUCT_OPERATOR)

    response = client.get("/dashboard/", **EN)

    assert response.status_code == 200
    page = response.content.decode()
    assert "business date 2026-11-26" in page
    for chart in KPI_CHARTS:
        assert f'href="/dashboard/{chart}.csv"' in page, chart
    for title in (
        "Tier distribution",
        "Tier migration, last month → this month",
        "Lifecycle funnel",
        "Dormant trend",
        "Campaign effectiveness",
        "Benefit differentiation",
        "Benefit demand",
        "Budget burn-down",
    ):
        assert title in page
    assert page.count("<svg") >= 8  # the charts are drawn on the server
    # numbers without JavaScript: the budget, in CNY with 2 decimals and grouped thousands
    assert "CNY 2,400.00 / CNY 5,000.00" in page
    assert "2026-12-20" in page  # projected exhaustion
    gift = Benefit.objects.get(code="GIFT").name_en
    assert f"⚑ {gift}" in page  # low demand flagged, by its name
    assert "C-KPI" in page and "Private banking" in page


def test_the_page_formats_numbers_in_chinese_by_default(client, make_user, snapshot):
    login(client, make_user, Role.BUDGET_APPROVER)

    page = client.get("/dashboard/").content.decode()

    # amounts in yuan, grouped by thousands, 2 decimals (portal.display.money_text)
    assert "¥2,400.00 / ¥5,000.00" in page
    assert "金卡" in page  # tier names in zh-Hans


# --- the CSV exports ----------------------------------------------------------------------


def expected_exports() -> dict[str, list[list[str]]]:
    """Header and rows of every export for the seeded bank in English, worked out by hand:
    headings for people (with the unit of money and percentages), names beside codes."""
    benefit = dict(Benefit.objects.values_list("code", "name_en"))
    with override("en"):
        stage = {value: str(label) for value, label in LifecycleStage.choices}
        active = str(CampaignStatus.ACTIVE.label)
    campaign = Campaign.objects.get(code="C-KPI").name
    department = Budget.objects.get(code="BUD-NOV").department.name
    tiers = ["Standard", "Gold", "Sunflower", "Private banking", "Not graded"]
    burn = []
    for day in range(1, 27):
        burn.append(
            [
                "BUD-NOV",
                "Budget BUD-NOV",
                f"2026-11-{day:02d}",
                "100.00",
                f"{day * 100}.00",
                f"{5000 - day * 100}.00",
            ]
        )
    return {
        "tier-distribution": [
            ["Tier code", "Tier", "Members", "Share (%)"],
            ["STANDARD", "Standard", "2", "33.3"],
            ["GOLD", "Gold", "2", "33.3"],
            ["SUNFLOWER", "Sunflower", "1", "16.7"],
            ["PRIVATE", "Private banking", "0", "0.0"],
            ["", "Not graded", "1", "16.7"],
        ],
        "tiers-by-branch": [
            ["Branch code", "Branch", *tiers, "Total"],
            ["B01", "北京分行", "2", "1", "0", "0", "0", "3"],
            ["B02", "上海分行", "0", "1", "1", "0", "1", "3"],
        ],
        "tier-trend": [
            ["Business date", *tiers[:-1], "Members"],
            ["2026-11-26", "2", "2", "1", "0", "6"],
        ],
        "tier-migration": [
            [
                "Tier code at the end of last month",
                "Tier at the end of last month",
                "Tier code on the business date",
                "Tier on the business date",
                "Members",
            ],
            ["", "Not graded before", "", "Not graded", "1"],
            ["", "Not graded before", "STANDARD", "Standard", "1"],
            ["STANDARD", "Standard", "GOLD", "Gold", "1"],
            ["STANDARD", "Standard", "STANDARD", "Standard", "1"],
            ["SUNFLOWER", "Sunflower", "GOLD", "Gold", "1"],
            ["SUNFLOWER", "Sunflower", "SUNFLOWER", "Sunflower", "1"],
        ],
        "lifecycle": [
            ["Stage code", "Lifecycle stage", "Members", "Share (%)"],
            ["NEW", stage["NEW"], "2", "33.3"],
            ["ACTIVE", stage["ACTIVE"], "1", "16.7"],
            ["AT_RISK", stage["AT_RISK"], "1", "16.7"],
            ["DORMANT", stage["DORMANT"], "2", "33.3"],
            ["CHURNED", stage["CHURNED"], "0", "0.0"],
            ["REACTIVATED", stage["REACTIVATED"], "0", "0.0"],
        ],
        "lifecycle-by-tier": [
            ["Stage code", "Lifecycle stage", *tiers, "Total"],
            ["NEW", stage["NEW"], "1", "0", "0", "0", "1", "2"],
            ["ACTIVE", stage["ACTIVE"], "0", "1", "0", "0", "0", "1"],
            ["AT_RISK", stage["AT_RISK"], "0", "0", "1", "0", "0", "1"],
            ["DORMANT", stage["DORMANT"], "1", "1", "0", "0", "0", "2"],
            ["CHURNED", stage["CHURNED"], "0", "0", "0", "0", "0", "0"],
            ["REACTIVATED", stage["REACTIVATED"], "0", "0", "0", "0", "0", "0"],
        ],
        "dormant-trend": [
            ["Business date", "Members", "Dormant", "At risk", "Churned", "Reactivated"],
            ["2026-11-26", "6", "2", "1", "0", "0"],
        ],
        "campaigns": [
            [
                "Campaign code",
                "Campaign",
                "Status",
                "Participants",
                "Completers",
                "Completion rate (%)",
                "Cost (CNY)",
                "Dormant members reactivated",
                "Cost per reactivation (CNY)",
            ],
            ["C-KPI", campaign, active, "0", "0", "", "0.00", "0", ""],
        ],
        "campaign-uplift": [
            [
                "Campaign code",
                "Campaign",
                "Measured until",
                "Offered the campaign",
                "Held out",
                "Reactivated, offered (%)",
                "Reactivated, held out (%)",
                "Uplift (percentage points)",
                "Interval from (points)",
                "Interval to (points)",
                "Verdict",
                "Incremental reactivations",
                "Cost per incremental reactivation (CNY)",
            ],
            # HOLDOUT_KEY holds out M2 (dormant) and M6 (`held_out_members`); M3 is the one
            # dormant member offered; nobody was active in November: 0 % against 0 % of one
            [
                "C-KPI",
                campaign,
                "2026-11-26",
                "4",
                "2",
                "0.0",
                "0.0",
                "0.0",
                "0.0",
                "0.0",
                "Sample too small",
                "0",
                "",
            ],
        ],  # fmt: skip
        "differentiation": [
            [
                "From tier code",
                "From tier",
                "To tier code",
                "To tier",
                "New benefits",
                "Only more of",
                "Added cost per member a year (CNY)",
                "Nothing new",
            ],
            # LOUNGE costs 100.00, once a month: 1,200.00 a year
            ["STANDARD", "Standard", "GOLD", "Gold", benefit["LOUNGE"], "", "1200.00", "No"],
            ["GOLD", "Gold", "SUNFLOWER", "Sunflower", "", "", "-1200.00", "Yes"],
            ["SUNFLOWER", "Sunflower", "PRIVATE", "Private banking", "", "", "0.00", "Yes"],
        ],
        "demand": [
            [
                "Benefit code",
                "Benefit",
                "Granted",
                "Redeemed",
                "Redemption rate (%)",
                "Low demand",
            ],
            ["GIFT", benefit["GIFT"], "2", "0", "0.0", "Yes"],
            ["LOUNGE", benefit["LOUNGE"], "3", "2", "66.7", "No"],
        ],
        "demand-by-tier": [
            [
                "Benefit code",
                "Benefit",
                "Tier code",
                "Tier",
                "Granted",
                "Redeemed",
                "Redemption rate (%)",
                "Low demand",
            ],
            ["GIFT", benefit["GIFT"], "STANDARD", "Standard", "2", "0", "0.0", "Yes"],
            ["LOUNGE", benefit["LOUNGE"], "GOLD", "Gold", "3", "2", "66.7", "No"],
        ],
        "budgets": [
            [
                "Budget code",
                "Budget",
                "Department",
                "Period start",
                "Period end",
                "Amount (CNY)",
                "Consumed (CNY)",
                "Remaining (CNY)",
                "Share consumed (%)",
                "Daily burn, last 30 days (CNY)",
                "Projected exhaustion",
                "Runs out before the period ends",
            ],
            [
                "BUD-NOV",
                "Budget BUD-NOV",
                department,
                "2026-11-01",
                "2026-12-31",
                "5000.00",
                "2600.00",
                "2400.00",
                "52.0",
                "100.00",
                "2026-12-20",
                "Yes",
            ],
        ],
        "budget-burn": [
            [
                "Budget code",
                "Budget",
                "Date",
                "Net consumed that day (CNY)",
                "Consumed to date (CNY)",
                "Remaining (CNY)",
            ],
            *burn,
        ],
    }


@pytest.mark.parametrize("chart", KPI_CHARTS)
def test_every_csv_export_has_the_header_and_the_rows_of_the_snapshot(
    client, make_user, snapshot, chart
):
    login(client, make_user, Role.RISK_AUDITOR)

    response = client.get(f"/dashboard/{chart}.csv", **EN)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="{chart}-20261126.csv"' in response["Content-Disposition"]
    bom, lines = read_csv(response)
    assert bom == "\ufeff"
    assert lines == expected_exports()[chart]


def test_an_unknown_chart_is_not_found(client, make_user, snapshot):
    login(client, make_user, Role.ADMINISTRATOR)

    assert client.get("/dashboard/members.csv").status_code == 404


def test_a_text_cell_that_looks_like_a_formula_is_quoted(client, make_user, snapshot):
    Campaign.objects.filter(code="C-KPI").update(name="=HYPERLINK(1)")
    kpi_snapshot_compute(business_date=BUSINESS_DATE)
    login(client, make_user, Role.PRODUCT_OPERATOR)

    _bom, lines = read_csv(client.get("/dashboard/campaigns.csv"))

    assert lines[1][1] == "'=HYPERLINK(1)"


# --- the cost does not grow with the bank -------------------------------------------------

#: queries of the page or an export: session, user, roles, the snapshot, the trend, the
#: session saved back (an UPDATE in a savepoint), and on the page the notice of a tier scheme
#: waiting for its effective night
MAX_QUERIES = 9


@pytest.mark.parametrize("size", [3, 30])
def test_the_page_and_every_export_cost_a_fixed_number_of_queries(
    client, make_user, org, django_assert_max_num_queries, size
):
    grow_bank(org, size)
    measure_against_holdout(Campaign.objects.order_by("pk").first())
    for offset in range(size):  # as many daily snapshots for the trend
        kpi_snapshot_compute(business_date=BUSINESS_DATE - timedelta(days=offset))
    login(client, make_user, Role.PRODUCT_OPERATOR)

    with django_assert_max_num_queries(MAX_QUERIES):
        page = client.get("/dashboard/")
    assert page.status_code == 200
    for chart in KPI_CHARTS:
        with django_assert_max_num_queries(MAX_QUERIES):
            export = client.get(f"/dashboard/{chart}.csv")
            _bom, lines = read_csv(export)
        assert export.status_code == 200
        assert len(lines) > 1, chart  # header and rows


def test_the_small_banks_holdout_is_the_one_its_export_is_worked_out_from():
    assert held_out_members() == {"KPIM2", "KPIM6"}
