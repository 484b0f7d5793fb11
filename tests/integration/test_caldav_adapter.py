"""The CalDAV adapter against a real CalDAV server (Radicale): sync-collection, expired tokens, etags,
echoes, recurring series and time zones. The person's side is plain CalDAV (PUT / DELETE of iCalendar
resources), as any calendar app would do it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from infra.local.radicale import RadicaleServer
from integrations.catalog import load_catalog
from integrations.domain.credentials import Credentials
from integrations.domain.errors import ReauthRequired
from integrations.providers.icloud_calendar import sync as caldav_sync
from integrations.providers.icloud_calendar.sync import CalDavCalendarAdapter, uid_for
from integrations.sync.calendar import EventStatus, MirrorChange, OutboundEvent
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, EventChange
from integrations.sync.errors import ConfigRequired, CursorExpired
from tests.support.calendar_fakes import FakeMirror, FakePushed

CONN = "conn-icloud"
USER = "alex"
ACCOUNT = "alex@icloud.example"


@pytest.fixture(scope="module")
def server() -> Iterator[RadicaleServer]:
    radicale = RadicaleServer()
    radicale.start()
    yield radicale
    radicale.stop()


@pytest.fixture
def calendar(server: RadicaleServer) -> str:
    """A fresh calendar per test (its URL is the calendar id)."""
    slug = uuid.uuid4().hex[:12]
    server.ensure_calendars(USER, {slug: f"Cal {slug}"})
    return f"{server.url}/{USER}/{slug}/"


def _adapter(server: RadicaleServer) -> CalDavCalendarAdapter:
    spec = load_catalog("").get("icloud_calendar").model_copy(update={"urls": {"caldav": f"{server.url}/"}})
    credentials = Credentials(secrets={"app_password": SecretStr("")}, extra={"username": USER})
    return CalDavCalendarAdapter(spec, CONN, lambda: credentials)


@pytest.fixture
def adapter(server: RadicaleServer) -> CalDavCalendarAdapter:
    return _adapter(server)


class Person:
    """Edits the calendar over plain CalDAV, as Apple Calendar would."""

    def __init__(self, calendar: str) -> None:
        self.calendar = calendar
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.auth = (USER, "")

    def put(self, name: str, ics: str) -> str:
        answer = self.http.put(
            self.calendar + name, data=ics.encode(), headers={"Content-Type": "text/calendar"}, timeout=10
        )
        assert answer.status_code in (201, 204), answer.text
        return str(answer.headers["ETag"])

    def delete(self, name: str) -> None:
        assert self.http.delete(self.calendar + name, timeout=10).status_code in (200, 204)

    def get(self, name: str) -> requests.Response:
        return self.http.get(self.calendar + name, timeout=10)

    def names(self) -> set[str]:
        body = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
        answer = self.http.request("PROPFIND", self.calendar, data=body, headers={"Depth": "1"}, timeout=10)
        hrefs = [part.split("</")[0] for part in answer.text.split("<href>")[1:]]
        return {h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs if not h.endswith("/")}


def vevent(uid: str, summary: str, start: str, end: str, *extra: str) -> str:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20310101T000000Z",
        f"DTSTART{start}",
        f"DTEND{end}",
        f"SUMMARY:{summary}",
        *extra,
        "END:VEVENT",
    ]
    return "\r\n".join(lines)


def vcalendar(*components: str) -> str:
    return "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//person//EN", *components, "END:VCALENDAR"]
    )


def simple(uid: str, summary: str, hour: int = 9, day: int = 6) -> str:
    return vcalendar(
        vevent(uid, summary, f":203101{day:02d}T{hour:02d}0000Z", f":203101{day:02d}T{hour:02d}3000Z")
    )


class Sync:
    """The engine's puller over an in-memory mirror, with the mapping of what the adapter wrote."""

    def __init__(self, adapter: CalDavCalendarAdapter, calendar: str) -> None:
        self.adapter = adapter
        self.calendar = calendar
        self.mirror = FakeMirror()
        self.pushed = FakePushed()
        self.published: list[EventChange] = []
        self.cursor = CalendarCursor()
        self.puller = CalendarPuller(
            mirror=self.mirror, pushed=self.pushed, publish=self.published.extend, checkpoint=self._save
        )

    def _save(self, calendar_id: str, cursor: CalendarCursor) -> None:
        self.cursor = cursor

    def run(self) -> list[EventChange]:
        before = len(self.published)
        self.puller.pull(CONN, self.calendar, self.adapter, self.cursor, lambda: True)
        return self.published[before:]

    def ids(self) -> set[str]:
        return {e.event.external_id for e in self.mirror.entries.values()}

    def write(self, event: OutboundEvent) -> None:
        existing = next(
            (p for p in self.pushed.mappings.values() if p.appointment_id == event.appointment_id), None
        )
        pushed = self.adapter.write(self.calendar, event, existing)
        self.pushed.mappings[pushed.external_id] = pushed


