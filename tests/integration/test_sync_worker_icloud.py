"""The sync worker end to end for an iCloud connection: the sandbox's iCloud CalDAV endpoint (Radicale
behind app-specific password auth), jobs from the real queue (moto), the mirror and the connection in
DynamoDB (moto). Every test ends by comparing the mirror with the CalDAV server's own truth."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from infra.local.sandbox import SandboxConfig
from infra.local.sandbox.icloud import account_id
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount, PortalStatus
from integrations.domain.credentials import Credentials
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.store.vault import credential_ref
from integrations.sync.jobs import SyncJob
from integrations.sync.settle import Outcome
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox
from tests.support.sync_world import WorkerWorld

APPLE_ID = "casey@icloud.example"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
OWNER = AppointmentOwner(kind="client_user", agency_id="agency-1", client_id="client-a", user_id="user-1")
PERSON = "/_sandbox/icloud/calendars/home"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World(WorkerWorld):
    provider = "icloud_calendar"

    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        self.calendar_url = f"{sb.base}/icloud/{account_id(APPLE_ID)}/calendars/home/"
        self.connection_id = self._connect()

    def _connect(self) -> str:
        connection = Connection(
            id=uuid.uuid4().hex,
            provider="icloud_calendar",
            level=Level.USER,
            agency_id=OWNER.agency_id,
            client_id=OWNER.client_id,
            user_id=OWNER.user_id,
            account=ExternalAccount(id=APPLE_ID, label=APPLE_ID),
            config={"calendar_url": self.calendar_url},
        )
        self.container.connections.create(connection)
        build_vault(Settings.from_env()).put(
            credential_ref(connection),
            Credentials(secrets={"app_password": SecretStr(APP_PASSWORD)}, extra={"username": APPLE_ID}),
        )
        return connection.id

    # --- the person's side ---

    def person_creates(self, summary: str, start: datetime, **fields: Any) -> str:
        body = {
            "account": APPLE_ID,
            "summary": summary,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            **fields,
        }
        answer = self.sb.http.post(self.sb.url(f"{PERSON}/events"), json=body, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def person_edits(self, event_id: str, summary: str, start: datetime) -> None:
        body = {
            "account": APPLE_ID,
            "summary": summary,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        }
        answer = self.sb.http.put(self.sb.url(f"{PERSON}/events/{event_id}"), json=body, timeout=10)
        assert answer.status_code == 200, answer.text

    def person_deletes(self, event_id: str) -> None:
        answer = self.sb.http.delete(
            self.sb.url(f"{PERSON}/events/{event_id}"), params={"account": APPLE_ID}, timeout=10
        )
        assert answer.status_code == 204, answer.text

    def person_changes_instance(self, event_id: str, **body: Any) -> None:
        answer = self.sb.http.post(
            self.sb.url(f"{PERSON}/events/{event_id}/instances"),
            json={"account": APPLE_ID, **body},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text

    def expire_sync_tokens(self) -> int:
        answer = self.sb.http.post(self.sb.url("/_sandbox/icloud/sync-tokens/expire"), timeout=10)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["expired"])

    def truth(self) -> dict[str, dict[str, Any]]:
        answer = self.sb.http.get(self.sb.url(f"{PERSON}/events"), params={"account": APPLE_ID}, timeout=10)
        assert answer.status_code == 200, answer.text
        return {str(e["id"]): e for e in answer.json()["events"]}

    # --- our side ---

    def mirror(self) -> dict[str, Any]:
        return {e.external_id: e for e in self.container.mirror.events(self.connection_id, self.calendar_url)}

    def assert_mirror_is_the_truth(self) -> None:
        events = list(self.container.mirror.events(self.connection_id, self.calendar_url))
        masters = [e.external_id for e in events if e.series_id is None]
        assert len(masters) == len(set(masters)), "the mirror holds an event twice"
        assert set(masters) == set(self.truth())


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    server.reset()
    yield World(server, tmp_path, monkeypatch)
    clear_cache()


def tomorrow(hour: int = 9) -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def test_first_sync_then_edits_and_deletes_in_icloud_publish_one_change_each(world: World) -> None:
    dentist = world.person_creates("Dentist", tomorrow(9))
    gym = world.person_creates("Gym", tomorrow(11), time_zone="Europe/Paris")

    assert world.run().outcome is Outcome.DONE
    world.assert_mirror_is_the_truth()
    assert world.connection.status is PortalStatus.CONNECTED
    assert {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")} == {
        (dentist, "added"),
        (gym, "added"),
    }
    assert world.mirror()[gym].time_zone == "Europe/Paris"

    world.bus.events.clear()
    world.person_edits(dentist, "Dentist (moved)", tomorrow(14))
    world.person_deletes(gym)
    world.run()
    assert {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")} == {
        (dentist, "updated"),
        (gym, "deleted"),
    }
    world.assert_mirror_is_the_truth()
    world.bus.events.clear()
    world.run()
    assert world.bus.of("Calendar Event Changed") == []


def test_expired_sync_tokens_resync_fully_without_duplicates_and_apply_deletions(world: World) -> None:
    kept = [world.person_creates(f"Event {n}", tomorrow(8 + n)) for n in range(4)]
    world.run()
    world.bus.events.clear()

    world.person_deletes(kept[0])
    added = world.person_creates("Made while tokens expired", tomorrow(20))
    assert world.expire_sync_tokens() > 0
    world.run()

    assert {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")} == {
        (kept[0], "deleted"),
        (added, "added"),
    }
    world.assert_mirror_is_the_truth()


def test_an_appointment_delivered_three_times_is_one_icloud_event_and_no_echo(world: World) -> None:
    from tests.support.functions import load_handler

    world.run()
    start = tomorrow(15)
    appointment = AppointmentUpserted(
        appointment_id="apt-9",
        owner=OWNER,
        title="Kick-off",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="Europe/Berlin",
        version=1,
    )
    app = load_handler("sync_worker")
    app.container = world.container
    event = {
        "detail-type": appointment.detail_type,
        "source": "platform",
        "detail": appointment.model_dump(mode="json"),
    }
    for _ in range(3):
        assert app.platform_event(event)["status"] == "applied"
    _drain(world)

    ours = [e for e in world.truth().values() if e["summary"] == "Kick-off"]
    assert len(ours) == 1
    assert world.bus.of("Appointment Pushed")
    world.bus.events.clear()
    world.run()
    # Our own write comes back through sync: mirrored, never announced as an external change.
    assert world.bus.of("Calendar Event Changed") == []
    assert world.mirror()[ours[0]["id"]].appointment_id == "apt-9"
    world.assert_mirror_is_the_truth()


def test_a_series_with_an_edited_and_a_cancelled_instance_is_master_and_exceptions(world: World) -> None:
    first = tomorrow(10)
    series = world.person_creates("Weekly", first, rrule="FREQ=WEEKLY;COUNT=5", time_zone="America/New_York")
    world.person_changes_instance(
        series,
        original_start=(first + timedelta(weeks=1)).isoformat(),
        summary="Weekly (moved)",
        start=(first + timedelta(weeks=1, hours=2)).isoformat(),
        end=(first + timedelta(weeks=1, hours=3)).isoformat(),
    )
    world.person_changes_instance(
        series, original_start=(first + timedelta(weeks=2)).isoformat(), cancel=True
    )
    world.run()

    mirror = world.mirror()
    stamp = "%Y%m%dT%H%M%SZ"
    moved = mirror[f"{series}#{(first + timedelta(weeks=1)).strftime(stamp)}"]
    cancelled = mirror[f"{series}#{(first + timedelta(weeks=2)).strftime(stamp)}"]
    assert moved.series_id == series and moved.title == "Weekly (moved)"
    assert moved.start == first + timedelta(weeks=1, hours=2)
    assert cancelled.series_id == series and cancelled.status.value == "cancelled"
    assert mirror[series].recurrence[0] == "RRULE:FREQ=WEEKLY;COUNT=5"
    world.assert_mirror_is_the_truth()


def _drain(world: World) -> None:
    """Run every job on the sync queue until it is empty."""
    from integrations import aws as aws_clients

    sqs = aws_clients.sqs()
    queue = Settings.from_env().sync_queue_url
    for _ in range(30):
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return
        for message in messages:
            job = SyncJob.model_validate_json(message["Body"])
            world.worker.handle(job, receive_count=1, remaining_ms=lambda: 600_000)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
