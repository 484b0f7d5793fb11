"""Outlook mail subscriptions against the sandbox's Graph: made by maintenance on the Inbox and Sent Items
(with the validationToken handshake answered by the product's Graph webhook), their notifications
verified and parsed by that webhook, made again at half-life, and lifecycle notifications routed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.providers.outlook_mail.webhook import LOOKUP_SUBSCRIPTION, WEBHOOK
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.settle import Outcome
from integrations.webhooks.request import Headers, WebhookRequest
from integrations.webhooks.routing import Attr
from integrations.webhooks.signatures import VerificationSecrets
from integrations.webhooks.subscriptions import SubscriptionContext
from tests.support.outlook_mail_world import OutlookMailWorld
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox


class Receiver:
    """Our `/webhooks/outlook_mail` in miniature: the plugin's handshake, and what Graph delivered."""

    def __init__(self) -> None:
        self.received: list[WebhookRequest] = []

        def app(environ: Any, start_response: Any) -> Any:
            request = Request(environ)
            got = WebhookRequest(
                provider="outlook_mail",
                method=request.method,
                raw_body=request.get_data(),
                headers=Headers(dict(request.headers.items())),
                query=dict(request.args.items()),
                path=request.path,
                url=request.url,
                received_at=datetime.now(UTC),
            )
            answer = WEBHOOK.handshake(got)
            if answer is not None:
                return Response(answer.body, status=answer.status, mimetype="text/plain")(
                    environ, start_response
                )
            self.received.append(got)
            return Response("", status=202)(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait_for(receiver: Receiver, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    config = SandboxConfig(gateway_url=GATEWAY, push_timeout=2.0, graph_validation_timeout=2.0)
    with running_sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def world(
    server: Sandbox, receiver: Receiver, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OutlookMailWorld]:
    server.reset()
    receiver.received.clear()
    made = OutlookMailWorld(server, tmp_path, monkeypatch)
    made.container.__dict__["subscriptions"] = SubscriptionContext(
        public_api_url=receiver.base,
        clock=made.clock,
    )
    yield made
    clear_cache()


def subscribe_at_connect(world: OutlookMailWorld) -> None:
    """What the connect flow does once the grant is stored: subscribe, write the lookups."""
    from integrations.webhooks.subscriptions import subscribe_at_connect as subscribe

    connection = world.connection
    spec = world.container.catalog.get("outlook_mail")
    made = subscribe(
        spec, connection, world.container.access_token(connection), world.container.subscriptions
    )
    world.container.connections.put_lookups(connection, made)


def live(world: OutlookMailWorld) -> list[dict[str, Any]]:
    found = world.sb.http.get(world.sb.url("/_sandbox/microsoft/subscriptions"), timeout=5).json()
    return [s for s in found["subscriptions"] if not s["deleted"]]


def stored(world: OutlookMailWorld) -> list[Any]:
    return [
        world.container.connections.get_lookup("outlook_mail", LOOKUP_SUBSCRIPTION, s["id"])
        for s in live(world)
    ]


def lifecycle(world: OutlookMailWorld, event: str, subscription_id: str | None = None) -> int:
    """Graph sends a lifecycle notification to the mailbox's subscriptions (or the one named)."""
    body: dict[str, Any] = {"account": world.connection.account.label, "event": event}
    if subscription_id is not None:
        body["subscription_id"] = subscription_id
    answer = world.sb.http.post(world.sb.url("/_sandbox/outlook/mail/lifecycle"), json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    sent: int = answer.json()["sent"]
    return sent


def jobs_from(receiver: Receiver) -> list[SyncJob]:
    """The jobs our receiver queues for what Graph delivered (as webhooks.receiver does)."""
    return [
        SyncJob(
            kind=WEBHOOK.job_kind(delivery),
            connection_id="",
            provider="outlook_mail",
            hint={"source": "webhook", "event_type": delivery.event_type, **delivery.hint},
        )
        for note in receiver.received
        for delivery in WEBHOOK.parse(note).deliveries
    ]


def card_notices(world: OutlookMailWorld) -> list[str]:
    """The notices the connection's card shows."""
    return [n.code.value for n in world.connection.notices_at(world.clock())]


def inbox(world: OutlookMailWorld) -> dict[str, Any]:
    [found] = [s for s in live(world) if "Inbox" in s["resource"]]
    return found


def test_maintenance_subscribes_inbox_and_sent_items_and_notifications_verify(
    world: OutlookMailWorld, receiver: Receiver
) -> None:
    # When the mailbox is connected
    subscribe_at_connect(world)

    # Then Graph holds two, after the handshake, and the lookups keep their expiry and clientState digest
    subscriptions = live(world)
    assert sorted(s["resource"] for s in subscriptions) == [
        "me/mailFolders('Inbox')/messages",
        "me/mailFolders('SentItems')/messages",
    ]
    assert {s["changeType"] for s in subscriptions} == {"created"}
    lookups = stored(world)
    assert all(item is not None and item.attributes.get(Attr.EXPIRES_AT) for item in lookups)

    # When mail arrives and the person sends from Outlook, each subscription notifies
    world.receive(**{"from": "jordan@example.com", "subject": "Hello"})
    world.send_from_outlook(to=["jordan@example.com"], subject="Hi")
    wait_for(receiver, 2)
    assert len(receiver.received) == 2
    secrets = VerificationSecrets(
        client_state_hashes={
            item.value: (item.attributes[Attr.CLIENT_STATE_SHA256],) for item in lookups if item is not None
        }
    )
    for note in receiver.received:
        WEBHOOK.verifier.verify(note, secrets, datetime.now(UTC))
        [delivery] = WEBHOOK.parse(note).deliveries
        assert delivery.event_type == "created" and WEBHOOK.job_kind(delivery) is JobKind.SYNC

    # A reauthorizationRequired notification asks for each subscription to be reauthorized
    receiver.received.clear()
    assert lifecycle(world, "reauthorizationRequired") == 2
    wait_for(receiver, 2)
    kinds = {job.kind for job in jobs_from(receiver)}
    assert kinds == {JobKind.REAUTHORIZE_SUBSCRIPTION}


def test_subscriptions_are_made_again_at_half_life(world: OutlookMailWorld) -> None:
    subscribe_at_connect(world)
    first = {s["id"] for s in live(world)}
    # Made a moment ago (almost 7 days left): maintenance leaves them
    world.run(world.job(JobKind.RENEW_SUBSCRIPTION))
    assert {s["id"] for s in live(world)} == first

    # With under 3.5 days left (as stored), new ones are made and the old ones deleted at Graph
    older = (world.clock() + timedelta(days=3, hours=11)).isoformat()
    aged = [
        replace(item, attributes={**item.attributes, Attr.EXPIRES_AT: older})
        for item in stored(world)
        if item is not None
    ]
    world.container.connections.put_lookups(world.connection, aged)
    assert world.run(world.job(JobKind.RENEW_SUBSCRIPTION)).reason == "maintained"

    renewed = {s["id"] for s in live(world)}
    assert len(renewed) == 2 and not renewed & first


def graph_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_delivered(world: OutlookMailWorld, receiver: Receiver, count: int) -> list[Any]:
    """Wait for `count` notifications and run the jobs they make for this connection."""
    wait_for(receiver, count)
    jobs = [j.model_copy(update={"connection_id": world.connection_id}) for j in jobs_from(receiver)]
    receiver.received.clear()
    return [world.run(job) for job in jobs]


def test_a_removed_subscription_is_made_again_at_once(world: OutlookMailWorld, receiver: Receiver) -> None:
    # Given both subscriptions, made a moment ago (days from expiry)
    subscribe_at_connect(world)
    removed = inbox(world)
    sent_items = {s["id"] for s in live(world)} - {removed["id"]}

    # When Graph removes the Inbox one and says so
    assert lifecycle(world, "subscriptionRemoved", removed["id"]) == 1
    [result] = run_delivered(world, receiver, 1)

    # Then a new Inbox subscription exists at once; the Sent Items one is untouched
    assert result.outcome is Outcome.DONE and result.reason == "subscription recreated"
    remade = inbox(world)
    assert remade["id"] != removed["id"]
    assert {s["id"] for s in live(world)} == sent_items | {remade["id"]}
    # and our records hold exactly what Graph holds, without the removed one
    assert world.container.connections.get_lookup("outlook_mail", LOOKUP_SUBSCRIPTION, removed["id"]) is None
    assert all(item is not None for item in stored(world))
    assert card_notices(world) == []

    # And mail arriving is notified again, through the new subscription
    world.receive(**{"from": "jordan@example.com", "subject": "After"})
    wait_for(receiver, 1)
    assert [j.hint["subscription_id"] for j in jobs_from(receiver)] == [remade["id"]]

    # A redelivered notification makes nothing more
    receiver.received.clear()
    again = world.job(JobKind.RECREATE_SUBSCRIPTION, subscription_id=removed["id"])
    assert world.run(again).reason == "maintained"
    assert {s["id"] for s in live(world)} == sent_items | {remade["id"]}


def test_the_card_says_recreating_until_the_removed_subscription_is_made_again(
    world: OutlookMailWorld, receiver: Receiver
) -> None:
    subscribe_at_connect(world)
    removed = inbox(world)
    # Graph refuses new subscriptions for a while
    world.fault(kind="server_error", path="/microsoft/graph/v1.0/subscriptions", count=50)
    lifecycle(world, "subscriptionRemoved", removed["id"])

    [failed] = run_delivered(world, receiver, 1)

    assert failed.outcome is Outcome.DEFER
    assert card_notices(world) == ["subscription_recreating"]
    # the removed one stays named in our records, so the retried job still knows what to make
    assert world.container.connections.get_lookup("outlook_mail", LOOKUP_SUBSCRIPTION, removed["id"])

    world.sb.http.delete(world.sb.url("/_sandbox/faults"), timeout=5)
    retried = world.run(world.job(JobKind.RECREATE_SUBSCRIPTION, subscription_id=removed["id"]))

    assert retried.reason == "subscription recreated"
    assert card_notices(world) == []
    assert len(live(world)) == 2 and inbox(world)["id"] != removed["id"]


def test_reauthorization_required_renews_the_named_subscription_in_place(
    world: OutlookMailWorld, receiver: Receiver
) -> None:
    subscribe_at_connect(world)
    before = {s["id"] for s in live(world)}
    named = inbox(world)
    first_expiry = graph_time(named["expirationDateTime"])
    world.clock.advance(30 * 60)  # half an hour later, Graph asks

    lifecycle(world, "reauthorizationRequired", named["id"])
    [result] = run_delivered(world, receiver, 1)

    # Then the same subscription is reauthorized and renewed (PATCH of its expiry), nothing is remade
    assert result.reason == "subscription reauthorized"
    assert {s["id"] for s in live(world)} == before
    renewed = world.container.connections.get_lookup("outlook_mail", LOOKUP_SUBSCRIPTION, named["id"])
    assert renewed is not None
    graph_expiry = graph_time(inbox(world)["expirationDateTime"])
    assert graph_time(renewed.attributes[Attr.EXPIRES_AT]) == graph_expiry
    assert graph_expiry >= first_expiry + timedelta(minutes=29)


def test_missed_notifications_run_a_delta_pass_that_catches_up(
    world: OutlookMailWorld, receiver: Receiver
) -> None:
    subscribe_at_connect(world)
    world.run(world.job(reason="connected"))  # the first pass stores the delta cursors
    world.bus.events.clear()
    # Mail arrived but its notification never reached us (throttled), and Graph says some were missed
    world.receive(**{"from": "jordan@example.com", "subject": "Lost notification"})
    wait_for(receiver, 1)
    receiver.received.clear()

    lifecycle(world, "missed", inbox(world)["id"])
    [result] = run_delivered(world, receiver, 1)

    assert result.outcome is Outcome.DONE
    subjects = [e.subject for e in world.bus.of("Email Received")]
    assert subjects == ["Lost notification"]
