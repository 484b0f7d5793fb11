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

    # When they pause sync, the card says so and offers to resume; resuming offers Sync now again
    card.get_by_test_id(f"pause-sync-{connection_id}").click()
    expect(card.get_by_test_id(f"last-sync-{connection_id}")).to_contain_text("Paused")
    card.get_by_test_id(f"resume-sync-{connection_id}").click()
    expect(card.get_by_test_id(f"sync-now-{connection_id}")).to_be_visible()
    expect(card.get_by_test_id(f"last-sync-{connection_id}")).not_to_contain_text("Paused")

    # When they push existing data and confirm, the replay starts and its words reach the card
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_test_id(f"push-existing-{connection_id}").click()
    expect(page.get_by_test_id("banner")).to_contain_text("appointments")
    expect(card.get_by_test_id(f"push-progress-{connection_id}")).to_contain_text("appointments to")

    # When they disconnect and confirm
    card.get_by_test_id(f"disconnect-{connection_id}").click()
    page.get_by_test_id("confirm-disconnect").click()

    # Then the card offers to connect again
    expect(page.get_by_test_id(f"connection-{connection_id}")).to_have_count(0)
    expect(card.get_by_test_id("connect-google_calendar")).to_be_visible()


def test_a_stage_per_call_outcome_is_chosen_in_rows_and_shown_again(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    # Given a client user with a connected GoHighLevel location, on its settings
    _sign_in(page, stack.urls.portal, "client-manager")
    card = page.get_by_test_id("section-client").get_by_test_id("card-ghl")
    card.get_by_test_id("connect-ghl").click()
    page.wait_for_url(f"{stack.urls.sandbox}/**")
    page.locator("#allow").click()
    page.wait_for_url(f"{stack.urls.portal}**")
    configure = card.locator("[data-testid^='configure-']")
    configure.click()
    pipeline = page.get_by_test_id("config-field-pipeline_id")
    expect(pipeline.locator("option:not([value=''])").first).to_be_attached()

    # When they choose a pipeline and a stage, add an outcome row and pick its stage
    pipeline.select_option(pipeline.locator("option:not([value=''])").nth(1).get_attribute("value") or "")
    stage = page.get_by_test_id("config-field-stage_id")
    expect(stage.locator("option:not([value=''])").first).to_be_attached()
    stage.select_option(stage.locator("option:not([value=''])").first.get_attribute("value") or "")
    page.get_by_test_id("config-field-stage_by_outcome-add").click()
    page.get_by_test_id("config-field-stage_by_outcome-key-1").fill("Booked")
    row_stage = page.get_by_test_id("config-field-stage_by_outcome-stage-1")
    expect(row_stage.locator("option:not([value=''])").nth(2)).to_be_attached()
    chosen = row_stage.locator("option:not([value=''])").nth(2).get_attribute("value") or ""
    row_stage.select_option(chosen)
    page.get_by_test_id("config-save").click()
    expect(page.get_by_test_id("config-dialog")).not_to_be_visible()

    # Then opening the settings again shows the outcome (as stored, in lower case) and its stage
    configure.click()
    expect(page.get_by_test_id("config-field-stage_by_outcome-key-1")).to_have_value("booked")
    expect(page.get_by_test_id("config-field-stage_by_outcome-stage-1")).to_have_value(chosen)
    page.get_by_test_id("config-cancel").click()

    # Leave the shared local stack as it was found
    card.locator("[data-testid^='disconnect-']").first.click()
    page.get_by_test_id("confirm-disconnect").click()
    expect(page.get_by_test_id("disconnect-dialog")).not_to_be_visible()


def _sign_in(page: Page, portal: str, identity: str) -> None:
    page.goto(portal)
    if page.get_by_test_id("signout-button").is_visible():
        page.get_by_test_id("signout-button").click()
    page.get_by_test_id("signin-role").select_option(identity)
    page.get_by_test_id("signin-button").click()
    page.wait_for_selector("html[data-ready=true]")


def test_the_page_speaks_in_words_and_the_health_view_fits_1280_px(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    page.set_viewport_size({"width": 1280, "height": 900})
    # Given a client user who unticks a box on Google's consent screen
    _sign_in(page, stack.urls.portal, "client-manager")
    page.get_by_test_id("section-user").get_by_test_id("connect-google_calendar").click()
    page.wait_for_url(f"{stack.urls.sandbox}/**")
    page.locator("input[name=scope][value='https://www.googleapis.com/auth/calendar.events']").uncheck()
    page.locator("#allow").click()
    page.wait_for_url(f"{stack.urls.portal}**")

    # Then the banner names the box by its label, with no scope URL and no code
    banner = page.get_by_test_id("banner")
    expect(banner).to_contain_text("View and edit events on all your calendars")
    assert "googleapis" not in banner.inner_text()
    assert "missing_scopes" not in banner.inner_text()

    # When they connect it properly and a GoHighLevel account for the client
    user = page.get_by_test_id("section-user")
    user.get_by_test_id("connect-google_calendar").click()
    page.wait_for_url(f"{stack.urls.sandbox}/**")
    page.locator("#allow").click()
    page.wait_for_url(f"{stack.urls.portal}**")
    page.get_by_test_id("section-client").get_by_test_id("connect-ghl").click()
    page.wait_for_url(f"{stack.urls.sandbox}/**")
    page.locator("#allow").click()
    page.wait_for_url(f"{stack.urls.portal}**")

    # Then the one-way card says why it cannot be connected before any click, and errors are words
    oneway = page.get_by_test_id("section-user").get_by_test_id("card-google_calendar_oneway")
    expect(oneway.get_by_test_id("conflict-google_calendar_oneway")).to_contain_text(
        "Disconnect Google Calendar"
    )
    expect(oneway.get_by_test_id("connect-google_calendar_oneway")).to_be_disabled()
    ghl = page.get_by_test_id("section-client").get_by_test_id("card-ghl")
    expect(ghl.get_by_test_id("status-ghl")).to_have_text("Error")
    expect(ghl.locator("[data-testid^='error-']")).to_contain_text("Pipeline, Stage")
    assert "config_required" not in page.locator("main").inner_text()

    # When an agency admin opens the page at 1280 px
    _sign_in(page, stack.urls.portal, "agency-admin")
    shared = page.get_by_test_id("health-rows-shared")
    personal = page.get_by_test_id("health-rows-personal")

    # Then owners are named, personal connections are apart, and nothing is wider than the screen
    ghl_row = shared.locator("tr", has_text="GoHighLevel")
    expect(ghl_row.first).to_contain_text("Client client-a")
    expect(ghl_row.first).to_contain_text("Settings needed before this works: Pipeline, Stage.")
    google_row = personal.locator("tr", has_text="client-a-manager (contact at client-a)")
    expect(google_row.first).to_contain_text("Google Calendar")
    expect(google_row.first).to_contain_text("Renewed in time")
    expect(shared.locator("tr", has_text="Google Calendar")).to_have_count(0)
    widths = page.evaluate(
        "[...document.querySelectorAll('html, .table-wrap')].map((e) => e.scrollWidth - e.clientWidth)"
    )
    assert widths == [0, 0, 0]
    text = page.locator("main").inner_text()
    assert not [code for code in ("config_required", "reauth_required", "tier_too_low") if code in text]

    # Leave the shared local stack as it was found
    _sign_in(page, stack.urls.portal, "client-manager")
    for card in (ghl, page.get_by_test_id("section-user").get_by_test_id("card-google_calendar")):
        button = card.locator("[data-testid^='disconnect-']").first
        button.click()
        page.get_by_test_id("confirm-disconnect").click()
        expect(page.get_by_test_id("disconnect-dialog")).not_to_be_visible()


def test_advanced_settings_are_saved_and_shown_again(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    # Given a client user with a connected Google Calendar
    page.goto(stack.urls.portal)
    page.get_by_test_id("signin-role").select_option("client-manager")
    page.get_by_test_id("signin-button").click()
    card = page.get_by_test_id("section-client").get_by_test_id("card-google_calendar")
    card.get_by_test_id("connect-google_calendar").click()
    page.wait_for_url(f"{stack.urls.sandbox}/**")
    page.locator("#allow").click()
    page.wait_for_url(f"{stack.urls.portal}**")
    configure = card.locator("[data-testid^='configure-']")
    expect(configure).to_have_count(1)

    # When they open Advanced settings: the defaults show (push, fetch, conflicts on; every type)
    configure.click()
    page.get_by_test_id("config-advanced-toggle").click()
    expect(page.get_by_test_id("config-field-push")).to_be_checked()
    expect(page.get_by_test_id("config-field-fetch")).to_be_checked()
    expect(page.get_by_test_id("config-field-conflict")).to_be_checked()
    expect(page.get_by_test_id("config-field-push_types-task")).to_be_checked()
    expect(page.get_by_test_id("config-field-window_future_days")).to_have_value("365")
    conflict_box = page.get_by_test_id("config-field-conflict_calendars")
    conflict_calendars = conflict_box.locator("input[type=checkbox]")
    expect(conflict_calendars.first).to_be_attached()

    # And they switch pushing off, leave tasks out, show busy only, narrow the window, pick a calendar
    page.get_by_test_id("config-field-push").uncheck()
    page.get_by_test_id("config-field-push_types-task").uncheck()
    page.get_by_test_id("config-field-show_as").select_option("busy")
    page.get_by_test_id("config-field-window_future_days").fill("60")
    conflict_calendars.first.check()
    picked = conflict_calendars.first.get_attribute("value")
    page.get_by_test_id("config-save").click()
    expect(page.get_by_test_id("config-dialog")).not_to_be_visible()

    # Then opening the settings again shows what was saved
    configure.click()
    page.get_by_test_id("config-advanced-toggle").click()
    expect(page.get_by_test_id("config-field-push")).not_to_be_checked()
    expect(page.get_by_test_id("config-field-push_types-task")).not_to_be_checked()
    expect(page.get_by_test_id("config-field-push_types-appointment")).to_be_checked()
    expect(page.get_by_test_id("config-field-show_as")).to_have_value("busy")
    expect(page.get_by_test_id("config-field-window_future_days")).to_have_value("60")
    expect(page.get_by_test_id(f"config-field-conflict_calendars-{picked}")).to_be_checked()
