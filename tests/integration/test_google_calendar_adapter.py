"""Google Calendar's adapter against the sandbox's Calendar API: pull, write, echoes, 410 and Meet links."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig, catalog_overrides
from integrations.catalog import load_catalog
from integrations.providers.google_calendar.sync import GoogleCalendarAdapter, event_id_for
from integrations.sync.calendar import MirrorChange, OutboundEvent
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, EventChange
from tests.support.calendar_fakes import FakeMirror, FakePushed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

CONN = "conn-g"
ACCOUNT = "alex@example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.5)) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


@pytest.fixture
def adapter(sb: Sandbox, tmp_path: Path) -> GoogleCalendarAdapter:
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(catalog_overrides(sb.base)))
    spec = load_catalog(str(overrides)).get("google_calendar")
    token = connect(sb, "google", account=ACCOUNT)["access_token"]
    return GoogleCalendarAdapter(spec, CONN, lambda: str(token))


class Sync:
    """The puller over an in-memory mirror, with the mapping of what the adapter wrote."""

    def __init__(self, adapter: GoogleCalendarAdapter) -> None:
        self.adapter = adapter
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
        self.puller.pull(CONN, "primary", self.adapter, self.cursor, lambda: True)
        return self.published[before:]

    def write(self, event: OutboundEvent) -> None:
        existing = next(
            (p for p in self.pushed.mappings.values() if p.appointment_id == event.appointment_id), None
        )
        pushed = self.adapter.write("primary", event, existing)
        self.pushed.mappings[pushed.external_id] = pushed


def _person_edits(sb: Sandbox, **body: Any) -> dict[str, Any]:
    answer = sb.http.post(sb.url("/_sandbox/google/events"), json={"account": ACCOUNT, **body}, timeout=5)
    assert answer.status_code in (200, 201), answer.text
    result: dict[str, Any] = answer.json()
    return result


def _at(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def _appointment(n: int, **changes: Any) -> OutboundEvent:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1, hours=n)
    base: dict[str, Any] = {
        "appointment_id": f"apt-{n}",
        "title": f"Demo call {n}",
        "start": start,
        "end": start + timedelta(minutes=30),
        "time_zone": "Europe/Berlin",
    }
    return OutboundEvent.model_validate({**base, **changes})


def test_the_persons_events_arrive_and_later_edits_come_as_changes(
    sb: Sandbox, adapter: GoogleCalendarAdapter
) -> None:
    sync = Sync(adapter)
    seeded = len(sync.run())
    made = [
        _person_edits(sb, summary=f"Dentist {n}", start=_at(n + 1), end=_at(n + 2))["id"] for n in range(4)
    ]
    added = sync.run()
    assert sorted(c.event.external_id for c in added) == sorted(made)
    assert {c.change for c in added} == {MirrorChange.ADDED}
    assert len(sync.mirror.entries) == seeded + 4
    first = made[0]
    _person_edits(sb, id=first, start=_at(10), end=_at(11))
    changes = sync.run()
    assert [(c.event.external_id, c.change) for c in changes] == [(first, MirrorChange.UPDATED)]


def test_our_write_is_not_reported_back_but_the_persons_move_of_it_is(
    sb: Sandbox, adapter: GoogleCalendarAdapter
) -> None:
    sync = Sync(adapter)
    sync.run()
    sync.write(_appointment(1))
    assert sync.run() == []
    [ours] = sync.pushed.mappings
    _person_edits(sb, id=ours, start=_at(30), end=_at(31))
    [moved] = sync.run()
    assert (moved.change, moved.event.appointment_id) == (MirrorChange.UPDATED, "apt-1")


def test_a_redelivered_insert_makes_no_second_event(sb: Sandbox, adapter: GoogleCalendarAdapter) -> None:
    first = adapter.write("primary", _appointment(2), None)
    again = adapter.write("primary", _appointment(2, title="Demo call (renamed)"), None)
    assert first.external_id == again.external_id == event_id_for(CONN, "apt-2")
    sync = Sync(adapter)
    sync.run()
    ours = [e for e in sync.mirror.events(CONN, "primary").values() if e.appointment_id == "apt-2"]
    assert [e.title for e in ours] == ["Demo call (renamed)"]


def test_video_asks_google_for_a_meet_link(adapter: GoogleCalendarAdapter) -> None:
    pushed = adapter.write("primary", _appointment(3, video=True), None)
    assert pushed.video_url is not None
    assert "meet" in pushed.video_url


def test_an_expired_sync_token_resyncs_without_duplicates_and_applies_deletions(
    sb: Sandbox, adapter: GoogleCalendarAdapter
) -> None:
    ids = [_person_edits(sb, summary=f"Block {n}", start=_at(n + 1), end=_at(n + 2))["id"] for n in range(5)]
    sync = Sync(adapter)
    sync.run()
    _person_edits(sb, id=ids[0], delete=True)
    sb.http.post(sb.url("/_sandbox/google/sync_tokens/expire"), json={"account": ACCOUNT}, timeout=5)
    changes = sync.run()
    assert [(c.event.external_id, c.change) for c in changes] == [(ids[0], MirrorChange.DELETED)]
    remaining = set(sync.mirror.events(CONN, "primary"))
    assert set(ids[1:]) <= remaining
    assert ids[0] not in remaining


def test_delete_removes_our_event_and_tolerates_one_already_gone(
    sb: Sandbox, adapter: GoogleCalendarAdapter
) -> None:
    pushed = adapter.write("primary", _appointment(4), None)
    adapter.delete(pushed)
    adapter.delete(pushed)
    sync = Sync(adapter)
    sync.run()
    assert pushed.external_id not in sync.mirror.events(CONN, "primary")
