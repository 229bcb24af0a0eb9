"""Who sees what, in the browser: each role logs in through the log-in form, is refused a
page the permission matrix (portal/permissions.py) does not give it, with the 403 page's
words (templates/403.html) on screen, and sees a page it may see. An anonymous visitor is
sent to the log-in page and, once logged in, to the page they asked for."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.choices import Role

from .conftest import BROWSER_TEST, login

pytestmark = BROWSER_TEST

REFUSED = "You are not allowed to see this page"  # templates/403.html

#: role, the user's branch, a page the role may not open, a page it may open and a heading
#: that page shows.
CASES = [
    (Role.ACCOUNT_MANAGER, "B01S1", "/jobs/", "/members/", "Customers"),
    (Role.BRANCH_MANAGER, "B01", "/members/feeds/", "/jobs/", "Job runs"),
    (Role.PRODUCT_OPERATOR, "HO", "/admin/portal/user/", "/members/feeds/", "Feed files"),
    (Role.BUDGET_APPROVER, "HO", "/members/", "/approvals/", "Approvals"),
    (Role.RISK_AUDITOR, "HO", "/admin/campaigns/campaign/add/", "/jobs/", "Job runs"),
    (Role.ADMINISTRATOR, "HO", "/members/export.csv", "/members/feeds/", "Feed files"),
]


def expect_refused(page: Page) -> None:
    expect(page.get_by_role("heading", name=REFUSED)).to_be_visible()
    expect(page.get_by_text("Your role does not include this function.")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the home page")).to_be_visible()


@pytest.mark.parametrize(
    ("role", "branch", "refused", "allowed", "heading"),
    CASES,
    ids=[role.name for role, *_ in CASES],
)
def test_each_role_is_refused_what_it_may_not_see_and_sees_what_it_may(
    page: Page, live_server, make_user, role, branch, refused, allowed, heading
):
    login(page, live_server, make_user(role, branch=branch))

    response = page.goto(f"{live_server.url}{refused}")

    assert response.status == 403
    expect_refused(page)

    response = page.goto(f"{live_server.url}{allowed}")

    assert response.status == 200
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_text(REFUSED)).to_have_count(0)


def test_account_manager_is_kept_out_of_the_configuration_admin(page: Page, live_server, make_user):
    user = make_user(Role.ACCOUNT_MANAGER, username="am_browser")
    login(page, live_server, user)
    expect(page.get_by_role("link", name="Configuration")).to_have_count(0)  # not offered

    page.goto(f"{live_server.url}/admin/")

    # the admin sends them to its own log-in form (django-unfold's, which explains nothing
    # until a log-in fails): none of the configuration is shown
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    expect(page.get_by_role("heading", name="Welcome back to")).to_be_visible()
    expect(page.get_by_role("link", name="Campaigns")).to_have_count(0)
    expect(page.get_by_text("Budgets")).to_have_count(0)


def test_product_operator_is_offered_the_configuration_admin(page: Page, live_server, make_user):
    login(page, live_server, make_user(Role.PRODUCT_OPERATOR, branch="HO"))

    page.get_by_role("link", name="Configuration").click()

    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.get_by_role("link", name="Campaigns", exact=True).first).to_be_visible()


def test_anonymous_visitor_is_sent_to_the_login_page_and_back(page: Page, live_server, make_user):
    user = make_user(Role.ACCOUNT_MANAGER)

    page.goto(f"{live_server.url}/members/")

    expect(page).to_have_url(f"{live_server.url}/login/?next=/members/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("heading", name="Customers")).to_have_count(0)

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("Pass-word-123")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"{live_server.url}/members/")
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