def changes(published: list[EventChange]) -> set[tuple[str, str]]:
    return {(c.event.external_id, c.change.value) for c in published}


def appointment(n: int, **fields: Any) -> OutboundEvent:
    start = datetime(2031, 2, 3, 9 + n, tzinfo=UTC)
    values: dict[str, Any] = {
        "appointment_id": f"appt-{n}",
        "title": f"Appointment {n}",
        "start": start,
        "end": start + timedelta(minutes=45),
        "time_zone": "Europe/Berlin",
        **fields,
    }
    return OutboundEvent(**values)


def test_incremental_sync_with_the_sync_token_reports_each_change_once(
    adapter: CalDavCalendarAdapter, calendar: str
) -> None:
    person = Person(calendar)
    person.put("a.ics", simple("a", "Dentist"))
    person.put("b.ics", simple("b", "Gym", hour=11))
    sync = Sync(adapter, calendar)

    assert changes(sync.run()) == {("a.ics", "added"), ("b.ics", "added")}
    assert sync.cursor.token is not None and not sync.cursor.token.startswith("ctag:")

    person.put("a.ics", simple("a", "Dentist (moved)", hour=14))
    person.delete("b.ics")
    person.put("c.ics", simple("c", "Lunch", hour=12))
    assert changes(sync.run()) == {("a.ics", "updated"), ("b.ics", "deleted"), ("c.ics", "added")}
    assert sync.ids() == person.names() == {"a.ics", "c.ics"}
    moved = sync.mirror.entries[(CONN, calendar, "a.ics")].event
    assert (moved.title, moved.start) == ("Dentist (moved)", datetime(2031, 1, 6, 14, tzinfo=UTC))
    # Nothing changed since: the next run publishes nothing.
    assert sync.run() == []


def test_pages_of_changes_cover_every_event_once(
    adapter: CalDavCalendarAdapter, calendar: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caldav_sync, "PAGE_SIZE", 3)
    person = Person(calendar)
    for n in range(8):
        person.put(f"e{n}.ics", simple(f"e{n}", f"Event {n}", hour=8 + n))
    first = adapter.pull(calendar, None, None)
    assert len(first.events) == 3 and first.next_page is not None and first.cursor is None

    sync = Sync(adapter, calendar)
    published = sync.run()
    assert sorted(c.event.external_id for c in published) == sorted(f"e{n}.ics" for n in range(8))


