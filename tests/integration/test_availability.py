"""Availability from the DynamoDB mirror and the appointment projection (moto), through the container."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level
from integrations.domain.connection import (
    AuthHealth,
    Connection,
    ConnectionError_,
    ErrorCode,
    ExternalAccount,
)
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.sync.availability import AvailabilityState, DegradedCode, window_of
from integrations.sync.calendar import CalendarEvent, EventStatus, MirrorEntry
from integrations.sync.expansion import Interval

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)
DAY = datetime(2026, 12, 2, tzinfo=UTC)
OWNER = AppointmentOwner(kind="client_user", agency_id="agency-a", client_id="client-a", user_id="user-1")
# The same user id in another agency: a different person whose calendars must never mix in.
STRANGER = AppointmentOwner(kind="client_user", agency_id="agency-b", client_id="client-a", user_id="user-1")
COLLEAGUE = AppointmentOwner(kind="client_user", agency_id="agency-a", client_id="client-a", user_id="user-2")


@pytest.fixture
def services(aws: Any) -> Container:
    return Container(Settings.from_env(), clock=lambda: NOW)


def _connection(services: Container, owner: AppointmentOwner, cid: str, **changes: Any) -> Connection:
    base: dict[str, Any] = {
        "id": cid,
        "provider": "google_calendar",
        "level": Level.USER,
        "agency_id": owner.agency_id,
        "client_id": owner.client_id,
        "user_id": owner.user_id,
        "account": ExternalAccount(id=f"acct-{cid}", label=f"{cid}@example.com"),
        "last_sync_at": NOW - timedelta(minutes=3),
    }
    return services.connections.create(Connection.model_validate({**base, **changes}))


def _mirror(services: Container, connection_id: str, *events: CalendarEvent) -> None:
    entries = [MirrorEntry(event=e, change_hash=e.change_hash()) for e in events]
    services.mirror.put_many(connection_id, entries)


def _timed(eid: str, hour: float, minutes: int, **changes: Any) -> CalendarEvent:
    start = DAY + timedelta(hours=hour)
    end = start + timedelta(minutes=minutes)
    return CalendarEvent.model_validate(
        {"calendar_id": "primary", "external_id": eid, "start": start, "end": end} | changes
    )


def _day_window(slot: int = 60) -> Any:
    return window_of(DAY, DAY + timedelta(days=1), "UTC", slot)


def test_the_window_read_finds_masters_long_events_and_cancelled_instances_but_not_far_events(
    services: Container,
) -> None:
    _connection(services, OWNER, "conn-1")
    far = _timed("far", -24 * 10, 30)
    long = _timed("long", -24 * 5, 60 * 24 * 6)  # began five days before, still running
    master = _timed("weekly", -24 * 30, 30, recurrence=("RRULE:FREQ=WEEKLY",), time_zone="UTC")
    hidden = CalendarEvent(
        calendar_id="primary",
        external_id="weekly_x",
        status=EventStatus.CANCELLED,
        series_id="weekly",
        original_start="2026-12-02T00:00:00Z",
    )
    near = _timed("near", 9, 30)
    holiday = CalendarEvent(
        calendar_id="primary", external_id="hol", start_date=date(2026, 12, 1), end_date=date(2026, 12, 3)
    )
    _mirror(services, "conn-1", far, long, master, hidden, near, holiday)

    found = services.mirror.events_between("conn-1", "primary", DAY, DAY + timedelta(days=1))

    assert {e.external_id for e in found} == {"long", "weekly", "weekly_x", "near", "hol"}


def test_the_window_read_finds_every_all_day_date_that_can_meet_it_in_some_time_zone(
    services: Container,
) -> None:
    _connection(services, OWNER, "conn-1")
    days = [date(2026, 11, 25) + timedelta(days=n) for n in range(14)]
    _mirror(
        services,
        "conn-1",
        *(
            CalendarEvent(
                calendar_id="primary",
                external_id=f"day-{d.isoformat()}",
                start_date=d,
                end_date=d + timedelta(days=1),
            )
            for d in days
        ),
    )

    found = {
        e.external_id
        for e in services.mirror.events_between("conn-1", "primary", DAY, DAY + timedelta(days=1))
    }

    # The window is 2 Dec in UTC: local dates from UTC-12 to UTC+14 that overlap it are 1 to 3 Dec.
    assert {f"day-2026-12-0{n}" for n in (1, 2, 3)} <= found
    # Read one range, not the calendar: dates far from the window stay out.
    assert not found & {f"day-{d.isoformat()}" for d in days if abs((d - DAY.date()).days) > 4}


def test_busy_time_joins_the_mirror_and_the_projected_appointments(services: Container) -> None:
    _connection(services, OWNER, "conn-1")
    _mirror(
        services,
        "conn-1",
        _timed("standup", 9, 30),
        _timed("lunch", 12, 60, busy=False),
        _timed("declined", 14, 60, declined=True),
    )
    services.appointments.upsert(
        AppointmentUpserted(
            appointment_id="apt-1",
            owner=OWNER,
            start=DAY + timedelta(hours=15),
            end=DAY + timedelta(hours=16),
            time_zone="UTC",
            version=1,
        )
    )

    answer = services.availability.for_owners([OWNER], _day_window())

    assert answer.state is AvailabilityState.OK and answer.reasons == []
    assert answer.busy == [
        Interval(DAY + timedelta(hours=9), DAY + timedelta(hours=9, minutes=30)),
        Interval(DAY + timedelta(hours=15), DAY + timedelta(hours=16)),
    ]
    free_hours = [(s.start - DAY) // timedelta(hours=1) for s in answer.free]
    assert free_hours == [h for h in range(24) if h not in (9, 15)]


def test_a_conflict_calendar_in_error_makes_the_answer_degraded_not_free(services: Container) -> None:
    broken = ConnectionError_(code=ErrorCode.REAUTH_REQUIRED, message="Connect again.", at=NOW)
    _connection(services, OWNER, "conn-ok")
    _connection(services, OWNER, "conn-broken", auth_health=AuthHealth.REAUTH_REQUIRED, auth_error=broken)
    _mirror(services, "conn-broken", _timed("known", 10, 60))

    answer = services.availability.for_owners([OWNER], _day_window())

    assert answer.state is AvailabilityState.DEGRADED
    [reason] = answer.reasons
    assert (reason.code, reason.connection_id) == (DegradedCode.CALENDAR_ERROR, "conn-broken")
    assert "reauth_required" in reason.message
    # What the mirror does know still blocks.
    assert answer.busy == [Interval(DAY + timedelta(hours=10), DAY + timedelta(hours=11))]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"last_sync_at": NOW - timedelta(minutes=31)}, DegradedCode.CALENDAR_STALE),
        ({"last_sync_at": None}, DegradedCode.CALENDAR_STALE),
        ({"paused": True}, DegradedCode.CALENDAR_PAUSED),
    ],
    ids=["not synced within twice its interval", "never synced", "paused"],
)
def test_a_calendar_not_kept_in_sync_makes_the_answer_degraded(
    services: Container, changes: dict[str, Any], code: DegradedCode
) -> None:
    _connection(services, OWNER, "conn-1", **changes)

    answer = services.availability.for_owners([OWNER], _day_window())

    assert answer.state is AvailabilityState.DEGRADED
    assert [r.code for r in answer.reasons] == [code]


def test_a_custom_interval_sets_when_a_calendar_is_stale(services: Container) -> None:
    synced = NOW - timedelta(minutes=100)
    _connection(services, OWNER, "conn-1", sync_interval_minutes=60, last_sync_at=synced)

    assert services.availability.for_owners([OWNER], _day_window()).state is AvailabilityState.OK


def test_a_one_way_calendar_blocks_nothing_and_cannot_degrade(services: Container) -> None:
    _connection(services, OWNER, "conn-1", provider="google_calendar_oneway", last_sync_at=None)
    _mirror(services, "conn-1", _timed("x", 9, 60))

    answer = services.availability.for_owners([OWNER], _day_window())

    assert (answer.state, answer.busy) == (AvailabilityState.OK, [])


def test_one_tenants_owner_never_sees_another_tenants_calendars(services: Container) -> None:
    _connection(services, OWNER, "conn-a")
    _connection(services, STRANGER, "conn-b", last_sync_at=None)
    _mirror(services, "conn-b", _timed("theirs", 9, 60))

    mine = services.availability.for_owners([OWNER], _day_window())

    assert (mine.state, mine.busy) == (AvailabilityState.OK, [])


def test_a_team_is_free_only_when_everyone_is(services: Container) -> None:
    _connection(services, OWNER, "conn-1")
    _connection(services, COLLEAGUE, "conn-2")
    _mirror(services, "conn-1", _timed("a", 9, 60))
    _mirror(services, "conn-2", _timed("b", 10, 60))

    answer = services.availability.for_owners([OWNER, COLLEAGUE], _day_window())

    assert [o.busy for o in answer.owners] == [
        [Interval(DAY + timedelta(hours=9), DAY + timedelta(hours=10))],
        [Interval(DAY + timedelta(hours=10), DAY + timedelta(hours=11))],
    ]
    assert answer.busy == [Interval(DAY + timedelta(hours=9), DAY + timedelta(hours=11))]
    assert DAY + timedelta(hours=9) not in [s.start for s in answer.free]
    assert DAY + timedelta(hours=10) not in [s.start for s in answer.free]
    assert len(answer.free) == 22


def test_the_agency_settings_are_read_once_for_all_of_an_owners_calendars(
    services: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    for cid in ("conn-1", "conn-2", "conn-3"):
        _connection(services, OWNER, cid)
    reads: list[str] = []
    read = services.agencies.get

    def counted(agency_id: str) -> Any:
        reads.append(agency_id)
        return read(agency_id)

    monkeypatch.setattr(services.agencies, "get", counted)

    answer = services.availability.for_owners([OWNER], _day_window())

    assert answer.state is AvailabilityState.OK
    assert reads == ["agency-a"]
