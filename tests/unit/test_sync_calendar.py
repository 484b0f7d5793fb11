"""Calendar event hashing, mirror diffs and echo suppression."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from integrations.sync.calendar import (
    CalendarEvent,
    EventStatus,
    MirrorChange,
    MirrorEntry,
    PushedEvent,
    diff,
    is_echo,
)

START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _event(**changes: object) -> CalendarEvent:
    base: dict[str, object] = {
        "calendar_id": "primary",
        "external_id": "evt1",
        "start": START,
        "end": START + timedelta(hours=1),
        "title": "Call",
        "etag": '"1"',
    }
    return CalendarEvent.model_validate({**base, **changes})


def _entry(event: CalendarEvent) -> MirrorEntry:
    return MirrorEntry(event=event, change_hash=event.change_hash())


def test_a_touch_that_changes_only_etag_and_updated_is_no_change() -> None:
    before = _event()
    after = _event(etag='"2"', updated=START)
    assert diff(_entry(before), after) is None


@given(
    field=st.sampled_from(["title", "busy", "status", "start", "recurrence", "declined", "appointment_id"]),
)
def test_a_change_to_any_field_that_matters_is_an_update(field: str) -> None:
    values: dict[str, object] = {
        "title": "Moved call",
        "busy": False,
        "status": EventStatus.TENTATIVE,
        "start": START + timedelta(minutes=30),
        "recurrence": ("RRULE:FREQ=WEEKLY",),
        "declined": True,
        "appointment_id": "apt-9",
    }
    assert diff(_entry(_event()), _event(**{field: values[field]})) is MirrorChange.UPDATED


def test_new_event_is_added_and_a_cancelled_one_is_deleted() -> None:
    assert diff(None, _event()) is MirrorChange.ADDED
    assert diff(_entry(_event()), _event(status=EventStatus.CANCELLED)) is MirrorChange.DELETED


def test_a_deletion_of_an_event_never_seen_changes_nothing() -> None:
    assert diff(None, _event(status=EventStatus.CANCELLED)) is None


def test_a_cancelled_exception_hides_one_instance_and_is_not_a_deletion() -> None:
    exception = _event(
        external_id="series_20261208T090000Z",
        status=EventStatus.CANCELLED,
        series_id="series",
        original_start="2026-12-08T09:00:00Z",
    )
    assert not exception.is_deletion
    assert diff(None, exception) is MirrorChange.ADDED


def test_all_day_events_keep_dates_not_midnight_instants() -> None:
    event = _event(start=None, end=None, start_date=date(2026, 12, 24), end_date=date(2026, 12, 25))
    assert event.all_day
    assert event.start is None


def test_our_own_write_read_back_is_an_echo_by_etag_or_content() -> None:
    written = _event(appointment_id="apt-1")
    pushed = PushedEvent(
        appointment_id="apt-1",
        connection_id="c1",
        calendar_id="primary",
        external_id="evt1",
        etag='"1"',
        written_hash=written.change_hash(),
    )
    assert is_echo(written, pushed)
    assert is_echo(written.model_copy(update={"etag": '"7"'}), pushed)
    moved = written.model_copy(update={"etag": '"8"', "start": START + timedelta(hours=2)})
    assert not is_echo(moved, pushed)
    assert not is_echo(_event(external_id="other"), pushed)
    assert not is_echo(written, None)
