"""The DynamoDB mirror under the calendar puller: the same behaviour as in memory, on the real layout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.store.mirror import DynamoMirror, start_key
from integrations.sync.calendar import CalendarEvent, MirrorChange, MirrorEntry, PushedEvent
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, EventChange
from tests.support.calendar_fakes import FakeCalendar

CONN = "conn-1"
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture
def mirror(aws: Any) -> DynamoMirror:
    return DynamoMirror(aws_clients.dynamodb(), aws.tables["SyncTable"])


def _event(n: int, **changes: object) -> CalendarEvent:
    base: dict[str, object] = {
        "calendar_id": "primary",
        "external_id": f"evt{n}",
        "start": START + timedelta(minutes=n),
        "end": START + timedelta(minutes=n + 30),
        "title": f"Event {n}",
    }
    return CalendarEvent.model_validate({**base, **changes})


def test_entries_round_trip_in_batches_larger_than_dynamodb_allows(mirror: DynamoMirror) -> None:
    events = [_event(n) for n in range(130)]
    mirror.put_many(CONN, [MirrorEntry(event=e, change_hash=e.change_hash()) for e in events])
    found = mirror.get_many(CONN, "primary", [e.external_id for e in events])
    assert {k: v.event for k, v in found.items()} == {e.external_id: e for e in events}
    mirror.delete_many(CONN, "primary", [e.external_id for e in events[:60]])
    assert len(list(mirror.events(CONN, "primary"))) == 70


@pytest.mark.parametrize("between", [10, 58], ids=["same batch", "batches sent in parallel"])
def test_two_entries_for_one_event_in_one_write_keep_the_later_one(
    mirror: DynamoMirror, between: int
) -> None:
    # DynamoDB refuses a batch naming one key twice, and parallel batches race: the later entry wins.
    first, later = _event(1), _event(1, title="Renamed")
    others = [_event(n) for n in range(2, 2 + between)]
    batches: list[list[str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        for requests in params["RequestItems"].values():
            batches.append([r["PutRequest"]["Item"]["sk"]["S"] for r in requests])

    client = aws_clients.dynamodb()
    client.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", record)
    try:
        mirror.put_many(
            CONN,
            [MirrorEntry(event=e, change_hash=e.change_hash()) for e in [first, *others, later]],
        )
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.BatchWriteItem", record)
    assert all(len(keys) == len(set(keys)) for keys in batches)
    assert sum(len(keys) for keys in batches) == 1 + len(others)
    found = mirror.get_many(CONN, "primary", ["evt1", *(e.external_id for e in others)])
    assert found["evt1"].event.title == "Renamed"
    assert len(found) == 1 + len(others)


def test_calendars_and_connections_do_not_see_each_other(mirror: DynamoMirror) -> None:
    event = _event(1)
    mirror.put_many(CONN, [MirrorEntry(event=event, change_hash=event.change_hash())])
    assert mirror.get_many("conn-2", "primary", ["evt1"]) == {}
    assert mirror.get_many(CONN, "work", ["evt1"]) == {}


def test_the_puller_on_dynamodb_ends_equal_to_the_provider_after_an_expired_cursor(
    mirror: DynamoMirror,
) -> None:
    calendar = FakeCalendar(page_size=7)
    for n in range(40):
        calendar.upsert(_event(n))
    published: list[EventChange] = []
    cursors: dict[str, CalendarCursor] = {}
    puller = CalendarPuller(
        mirror=mirror,
        pushed=mirror,
        publish=published.extend,
        checkpoint=cursors.__setitem__,
    )

    def run() -> None:
        puller.pull(CONN, "primary", calendar, cursors.get("primary", CalendarCursor()), lambda: True)

    run()
    for n in range(0, 40, 5):
        calendar.remove(f"evt{n}")
    calendar.upsert(_event(41))
    calendar.expire_tokens()
    published.clear()
    run()
    mirrored = {e.external_id: e.change_hash() for e in mirror.events(CONN, "primary")}
    assert mirrored == {k: v.change_hash() for k, v in calendar.live().items()}
    deleted = sorted(c.event.external_id for c in published if c.change is MirrorChange.DELETED)
    assert deleted == sorted(f"evt{n}" for n in range(0, 40, 5))


def test_pushed_events_are_found_by_appointment_and_by_event(mirror: DynamoMirror) -> None:
    pushed = PushedEvent(
        appointment_id="apt-1", connection_id=CONN, calendar_id="primary", external_id="gev1", etag='"3"'
    )
    mirror.record_push("agency-a", pushed)
    assert mirror.pushed_for("agency-a", "apt-1") == [pushed]
    assert mirror.by_external_ids(CONN, "primary", ["gev1", "other"]) == {"gev1": pushed}
    assert mirror.pushed_for("agency-b", "apt-1") == []
    mirror.forget_push("agency-a", pushed)
    assert mirror.pushed_for("agency-a", "apt-1") == []
    assert mirror.by_external_ids(CONN, "primary", ["gev1"]) == {}


def test_start_keys_order_masters_then_instants_with_all_day_dates_a_day_early() -> None:
    master = _event(1, recurrence=("RRULE:FREQ=DAILY",))
    all_day = _event(2, start=None, end=None, start_date=date(2026, 12, 2), end_date=date(2026, 12, 3))
    timed = _event(3)
    assert start_key(master).startswith("R#")
    # A local date can begin a day before its UTC midnight: the key is there, beside timed starts.
    assert start_key(all_day) == "T#2026-12-01T00:00:00+00:00#D#evt2"
    assert start_key(timed) == f"T#{(START + timedelta(minutes=3)).isoformat()}#evt3"