def test_a_pass_over_several_pages_lists_the_changes_once(
    adapter: CalDavCalendarAdapter, calendar: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caldav_sync, "PAGE_SIZE", 3)
    person = Person(calendar)
    sync = Sync(adapter, calendar)
    sync.run()
    for n in range(8):
        person.put(f"e{n}.ics", simple(f"e{n}", f"Event {n}", hour=8 + n))
    sent: list[str] = []
    request = adapter._request

    def counting(url: str, method: str, body: str, headers: dict[str, str]) -> Any:
        sent.append("sync-collection" if "sync-collection" in body else method)
        return request(url, method, body, headers)

    monkeypatch.setattr(adapter, "_request", counting)

    published = sync.run()

    assert sorted(c.event.external_id for c in published) == sorted(f"e{n}.ics" for n in range(8))
    assert sent.count("sync-collection") == 1 and sent.count("REPORT") == 3  # one listing, 3 multigets
    # The next pass lists again, from the token the finished one stored.
    person.put("e0.ics", simple("e0", "Event 0 (moved)", hour=18))
    assert changes(sync.run()) == {("e0.ics", "updated")}
    assert sent.count("sync-collection") == 2


def test_an_expired_sync_token_resyncs_fully_without_duplicates_and_with_deletions(
    server: RadicaleServer, adapter: CalDavCalendarAdapter, calendar: str
) -> None:
    person = Person(calendar)
    for n in range(4):
        person.put(f"e{n}.ics", simple(f"e{n}", f"Event {n}", hour=8 + n))
    sync = Sync(adapter, calendar)
    sync.run()
    stale = sync.cursor.token
    assert stale is not None

    person.delete("e1.ics")
    person.put("e4.ics", simple("e4", "New while away", hour=15))
    assert server.expire_sync_tokens() > 0
    with pytest.raises(CursorExpired):
        adapter.pull(calendar, stale, None)

    published = sync.run()
    assert changes(published) == {("e1.ics", "deleted"), ("e4.ics", "added")}
    assert sync.ids() == person.names() == {"e0.ics", "e2.ics", "e3.ics", "e4.ics"}
    assert sync.cursor.token is not None and sync.cursor.token != stale


def test_our_write_is_not_reported_back_but_the_persons_edit_of_it_is(
    adapter: CalDavCalendarAdapter, calendar: str
) -> None:
    sync = Sync(adapter, calendar)
    sync.run()
    sync.write(appointment(1))
    assert sync.run() == []  # our own write: echo

    [pushed] = sync.pushed.mappings.values()
    assert pushed.external_id == f"{uid_for(CONN, 'appt-1')}.ics"
    person = Person(calendar)
    body = person.get(pushed.external_id).text
    assert "X-INTEGRATIONS-APPOINTMENT-ID:appt-1" in body
    person.put(pushed.external_id, body.replace("SUMMARY:Appointment 1", "SUMMARY:Moved by the person"))
    [change] = sync.run()
    assert change.change is MirrorChange.UPDATED
    assert change.event.appointment_id == "appt-1"
    assert change.event.title == "Moved by the person"


def test_a_redelivered_create_is_one_event(adapter: CalDavCalendarAdapter, calendar: str) -> None:
    first = adapter.write(calendar, appointment(2), None)
    again = adapter.write(calendar, appointment(2, title="Appointment 2 (again)"), None)

    assert again.external_id == first.external_id
    assert again.etag != first.etag
    person = Person(calendar)
    assert person.names() == {first.external_id}
    assert "Appointment 2 (again)" in person.get(first.external_id).text


def test_update_and_delete_use_the_etag_and_a_stale_one_gets_412(
    server: RadicaleServer, adapter: CalDavCalendarAdapter, calendar: str
) -> None:
    pushed = adapter.write(calendar, appointment(3), None)
    person = Person(calendar)
    href = calendar + pushed.external_id
    # The server itself refuses a write on a stale etag (what the adapter's If-Match relies on).
    body = person.get(pushed.external_id).text
    person.put(pushed.external_id, body.replace("Appointment 3", "Edited by the person"))
    stale = person.http.put(
        href, data=body.encode(), headers={"If-Match": str(pushed.etag), "Content-Type": "text/calendar"}
    )
    assert stale.status_code == 412

    # The adapter's update on its stale etag: 412, then the platform's version on the current etag.
    updated = adapter.write(calendar, appointment(3, title="Appointment 3 (rescheduled)"), pushed)
    assert updated.etag not in (None, pushed.etag)
    assert "Appointment 3 (rescheduled)" in person.get(pushed.external_id).text

    adapter.delete(pushed)  # stale etag again: deleted all the same
    assert person.get(pushed.external_id).status_code == 404
    adapter.delete(updated)  # already gone: fine


