"""Per-connection push subscriptions through the local stack: connecting opens the subscription at the
provider sandbox, a change there reaches the sync worker through the gateway's webhook receiver, and
disconnecting removes the subscription at the provider."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.stack import LocalStack
from integrations import aws
from integrations.config import Settings
from integrations.domain.connection import Connection
from integrations.store.connections import ConnectionRepository
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.e2e.test_oauth_flow import card, consent
from tests.e2e.test_webhooks_e2e import eventually, sandbox_get, sandbox_post, worker_jobs

pytestmark = pytest.mark.e2e

ACCOUNT = "pat@example.com"
__all__ = ["worker_jobs"]  # the fixture, re-exported so pytest finds it here


def _manager(client_id: str) -> dict[str, Any]:
    return {
        "sub": f"{client_id}-manager",
        "agency_id": "demo-agency",
        "client_id": client_id,
        "role": "client_user",
        "permissions": [VIEW, MANAGE],
    }


def _connect(api: Api, identity: dict[str, Any], provider: str, level: str = "client") -> Connection:
    start = api.call(
        "POST",
        f"/oauth/{provider}/start",
        identity=identity,
        json={"level": level, "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text
    assert consent(api, start.json()["redirect_url"]).status_code == 302
    [listed] = card(api, identity, provider, level=level)["connections"]
    connection = _repository().get(listed["id"])
    assert connection is not None
    return connection


def _repository() -> ConnectionRepository:
    return ConnectionRepository(aws.dynamodb(), Settings.from_env().table_name)


def _jobs_for(jobs: list[dict[str, Any]], connection: Connection, event_type: str) -> list[dict[str, Any]]:
    return [
        j for j in jobs if j["connection_id"] == connection.id and j["hint"].get("event_type") == event_type
    ]


def test_calendly_booking_reaches_the_worker_and_disconnect_deletes_the_subscription(
    api: Api, stack: LocalStack, worker_jobs: list[dict[str, Any]]
) -> None:
    manager = _manager("client-cal")
    # Other tests on this stack connect Calendly too: only the subscription this connect made counts.
    before = {s["uri"] for s in sandbox_get(stack, "/_sandbox/calendly/subscriptions")["subscriptions"]}
    # Given a Calendly connection: the connect itself opened a webhook subscription at Calendly
    connection = _connect(api, manager, "calendly")
    assert stack.urls is not None
    mine = [
        s
        for s in sandbox_get(stack, "/_sandbox/calendly/subscriptions")["subscriptions"]
        if s["callback_url"].startswith(f"{stack.urls.gateway}/webhooks/calendly?subscription=")
        and not s["deleted"]
        and s["uri"] not in before
    ]
    [subscription] = mine
    assert subscription["state"] == "active"
    assert subscription["has_signing_key"] is True
    assert "invitee.created" in subscription["events"]

    # When someone books with that Calendly user
    booked = sandbox_post(
        stack,
        "/_sandbox/calendly/invitees",
        {"account": ACCOUNT, "event_type": "Discovery Call", "name": "Sam Lee", "email": "sam@example.com"},
    )
    assert booked["deliveries"] >= 1

    # Then the signed push is accepted and the worker gets one job for this connection (the queue is
    # shared with every other test on this stack, so its turn may take a while on a busy machine)
    [job] = eventually(lambda: _jobs_for(worker_jobs, connection, "invitee.created"), timeout=90)
    assert job["provider"] == "calendly"
    assert job["hint"]["resource_uri"] == booked["invitee"]["uri"]
    deliveries = sandbox_get(stack, "/_sandbox/pushes", label="calendly:invitee.created", wait="1")
    statuses = [d["status"] for d in deliveries["deliveries"] if d["url"] == subscription["callback_url"]]
    assert statuses == [200]

    # When the connection is disconnected, its subscription is deleted at Calendly
    removed = api.call("DELETE", f"/connections/{connection.id}", identity=manager)
    assert removed.status_code == 204, removed.text
    after = sandbox_get(stack, "/_sandbox/calendly/subscriptions")["subscriptions"]
    assert [s["deleted"] for s in after if s["uri"] == subscription["uri"]] == [True]


def test_outlook_event_change_reaches_the_worker_and_disconnect_deletes_the_subscription(
    api: Api, stack: LocalStack, worker_jobs: list[dict[str, Any]]
) -> None:
    manager = _manager("client-outlook")
    # Given an Outlook connection: Graph validated our receiver and created the subscription
    # (Outlook connects per user.)
    connection = _connect(api, manager, "outlook_calendar", level="user")
    assert stack.urls is not None
    listing = sandbox_get(stack, "/_sandbox/microsoft/subscriptions")
    mine = [
        s
        for s in listing["subscriptions"]
        if s["notificationUrl"] == f"{stack.urls.gateway}/webhooks/outlook_calendar" and not s["deleted"]
    ]
    assert len(mine) == 1
    subscription = mine[0]
    assert subscription["resource"] == "me/events"
    assert all(h["ok"] for h in listing["handshakes"] if h["url"] == subscription["notificationUrl"])

    # When an event changes in that user's calendar
    event = sandbox_post(
        stack,
        "/_sandbox/microsoft/events",
        {"account": ACCOUNT, "subject": "Demo", "start": "2030-01-02T15:00:00", "end": "2030-01-02T16:00:00"},
    )

    # Then the worker gets one job for this connection
    [job] = eventually(lambda: _jobs_for(worker_jobs, connection, "created"))
    assert job["provider"] == "outlook_calendar"
    assert job["hint"]["resource_id"] == event["id"]

    # When the connection is disconnected, its subscription is deleted at Graph
    removed = api.call("DELETE", f"/connections/{connection.id}", identity=manager)
    assert removed.status_code == 204, removed.text
    after = sandbox_get(stack, "/_sandbox/microsoft/subscriptions")["subscriptions"]
    assert [s["deleted"] for s in after if s["id"] == subscription["id"]] == [True]
