"""The sync worker end to end below HTTP: jobs from the real queue (moto), the Google Calendar sandbox,
the mirror and the connection in DynamoDB (moto). Every test ends by comparing the mirror with the
sandbox's own truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.domain.access import Level
from integrations.domain.connection import PortalStatus
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.progress import PushProgress
from integrations.sync.settle import Outcome
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import WorkerDied, WorkerWorld

ACCOUNT = "casey@example.com"
OWNER = AppointmentOwner(kind="client_user", agency_id="agency-1", client_id="client-a", user_id="user-1")
CONTROL = "/_sandbox/google/calendars/primary"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World(WorkerWorld):
    provider = "google_calendar"

    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        tokens = connect(sb, "google", account=ACCOUNT)
        self.connection_id = seed.connection(
            provider="google_calendar",
            agency_id=OWNER.agency_id,
            client_id=OWNER.client_id,
            level=Level.USER,
            user_id=OWNER.user_id,
            account_id="g-casey",
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        ).id

    # --- the provider's side ---

    def person_creates(self, summary: str, start: datetime, **fields: Any) -> dict[str, Any]:
        body = {
            "account": ACCOUNT,
            "summary": summary,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **fields,
        }
        answer = self.sb.http.post(self.sb.url(f"{CONTROL}/events"), json=body, timeout=5)
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
            self.sb.url(f"{CONTROL}/seed"), json={"account": ACCOUNT, "count": count}, timeout=30
        )
        assert answer.status_code == 201, answer.text

    def truth(self) -> dict[str, dict[str, Any]]:
        answer = self.sb.http.get(self.sb.url(f"{CONTROL}/events"), params={"account": ACCOUNT}, timeout=10)
        assert answer.status_code == 200, answer.text
        return {str(e["id"]): e for e in answer.json()["events"]}

    def fault(self, **body: Any) -> None:
        answer = self.sb.http.post(
            self.sb.url("/_sandbox/faults"), json={"app": "google", "path": "/google/calendar/v3/", **body}
        )
        assert answer.status_code == 201, answer.text

    # --- our side ---

    def assert_mirror_is_the_truth(self) -> None:
        ids = self.mirror_ids("primary")
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
    changed = world.bus.of("Calendar Event Changed")
    assert sorted(e.event_id for e in changed) == sorted(world.truth())
    assert {e.change for e in changed} == {"added"}


def test_an_edit_and_a_delete_in_google_publish_one_change_each(world: World) -> None:
    first = world.person_creates("Dentist", tomorrow(9))
    second = world.person_creates("Gym", tomorrow(11))
    world.run(world.job())
    world.bus.events.clear()

    world.person_edits(
        str(first["id"]), summary="Dentist (moved)", start="2031-01-01T10:00:00Z", end="2031-01-01T10:30:00Z"
    )
    world.person_deletes(str(second["id"]))
    world.run(world.job())

    changes = {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")}
    assert changes == {(first["id"], "updated"), (second["id"], "deleted")}
    world.assert_mirror_is_the_truth()
    # Nothing changed since: another run publishes nothing.
    world.bus.events.clear()
    world.run(world.job())
    assert world.bus.of("Calendar Event Changed") == []


def test_an_expired_sync_token_resyncs_fully_without_duplicates_and_applies_deletions(world: World) -> None:
    world.seed_events(5)
    gone = world.person_creates("Soon gone", tomorrow(20))
    world.run(world.job())
    world.sb.http.post(world.sb.url("/_sandbox/google/sync_tokens/expire"), json={"account": ACCOUNT})
    # While the token is dead, an event vanishes; a full listing carries no tombstone for it.
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
    # The deferred copy is on the queue, delayed; once it runs the calendar is mirrored.
    assert world.drain() == 1
    world.assert_mirror_is_the_truth()


def test_two_workers_on_one_connection_run_once(world: World) -> None:
    world.seed_events(2)
    lease = world.container.leases_for("sync")
    assert lease.acquire(world.connection_id, "other-worker", time.time(), 60).acquired

    result = world.run(world.job())

    assert result.outcome is Outcome.DEFER
    assert [e for e in world.sb.requests_log() if str(e["path"]).startswith("/google/calendar/v3/")] == []
    lease.release(world.connection_id, "other-worker")


def test_a_run_cut_short_resumes_from_its_checkpoint(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import integrations.providers.google_calendar.sync as google_sync

    world.seed_events(5)
    monkeypatch.setattr(google_sync, "PAGE_SIZE", 2)
    # Time runs out after the first page: the worker checkpoints, queues a continuation and stops.
    result = world.run(world.job(), remaining_ms=0)
    assert result.outcome is Outcome.CONTINUE
    assert world.connection.status is PortalStatus.CONNECTED
    saved = world.connection.cursors["calendar:primary"]
    assert saved.get("page") and saved.get("pass_id")

    world.drain()

    world.assert_mirror_is_the_truth()
    added = [e.event_id for e in world.bus.of("Calendar Event Changed")]
    assert sorted(added) == sorted(world.truth())


def test_an_appointment_delivered_three_times_is_one_google_event_with_a_meet_link(world: World) -> None:
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

    ours = [e for e in world.truth().values() if e.get("summary") == "Kick-off"]
    assert len(ours) == 1
    assert ours[0]["extendedProperties"]["private"]["integrations_appointment_id"] == "apt-7"
    pushed = world.bus.of("Appointment Pushed")
    assert pushed and all(p.video_url for p in pushed)
    assert pushed[0].video_url == ours[0]["hangoutLink"]
    # Our own write comes back through sync: mirrored, but never announced as an external change.
    world.bus.events.clear()
    world.run(world.job())
    assert [e for e in world.bus.of("Calendar Event Changed") if e.appointment_id == "apt-7"] == []
    world.assert_mirror_is_the_truth()


def test_push_existing_twice_creates_each_appointment_once(world: World) -> None:
    start = tomorrow(8)
    for n in range(4):
        world.container.appointments.upsert(
            AppointmentUpserted(
                appointment_id=f"apt-{n}",
                owner=OWNER,
                title=f"Session {n}",
                start=start + timedelta(hours=n),
                end=start + timedelta(hours=n, minutes=30),
                time_zone="UTC",
                version=1,
            )
        )
    for run in ("run-1", "run-2"):
        progress = world.container.push_existing.start(world.connection, run, "primary", "Casey")
        assert progress.total == 4
        world.run(world.job(JobKind.PUSH_EXISTING, run_id=run))
        done = PushProgress.of(world.connection)
        assert done is not None and done.state == "done" and done.pushed == 4 and done.failed == 0

    sessions = [e for e in world.truth().values() if str(e.get("summary", "")).startswith("Session ")]
    assert sorted(e["summary"] for e in sessions) == [f"Session {n}" for n in range(4)]


def test_a_series_with_an_edited_and_a_cancelled_instance_is_mirrored_as_master_and_exceptions(
    world: World,
) -> None:
    first = tomorrow(10)
    series = world.person_creates("Weekly 1:1", first, recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])
    world.run(world.job())
    world.bus.events.clear()

    def instance(week: int) -> str:
        return f"{series['id']}_{(first + timedelta(weeks=week)).strftime('%Y%m%dT%H%M%SZ')}"

    world.person_edits(instance(1), shift_minutes=60)
    world.person_deletes(instance(2))
    world.run(world.job())

    mirrored = {e.external_id: e for e in world.container.mirror.events(world.connection_id, "primary")}
    master = mirrored[series["id"]]
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=4",)
    moved = mirrored[instance(1)]
    assert moved.series_id == series["id"]
    assert moved.start == first + timedelta(weeks=1, hours=1)
    cancelled = mirrored[instance(2)]
    assert cancelled.series_id == series["id"] and cancelled.status.value == "cancelled"
    # Each exception is one change the platform hears about; the master did not change.
    changes = {(e.event_id, e.change) for e in world.bus.of("Calendar Event Changed")}
    assert changes == {(instance(1), "added"), (instance(2), "added")}
    assert {e.status for e in world.bus.of("Calendar Event Changed")} == {"confirmed", "cancelled"}


def test_a_fault_run_with_a_worker_dying_mid_batch_ends_equal_to_google(world: World) -> None:
    """20% of calls to Google answer 429, 5xx or time out, and one worker dies mid-run; the mirror
    ends holding exactly what Google holds, and each event was announced as added exactly once."""
    import integrations.providers.google_calendar.sync as google_sync
    from integrations.sync import faults

    world.seed_events(40)
    for kind, extra in (
        ("rate_limit", {"retry_after": 0}),
        ("server_error", {"status": 503}),
        ("latency", {"latency_ms": 0}),
    ):
        world.fault(kind=kind, probability=0.07, count=1000, **extra)
    original_page, original_base = google_sync.PAGE_SIZE, faults.BACKOFF_BASE_SECONDS
    google_sync.PAGE_SIZE, faults.BACKOFF_BASE_SECONDS = 5, 0.0
    try:
        # A worker dies after its third page: the exception escapes the worker like a crash would
        # (the delivery fails and SQS delivers it again once its visibility runs out; here at once).
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
        google_sync.PAGE_SIZE, faults.BACKOFF_BASE_SECONDS = original_page, original_base

    world.assert_mirror_is_the_truth()
    added = [e.event_id for e in world.bus.of("Calendar Event Changed") if e.change == "added"]
    assert set(added) == set(world.truth())
    # At least once on the bus, but every repeat carries the same change id (consumers deduplicate).
    by_event: dict[str, set[str]] = {}
    for e in world.bus.of("Calendar Event Changed"):
        by_event.setdefault(e.event_id, set()).add(e.change_id)
    assert all(len(ids) == 1 for ids in by_event.values())
    assert world.connection.status is PortalStatus.CONNECTED


def test_a_watch_channel_close_to_expiry_is_renewed_by_the_next_sync(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.connections.resubscribe import resubscribe
    from integrations.sync import maintenance

    container = world.container
    spec = container.catalog.get("google_calendar")
    resubscribe(
        spec,
        world.connection,
        container.access_token(world.connection),
        container.subscriptions,
        container.connections,
    )
    [old_key] = world.connection.lookup_keys
    # Google channels last a week and are never extended: a day before the end, a sync renews it.
    monkeypatch.setattr(maintenance, "RENEW_AHEAD", timedelta(days=8))

    world.run(world.job())

    [new_key] = world.connection.lookup_keys
    assert new_key != old_key
    channels = world.sb.http.get(world.sb.url("/_sandbox/google/channels"), timeout=5).json()["channels"]
    state = {c["id"]: c["stopped"] for c in channels}
    assert state[old_key.split("#")[3]] is True
    assert state[new_key.split("#")[3]] is False
    assert (
        container.connections.get_lookup("google_calendar", old_key.split("#")[2], old_key.split("#")[3])
        is None
    )
    # A channel far from its end is left alone.
    monkeypatch.setattr(maintenance, "RENEW_AHEAD", timedelta(days=1))
    world.run(world.job())
    assert world.connection.lookup_keys == [new_key]


def test_a_poison_job_goes_to_the_dead_letter_queue_and_the_card_says_sync_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import integrations.providers.google_calendar.sync as google_sync

    def broken(*_: Any, **__: Any) -> Any:
        raise ValueError("a provider answer nobody expected")

    monkeypatch.setattr(google_sync.GoogleCalendarAdapter, "pull", broken)
    # Four failed runs before: the fifth delivery is poison.
    result = world.run(world.job(attempt=4))

    assert result.outcome is Outcome.FAIL
    connection = world.connection
    assert connection.status is PortalStatus.ERROR
    assert connection.error is not None and connection.error.code.value == "sync_failed"
    # The class of the error only: its text may quote provider data.
    assert "ValueError" in connection.error.message and "nobody expected" not in connection.error.message
    dead = aws_clients.sqs().receive_message(
        QueueUrl=Settings.from_env().sync_dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    assert [SyncJob.model_validate_json(m["Body"]).connection_id for m in dead] == [world.connection_id]


def test_an_unexpected_error_before_the_fifth_delivery_is_retried_with_backoff(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import integrations.providers.google_calendar.sync as google_sync
    from integrations.sync import faults

    monkeypatch.setattr(google_sync.GoogleCalendarAdapter, "pull", lambda *_a, **_k: 1 / 0)
    monkeypatch.setattr(faults, "BACKOFF_BASE_SECONDS", 0.0)  # the retry is visible at once

    result = world.run(world.job())

    assert result.outcome is Outcome.DEFER and result.failed
    assert world.connection.status is PortalStatus.CONNECTED
    [retry] = _queued_jobs()
    assert retry.attempt == 1 and retry.hint["reason"] == "retry"


def _queued_jobs() -> list[SyncJob]:
    answer = aws_clients.sqs().receive_message(
        QueueUrl=Settings.from_env().sync_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    return [SyncJob.model_validate_json(m["Body"]) for m in answer.get("Messages", [])]