def test_a_recurring_series_with_an_edited_and_a_cancelled_instance(
    adapter: CalDavCalendarAdapter, calendar: str
) -> None:
    person = Person(calendar)
    master = vevent(
        "weekly",
        "Standup",
        ";TZID=America/New_York:20310106T090000",
        ";TZID=America/New_York:20310106T093000",
        "RRULE:FREQ=WEEKLY;COUNT=6",
        "EXDATE;TZID=America/New_York:20310120T090000",
    )
    moved = vevent(
        "weekly",
        "Standup (late)",
        ";TZID=America/New_York:20310113T110000",
        ";TZID=America/New_York:20310113T113000",
        "RECURRENCE-ID;TZID=America/New_York:20310113T090000",
    )
    person.put("weekly.ics", vcalendar(NEW_YORK, master, moved))
    sync = Sync(adapter, calendar)
    sync.run()

    events = {e.event.external_id: e.event for e in sync.mirror.entries.values()}
    series = events["weekly.ics"]
    assert series.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=6", "EXDATE;TZID=America/New_York:20310120T090000")
    assert series.time_zone == "America/New_York"
    assert series.start == datetime(2031, 1, 6, 14, tzinfo=UTC)
    edited = events["weekly.ics#20310113T140000Z"]
    assert (edited.series_id, edited.original_start) == ("weekly.ics", "2031-01-13T14:00:00Z")
    assert (edited.title, edited.start) == ("Standup (late)", datetime(2031, 1, 13, 16, tzinfo=UTC))
    cancelled = events["weekly.ics#20310120T140000Z"]
    assert cancelled.status is EventStatus.CANCELLED
    assert (cancelled.series_id, cancelled.original_start) == ("weekly.ics", "2031-01-20T14:00:00Z")

    # The person then deletes the edited instance too: its override becomes a cancelled exception.
    master_two = master.replace(
        "EXDATE;TZID=America/New_York:20310120T090000",
        "EXDATE;TZID=America/New_York:20310113T090000,20310120T090000",
    )
    person.put("weekly.ics", vcalendar(NEW_YORK, master_two))
    published = sync.run()
    assert ("weekly.ics#20310113T140000Z", "updated") in changes(published)
    assert sync.mirror.entries[(CONN, calendar, "weekly.ics#20310113T140000Z")].event.status is (
        EventStatus.CANCELLED
    )

    busy = adapter.free_busy(
        [calendar], datetime(2031, 1, 5, tzinfo=UTC), datetime(2031, 2, 20, tzinfo=UTC)
    ).busy[calendar]
    assert [b.start for b in busy] == [
        datetime(2031, 1, 6, 14, tzinfo=UTC),
        datetime(2031, 1, 27, 14, tzinfo=UTC),
        datetime(2031, 2, 3, 14, tzinfo=UTC),
        datetime(2031, 2, 10, 14, tzinfo=UTC),
    ]


def test_all_day_and_transparent_events(adapter: CalDavCalendarAdapter, calendar: str) -> None:
    person = Person(calendar)
    person.put(
        "holiday.ics",
        vcalendar(
            vevent("holiday", "Holiday", ";VALUE=DATE:20310210", ";VALUE=DATE:20310212", "TRANSP:TRANSPARENT")
        ),
    )
    person.put("trip.ics", vcalendar(vevent("trip", "Trip", ";VALUE=DATE:20310215", ";VALUE=DATE:20310216")))
    page = adapter.pull(calendar, None, None)
    events = {e.external_id: e for e in page.events}

    holiday = events["holiday.ics"]
    assert (holiday.start_date, holiday.end_date, holiday.start) == (
        date(2031, 2, 10),
        date(2031, 2, 12),
        None,
    )
    assert holiday.all_day and not holiday.busy
    assert events["trip.ics"].busy

    busy = adapter.free_busy([calendar], datetime(2031, 2, 9, tzinfo=UTC), datetime(2031, 2, 20, tzinfo=UTC))
    assert [(b.start, b.end) for b in busy.busy[calendar]] == [
        (datetime(2031, 2, 15, tzinfo=UTC), datetime(2031, 2, 16, tzinfo=UTC))
    ]


