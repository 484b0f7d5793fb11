"""Sync preferences and the agency's switches, end to end below HTTP: the worker, the Google Calendar
sandbox, the mirror, the projection and the connection in DynamoDB (moto). Each test compares what the
sandbox holds, or what the bus heard, with what the preference promises."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.catalog.loader import clear_cache
from integrations.domain.connection import Connection
from integrations.events import AppointmentUpserted
from integrations.sync.availability import AvailabilityState, window_of
from integrations.sync.settle import Outcome
from tests.integration.test_sync_worker import OWNER, World, server, tomorrow
from tests.support import seed
from tests.support.sandbox import Sandbox

__all__ = ["server"]


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    server.reset()
    yield World(server, tmp_path, monkeypatch)
    clear_cache()


def configure(world: World, **config: Any) -> Connection:
    """Save preferences as the portal's PATCH would (validated config on the connection)."""
    now = datetime.now(UTC)
    saved = world.container.sync_state.apply(world.connection_id, lambda c: c.configured(config, now))
    assert saved is not None
    return saved


def appointment(appointment_id: str, kind: str = "appointment", hour: int = 15) -> AppointmentUpserted:
    start = tomorrow(hour)
    return AppointmentUpserted(
        appointment_id=appointment_id,
        owner=OWNER,
        type=kind,
        title=f"Platform {appointment_id}",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="Europe/Berlin",
        version=1,
    )


def deliver(world: World, *appointments: AppointmentUpserted) -> None:
    for item in appointments:
        for job in world.container.appointment_pusher.upserted(item):
            world.enqueue(job)
    world.drain()


def ours(world: World) -> set[str]:
    return {
        str(e.get("summary"))
        for e in world.truth().values()
        if str(e.get("summary", "")).startswith("Platform")
    }


def calendar_reads(world: World) -> list[dict[str, Any]]:
    """What the service asked Google's events API (the sandbox's own control routes left out)."""
    return [e for e in world.sb.requests_log() if str(e["path"]).startswith("/google/calendar/v3/calendars")]


def availability(world: World) -> Any:
    start = tomorrow(0)
    window = window_of(start, start + timedelta(days=1), "UTC", 60)
    return world.container.availability.for_owner(OWNER, window)


def test_push_off_writes_nothing_at_the_calendar(world: World) -> None:
    configure(world, push=False)

    deliver(world, appointment("apt-1"))

    assert ours(world) == set()
    assert world.bus.of("Appointment Pushed") == []


def test_only_the_chosen_types_are_pushed(world: World) -> None:
    configure(world, push_types=["appointment", "blocked_time"])

    deliver(
        world,
        appointment("apt-1"),
        appointment("task-1", "task", 10),
        appointment("off-1", "blocked_time", 12),
    )

    assert ours(world) == {"Platform apt-1", "Platform off-1"}


def test_turning_push_off_keeps_what_was_pushed_and_changes_nothing_more(world: World) -> None:
    deliver(world, appointment("apt-1"))
    assert ours(world) == {"Platform apt-1"}
    configure(world, push=False)

    moved = appointment("apt-1").model_copy(update={"title": "Platform apt-1 moved", "version": 2})
    deliver(world, moved)

    assert ours(world) == {"Platform apt-1"}


def test_fetch_off_publishes_no_calendar_event_changed(world: World) -> None:
    world.person_creates("Dentist", tomorrow(9))
    configure(world, fetch=False)

    assert world.run(world.job()).outcome is Outcome.DONE

    assert world.bus.of("Calendar Event Changed") == []
    # Conflicts are still checked, so the busy time is mirrored for availability.
    world.assert_mirror_is_the_truth()


def test_fetch_and_conflicts_off_read_nothing(world: World) -> None:
    world.person_creates("Dentist", tomorrow(9))
    configure(world, fetch=False, conflict=False)

    result = world.run(world.job())

    assert result.reason == "nothing to read"
    assert calendar_reads(world) == []
    assert world.mirror_ids("primary") == []


def test_conflicts_off_leave_availability_free_and_not_degraded(world: World) -> None:
    world.person_creates("Dentist", tomorrow(9))
    world.run(world.job())
    assert availability(world).busy, "the synced calendar blocks time while conflicts are on"

    configure(world, conflict=False)
    # A stale or failing calendar that is not checked for conflicts cannot degrade the answer either.
    world.container.sync_state.apply(world.connection_id, lambda c: c.sync_failed("boom", datetime.now(UTC)))

    answer = availability(world)
    assert answer.busy == []
    assert answer.state is AvailabilityState.OK


def test_show_as_busy_hides_the_title(world: World) -> None:
    configure(world, show_as="busy")
    world.person_creates("Divorce lawyer", tomorrow(9))

    world.run(world.job())

    changed = world.bus.of("Calendar Event Changed")
    assert len(changed) == len(world.truth())
    assert {(e.title, e.show_as) for e in changed} == {("Busy", "busy")}
    assert all(e.start is not None or e.start_date is not None for e in changed)


def test_the_window_leaves_out_events_beyond_it(world: World) -> None:
    configure(world, window_future_days=7)
    near = world.person_creates("Near", tomorrow(9))
    far = world.person_creates("Far", datetime.now(UTC).replace(microsecond=0) + timedelta(days=40))

    world.run(world.job())

    mirrored = set(world.mirror_ids("primary"))
    assert near["id"] in mirrored
    assert far["id"] not in mirrored
    assert mirrored == set(world.truth()) - {far["id"]}
    assert far["id"] not in {e.event_id for e in world.bus.of("Calendar Event Changed")}


def test_the_agency_switch_stops_sync_and_pushes_and_switching_back_resumes(world: World) -> None:
    # The connection belongs to a client's person (a contact, for the agency's switches).
    seed.agency(OWNER.agency_id, contact_personal_connections=False)
    world.person_creates("Dentist", tomorrow(9))

    result = world.run(world.job())
    deliver(world, appointment("apt-1"))

    assert result.reason == "sync.paused_by_agency"
    assert calendar_reads(world) == []
    assert ours(world) == set()
    assert world.mirror_ids("primary") == []
    connection = world.connection
    assert connection.next_sync_at is not None
    assert connection.next_sync_at - datetime.now(UTC) <= timedelta(minutes=16)

    seed.agency(OWNER.agency_id, contact_personal_connections=True)
    assert world.run(world.job()).outcome is Outcome.DONE
    world.assert_mirror_is_the_truth()


def test_a_stopped_calendar_does_not_degrade_availability(world: World) -> None:
    world.person_creates("Dentist", tomorrow(9))
    world.run(world.job())
    seed.agency(OWNER.agency_id, contact_personal_connections=False)

    answer = availability(world)

    assert answer.state is AvailabilityState.OK
    assert answer.busy == []
