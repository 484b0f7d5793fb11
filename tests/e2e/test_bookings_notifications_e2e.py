"""Bookings and call notifications through the local stack: a booking made as the invitee at the
sandbox's Calendly shows up on the bus (once, with a reschedule linking old and new), and completed
calls published as the platform show up in the chosen Slack channel, in order, with the right text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.stack import LocalStack
from integrations.domain.connection import Connection
from tests.e2e.conftest import Api
from tests.e2e.test_dev_platform_routes import listed, publish
from tests.e2e.test_oauth_flow import card, consent
from tests.e2e.test_subscriptions_e2e import _manager, _repository
from tests.e2e.test_webhooks_e2e import sandbox_get, sandbox_post
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

ACCOUNT = "pat@example.com"


def _connect(api: Api, identity: dict[str, Any], provider: str, account: str) -> Connection:
    start = api.call(
        "POST",
        f"/oauth/{provider}/start",
        identity=identity,
        json={"level": "client", "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text
    assert consent(api, start.json()["redirect_url"], account=account).status_code == 302
    [listed_one] = card(api, identity, provider)["connections"]
    connection = _repository().get(listed_one["id"])
    assert connection is not None
    return connection


def _bookings(api: Api, connection_id: str) -> list[dict[str, Any]]:
    found = [
        e
        for kind in ("Booking Created", "Booking Canceled")
        for e in listed(api, detail_type=kind, limit=500)
        if e["detail"].get("connection_id") == connection_id
    ]
    return sorted(found, key=lambda e: str(e["time"]))


def test_a_booking_and_its_reschedule_reach_the_bus_once(api: Api, stack: LocalStack) -> None:
    manager = _manager(f"client-{uuid.uuid4().hex[:8]}")
    connection = _connect(api, manager, "calendly", ACCOUNT)

    booked = sandbox_post(
        stack,
        "/_sandbox/calendly/invitees",
        {"account": ACCOUNT, "name": "Sam Lee", "email": "sam@example.com", "phone": "+15555550100"},
    )
    old_uri = booked["invitee"]["uri"]
    [created] = eventually(lambda: _bookings(api, connection.id) or None)
    assert created["detail_type"] == "Booking Created"
    assert created["detail"]["booking_id"] == old_uri
    assert created["detail"]["invitee"]["phone"] == "+15555550100"

    moved = sandbox_post(
        stack,
        f"/_sandbox/calendly/invitees/{old_uri.rsplit('/', 1)[-1]}/reschedule",
        {"start_time": "2030-05-06T14:00:00.000000Z"},
    )
    new_uri = moved["new"]["uri"]

    def all_three() -> list[dict[str, Any]] | None:
        found = _bookings(api, connection.id)
        return found if len(found) >= 3 else None

    events = eventually(all_three)
    by_kind = {(e["detail_type"], e["detail"]["booking_id"]): e["detail"] for e in events}
    assert len(events) == 3
    assert by_kind[("Booking Canceled", old_uri)]["rescheduled_to"] == new_uri
    assert by_kind[("Booking Created", new_uri)]["rescheduled_from"] == old_uri
    assert by_kind[("Booking Created", new_uri)]["start"].startswith("2030-05-06T14:00:00")


def test_completed_calls_show_up_in_the_slack_channel_in_order(api: Api, stack: LocalStack) -> None:
    client = f"client-{uuid.uuid4().hex[:8]}"
    manager = _manager(client)
    connection = _connect(api, manager, "slack", f"team-{client}")
    options = api.call("GET", f"/connections/{connection.id}/options/channel_id", identity=manager)
    assert options.status_code == 200, options.text
    channel = next(o["value"] for o in options.json()["options"] if o["label"] == "#call-alerts")
    saved = api.call(
        "PATCH", f"/connections/{connection.id}", identity=manager, json={"config": {"channel_id": channel}}
    )
    assert saved.status_code == 200, saved.text

    start = datetime.now(UTC)
    for number in range(5):
        detail = {
            "call_id": f"{client}-call-{number}",
            "agency_id": "demo-agency",
            "client_id": client,
            "contact_id": f"{client}-contact-{number}",
            "contact": {"first_name": "Caller", "last_name": str(number), "phone": "+15555550123"},
            "direction": "inbound",
            "outcome": "Booked",
            "duration_seconds": 42,
            "summary": f"Call number {number}",
            "started_at": (start + timedelta(milliseconds=10 * number)).isoformat(),
        }
        sent = publish(api, "Call Completed", detail)
        assert sent.status_code in (200, 202), sent.text

    def posted() -> list[str] | None:
        messages = sandbox_get(stack, "/_sandbox/slack/messages", channel=channel)["messages"]
        texts = [m["text"] for m in messages if "Caller " in m["text"]]
        return texts if len(texts) >= 5 else None

    texts = eventually(posted)
    assert texts == [f"Inbound call completed: Caller {n} (+15555550123) — Booked, 42s" for n in range(5)]
