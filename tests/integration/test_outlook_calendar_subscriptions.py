"""Outlook calendar subscriptions against the sandbox's Graph: one per watched calendar (the synced one
and each conflict calendar), each change waking a sync; lifecycle notifications acted on at once
(a removed subscription made again, reauthorization in place); all of them renewed and removed with
the connection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from infra.local.sandbox.graph_store import calendar_id
from integrations.catalog.loader import clear_cache
from integrations.connections.resubscribe import resubscribe
from integrations.domain.access import Level
from integrations.providers.graph_notifications import LOOKUP_SUBSCRIPTION
from integrations.sync.jobs import JobKind
from integrations.sync.settle import Outcome
from integrations.webhooks.routing import Attr
from integrations.webhooks.subscriptions import (
    SubscriptionContext,
    subscribe_at_connect,
    unsubscribe_at_disconnect,
)
from tests.support import seed
from tests.support.gmail_world import Clock
from tests.support.graph_receiver import Receiver
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import WorkerWorld

ACCOUNT = "robin@example.com"
SYNCED = calendar_id(ACCOUNT, "Calendar")
WORK = calendar_id(ACCOUNT, "Work")


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    config = SandboxConfig(gateway_url=GATEWAY, push_timeout=2.0, graph_validation_timeout=2.0)
    with running_sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver("outlook_calendar")
    yield r
    r.close()


class World(WorkerWorld):
    """An Outlook calendar linked to its Calendar, with Calendar and Work as conflict calendars."""

    provider = "outlook_calendar"

    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: str) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        self.clock = Clock()
        self.container.__dict__["subscriptions"] = SubscriptionContext(public_api_url=base, clock=self.clock)
        tokens = connect(sb, "microsoft", account=ACCOUNT)
        made = seed.connection(
            provider="outlook_calendar",
            level=Level.USER,
            user_id="user-1",
            account_id="ms-robin",
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        )
        self.connection_id = made.id
        self.configure(calendar_id=SYNCED, conflict_calendars=[SYNCED, WORK])

    def configure(self, **config: Any) -> None:
        saved = self.connection.model_copy(update={"config": config})
        self.container.connections.save(saved)

    def subscribe(self) -> None:
        """What the connect flow does once the grant is stored."""
        spec = self.container.catalog.get(self.provider)
        token = self.container.access_token(self.connection)
        made = subscribe_at_connect(spec, self.connection, token, self.container.subscriptions)
        self.container.connections.put_lookups(self.connection, made)

    def live(self) -> dict[str, dict[str, Any]]:
        """Graph's live subscriptions by the calendar they watch."""
        found = self.sb.http.get(self.sb.url("/_sandbox/microsoft/subscriptions"), timeout=5).json()
        return {_calendar_of(s["resource"]): s for s in found["subscriptions"] if not s["deleted"]}

    def stored_ids(self) -> set[str]:
        return {
            key.rsplit("#", 1)[-1]
            for key in self.connection.lookup_keys
            if key.startswith(f"LOOKUP#{self.provider}#{LOOKUP_SUBSCRIPTION}#")
        }

    def person_creates(self, calendar: str, subject: str) -> dict[str, Any]:
        start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
        body = {
            "account": ACCOUNT,
            "subject": subject,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        answer = self.sb.http.post(self.sb.url(f"/_sandbox/outlook/calendars/{calendar}/events"), json=body)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def lifecycle(self, event: str, subscription_id: str) -> None:
        answer = self.sb.http.post(
            self.sb.url("/_sandbox/outlook/lifecycle"),
            json={"account": ACCOUNT, "event": event, "subscription_id": subscription_id},
            timeout=5,
        )
        assert answer.status_code == 200 and answer.json()["sent"] == 1, answer.text


def _calendar_of(resource: str) -> str:
    return resource.split("/")[2] if resource.startswith("me/calendars/") else "default"


@pytest.fixture
def world(
    server: Sandbox, receiver: Receiver, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    server.reset()
    receiver.received.clear()
    yield World(server, tmp_path, monkeypatch, receiver.base)
    clear_cache()


def deliver(world: World, receiver: Receiver, count: int = 1) -> list[Any]:
    """Wait for Graph's notifications and run the jobs they make."""
    receiver.wait_for(count)
    jobs = receiver.jobs(world.connection_id)
    receiver.received.clear()
    return [world.run(job) for job in jobs]


def test_each_conflict_calendar_is_watched_and_a_change_on_the_second_wakes_a_sync(
    world: World, receiver: Receiver
) -> None:
    # When the calendar is connected
    world.subscribe()

    # Then Graph holds one subscription per calendar, and our records hold the same ones
    live = world.live()
    assert set(live) == {SYNCED, WORK}
    assert world.stored_ids() == {s["id"] for s in live.values()}
    world.run(world.job(reason="connected"))
    assert world.mirror_ids(WORK) == []

    # When the person adds an event to the second conflict calendar
    event = world.person_creates(WORK, "Dentist")

    # Then Graph notifies that calendar's subscription, which wakes a sync that mirrors the event
    receiver.wait_for(1)
    [job] = receiver.jobs(world.connection_id)
    assert job.kind is JobKind.SYNC and job.hint["subscription_id"] == live[WORK]["id"]
    [result] = deliver(world, receiver)
    assert result.outcome is Outcome.DONE
    assert world.mirror_ids(WORK) == [event["id"]]


def test_a_removed_subscription_is_made_again_at_once_and_changes_notify_again(
    world: World, receiver: Receiver
) -> None:
    world.subscribe()
    before = world.live()

    # When Graph removes the Work calendar's subscription and says so
    world.lifecycle("subscriptionRemoved", before[WORK]["id"])
    [result] = deliver(world, receiver)

    # Then a new one watches Work at once; the synced calendar's one is untouched
    assert result.reason == "subscription recreated"
    after = world.live()
    assert after[SYNCED]["id"] == before[SYNCED]["id"]
    assert after[WORK]["id"] != before[WORK]["id"]
    assert world.stored_ids() == {after[SYNCED]["id"], after[WORK]["id"]}
    assert world.connection.notices_at(world.clock()) == []

    # And a change on Work is notified through it
    world.person_creates(WORK, "Standup")
    receiver.wait_for(1)
    assert [j.hint["subscription_id"] for j in receiver.jobs()] == [after[WORK]["id"]]


def test_reauthorization_required_renews_the_named_subscription_in_place(
    world: World, receiver: Receiver
) -> None:
    world.subscribe()
    before = world.live()
    world.clock.advance(30 * 60)

    world.lifecycle("reauthorizationRequired", before[WORK]["id"])
    [result] = deliver(world, receiver)

    assert result.reason == "subscription reauthorized"
    after = world.live()
    assert {c: s["id"] for c, s in after.items()} == {c: s["id"] for c, s in before.items()}
    assert after[WORK]["expirationDateTime"] > before[WORK]["expirationDateTime"]
    assert after[SYNCED]["expirationDateTime"] == before[SYNCED]["expirationDateTime"]


def test_every_calendar_subscription_is_renewed_moved_and_removed_with_the_connection(
    world: World,
) -> None:
    world.subscribe()
    first = {s["id"] for s in world.live().values()}
    spec = world.container.catalog.get("outlook_calendar")

    # Renewed together by maintenance once they come close to expiry
    soon = (world.clock() + timedelta(hours=2)).isoformat()
    stored = [
        world.container.connections.get_lookup("outlook_calendar", LOOKUP_SUBSCRIPTION, i) for i in first
    ]
    aged = [replace(s, attributes={**s.attributes, Attr.EXPIRES_AT: soon}) for s in stored if s is not None]
    world.container.connections.put_lookups(world.connection, aged)
    assert world.run(world.job(JobKind.RENEW_SUBSCRIPTION)).reason == "maintained"
    renewed = world.live()
    assert set(renewed) == {SYNCED, WORK} and not {s["id"] for s in renewed.values()} & first

    # Dropping Work from the conflict calendars stops its subscription
    world.configure(calendar_id=SYNCED, conflict_calendars=[SYNCED])
    token = world.container.access_token(world.connection)
    resubscribe(spec, world.connection, token, world.container.subscriptions, world.container.connections)
    assert set(world.live()) == {SYNCED}
    assert world.stored_ids() == {s["id"] for s in world.live().values()}

    # Disconnecting removes the rest at Graph
    unsubscribe_at_disconnect(
        spec, world.connection, token, world.container.connections, world.container.subscriptions
    )
    assert world.live() == {}
