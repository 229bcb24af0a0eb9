"""Screenshots for the docs (docs/screenshots/, with the `screenshot` fixture of conftest.py),
each taken after checking the page shows what it should in its language."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import BROWSER_TEST

pytestmark = BROWSER_TEST

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_login_page_in_both_languages(page: Page, live_server, screenshot):
    page.goto(f"{live_server.url}/login/")  # the browser asks for English
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    english = screenshot(page, "login-en")

    page.get_by_label("Language").select_option(label="简体中文")  # the header's selector

    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    expect(page.get_by_text("仅限本行员工使用，您的操作将被记录。")).to_be_visible()
    chinese = screenshot(page, "login-zh-hans")

    assert english.name == "login-en.png" and english.parent.name == "screenshots"
    for shot in (english, chinese):
        assert shot.read_bytes().startswith(PNG_SIGNATURE), shot
    assert english.read_bytes() != chinese.read_bytes()
