"""Outlook Calendar's adapter against the sandbox's Microsoft Graph: delta rounds and paging, expired
tokens, series, time zones, tagged and conditional writes, echoes, Teams links, free/busy, throttling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig, catalog_overrides
from integrations import http
from integrations.catalog import load_catalog
from integrations.catalog.model import ProviderSpec
from integrations.providers.outlook_calendar import events as outlook_events
from integrations.providers.outlook_calendar import sync as outlook_sync
from integrations.providers.outlook_calendar.events import APPOINTMENT_PROPERTY
from integrations.providers.outlook_calendar.sync import DEFAULT_CALENDAR, OutlookCalendarAdapter
from integrations.sync.calendar import EventStatus, MirrorChange, OutboundEvent
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, CalendarPullResult, EventChange
from integrations.sync.errors import CursorExpired
from tests.support.calendar_fakes import FakeMirror, FakePushed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

CONN = "conn-o"
ACCOUNT = "alex@example.com"
PERSON = "/_sandbox/outlook"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.5)) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


@pytest.fixture
def spec(sb: Sandbox, tmp_path: Path) -> ProviderSpec:
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(catalog_overrides(sb.base)))
    return load_catalog(str(overrides)).get("outlook_calendar")


def _adapter(
    sb: Sandbox, spec: ProviderSpec, account: str = ACCOUNT, **kwargs: Any
) -> OutlookCalendarAdapter:
    token = connect(sb, "microsoft", account=account)["access_token"]
    return OutlookCalendarAdapter(spec, CONN, lambda: str(token), **kwargs)


@pytest.fixture
def adapter(sb: Sandbox, spec: ProviderSpec) -> OutlookCalendarAdapter:
    return _adapter(sb, spec)


class Sync:
    """The puller over an in-memory mirror, with the mapping of what the adapter wrote."""

    def __init__(self, adapter: OutlookCalendarAdapter) -> None:
        self.adapter = adapter
        self.mirror = FakeMirror()
        self.pushed = FakePushed()
        self.published: list[EventChange] = []
        self.cursor = CalendarCursor()
        self.last: CalendarPullResult | None = None
        self.puller = CalendarPuller(
            mirror=self.mirror, pushed=self.pushed, publish=self.published.extend, checkpoint=self._save
        )

    def _save(self, calendar_id: str, cursor: CalendarCursor) -> None:
        self.cursor = cursor

    def run(self) -> list[EventChange]:
        before = len(self.published)
        self.last = self.puller.pull(CONN, DEFAULT_CALENDAR, self.adapter, self.cursor, lambda: True)
        return self.published[before:]

    def events(self) -> dict[str, Any]:
        return self.mirror.events(CONN, DEFAULT_CALENDAR)

    def write(self, event: OutboundEvent) -> None:
        existing = next(
            (p for p in self.pushed.mappings.values() if p.appointment_id == event.appointment_id), None
        )
        pushed = self.adapter.write(DEFAULT_CALENDAR, event, existing)
        self.pushed.mappings[pushed.external_id] = pushed


def _person(sb: Sandbox, method: str, path: str, **body: Any) -> dict[str, Any]:
    answer = sb.http.request(method, sb.url(PERSON + path), json={"account": ACCOUNT, **body}, timeout=5)
    assert answer.status_code in (200, 201), answer.text
    result: dict[str, Any] = answer.json()
    return result


def _creates(sb: Sandbox, **body: Any) -> dict[str, Any]:
    return _person(sb, "POST", "/calendars/default/events", **body)


def _truth(sb: Sandbox, account: str = ACCOUNT) -> dict[str, dict[str, Any]]:
    answer = sb.http.get(sb.url(f"{PERSON}/calendars/default/events"), params={"account": account}, timeout=5)
    assert answer.status_code == 200, answer.text
    return {str(e["id"]): e for e in answer.json()["events"]}


def _at(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:00:00Z")


def _appointment(n: int, **changes: Any) -> OutboundEvent:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=n)
    base: dict[str, Any] = {
        "appointment_id": f"apt-{n}",
        "title": f"Demo call {n}",
        "start": start,
        "end": start + timedelta(minutes=30),
        "time_zone": "Europe/Berlin",
    }
    return OutboundEvent.model_validate({**base, **changes})


def test_events_arrive_page_by_page_and_later_edits_come_as_changes(
    sb: Sandbox, adapter: OutlookCalendarAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outlook_sync, "PAGE_SIZE", 4)
    made = [_creates(sb, subject=f"Dentist {n}", start=_at(n + 1), end=_at(n + 2))["id"] for n in range(10)]
    sync = Sync(adapter)

    added = sync.run()

    assert sync.last is not None and sync.last.pages == 3
    assert sorted(c.event.external_id for c in added) == sorted(made)
    assert {c.change for c in added} == {MirrorChange.ADDED}
    assert set(sync.events()) == set(_truth(sb))
    assert sync.cursor.token and "$deltatoken" in sync.cursor.token
    _person(sb, "PATCH", f"/events/{made[0]}", shift_minutes=90)
    _person(sb, "DELETE", f"/events/{made[1]}")
    changes = sync.run()
    assert {(c.event.external_id, c.change) for c in changes} == {
        (made[0], MirrorChange.UPDATED),
        (made[1], MirrorChange.DELETED),
    }
    assert set(sync.events()) == set(_truth(sb))
    assert sync.run() == []


def test_an_expired_delta_token_resyncs_without_duplicates_and_applies_deletions(
    sb: Sandbox, adapter: OutlookCalendarAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outlook_sync, "PAGE_SIZE", 2)
    ids = [_creates(sb, subject=f"Block {n}", start=_at(n + 1), end=_at(n + 2))["id"] for n in range(5)]
    sync = Sync(adapter)
    sync.run()
    _person(sb, "DELETE", f"/events/{ids[0]}")
    expired = sb.http.post(sb.url(f"{PERSON}/delta_tokens/expire"), json={"account": ACCOUNT}, timeout=5)
    assert expired.json() == {"expired_accounts": [ACCOUNT]}
    with pytest.raises(CursorExpired):
        adapter.pull(DEFAULT_CALENDAR, sync.cursor.token, None)

    changes = sync.run()

    assert [(c.event.external_id, c.change) for c in changes] == [(ids[0], MirrorChange.DELETED)]
    assert set(sync.events()) == set(ids[1:]) == set(_truth(sb))


def test_the_window_slides_by_starting_a_new_round(sb: Sandbox, spec: ProviderSpec) -> None:
    later = {"now": datetime.now(UTC)}
    adapter = _adapter(sb, spec, clock=lambda: later["now"])
    page = adapter.pull(DEFAULT_CALENDAR, None, None)
    assert page.cursor is not None and page.full
    assert adapter.pull(DEFAULT_CALENDAR, page.cursor, None).events == []
    later["now"] += timedelta(days=70)
    with pytest.raises(CursorExpired):
        adapter.pull(DEFAULT_CALENDAR, page.cursor, None)


def test_a_stored_link_to_another_host_is_never_called(adapter: OutlookCalendarAdapter) -> None:
    stolen = json.dumps(
        {"delta": "https://attacker.example/delta?$deltatoken=x", "until": "2999-01-01T00:00:00+00:00"}
    )
    with pytest.raises(CursorExpired):
        adapter.pull(DEFAULT_CALENDAR, stolen, None)


def test_our_write_is_tagged_and_not_reported_back_but_the_persons_move_of_it_is(
    sb: Sandbox, adapter: OutlookCalendarAdapter
) -> None:
    sync = Sync(adapter)
    sync.run()
    sync.write(_appointment(1))
    assert sync.run() == []
    [ours] = sync.pushed.mappings
    stored = _truth(sb)[ours]
    assert stored["singleValueExtendedProperties"] == [{"id": APPOINTMENT_PROPERTY, "value": "apt-1"}]
    assert sync.events()[ours].appointment_id == "apt-1"
    _person(sb, "PATCH", f"/events/{ours}", shift_minutes=60)
    [moved] = sync.run()
    assert (moved.change, moved.event.appointment_id) == (MirrorChange.UPDATED, "apt-1")


def test_a_redelivered_create_makes_no_second_event(sb: Sandbox, adapter: OutlookCalendarAdapter) -> None:
    first = adapter.write(DEFAULT_CALENDAR, _appointment(2), None)
    again = adapter.write(DEFAULT_CALENDAR, _appointment(2, title="Demo call (renamed)"), None)
    assert first.external_id == again.external_id
    assert [e["subject"] for e in _truth(sb).values()] == ["Demo call (renamed)"]


def test_the_same_appointment_on_another_calendar_is_another_event(
    sb: Sandbox, adapter: OutlookCalendarAdapter
) -> None:
    token = connect(sb, "microsoft", account=ACCOUNT)["access_token"]
    calendars = sb.http.get(
        sb.url("/microsoft/graph/v1.0/me/calendars"), headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()["value"]
    work = next(c["id"] for c in calendars if c["name"] == "Work")
    first = adapter.write(DEFAULT_CALENDAR, _appointment(8), None)
    moved = adapter.write(work, _appointment(8), None)
    assert moved.external_id != first.external_id
    adapter.delete(first)
    truth = sb.http.get(sb.url(f"{PERSON}/calendars/{work}/events"), params={"account": ACCOUNT}, timeout=5)
    [there] = truth.json()["events"]
    assert there["id"] == moved.external_id and there["subject"] == "Demo call 8"


def test_an_update_sends_our_etag_and_overrides_the_persons_edit(
    sb: Sandbox, adapter: OutlookCalendarAdapter
) -> None:
    pushed = adapter.write(DEFAULT_CALENDAR, _appointment(3), None)
    moved = adapter.write(DEFAULT_CALENDAR, _appointment(3, title="Moved"), pushed)
    assert moved.external_id == pushed.external_id and moved.etag != pushed.etag
    _person(sb, "PATCH", f"/events/{pushed.external_id}", subject="Renamed by the person")
    before = len(sb.requests_log())

    again = adapter.write(DEFAULT_CALENDAR, _appointment(3, title="Platform wins"), moved)

    patches = [e["status"] for e in sb.requests_log()[before:] if e["method"] == "PATCH"]
    assert patches == [412, 200]
    assert again.external_id == pushed.external_id
    assert _truth(sb)[pushed.external_id]["subject"] == "Platform wins"


def test_an_update_of_an_event_the_person_deleted_creates_it_again(
    sb: Sandbox, adapter: OutlookCalendarAdapter
) -> None:
    pushed = adapter.write(DEFAULT_CALENDAR, _appointment(4), None)
    _person(sb, "DELETE", f"/events/{pushed.external_id}")
    again = adapter.write(DEFAULT_CALENDAR, _appointment(4, title="Back"), pushed)
    assert again.external_id != pushed.external_id
    assert [e["subject"] for e in _truth(sb).values()] == ["Back"]


def test_delete_removes_our_event_and_tolerates_one_already_gone(
    sb: Sandbox, adapter: OutlookCalendarAdapter
) -> None:
    pushed = adapter.write(DEFAULT_CALENDAR, _appointment(5), None)
    adapter.delete(pushed)
    adapter.delete(pushed)
    assert _truth(sb) == {}


def test_video_asks_for_a_teams_link_where_the_account_has_teams(
    sb: Sandbox, spec: ProviderSpec, adapter: OutlookCalendarAdapter
) -> None:
    work = adapter.write(DEFAULT_CALENDAR, _appointment(6, video=True), None)
    assert work.video_url is not None and work.video_url.startswith("https://teams.microsoft.com/")
    personal = _adapter(sb, spec, account="sam@outlook.com")
    plain = personal.write(DEFAULT_CALENDAR, _appointment(6, video=True), None)
    assert plain.video_url is None
    [stored] = _truth(sb, "sam@outlook.com").values()
    assert stored["isOnlineMeeting"] is False


def test_a_series_with_an_edited_and_a_cancelled_occurrence(
    sb: Sandbox, adapter: OutlookCalendarAdapter
) -> None:
    first = (datetime.now(UTC) + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    master = _creates(
        sb,
        subject="Weekly 1:1",
        start=first.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(first + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
            "range": {"type": "numbered", "startDate": first.date().isoformat(), "numberOfOccurrences": 4},
        },
    )
    sync = Sync(adapter)
    added = sync.run()
    occurrences = sorted(sync.events().values(), key=lambda e: e.start)
    assert len(added) == len(occurrences) == 4
    assert {e.series_id for e in occurrences} == {master["id"]}
    assert [e.original_start for e in occurrences] == [
        (first + timedelta(weeks=n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(4)
    ]
    edited, cancelled = occurrences[1], occurrences[2]

    _person(sb, "PATCH", f"/events/{edited.external_id}", shift_minutes=60)
    _person(sb, "DELETE", f"/events/{cancelled.external_id}")
    changes = sync.run()

    assert {(c.event.external_id, c.change) for c in changes} == {
        (edited.external_id, MirrorChange.UPDATED),
        (cancelled.external_id, MirrorChange.DELETED),
    }
    moved = sync.events()[edited.external_id]
    assert moved.start == first + timedelta(weeks=1, hours=1)
    assert (moved.series_id, moved.original_start) == (edited.series_id, edited.original_start)
    assert set(sync.events()) == set(_truth(sb))
    # The whole series deleted: every remaining instance goes.
    _person(sb, "DELETE", f"/events/{master['id']}")
    gone = sync.run()
    assert {c.change for c in gone} == {MirrorChange.DELETED} and len(gone) == 3
    assert sync.events() == {}


def test_time_zones_all_day_free_and_declined_events(sb: Sandbox, adapter: OutlookCalendarAdapter) -> None:
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    berlin = _creates(
        sb,
        subject="Berlin",
        start=f"{day}T10:00:00",
        end=f"{day}T11:00:00",
        time_zone="W. Europe Standard Time",
    )
    holiday = _creates(sb, subject="Holiday", start=str(day), end=str(day + timedelta(days=1)), showAs="free")
    declined = _creates(
        sb,
        subject="Invitation",
        start=f"{day}T15:00:00Z",
        end=f"{day}T16:00:00Z",
        isOrganizer=False,
        responseStatus={"response": "declined", "time": "2030-01-01T00:00:00Z"},
    )
    sync = Sync(adapter)
    sync.run()
    events = sync.events()

    offset = datetime(
        day.year, day.month, day.day, 10, tzinfo=outlook_events.zone("Europe/Berlin")
    ).utcoffset()
    assert offset is not None
    assert events[berlin["id"]].start == datetime(day.year, day.month, day.day, 10, tzinfo=UTC) - offset
    assert events[berlin["id"]].time_zone == "Europe/Berlin"
    all_day = events[holiday["id"]]
    assert (all_day.start_date, all_day.end_date, all_day.start) == (day, day + timedelta(days=1), None)
    assert all_day.busy is False
    assert events[declined["id"]].declined is True
    # Our own write in New York time lands at the right instant.
    appointment = _appointment(7, time_zone="America/New_York")
    pushed = adapter.write(DEFAULT_CALENDAR, appointment, None)
    stored = _truth(sb)[pushed.external_id]
    assert stored["originalStartTimeZone"] == "America/New_York"
    assert outlook_events.instant(stored["start"]) == appointment.start


def test_free_busy_counts_busy_events_only(sb: Sandbox, adapter: OutlookCalendarAdapter) -> None:
    day = date.today() + timedelta(days=4)
    _creates(sb, subject="Busy", start=f"{day}T09:00:00Z", end=f"{day}T10:00:00Z")
    _creates(sb, subject="Free", start=f"{day}T11:00:00Z", end=f"{day}T12:00:00Z", showAs="free")
    _creates(
        sb,
        subject="Declined",
        start=f"{day}T13:00:00Z",
        end=f"{day}T14:00:00Z",
        isOrganizer=False,
        responseStatus={"response": "declined"},
    )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)

    answer = adapter.free_busy([DEFAULT_CALENDAR, "nope"], start, start + timedelta(days=1))

    assert [(b.start.hour, b.end.hour) for b in answer.busy[DEFAULT_CALENDAR]] == [(9, 10)]
    assert answer.errors == {"nope": "ErrorItemNotFound"}


def test_calendar_name_and_throttling(sb: Sandbox, adapter: OutlookCalendarAdapter) -> None:
    assert adapter.calendar_name(DEFAULT_CALENDAR) == "Calendar"
    fault = {
        "app": "microsoft",
        "path": "/microsoft/graph/v1.0/",
        "kind": "rate_limit",
        "retry_after": 7,
        "count": 1,
    }
    assert sb.http.post(sb.url("/_sandbox/faults"), json=fault, timeout=5).status_code == 201
    with pytest.raises(http.RateLimited) as raised:
        adapter.pull(DEFAULT_CALENDAR, None, None)
    assert raised.value.retry_after == 7
    assert adapter.pull(DEFAULT_CALENDAR, None, None).cursor is not None


def test_a_deleted_event_comes_as_removed_and_is_cancelled_in_the_model() -> None:
    removed = outlook_events.to_event("c", {"id": "x", "@removed": {"reason": "deleted"}})
    assert removed is not None and removed.is_deletion and removed.status is EventStatus.CANCELLED
    assert outlook_events.to_event("c", {"id": "m", "type": "seriesMaster"}) is None
