"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's
`live_server` (a real server thread on a transactional test database).

Needs `/usr/bin/chromium` and `fonts-noto-cjk` (`.ci/run` installs them); never run
`playwright install`, the machine has no browser downloads. One browser while this
package's tests run (see "Playwright for this package only"), a fresh context (cookies,
language) per test. Every test module here sets `pytestmark = BROWSER_TEST`: marked
`browser`, on a transactional database (the live server's thread reads what the test wrote).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "Pass-word-123"  # tests/factories.py UserFactory

#: `pytestmark = BROWSER_TEST` in every test module of this package.
BROWSER_TEST = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Locators wait for what they look for; on a busy 2-core machine a page can take seconds.
expect.set_options(timeout=15_000)


def pytest_collection_modifyitems(config, items):
    """Without Debian's Chromium every test of this package is skipped, visibly."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason="browser tests need Debian's chromium at /usr/bin/chromium "
        "(apt-get install chromium fonts-noto-cjk; .ci/run installs them)"
    )
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


# --- Playwright for this package only ------------------------------------------------------
# pytest-playwright keeps Playwright (and so one browser) for the whole session. Its sync API
# marks an asyncio event loop as running in the main thread for as long as Playwright runs,
# and Django then refuses database access from that thread (SynchronousOnlyOperation) unless
# DJANGO_ALLOW_ASYNC_UNSAFE is set. The fixtures below keep Playwright, the browser and that
# variable to this package (a set variable would fail later tests, e.g. `check --deploy` in
# a subprocess): one browser while the package's tests run, none after them. The tests and
# the live server are synchronous, so allowing the access is safe here.


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as pw:
            yield pw


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type: BrowserType) -> Callable[..., Browser]:
    def launch(**kwargs) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args(live_server) -> dict:
    """Every page in English unless a test asks otherwise (the site's default is zh-Hans);
    `page.goto("/jobs/")` goes to the live server."""
    return {
        "base_url": live_server.url,
        "locale": "en-US",
        "viewport": {"width": 1280, "height": 900},
    }


@pytest.fixture
def page(page: Page) -> Page:
    """pytest-playwright's page, failing a step after 20 s instead of 30 s."""
    page.set_default_timeout(20_000)
    return page


def login(page: Page, live_server, user) -> None:
    """Log `user` in through the portal's log-in form (templates/registration/login.html),
    as a person would, and wait until the home page shows them logged in."""
    response = page.goto(f"{live_server.url}/login/")
    assert response is not None and response.ok, (
        f"the log-in page answered {response and response.status}"
    )
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def logout(page: Page, live_server) -> None:
    """Log out with the portal header's button."""
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """`screenshot(page, name)` writes a full-page PNG to docs/screenshots/<name>.png and
    returns its path (pages for the docs: workbench, customer 360, dashboard, each in
    zh-Hans and English)."""

    def take(shot_page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # written whole or not at all: another run (a colleague's, an xdist worker) may be
        # taking the same screenshot
        png = shot_page.screenshot(full_page=True)
        with tempfile.NamedTemporaryFile(dir=SCREENSHOTS, suffix=".png", delete=False) as tmp:
            tmp.write(png)
        os.replace(tmp.name, path)
        path.chmod(0o644)
        return path

    return take
