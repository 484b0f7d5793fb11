"""Calendly bookings onto the bus, end to end over moto and the sandbox: the person books, cancels and
reschedules "as the invitee" at the sandbox, its signed webhooks reach the product's own webhook
receiver, the jobs it queues run in the sync worker, and the bus sees each booking event once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import SandboxConfig, catalog_overrides
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level, Role
from integrations.domain.connection import ErrorCode, NoticeCode
from integrations.domain.errors import NotFound
from integrations.domain.principal import Principal
from integrations.events import BookingCanceled, BookingCreated, PlatformEvent
from integrations.observability import get_logger
from integrations.providers.registry import clear_cache as clear_parts
from integrations.sync.errors import ConfigRequired
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.links import SchedulingLink, SchedulingLinkRequest
from integrations.sync.settle import Outcome
from integrations.webhooks.request import Headers, WebhookRequest
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

ACCOUNT = "alex@example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=2.0)) as sandbox:
        yield sandbox


class Gateway:
    """Where Calendly calls us: keeps each push, answers 202 (the product's receiver runs later)."""

    def __init__(self) -> None:
        self.pushes: list[WebhookRequest] = []
        self._lock = threading.Lock()

        def app(environ: Any, start_response: Any) -> Any:
            request = Request(environ)
            push = WebhookRequest(
                provider="calendly",
                method=request.method,
                raw_body=request.get_data(),
                headers=Headers(dict(request.headers.items())),
                query=dict(request.args.items()),
                path=request.path,
                url=request.url,
                received_at=datetime.now(UTC),
            )
            with self._lock:
                self.pushes.append(push)
            return Response("", status=202)(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[WebhookRequest]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = list(self.pushes)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


class Bus:
    def __init__(self) -> None:
        self.events: list[PlatformEvent] = []

    def publish(self, *events: PlatformEvent) -> None:
        self.events.extend(events)

    def bookings(self) -> list[PlatformEvent]:
        return [e for e in self.events if isinstance(e, BookingCreated | BookingCanceled)]


class World:
    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sb = sb
        sb.reset()
        overrides = tmp_path / "overrides.json"
        overrides.write_text(json.dumps(catalog_overrides(sb.base)))
        monkeypatch.setenv("INTEGRATIONS_CATALOG_OVERRIDES", str(overrides))
        self.gateway = Gateway()
        monkeypatch.setenv("PUBLIC_API_URL", self.gateway.base)
        clear_cache()
        clear_parts()
        tokens = connect(sb, "calendly", account=ACCOUNT)
        me = sb.http.get(
            sb.url("/calendly/users/me"),
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=5,
        ).json()["resource"]
        self.user_uri = str(me["uri"])
        self.token = str(tokens["access_token"])
        self.connection_id = seed.connection(
            provider="calendly",
            level=Level.CLIENT,
            account_id=self.user_uri,
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        ).id
        self.container = Container(Settings.from_env())
        self.bus = Bus()
        self.container.__dict__["events"] = self.bus
        self.worker = self.container.sync_worker(get_logger("test"))
        self.receiver = self.container.webhook_receiver(get_logger("test"))
        self.delivered = 0
        self.jobs: list[SyncJob] = []

    # --- the invitee's side ---

    def book(self, **body: Any) -> dict[str, Any]:
        answer = self.sb.http.post(
            self.sb.url("/_sandbox/calendly/invitees"), json={"account": ACCOUNT, **body}, timeout=5
        )
        assert answer.status_code == 201, answer.text
        invitee: dict[str, Any] = answer.json()["invitee"]
        return invitee

    def act(self, invitee: dict[str, Any], what: str, **body: Any) -> dict[str, Any]:
        uuid = invitee["uri"].rsplit("/", 1)[-1]
        answer = self.sb.http.post(
            self.sb.url(f"/_sandbox/calendly/invitees/{uuid}/{what}"), json=body, timeout=5
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def subscriptions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.sb.http.get(
            self.sb.url("/_sandbox/calendly/subscriptions"), timeout=5
        ).json()["subscriptions"]
        return found

    def disable_subscription(self) -> dict[str, Any]:
        """Calendly gives up on a subscription after a day of failed deliveries."""
        [subscription] = [s for s in self.subscriptions() if not s["deleted"]]
        uuid = subscription["uri"].rsplit("/", 1)[-1]
        url = self.sb.url(f"/_sandbox/calendly/subscriptions/{uuid}/disable")
        disabled = self.sb.http.post(url, timeout=5)
        assert disabled.status_code == 200
        return subscription

    # --- our side ---

    def card_notices(self) -> list[tuple[str, str]]:
        """The notices on the connection's card, as the portal answers an agency admin."""
        admin = Principal(sub="admin", agency_id="agency-1", role=Role.AGENCY_ADMIN, permissions=frozenset())
        view = self.container.portal_service(get_logger("test")).connection(admin, self.connection_id)
        return [(n.code.value, n.message) for n in view.sync.notices]

    def scheduled_run(self) -> None:
        job = SyncJob(kind=JobKind.SYNC, connection_id=self.connection_id, provider="calendly")
        result = self.worker.handle(job, remaining_ms=lambda: 600_000)
        assert result.outcome is Outcome.DONE, result

    def deliver(self, count: int, *, again: bool = False) -> None:
        """Hand the pushes that arrived to the product's webhook receiver, then run the jobs it queued."""
        if again:
            # The receiver's ledger drops a redelivery; its job is run again too, as if the ledger had
            # expired or two deliveries had raced it.
            for push in self.gateway.pushes[self.delivered - count : self.delivered]:
                assert self.receiver.receive(push).status in (200, 202)
            for job in self.jobs[-count:]:
                assert self.worker.handle(job, remaining_ms=lambda: 600_000).outcome is Outcome.DONE
            self.drain()
            return
        pushes = self.gateway.wait_for(self.delivered + count)
        assert len(pushes) >= self.delivered + count
        for push in pushes[self.delivered : self.delivered + count]:
            answer = self.receiver.receive(push)
            assert answer.status in (200, 202), answer
        self.delivered += count
        self.drain()

    def drain(self) -> None:
        sqs = aws_clients.sqs()
        url = Settings.from_env().sync_queue_url
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return
            for message in messages:
                job = SyncJob.model_validate_json(message["Body"])
                self.jobs.append(job)
                result = self.worker.handle(job, remaining_ms=lambda: 600_000)
                assert result.outcome is Outcome.DONE, result
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(server, tmp_path, monkeypatch)
    made.scheduled_run()  # the first run subscribes (as connect does) and reads what is there
    return made


def test_a_booking_arrives_on_the_bus_once_with_what_the_invitee_said(world: World) -> None:
    invitee = world.book(
        name="Jordan Lee",
        email="jordan@example.com",
        phone="+15555550123",
        timezone="Europe/Paris",
        answers=[{"question": "What would you like to discuss?", "answer": "Pricing"}],
        start_time="2030-03-04T15:00:00.000000Z",
    )

    world.deliver(1)
    world.deliver(1, again=True)  # Calendly redelivers the same webhook
    world.scheduled_run()  # and the catch-up pass reads it from the API too

    [created] = world.bus.bookings()
    assert isinstance(created, BookingCreated)
    assert created.booking_id == invitee["uri"]
    assert created.invitee.name == "Jordan Lee"
    assert created.invitee.email == "jordan@example.com"
    assert created.invitee.phone == "+15555550123"
    assert created.invitee.answers == [{"question": "What would you like to discuss?", "answer": "Pricing"}]
    assert created.time_zone == "Europe/Paris"
    assert created.start == datetime(2030, 3, 4, 15, 0, tzinfo=UTC)
    assert created.end == datetime(2030, 3, 4, 15, 30, tzinfo=UTC)
    assert created.event_type_name == "Discovery Call"
    assert created.join_url is not None and created.join_url.startswith("https://meet.google.com/")
    assert created.connection_id == world.connection_id
    assert created.rescheduled_from is None


def test_a_reschedule_cancels_the_old_booking_and_links_it_to_the_new_one(world: World) -> None:
    old = world.book(email="sam@example.com", start_time="2030-03-04T15:00:00.000000Z")
    world.deliver(1)

    moved = world.act(old, "reschedule", start_time="2030-03-05T10:00:00.000000Z")
    world.deliver(2)
    world.deliver(2, again=True)

    first, *rest = world.bus.bookings()
    [canceled] = [e for e in rest if isinstance(e, BookingCanceled)]
    [created] = [e for e in rest if isinstance(e, BookingCreated)]
    assert len(rest) == 2
    new_uri = moved["new"]["uri"]
    assert isinstance(first, BookingCreated) and first.booking_id == old["uri"]
    assert canceled.booking_id == old["uri"]
    assert canceled.rescheduled is True
    assert canceled.rescheduled_to == new_uri
    assert created.booking_id == new_uri
    assert created.rescheduled_from == old["uri"]
    assert created.start == datetime(2030, 3, 5, 10, 0, tzinfo=UTC)
    assert created.invitee.email == "sam@example.com"


def test_a_cancel_is_published_once(world: World) -> None:
    invitee = world.book(email="kim@example.com")
    world.deliver(1)

    world.act(invitee, "cancel", reason="Double booked")
    world.deliver(1)
    world.deliver(1, again=True)
    world.scheduled_run()

    created, canceled = world.bus.bookings()
    assert isinstance(created, BookingCreated)
    assert isinstance(canceled, BookingCanceled)
    assert canceled.booking_id == invitee["uri"]
    assert canceled.rescheduled is False
    assert canceled.reason == "Double booked"
    assert canceled.canceled_by == "invitee"
    assert canceled.event_id != created.event_id


def test_a_disabled_subscription_is_recreated_and_no_booking_in_between_is_lost(world: World) -> None:
    subscription = world.disable_subscription()
    missed = world.book(email="missed@example.com")
    assert world.gateway.wait_for(1, timeout=0.5) == []  # nothing was delivered

    world.scheduled_run()

    live = [s for s in world.subscriptions() if not s["deleted"]]
    assert [s["state"] for s in live] == ["active"]
    assert live[0]["uri"] != subscription["uri"]
    [caught_up] = world.bus.bookings()
    assert isinstance(caught_up, BookingCreated)
    assert caught_up.booking_id == missed["uri"]

    later = world.book(email="later@example.com")
    world.deliver(1)
    assert [getattr(e, "booking_id", None) for e in world.bus.bookings()] == [missed["uri"], later["uri"]]
    assert world.card_notices() == []


def test_the_card_says_the_subscription_is_being_recreated_until_it_is(world: World) -> None:
    world.disable_subscription()
    # Calendly is down while the new one is made (users/me is read first when subscribing).
    fault = world.sb.http.post(
        world.sb.url("/_sandbox/faults"),
        json={"app": "calendly", "kind": "server_error", "path": "/calendly/users/me", "count": 20},
        timeout=5,
    )
    assert fault.status_code == 201, fault.text

    failed = world.worker.handle(
        SyncJob(kind=JobKind.SYNC, connection_id=world.connection_id, provider="calendly"),
        remaining_ms=lambda: 600_000,
    )

    assert failed.outcome is not Outcome.DONE
    [(code, message)] = world.card_notices()
    assert code == NoticeCode.SUBSCRIPTION_RECREATING.value
    assert message.startswith("Calendly stopped sending us updates")
    assert [s["state"] for s in world.subscriptions() if not s["deleted"]] == ["disabled"]

    world.sb.http.delete(world.sb.url("/_sandbox/faults"), timeout=5)  # Calendly is back
    world.scheduled_run()

    assert [s["state"] for s in world.subscriptions() if not s["deleted"]] == ["active"]
    assert world.card_notices() == []


# --- Scheduling links ------------------------------------------------------------------------------


def _link(world: World, **fields: Any) -> SchedulingLink:
    request = SchedulingLinkRequest(
        agency_id="agency-1", client_id="client-a", connection_id=world.connection_id, **fields
    )
    return world.container.scheduling_links.create(request)


def _book_through(world: World, url: str, **body: Any) -> Any:
    return world.sb.http.post(url, json=body, timeout=5)


def test_a_scheduling_link_books_once_and_the_booking_reaches_the_bus(world: World) -> None:
    started = time.monotonic()
    link = _link(world, name="Jordan Lee", email="jordan@example.com", utm_source="call")
    elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert link.single_use is True
    assert link.event_type_name == "Discovery Call"  # the account's first active type by default
    assert "name=Jordan+Lee" in link.booking_url and "utm_source=call" in link.booking_url
    first = _book_through(world, link.booking_url, start_time="2030-03-04T15:00:00.000000Z")
    second = _book_through(world, link.booking_url, email="someone@example.com")
    assert first.status_code == 201, first.text
    assert second.status_code == 410
    world.deliver(1)
    [created] = world.bus.bookings()
    assert isinstance(created, BookingCreated)
    assert created.invitee.email == "jordan@example.com"
    assert created.event_type_id == link.event_type_id
    assert created.tracking == {"utm_source": "call"}


def test_the_configured_event_type_deactivated_is_config_required_naming_it(world: World) -> None:
    types = world.sb.http.get(
        world.sb.url("/calendly/event_types"),
        params={"user": world.user_uri},
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=5,
    ).json()["collection"]
    strategy = next(t for t in types if t["name"] == "Strategy Session")
    now = datetime.now(UTC)
    world.container.sync_state.apply(
        world.connection_id, lambda c: c.configured({"event_type_uri": strategy["uri"]}, now)
    )
    assert _link(world).event_type_name == "Strategy Session"
    uuid = strategy["uri"].rsplit("/", 1)[-1]
    off = world.sb.http.post(
        world.sb.url(f"/_sandbox/calendly/event_types/{uuid}/active"),
        json={"account": ACCOUNT, "active": False},
        timeout=5,
    )
    assert off.status_code == 200

    with pytest.raises(ConfigRequired) as refused:
        _link(world)

    assert "Strategy Session" in refused.value.message
    assert refused.value.status == 409
    connection = world.container.connections.get(world.connection_id)
    assert connection is not None and connection.error is not None
    assert connection.error.code is ErrorCode.CONFIG_REQUIRED
    assert "Strategy Session" in connection.error.message


def test_a_link_for_another_tenants_connection_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.container.scheduling_links.create(
            SchedulingLinkRequest(agency_id="agency-2", connection_id=world.connection_id)
        )
