"""Screenshots of the pages people use all day, in both languages, for the README
(docs/screenshots/): the account manager's workbench, the customer 360 page, the
dashboard, an approval, the budgets admin and a campaign's effect. Each is taken after
checking that the page shows its data in that language."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from benefits.services import budget_consume, budget_increase_request, grant_create
from campaigns.services.outcomes import campaign_outcomes_record
from members.models import FollowUpNote, Tier
from operations.dashboard import kpi_snapshot_compute
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.periods import add_months, month_start
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    DepartmentFactory,
    MemberFactory,
    MemberMonthlyStatFactory,
)
from tests.uplift_data import behave, measured_campaign, population

from .conftest import BROWSER_TEST, login

pytestmark = BROWSER_TEST

LANGUAGES = {"en": "English", "zh-hans": "简体中文"}
NAMES = ["王小明", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "黄磊"]
STAGES = ["DORMANT", "ACTIVE", "NEW", "AT_RISK", "ACTIVE", "DORMANT", "REACTIVATED", "ACTIVE"]


@pytest.fixture
def bank(org, make_user):
    """One account manager's book of eight customers with a year of figures, notes and a
    benefit about to expire, and the KPI snapshot of today."""
    today = today_in_shanghai()
    am = make_user(Role.ACCOUNT_MANAGER, username="am_zhang", first_name="张丽")
    tiers = list(Tier.objects.filter(scheme__status="ACTIVE").order_by("rank"))
    lounge = BenefitFactory(code="LOUNGE", name="机场贵宾厅", name_en="Airport lounge")
    members = []
    for index, (name, stage) in enumerate(zip(NAMES, STAGES, strict=True)):
        tier = tiers[index % 3]
        upper = tiers[index % 3 + 1]
        member = MemberFactory(
            member_no=f"M00008{index:02d}",
            name=name,
            branch=org["B01S1"],
            account_manager=am,
            lifecycle_stage=stage,
            tier=tier,
            tier_since=today - timedelta(days=40 * (index + 1)),
            tier_basis=int(upper.threshold * (0.93 if index % 2 else 0.5)),
            tier_months_below=1 if index == 3 else 0,
            last_active_on=today - timedelta(days=5 + 40 * (stage == "DORMANT") * (index + 3)),
            points_balance=120 * index,
        )
        for months_back in range(1, 13):
            mada_fen = (tier.threshold or 2_000_000) * (100 + 7 * months_back % 40) // 100
            MemberMonthlyStatFactory(
                member=member,
                month=add_months(month_start(today), -months_back),
                financial_day_sum_fen=mada_fen * 30,
                asset_days=30,
                active_days=(months_back * 3 + index) % 20,
            )
        members.append(member)
    FollowUpNote.objects.create(
        member=members[0],
        author=am,
        text="电话回访：理财产品下月到期，约到网点面谈续作",
        due_on=today + timedelta(days=1),
    )
    FollowUpNote.objects.create(
        member=members[5], author=am, text="沉睡客户，推荐签到任务", due_on=today
    )
    grant_create(
        member=members[1],
        benefit=lounge,
        budget=lounge.budget,
        source="MANUAL",
        idempotency_key="shot-lounge",
        expires_on=today + timedelta(days=6),
        actor=am,
    )
    kpi_snapshot_compute(business_date=today)
    return {"am": am, "members": members}


def switch_language(page: Page, code: str) -> None:
    page.get_by_label("Language" if code == "zh-hans" else "语言").select_option(
        label=LANGUAGES[code]
    )
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_workbench_and_customer_360_in_both_languages(page: Page, live_server, bank, screenshot):
    login(page, live_server, bank["am"])
    expect(page.locator("#list-dormant")).to_contain_text("王小明")
    expect(page.locator("#followups")).to_contain_text("理财产品下月到期")
    screenshot(page, "workbench-en")
    page.goto(f"{live_server.url}/members/M0000800/")
    expect(page.get_by_role("heading", name="王小明 M0000800")).to_be_visible()
    expect(page.locator("svg.trend rect")).to_have_count(12)
    screenshot(page, "customer-360-en")

    switch_language(page, "zh-hans")

    expect(page.get_by_role("heading", name="近 12 个月月日均资产")).to_be_visible()
    screenshot(page, "customer-360-zh-hans")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="本周待跟进")).to_be_visible()
    expect(page.locator("#list-dormant")).to_contain_text("沉睡客户")
    screenshot(page, "workbench-zh-hans")


def test_dashboard_in_both_languages(page: Page, live_server, bank, make_user, screenshot):
    login(page, live_server, make_user(Role.PRODUCT_OPERATOR, username="po_zhou", branch="HO"))
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("heading", name="Tier distribution", exact=True)).to_be_visible()
    screenshot(page, "dashboard-en")

    switch_language(page, "zh-hans")

    expect(page.get_by_role("heading", name="等级分布", exact=True)).to_be_visible()
    screenshot(page, "dashboard-zh-hans")


@pytest.fixture
def budgets(org, make_user):
    """Two budgets of the retail department, one with spending, and a raise of the lounge
    budget proposed by one budget approver, waiting for another."""
    maker = make_user(
        Role.BUDGET_APPROVER, username="ba_zhou", branch="HO", first_name="敏", last_name="周"
    )
    approver = make_user(
        Role.BUDGET_APPROVER, username="ba_wu", branch="HO", first_name="磊", last_name="吴"
    )
    retail = DepartmentFactory(code="RETAIL", name="零售银行部")
    lounge = BudgetFactory(
        code="LOUNGE-2026", name="贵宾厅预算", department=retail, amount_fen=3_000_000_00
    )
    BudgetFactory(code="CARD-2026", name="信用卡活动预算", department=retail, amount_fen=500_000_00)
    budget_consume(budget=lounge, amount_fen=1_234_567_89, source="spent")
    approval = budget_increase_request(budget=lounge, amount=Decimal("4500000.00"), actor=maker)
    return {"approver": approver, "approval": approval}


def test_an_approval_and_the_budgets_admin_in_both_languages(
    page: Page, live_server, budgets, screenshot
):
    login(page, live_server, budgets["approver"])
    page.goto(f"{live_server.url}/approvals/{budgets['approval'].pk}/")  # the browser's English
    expect(page.locator("main")).to_contain_text("CNY 4,500,000.00")
    expect(page.locator("main")).to_contain_text("周敏")
    screenshot(page, "approval-en")
    page.goto(f"{live_server.url}/admin/benefits/budget/")
    expect(page.locator("#result_list")).to_contain_text("CNY 3,000,000.00")
    screenshot(page, "budgets-admin-en")

    page.goto(f"{live_server.url}/approvals/{budgets['approval'].pk}/")
    switch_language(page, "zh-hans")

    expect(page.locator("main")).to_contain_text("¥4,500,000.00")
    screenshot(page, "approval-zh-hans")
    page.goto(f"{live_server.url}/admin/benefits/budget/")
    expect(page.locator("#result_list")).to_contain_text("¥3,000,000.00")
    expect(page.locator("#result_list")).to_contain_text("零售银行部")
    screenshot(page, "budgets-admin-zh-hans")


def test_a_campaigns_effect_in_both_languages(page: Page, live_server, make_user, screenshot):
    """A reactivation campaign that held out half its audience, measured night by night."""
    campaign = measured_campaign(population(1200))
    campaign.name = "沉睡客户唤醒"
    campaign.save(update_fields=["name"])
    behave(campaign, treated=0.32, held=0.2, seed=16)
    last = campaign.ends_on + timedelta(days=campaign.follow_up_days)
    day = campaign.starts_on
    while day <= last:
        campaign_outcomes_record(business_date=day)
        day += timedelta(days=1)
    login(page, live_server, make_user(Role.PRODUCT_OPERATOR, username="po_zhou", branch="HO"))
    page.goto(f"{live_server.url}/campaigns/{campaign.code}/effect/")
    expect(page.locator("main")).to_contain_text("Significant uplift")
    expect(page.locator("svg.dash-line polyline")).to_have_count(2)
    screenshot(page, "campaign-effect-en")

    switch_language(page, "zh-hans")

    expect(page.locator("main")).to_contain_text("显著提升")
    screenshot(page, "campaign-effect-zh-hans")
