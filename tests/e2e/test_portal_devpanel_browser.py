"""The portal page's developer panel in headless Chromium: a person acts as the platform.

What the panel sends is checked where it lands, in `GET /dev/events` (the bus), not in the page's HTML.
Uses Debian's Chromium as test_portal_browser.py does; without it the tests report themselves skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from infra.local.stack import LocalStack
from tests.e2e.conftest import Api
from tests.e2e.test_portal_browser import ARGS, CHROMIUM, TIMEOUT_MS
from tests.e2e.test_sync_e2e import Person, later
from tests.support.polling import eventually

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def page(stack: LocalStack) -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            # A fixed zone, so the offset the page computes is known.
            context = browser.new_context(timezone_id="Europe/Berlin")
            tab = context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            yield tab
        finally:
            browser.close()


def sign_in(page: Page, portal: str, identity: str) -> None:
    page.goto(portal)
    page.get_by_test_id("signin-role").select_option(identity)
    page.get_by_test_id("signin-button").click()
    page.wait_for_selector("html[data-ready=true]")


def appointment_events(api: Api, appointment_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = api.call("GET", "/dev/events", params={"limit": 500}).json()["events"]
    return [e for e in events if e["detail"].get("appointment_id") == appointment_id]


def test_a_person_publishes_edits_and_deletes_an_appointment_for_themselves(
    page: Page, stack: LocalStack, api: Api
) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    # Given a client user signed in on the page of the local stack
    sign_in(page, stack.urls.portal, "client-manager")
    panel = page.get_by_test_id("devpanel")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("devpanel-owner")).to_have_text("client-a-manager (client user at client-a)")

    # When they publish an appointment with a video link
    page.get_by_test_id("devpanel-title").fill("Panel call")
    page.get_by_test_id("devpanel-start").fill("2030-07-01T10:00")
    page.get_by_test_id("devpanel-end").fill("2030-07-01T10:45")
    page.get_by_test_id("devpanel-zone").fill("Europe/Berlin")
    page.get_by_test_id("devpanel-video").check()
    page.get_by_test_id("devpanel-upsert").click()

    # Then the bus has it, owned by the signed-in person, in their zone, and the list shows it
    expect(page.get_by_test_id("devpanel-current")).to_contain_text("version 1 published")
    current = page.get_by_test_id("devpanel-current").inner_text()
    appointment_id = current.split()[1].rstrip(",")
    [first] = appointment_events(api, appointment_id)
    assert first["detail_type"] == "Appointment Upserted"
    assert first["origin"] == "dev_route"
    detail = first["detail"]
    assert detail["owner"] == {
        "kind": "client_user",
        "agency_id": "demo-agency",
        "client_id": "client-a",
        "user_id": "client-a-manager",
    }
    assert (detail["title"], detail["time_zone"], detail["video"], detail["version"]) == (
        "Panel call",
        "Europe/Berlin",
        True,
        1,
    )
    # Summer time in Berlin: +02:00.
    assert datetime.fromisoformat(detail["start"]).isoformat() == "2030-07-01T10:00:00+02:00"
    assert datetime.fromisoformat(detail["end"]).isoformat() == "2030-07-01T10:45:00+02:00"
    listed = page.get_by_test_id(f"devpanel-event-{first['id']}")
    expect(listed).to_contain_text("Appointment Upserted")
    expect(listed).to_contain_text(appointment_id)

    # When they move it and publish again, then delete it
    page.get_by_test_id("devpanel-start").fill("2030-12-01T09:00")
    page.get_by_test_id("devpanel-end").fill("2030-12-01T09:30")
    page.get_by_test_id("devpanel-upsert").click()
    expect(page.get_by_test_id("devpanel-current")).to_contain_text("version 2 published")
    page.get_by_test_id("devpanel-delete").click()
    expect(page.get_by_test_id("devpanel-current")).to_contain_text("A new appointment")

    # Then each edit carried the next version (winter time: +01:00), and the deletion the one after
    newest_first = appointment_events(api, appointment_id)
    assert [(e["detail_type"], e["detail"]["version"]) for e in newest_first] == [
        ("Appointment Deleted", 3),
        ("Appointment Upserted", 2),
        ("Appointment Upserted", 1),
    ]
    assert newest_first[1]["detail"]["start"] == "2030-12-01T09:00:00+01:00"
    expect(page.get_by_test_id(f"devpanel-event-{newest_first[0]['id']}")).to_contain_text(
        "Appointment Deleted"
    )


def test_a_refused_appointment_says_why_in_the_panel(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    sign_in(page, stack.urls.portal, "agency-staff")
    owner = page.get_by_test_id("devpanel-owner")
    expect(owner).to_have_text("demo-agency-staff (agency staff at demo-agency)")

    page.get_by_test_id("devpanel-start").fill("2030-07-01T10:00")
    page.get_by_test_id("devpanel-end").fill("2030-07-01T09:00")
    page.get_by_test_id("devpanel-upsert").click()

    expect(page.get_by_test_id("devpanel-error")).to_contain_text("end must be after start")
    expect(page.get_by_test_id("devpanel-current")).to_contain_text("A new appointment")


def test_the_panel_stays_hidden_where_the_dev_routes_do_not_answer(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    # Given a deployment, where /dev/health does not exist
    page.route("**/dev/health", lambda route: route.fulfill(status=404, body='{"message":"Not Found"}'))

    sign_in(page, stack.urls.portal, "client-manager")

    expect(page.get_by_test_id("section-client")).to_be_visible()
    expect(page.get_by_test_id("devpanel")).to_be_hidden()


def _ask_for(page: Page, person: Person, day: Any) -> None:
    """The internal-API form, for the person's calendar, 09:00-12:00 UTC on `day`, 30-minute slots."""
    page.get_by_test_id("devpanel-owner-kind").select_option("client_user")
    page.get_by_test_id("devpanel-owner-client").fill(str(person.owner["client_id"]))
    page.get_by_test_id("devpanel-owner-user").fill(str(person.owner["user_id"]))
    page.get_by_test_id("devpanel-window-start").fill(day.strftime("%Y-%m-%dT09:00"))
    page.get_by_test_id("devpanel-window-end").fill(day.strftime("%Y-%m-%dT12:00"))
    page.get_by_test_id("devpanel-slot-minutes").fill("30")
    page.get_by_test_id("devpanel-availability-zone").fill("UTC")
    page.get_by_test_id("devpanel-availability").click()