def test_time_zones_round_trip_through_the_server(adapter: CalDavCalendarAdapter, calendar: str) -> None:
    event = appointment(4, time_zone="Asia/Kolkata")
    pushed = adapter.write(calendar, event, None)
    body = Person(calendar).get(pushed.external_id).text

    assert "BEGIN:VTIMEZONE" in body and "TZID:Asia/Kolkata" in body
    assert "DTSTART;TZID=Asia/Kolkata:20310203T183000" in body
    [read] = [e for e in adapter.pull(calendar, None, None).events if e.external_id == pushed.external_id]
    assert (read.start, read.end) == (event.start, event.end)
    assert read.time_zone == "Asia/Kolkata"
    assert read.change_hash() == pushed.written_hash


def test_calendar_name_comes_from_displayname(adapter: CalDavCalendarAdapter, calendar: str) -> None:
    slug = calendar.rstrip("/").rsplit("/", 1)[-1]
    assert adapter.calendar_name(calendar) == f"Cal {slug}"


def test_a_revoked_password_is_reauth_and_a_missing_calendar_is_config(server: RadicaleServer) -> None:
    spec = load_catalog("").get("icloud_calendar").model_copy(update={"urls": {"caldav": f"{server.url}/"}})
    no_password = Credentials(extra={"username": USER})
    with pytest.raises(ReauthRequired):
        CalDavCalendarAdapter(spec, CONN, lambda: no_password).pull(f"{server.url}/{USER}/x/", None, None)
    with pytest.raises(ConfigRequired):
        _adapter(server).pull(f"{server.url}/{USER}/{uuid.uuid4().hex}/", None, None)


NEW_YORK = "\r\n".join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:America/New_York",
        "BEGIN:STANDARD",
        "DTSTART:20071104T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
        "TZOFFSETFROM:-0400",
        "TZOFFSETTO:-0500",
        "TZNAME:EST",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:20070311T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
        "TZOFFSETFROM:-0500",
        "TZOFFSETTO:-0400",
        "TZNAME:EDT",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    ]
)


def test_a_server_without_sync_collection_is_polled_by_ctag_and_etags(
    adapter: CalDavCalendarAdapter, calendar: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A REPORT Radicale does not know stands in for a server without RFC 6578: it refuses it.
    monkeypatch.setattr(
        caldav_sync,
        "_sync_collection",
        lambda token: '<?xml version="1.0"?><d:no-such-report xmlns:d="DAV:"/>',
    )
    person = Person(calendar)
    person.put("a.ics", simple("a", "Dentist"))
    person.put("b.ics", simple("b", "Gym", hour=11))
    sync = Sync(adapter, calendar)

    assert changes(sync.run()) == {("a.ics", "added"), ("b.ics", "added")}
    marker = sync.cursor.token
    assert marker is not None and marker.startswith("ctag:")
    unchanged = adapter.pull(calendar, marker, None)
    assert (list(unchanged.events), unchanged.cursor) == ([], marker)

    person.put("a.ics", simple("a", "Dentist (moved)", hour=15))
    person.delete("b.ics")
    assert changes(sync.run()) == {("a.ics", "updated"), ("b.ics", "deleted")}
    assert sync.ids() == person.names() == {"a.ics"}
    assert sync.cursor.token is not None and sync.cursor.token != marker
    assert sync.run() == []
