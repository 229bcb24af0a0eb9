"""The pages work under the Content-Security-Policy (portal/security_headers.py): in a real
Chromium, the portal's home, a customer page, the dashboard, the admin and Swagger UI
(/api/docs/) load and do what they do with no Content Security Policy violation reported
(console or `securitypolicyviolation` event) and no Permissions-Policy error; and the
language selector, whose inline handler moved to portal.js, still switches the language."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.choices import Role
from tests.factories import MemberFactory

from .conftest import BROWSER_TEST, login

pytestmark = BROWSER_TEST

#: collects the violations the page itself sees; Playwright's init scripts are not subject
#: to the page's CSP
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def watched(page: Page) -> tuple[Page, list[str]]:
    """The page, and the console messages about its CSP or Permissions-Policy."""
    messages: list[str] = []
    page.on(
        "console",
        lambda message: (
            messages.append(message.text)
            if "Content Security Policy" in message.text or "Permissions-Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
    page.add_init_script(RECORD_VIOLATIONS)
    return page, messages


def assert_no_violations(page: Page, messages: list[str], where: str) -> None:
    page.wait_for_load_state("networkidle")
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], (where, violations)
    assert messages == [], (where, messages)


@pytest.fixture
def administrator(make_user, org):
    user = make_user(Role.ADMINISTRATOR, username="admin_csp", branch="HO")
    MemberFactory(member_no="M0000777", name="王小明", branch=org["B01S1"])
    return user


def test_portal_pages_run_under_the_policy(watched, live_server, administrator):
    page, messages = watched
    login(page, live_server, administrator)
    assert_no_violations(page, messages, "/")

    page.goto(f"{live_server.url}/members/M0000777/")
    expect(page.get_by_role("heading", name="王小明 M0000777")).to_be_visible()
    assert_no_violations(page, messages, "customer page")

    page.goto(f"{live_server.url}/dashboard/")
    assert_no_violations(page, messages, "dashboard")

    # the language selector's form is sent by portal.js, not by an inline handler
    page.get_by_label("Language").select_option(label="简体中文")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    assert_no_violations(page, messages, "language switch")


def test_the_admin_runs_under_its_policy(watched, live_server, administrator):
    page, messages = watched
    login(page, live_server, administrator)

    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_role("link", name="Campaigns").first).to_be_visible()
    assert_no_violations(page, messages, "/admin/")

    page.goto(f"{live_server.url}/admin/portal/user/")
    expect(page.get_by_role("link", name="admin_csp")).to_be_visible()
    assert_no_violations(page, messages, "/admin/portal/user/")


def test_the_admin_login_page_runs_under_its_policy(watched, live_server):
    page, messages = watched

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")

    expect(page.get_by_role("heading", name="Welcome back to")).to_be_visible()
    assert_no_violations(page, messages, "/admin/login/")


def test_swagger_ui_runs_under_the_policy(watched, live_server, administrator):
    page, messages = watched
    login(page, live_server, administrator)

    page.goto(f"{live_server.url}/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Membership Operations Portal API"
    )
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()  # expands: the UI's scripts run
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert_no_violations(page, messages, "/api/docs/")
