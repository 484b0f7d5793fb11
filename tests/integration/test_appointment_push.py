"""Appointments pushed into Google Calendar (sandbox) from the projection in DynamoDB (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig, catalog_overrides
from integrations import aws as aws_clients
from integrations.catalog import load_catalog
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.events import AppointmentDeleted, AppointmentOwner, AppointmentUpserted
from integrations.providers.google_calendar.sync import GoogleCalendarAdapter
from integrations.store.appointments import AppointmentProjection
from integrations.store.mirror import DynamoMirror
from integrations.sync.appointments import AppointmentPusher, PushResult, PushTarget
from integrations.sync.calendar import PushedEvent
from integrations.sync.jobs import SyncJob
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

ACCOUNT = "casey@example.com"
OWNER = AppointmentOwner(kind="client_user", agency_id="demo-agency", client_id="client-a", user_id="user-1")
API = "/google/calendar/v3"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.5)) as sandbox:
        yield sandbox


class World:
    def __init__(self, sb: Sandbox, aws: Any, tmp_path: Path) -> None:
        self.sb = sb
        overrides = tmp_path / "overrides.json"
        overrides.write_text(json.dumps(catalog_overrides(sb.base)))
        spec = load_catalog(str(overrides)).get("google_calendar")
        self.token = str(connect(sb, "google", account=ACCOUNT)["access_token"])
        self.connection = Connection(
            id="conn-push",
            provider="google_calendar",
            level=Level.USER,
            agency_id=OWNER.agency_id,
            client_id=OWNER.client_id,
            user_id=OWNER.user_id,
            account=ExternalAccount(id="g-casey", label=ACCOUNT),
        )
        self.adapter = GoogleCalendarAdapter(spec, self.connection.id, lambda: self.token)
        self.projection = AppointmentProjection(aws_clients.dynamodb(), aws.tables["SyncTable"])
        self.mirror = DynamoMirror(aws_clients.dynamodb(), aws.tables["SyncTable"])
        self.announced: list[PushedEvent] = []
        self.pusher = AppointmentPusher(
            projection=self.projection,
            pushes=self.mirror,
            pushing_connections=lambda owner: [self.connection] if owner == OWNER else [],
            announce=lambda connection, pushed: self.announced.append(pushed),
            clock=lambda: datetime.now(UTC),
        )
        self.calendar_id = "primary"

    def run(self, jobs: list[SyncJob]) -> list[PushResult]:
        target = PushTarget(self.connection, self.adapter, self.calendar_id)
        return [self.pusher.push(target, OWNER, str(job.hint["appointment_id"])) for job in jobs]

    def events(self, calendar_id: str = "primary") -> list[dict[str, Any]]:
        answer = self.sb.http.get(
            self.sb.url(f"{API}/calendars/{calendar_id}/events"),
            params={"privateExtendedProperty": "integrations_appointment_id=apt-1"},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return [i for i in items if i.get("status") != "cancelled"]

    def team_calendar(self) -> str:
        answer = self.sb.http.get(
            self.sb.url(f"{API}/users/me/calendarList"),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )
        return next(str(c["id"]) for c in answer.json()["items"] if c.get("summary") == "Team bookings")


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path) -> World:
    server.reset()
    return World(server, aws, tmp_path)


def _upserted(version: int, **changes: Any) -> AppointmentUpserted:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    base: dict[str, Any] = {
        "appointment_id": "apt-1",
        "owner": OWNER,
        "title": f"Demo call v{version}",
        "start": start,
        "end": start + timedelta(minutes=45),
        "time_zone": "America/New_York",
        "version": version,
    }
    return AppointmentUpserted.model_validate({**base, **changes})


def test_an_appointment_delivered_three_times_is_one_event(world: World) -> None:
    results = [world.run(world.pusher.upserted(_upserted(1))) for _ in range(3)]
    assert results == [[PushResult.WRITTEN], [PushResult.UNCHANGED], [PushResult.UNCHANGED]]
    [event] = world.events()
    assert event["summary"] == "Demo call v1"
    assert event["extendedProperties"]["private"]["integrations_appointment_id"] == "apt-1"


def test_a_newer_version_updates_the_same_event_and_a_late_older_one_changes_nothing(world: World) -> None:
    world.run(world.pusher.upserted(_upserted(1)))
    world.run(world.pusher.upserted(_upserted(3, title="Moved call")))
    world.run(world.pusher.upserted(_upserted(2, title="Stale title")))
    [event] = world.events()
    assert event["summary"] == "Moved call"


def test_delete_removes_the_event_and_a_late_upsert_does_not_bring_it_back(world: World) -> None:
    world.run(world.pusher.upserted(_upserted(1)))
    results = world.run(
        world.pusher.deleted(AppointmentDeleted(appointment_id="apt-1", owner=OWNER, version=2))
    )
    assert results == [PushResult.DELETED]
    world.run(world.pusher.upserted(_upserted(1)))
    assert world.events() == []
    assert world.mirror.pushed_for(OWNER.agency_id, "apt-1") == []


def test_after_the_calendar_changes_the_next_push_moves_the_event_without_a_copy_left(world: World) -> None:
    world.run(world.pusher.upserted(_upserted(1)))
    team = world.team_calendar()
    world.calendar_id = team
    assert world.run(world.pusher.upserted(_upserted(2, title="Now in Team"))) == [PushResult.MOVED]
    assert world.events("primary") == []
    [moved] = world.events(team)
    assert moved["summary"] == "Now in Team"
    [mapping] = world.mirror.pushed_for(OWNER.agency_id, "apt-1")
    assert mapping.calendar_id == team
    assert world.mirror.by_external_ids(world.connection.id, "primary", [moved["id"]]) == {}
    # Deleting after the move hits the event in its new calendar.
    world.run(world.pusher.deleted(AppointmentDeleted(appointment_id="apt-1", owner=OWNER, version=3)))
    assert world.events(team) == []


def test_video_appointments_announce_their_meet_link(world: World) -> None:
    world.run(world.pusher.upserted(_upserted(1, video=True)))
    [pushed] = world.announced
    assert pushed.video_url is not None
    assert pushed.video_url.startswith("https://")


def test_push_existing_replays_upcoming_appointments_resumes_and_runs_twice_without_duplicates(
    world: World,
) -> None:
    from integrations.sync.progress import PushProgress
    from integrations.sync.push_existing import PushExisting
    from tests.support.calendar_fakes import FakeConnections

    now = datetime.now(UTC)
    for n in range(5):
        start = now + timedelta(days=1, hours=n)
        world.projection.upsert(
            _upserted(1, appointment_id=f"apt-{n}", start=start, end=start + timedelta(minutes=30))
        )
    past = now - timedelta(days=1)
    world.projection.upsert(
        _upserted(1, appointment_id="apt-past", start=past, end=past + timedelta(minutes=30))
    )
    connections = FakeConnections({world.connection.id: world.connection})
    replay = PushExisting(
        projection=world.projection,
        pusher=world.pusher,
        checkpoints=connections,
        clock=lambda: datetime.now(UTC),
    )

    def target() -> PushTarget:
        return PushTarget(connections.connections[world.connection.id], world.adapter, "primary")

    started = replay.start(world.connection, "run-1", "primary", "alex's calendar")
    assert started.total == 5
    budget = iter([True, True, False])
    cut = replay.run(target(), "run-1", lambda: next(budget, False))
    assert cut is not None
    assert (cut.state, cut.pushed) == ("pushing", 2)
    done = replay.run(target(), "run-1", lambda: True)
    assert done is not None
    assert (done.state, done.pushed, done.failed, done.total) == ("done", 5, 0, 5)
    assert done.summary() == "Pushed 5 appointments to alex's calendar."
    assert PushProgress.of(connections.connections[world.connection.id]) == done

    replay.start(connections.connections[world.connection.id], "run-2", "primary", "alex's calendar")
    again = replay.run(target(), "run-2", lambda: True)
    assert again is not None
    assert again.pushed == 5
    answer = world.sb.http.get(
        world.sb.url(f"{API}/calendars/primary/events"),
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=5,
    )
    ours = [
        e
        for e in answer.json()["items"]
        if (e.get("extendedProperties") or {}).get("private", {}).get("integrations_appointment_id")
    ]
    assert sorted(e["extendedProperties"]["private"]["integrations_appointment_id"] for e in ours) == [
        f"apt-{n}" for n in range(5)
    ]
