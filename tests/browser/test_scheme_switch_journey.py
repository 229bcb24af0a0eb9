"""A tier scheme switch in the browser (issue 14's journey): a product operator simulates the
POINTS draft from its page, decides the new tiers' entitlements, proposes it for the next
night; a colleague opens the approval, reads the migration, the cost before and after and
the manual tiers that end, and approves; every page then says when the new scheme takes
effect; after that night the account manager's workbench lists the manual tier it ended."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from benefits.models import TierEntitlement
from members.choices import SchemeStatus
from members.models import Member, Tier, TierScheme
from members.services import tier_override_request, tier_recompute
from operations.nightly import nightly_run
from portal.choices import Role
from portal.clock import today_in_shanghai
from tests.approvals import decide_pending
from tests.factories import BenefitFactory
from tests.schemes import default_schemes, members_with_daily_demand

from .conftest import BROWSER_TEST, login, logout

pytestmark = BROWSER_TEST

TODAY = today_in_shanghai()
NIGHT = TODAY + timedelta(days=1)


def test_a_scheme_switch_from_proposal_to_the_night(page: Page, live_server, org, make_user):
    default_schemes()
    operator = make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO")
    checker = make_user(Role.PRODUCT_OPERATOR, username="checker", branch="HO")
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    bm = make_user(Role.BRANCH_MANAGER, username="bm", branch="B01")
    members_with_daily_demand(
        {"RICH": 600_000, "MID": 80_000, "LOW": 3_000},
        branch=org["B01S1"],
        account_manager=am,
        dates=(TODAY, NIGHT),
    )
    mada = {t.code: t for t in Tier.objects.filter(scheme__code="DEFAULT_MADA")}
    TierEntitlement.objects.create(
        benefit=BenefitFactory(code="LOUNGE", name="机场贵宾厅", unit_cost_fen=100_00),
        tier=mada["GOLD"],
        quantity=2,
        period="MONTH",
    )
    tier_recompute(business_date=TODAY)
    manual = tier_override_request(
        member=Member.objects.get(member_no="LOW"),
        tier=mada["GOLD"],
        reason="重要客户",
        expires_on=TODAY + timedelta(days=60),
        actor=am,
    )
    decide_pending(manual, "TIER_OVERRIDE", approve=True, actor=bm)
    points = TierScheme.objects.get(code="DEFAULT_POINTS")
    scheme_page = f"{live_server.url}/admin/members/tierscheme/{points.pk}/change/"

    # --- the operator simulates, decides the entitlements and proposes, from the scheme page
    login(page, live_server, operator)
    page.goto(scheme_page)
    page.get_by_role("link", name="Simulate against the current population").click()
    expect(page.get_by_text("5 stars").first).to_be_visible()  # the simulation names tiers
    page.goto(scheme_page)
    page.get_by_role("link", name="Entitlements of the new tiers").click()
    expect(page.get_by_text("No entitlement decision")).to_be_visible()
    for tier in points.tiers.all():
        choice = "Those of 金卡" if tier.code == "STAR4" else "None: no tier benefits"
        page.get_by_label(tier.name, exact=True).select_option(label=choice)
    page.get_by_role("button", name="Save decisions").click()
    expect(page.get_by_text("7 decision(s) saved.")).to_be_visible()
    page.get_by_role("link", name="Back to the scheme").click()
    page.get_by_role("link", name="Propose for activation").click()
    page.get_by_label("Takes effect on the night of").fill(NIGHT.isoformat())
    page.get_by_role("button", name="Propose", exact=True).click()
    expect(page.get_by_text(f"take effect on the night of {NIGHT.isoformat()}")).to_be_visible()
    logout(page, live_server)

    # --- a colleague reads the impact and approves
    login(page, live_server, checker)
    page.get_by_role("link", name="Approvals").click()
    page.get_by_role("link", name="星级积分定级").first.click()
    impact = page.locator("table.impact")
    expect(impact).to_contain_text("From Gold")
    expect(impact).to_contain_text("Monthly entitlement cost")
    expect(impact).to_contain_text("CNY 400.00 now → CNY 200.00 under the new scheme")
    expect(impact).to_contain_text("1 in force end that night")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text("Approved").first).to_be_visible()
    assert TierScheme.objects.get(pk=points.pk).status == SchemeStatus.SCHEDULED
    # every page says when the new scheme takes effect
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text(f"takes effect on {NIGHT.isoformat()}")
    logout(page, live_server)

    # --- the night; then the account manager's workbench lists the manual tier it ended
    nightly_run(business_date=NIGHT)
    login(page, live_server, am)
    ended = page.locator("#list-scheme-ended")
    expect(ended).to_contain_text("Manual tiers ended by the tier scheme change")
    expect(ended).to_contain_text("LOW")
    expect(page.get_by_role("status")).to_have_count(0)
    page.goto(f"{live_server.url}/members/MID/")
    # the tier, the gap and the thresholds all of the new scheme (the history keeps Gold)
    cards = page.locator(".cards").first
    expect(cards).to_contain_text("4 stars")
    expect(cards).to_contain_text("points")
    expect(cards).not_to_contain_text("Gold")
    thresholds = page.locator("p.muted").filter(has_text="Thresholds")
    expect(thresholds).to_contain_text("7 stars")
    expect(thresholds).not_to_contain_text("Gold")
    assert dict(Member.objects.values_list("member_no", "tier__code")) == {
        "RICH": "STAR5",
        "MID": "STAR4",
        "LOW": "PRE",
    }