def test_a_person_asks_for_availability_and_books_a_slot_as_the_platform(
    page: Page, stack: LocalStack, api: Api
) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    # Given a person whose Google calendar is connected and synced, with a dentist at 10:00 UTC
    person = Person(api, stack)
    person.connect()
    eventually(lambda: person.view()["sync"]["last_sync_at"])
    day = later(2, 9)
    person.creates_in_google("Dentist", later(2, 10))
    sign_in(page, stack.urls.portal, "client-manager")
    expect(page.get_by_test_id("devpanel-owner-user")).to_have_value("client-a-manager")

    # When the panel asks the internal API for that person's morning
    def dentist_blocks() -> bool:
        _ask_for(page, person, day)
        expect(page.get_by_test_id("devpanel-availability-state")).to_contain_text("free slot")
        return "5 free slots" in page.get_by_test_id("devpanel-availability-state").inner_text()

    # Then the slots are the morning's six but the dentist's (once sync has mirrored it)
    assert eventually(dentist_blocks), page.get_by_test_id("devpanel-availability-state").inner_text()
    state = page.get_by_test_id("devpanel-availability-state")
    expect(state).to_contain_text("All conflict calendars answered")
    starts = [page.get_by_test_id(f"devpanel-slot-{i}").get_attribute("data-start") or "" for i in range(5)]
    assert [s[11:16] for s in starts] == ["09:00", "09:30", "10:30", "11:00", "11:30"]

    # When they book 11:00 from the panel
    page.get_by_test_id("devpanel-booking-title").fill("Booked from the panel")
    page.get_by_test_id("devpanel-slot-3").click()

    # Then the booking is written to the person's Google calendar and announced on the bus
    expect(page.get_by_test_id("devpanel-booking")).to_contain_text("Booked bk_")
    booking_id = page.get_by_test_id("devpanel-booking").inner_text().split()[1].rstrip(":")
    [written] = [e for e in person.google_truth() if e.get("summary") == "Booked from the panel"]
    assert written["start"]["dateTime"].startswith(later(2, 11).strftime("%Y-%m-%dT%H:%M"))
    created = api.call("GET", "/dev/events", params={"detail_type": "Booking Created", "limit": 500}).json()
    assert [e["detail"]["booking_id"] for e in created["events"]].count(booking_id) == 1

    # And asking again no longer offers 11:00
    _ask_for(page, person, day)
    expect(page.get_by_test_id("devpanel-availability-state")).to_contain_text("4 free slots")


def test_the_internal_apis_refusal_is_shown_in_the_panel(page: Page, stack: LocalStack) -> None:
    from playwright.sync_api import expect

    assert stack.urls is not None
    sign_in(page, stack.urls.portal, "client-manager")

    # A person owner without a user id: the internal API's 422 names the problem
    page.get_by_test_id("devpanel-owner-user").fill("")
    page.get_by_test_id("devpanel-availability").click()

    expect(page.get_by_test_id("devpanel-internal-error")).to_contain_text("a person owner names the user")
    expect(page.get_by_test_id("devpanel-slots")).to_be_empty()
