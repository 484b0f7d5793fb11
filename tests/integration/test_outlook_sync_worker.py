"""The sync worker end to end for an Outlook connection: jobs from the real queue (moto), the sandbox's
Microsoft Graph, the mirror and the connection in DynamoDB (moto). Every test ends by comparing the
mirror with the sandbox's own truth (its calendar view over the window the adapter reads)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.domain.access import Level
from integrations.domain.connection import PortalStatus
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.providers.outlook_calendar import sync as outlook_sync
from integrations.providers.outlook_calendar.events import APPOINTMENT_PROPERTY
from integrations.sync.settle import Outcome
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import WorkerDied, WorkerWorld

ACCOUNT = "casey@example.com"
OWNER = AppointmentOwner(kind="client_user", agency_id="agency-1", client_id="client-a", user_id="user-1")
CONTROL = "/_sandbox/outlook"
CALENDAR = "default"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World(WorkerWorld):
    provider = "outlook_calendar"

    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        tokens = connect(sb, "microsoft", account=ACCOUNT)
        self.connection_id = seed.connection(
            provider="outlook_calendar",
            agency_id=OWNER.agency_id,
            client_id=OWNER.client_id,
            level=Level.USER,
            user_id=OWNER.user_id,
            account_id="ms-casey",
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        ).id

    # --- the provider's side ---

    def person_creates(self, subject: str, start: datetime, **fields: Any) -> dict[str, Any]:
        body = {
            "account": ACCOUNT,
            "subject": subject,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **fields,
        }
        answer = self.sb.http.post(
            self.sb.url(f"{CONTROL}/calendars/{CALENDAR}/events"), json=body, timeout=5
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def person_edits(self, event_id: str, **fields: Any) -> None:
        answer = self.sb.http.patch(
            self.sb.url(f"{CONTROL}/events/{event_id}"), json={"account": ACCOUNT, **fields}, timeout=5
        )
        assert answer.status_code == 200, answer.text

    def person_deletes(self, event_id: str) -> None:
        answer = self.sb.http.delete(
            self.sb.url(f"{CONTROL}/events/{event_id}"), params={"account": ACCOUNT}, timeout=5
        )
        assert answer.status_code in (200, 204), answer.text

    def seed_events(self, count: int) -> None:
        answer = self.sb.http.post(
            self.sb.url(f"{CONTROL}/calendars/{CALENDAR}/seed"),
            json={"account": ACCOUNT, "count": count},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text

    def truth(self) -> dict[str, dict[str, Any]]:
        answer = self.sb.http.get(
            self.sb.url(f"{CONTROL}/calendars/{CALENDAR}/events"), params={"account": ACCOUNT}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return {str(e["id"]): e for e in answer.json()["events"]}

    def fault(self, **body: Any) -> None:
        answer = self.sb.http.post(
            self.sb.url("/_sandbox/faults"),
            json={"app": "microsoft", "path": "/microsoft/graph/v1.0/", **body},
        )
        assert answer.status_code == 201, answer.text

    # --- our side ---

    def assert_mirror_is_the_truth(self) -> None:
        ids = self.mirror_ids(CALENDAR)
        assert len(ids) == len(set(ids)), "the mirror holds an event twice"
        assert set(ids) == set(self.truth())


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    server.reset()
    yield World(server, tmp_path, monkeypatch)
    clear_cache()


def tomorrow(hour: int = 9) -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def test_a_first_sync_mirrors_the_calendar_and_tells_the_card(world: World) -> None:
    world.seed_events(7)
    result = world.run(world.job(reason="connected"))

    assert result.outcome is Outcome.DONE
    world.assert_mirror_is_the_truth()
    connection = world.connection
    assert connection.status is PortalStatus.CONNECTED
    assert connection.last_sync_at is not None
    assert connection.next_sync_at is not None and connection.next_sync_at > connection.last_sync_at
    assert "$deltatoken" in str(connection.cursors[f"calendar:{CALENDAR}"]["token"])
    changed = world.bus.of("Calendar Event Changed")
    assert sorted(e.event_id for e in changed) == sorted(world.truth())
    assert {e.change for e in changed} == {"added"}


def test_an_edit_and_a_delete_in_outlook_publish_one_change_each(world: World) -> None:
    first = world.person_creates("Dentist", tomorrow(9))
    second = world.person_creates("Gym", tomorrow(11))
    world.run(world.job())
    world.bus.events.clear()

    world.person_edits(str(first["id"]), subject="Dentist (moved)", shift_minutes=45)
    world.person_deletes(str(second["id"]))
    world.run(world.job())

    changes = {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")}
    assert changes == {(first["id"], "updated"), (second["id"], "deleted")}
    world.assert_mirror_is_the_truth()
    world.bus.events.clear()
    world.run(world.job())
    assert world.bus.of("Calendar Event Changed") == []


def test_an_expired_delta_token_resyncs_fully_without_duplicates_and_applies_deletions(world: World) -> None:
    world.seed_events(5)
    gone = world.person_creates("Soon gone", tomorrow(20))
    world.run(world.job())
    world.sb.http.post(world.sb.url(f"{CONTROL}/delta_tokens/expire"), json={"account": ACCOUNT})
    world.person_deletes(str(gone["id"]))
    world.bus.events.clear()

    assert world.run(world.job()).outcome is Outcome.DONE

    world.assert_mirror_is_the_truth()
    assert {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")} == {
        (gone["id"], "deleted")
    }


def test_retry_after_defers_the_job_without_a_failure(world: World) -> None:
    world.seed_events(3)
    world.fault(kind="rate_limit", retry_after=1, count=1)

    result = world.run(world.job())

    assert result.outcome is Outcome.DEFER
    assert result.delay_seconds == 1
    connection = world.connection
    assert connection.status is PortalStatus.CONNECTED
    assert connection.consecutive_failures == 0
    assert world.drain() == 1
    world.assert_mirror_is_the_truth()


def test_a_run_cut_short_resumes_from_its_checkpoint(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.seed_events(5)
    monkeypatch.setattr(outlook_sync, "PAGE_SIZE", 2)
    result = world.run(world.job(), remaining_ms=0)
    assert result.outcome is Outcome.CONTINUE
    saved = world.connection.cursors[f"calendar:{CALENDAR}"]
    assert "$skiptoken" in str(saved.get("page")) and saved.get("pass_id")

    world.drain()

    world.assert_mirror_is_the_truth()
    added = [e.event_id for e in world.bus.of("Calendar Event Changed")]
    assert sorted(added) == sorted(world.truth())


def test_an_appointment_delivered_three_times_is_one_outlook_event_with_a_teams_link(world: World) -> None:
    from tests.support.functions import load_handler

    start = tomorrow(15)
    appointment = AppointmentUpserted(
        appointment_id="apt-7",
        owner=OWNER,
        title="Kick-off",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="Europe/Berlin",
        video=True,
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
    world.drain()

    ours = [e for e in world.truth().values() if e.get("subject") == "Kick-off"]
    assert len(ours) == 1
    assert ours[0]["singleValueExtendedProperties"] == [{"id": APPOINTMENT_PROPERTY, "value": "apt-7"}]
    assert ours[0]["originalStartTimeZone"] == "Europe/Berlin"
    pushed = world.bus.of("Appointment Pushed")
    assert pushed and all(p.video_url for p in pushed)
    assert pushed[0].video_url == ours[0]["onlineMeeting"]["joinUrl"]
    # Our own write comes back through sync: mirrored, but never announced as an external change.
    world.bus.events.clear()
    world.run(world.job())
    assert [e for e in world.bus.of("Calendar Event Changed") if e.appointment_id == "apt-7"] == []
    world.assert_mirror_is_the_truth()


def test_a_series_with_an_edited_and_a_cancelled_occurrence_is_mirrored_instance_by_instance(
    world: World,
) -> None:
    first = tomorrow(10)
    series = world.person_creates(
        "Weekly 1:1",
        first,
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
            "range": {"type": "numbered", "startDate": first.date().isoformat(), "numberOfOccurrences": 4},
        },
    )
    world.run(world.job())
    world.bus.events.clear()
    instances = sorted(world.truth().values(), key=lambda e: str(e["start"]["dateTime"]))
    assert [e["type"] for e in instances] == ["occurrence"] * 4

    world.person_edits(str(instances[1]["id"]), shift_minutes=60)
    world.person_deletes(str(instances[2]["id"]))
    world.run(world.job())

    mirrored = {e.external_id: e for e in world.container.mirror.events(world.connection_id, CALENDAR)}
    moved = mirrored[instances[1]["id"]]
    assert moved.series_id == series["id"]
    assert moved.start == first + timedelta(weeks=1, hours=1)
    assert moved.original_start == (first + timedelta(weeks=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert instances[2]["id"] not in mirrored
    changes = {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")}
    assert changes == {(instances[1]["id"], "updated"), (instances[2]["id"], "deleted")}
    world.assert_mirror_is_the_truth()


def test_a_fault_run_with_a_worker_dying_mid_batch_ends_equal_to_outlook(world: World) -> None:
    """20% of calls to Graph answer 429, 5xx or time out, and one worker dies mid-run; the mirror ends
    holding exactly what Outlook holds, and each event was announced as added with one change id."""
    from integrations.sync import faults

    world.seed_events(40)
    for kind, extra in (
        ("rate_limit", {"retry_after": 0}),
        ("server_error", {"status": 503}),
        ("latency", {"latency_ms": 0}),
    ):
        world.fault(kind=kind, probability=0.07, count=1000, **extra)
    original_page, original_base = outlook_sync.PAGE_SIZE, faults.BACKOFF_BASE_SECONDS
    outlook_sync.PAGE_SIZE, faults.BACKOFF_BASE_SECONDS = 5, 0.0
    try:
        mirror = world.container.mirror
        put_many = mirror.put_many
        calls = {"n": 0}

        def dying(connection_id: str, entries: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise WorkerDied
            put_many(connection_id, entries)

        mirror.put_many = dying  # type: ignore[method-assign]
        world.enqueue(world.job())
        world.drain(timeout=120)
        assert calls["n"] > 3, "the worker never died mid-run"
        mirror.put_many = put_many  # type: ignore[method-assign]
        world.sb.http.delete(world.sb.url("/_sandbox/faults"))
        world.enqueue(world.job())
        world.drain(timeout=60)
    finally:
        outlook_sync.PAGE_SIZE, faults.BACKOFF_BASE_SECONDS = original_page, original_base

    world.assert_mirror_is_the_truth()
    added = [e.event_id for e in world.bus.of("Calendar Event Changed") if e.change == "added"]
    assert set(added) == set(world.truth())
    by_event: dict[str, set[str]] = {}
    for e in world.bus.of("Calendar Event Changed"):
        by_event.setdefault(e.event_id, set()).add(e.change_id)
    assert all(len(ids) == 1 for ids in by_event.values())
    assert world.connection.status is PortalStatus.CONNECTED
