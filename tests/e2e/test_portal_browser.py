"""A person's path through the portal page in headless Chromium: connect, configure, disconnect.

Uses Debian's Chromium (`apt-get install chromium`, which .ci/run does) through Playwright; Playwright
never downloads a browser here. Without Chromium the test reports itself skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infra.local.stack import LocalStack

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture
def page(stack: LocalStack) -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context()
            tab = context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            yield tab
        finally:
            browser.close()


def test_person_connects_configures_and_disconnects_google_calendar(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    # Given a client user who manages integrations, signed in on the portal page
    page.goto(stack.urls.portal)
    page.get_by_test_id("signin-role").select_option("client-manager")
    page.get_by_test_id("signin-button").click()
    section = page.get_by_test_id("section-client")
    card = section.get_by_test_id("card-google_calendar")
    expect(card).to_be_visible()

    # When they connect Google Calendar and allow everything on the consent page
    card.get_by_test_id("connect-google_calendar").click()
    page.wait_for_url(f"{stack.urls.sandbox}/**")
    expect(page.locator("input[name=scope]").first).to_be_checked()
    page.locator("#allow").click()

    # Then they are back on the portal with the connection listed
    page.wait_for_url(f"{stack.urls.portal}**")
    expect(page.get_by_test_id("banner")).to_have_attribute("data-kind", "success")
    configure = card.locator("[data-testid^='configure-']")
    expect(configure).to_have_count(1)
    connection_id = (configure.get_attribute("data-testid") or "").removeprefix("configure-")
    assert connection_id

    # When they choose a calendar and save
    configure.click()
    calendar = page.get_by_test_id("config-field-calendar_id")
    expect(calendar.locator("option:not([value=''])").first).to_be_attached()
    value = calendar.locator("option:not([value=''])").first.get_attribute("value")
    assert value
    calendar.select_option(value)
    page.get_by_test_id("config-save").click()

    # Then the connection is healthy
    expect(page.get_by_test_id(f"error-{connection_id}")).to_have_count(0)
    expect(card.get_by_test_id("status-google_calendar")).to_contain_text("onnected")

    # When they disconnect and confirm
    card.get_by_test_id(f"disconnect-{connection_id}").click()
    page.get_by_test_id("confirm-disconnect").click()

    # Then the card offers to connect again
    expect(page.get_by_test_id(f"connection-{connection_id}")).to_have_count(0)
    expect(card.get_by_test_id("connect-google_calendar")).to_be_visible()
