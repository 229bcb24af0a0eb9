"""A campaign from draft to approval, in the browser: a product operator builds it with two
tasks on one admin page (campaigns/admin/ CampaignAdmin with its task inline), submits it
for approval with the list's action, logs out; a budget approver logs in, opens it and
approves it with the Approve button, and the page shows it scheduled. Checked on screen and
in the database."""

from __future__ import annotations

from datetime import timedelta

from django.utils import translation
from playwright.sync_api import Locator, Page, expect

from campaigns.choices import CampaignApproval, CampaignStatus
from campaigns.models import Campaign
from portal.admin_base import shown_name
from portal.choices import ApprovalStatus, Role
from portal.clock import today_in_shanghai
from portal.models import ApprovalRequest
from tests.factories import BudgetFactory

from .conftest import BROWSER_TEST, login, logout

pytestmark = BROWSER_TEST

CAMPAIGNS = "/admin/campaigns/campaign/"


def english(label) -> str:
    """A choice's label as the English page shows it."""
    with translation.override("en"):
        return str(label)


def task_form(page: Page, n: int) -> Locator:
    """The n-th task form (“Task: #n”) on the campaign page (not the hidden template)."""
    return (
        page.locator("#tasks-group .form-group").filter(has_text=f"Task: #{n}").filter(visible=True)
    )


def test_operator_builds_and_submits_a_campaign_and_an_approver_approves_it(
    page: Page, live_server, make_user
):
    budget = BudgetFactory(code="RETAIL-2026")
    operator = make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO")
    approver = make_user(Role.BUDGET_APPROVER, username="approver", branch="HO")
    starts_on = today_in_shanghai() + timedelta(days=7)
    ends_on = starts_on + timedelta(days=30)

    # --- the product operator builds the campaign with two tasks on one page
    login(page, live_server, operator)
    page.get_by_role("link", name="Configuration").click()
    page.locator(f'a[href="{CAMPAIGNS}"]').first.click()  # Campaigns › Campaigns
    expect(page).to_have_url(f"{live_server.url}{CAMPAIGNS}")
    page.locator(f'a[href="{CAMPAIGNS}add/"]').first.click()  # the round “+” button

    page.get_by_label("Code").fill("C-WAKE")
    page.locator("#id_name").fill("沉睡客户唤醒季")
    page.get_by_label("Department").select_option(
        label=budget.department.name
    )  # departments by name
    page.get_by_label("Budget").select_option(label=shown_name(budget))  # as the form lists it
    page.get_by_label("Starts on").fill(starts_on.isoformat())
    page.get_by_label("Ends on").fill(ends_on.isoformat())
    page.locator(".field-target_stages").get_by_label("Dormant").check()

    page.get_by_role("link", name="Add another Task").click()
    first = task_form(page, 1)
    first.get_by_label("Name").fill("连续签到三天")
    first.get_by_label("Event type").select_option(label="Sign-in")
    first.get_by_label("Measure").select_option(label="Consecutive days")
    first.get_by_label("Target").fill("3")
    first.get_by_label("Recurrence").select_option(label="Once")
    first.get_by_label("Reward points").fill("30")

    page.get_by_role("link", name="Add another Task").click()
    second = task_form(page, 2)
    second.get_by_label("Name").fill("基金申购满一千")
    second.get_by_label("Position").fill("1")
    second.get_by_label("Event type").select_option(label="Fund purchase")
    second.get_by_label("Measure").select_option(label="Sum of amounts (CNY)")
    second.get_by_label("Target").fill("1000")
    second.get_by_label("Recurrence").select_option(label="Monthly")
    second.get_by_label("Reward points").fill("100")

    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("was added successfully")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="C-WAKE")
    expect(row).to_contain_text(english(CampaignStatus.DRAFT.label))
    campaign = Campaign.objects.get(code="C-WAKE")
    assert (campaign.name, campaign.status, campaign.created_by) == (
        "沉睡客户唤醒季",
        CampaignStatus.DRAFT,
        operator,
    )
    assert (campaign.starts_on, campaign.ends_on, campaign.budget) == (starts_on, ends_on, budget)
    assert campaign.target_stages == ["DORMANT"]
    assert list(
        campaign.tasks.order_by("position").values_list(
            "name", "event_type", "measure", "target", "recurrence", "reward_points"
        )
    ) == [
        ("连续签到三天", "SIGN_IN", "CONSECUTIVE_DAYS", 3, "ONCE", 30),
        ("基金申购满一千", "FUND_PURCHASE", "AMOUNT_SUM", 1000, "MONTHLY", 100),
    ]

    # --- ... and submits it for approval with the list's action
    row.get_by_role("checkbox").check()
    page.get_by_label("Select action to run").select_option(label="Submit for approval")
    page.get_by_title("Run the selected action").click()

    expect(page.get_by_text("1 campaign(s) submitted; a budget approver decides.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="C-WAKE")).to_contain_text(
        english(CampaignStatus.PENDING_APPROVAL.label)
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.submitted_by) == (CampaignStatus.PENDING_APPROVAL, operator)

    logout(page, live_server)

    # --- a budget approver opens it and approves it
    login(page, live_server, approver)
    page.goto(f"{live_server.url}{CAMPAIGNS}")
    page.get_by_role("link", name="C-WAKE").click()
    # the tasks are on the page, one heading each
    expect(page.get_by_text("C-WAKE: 连续签到三天", exact=True)).to_be_visible()
    expect(page.get_by_text("C-WAKE: 基金申购满一千", exact=True)).to_be_visible()

    page.get_by_role("link", name="Approve", exact=True).click()
    page.get_by_label("Comment").fill("同意，预算充足")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.get_by_text("C-WAKE: approved.")).to_be_visible()
    status = page.locator(".field-line").filter(has=page.get_by_text("Status", exact=True))
    expect(status).to_contain_text(english(CampaignStatus.SCHEDULED.label))
    # decided: the approval buttons are gone
    expect(page.get_by_role("link", name="Approve", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Reject", exact=True)).to_have_count(0)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED  # its window starts in a week
    assert (campaign.submitted_by, campaign.decided_by) == (operator, approver)
    assert campaign.decision_comment == "同意，预算充足"
    request = ApprovalRequest.objects.get(
        kind=CampaignApproval.CAMPAIGN_LAUNCH, object_id=str(campaign.pk)
    )
    assert (request.status, request.requested_by, request.decided_by) == (
        ApprovalStatus.APPROVED,
        operator,
        approver,
    )
