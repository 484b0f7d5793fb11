"""Real pushes through the local stack: a Google Calendar change in the sandbox sends a channel
notification to the gateway, the webhooks function verifies and queues it, and the sync worker gets
the job; signed provider webhooks from the sandbox are accepted and tampered ones refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.local.event_sources import QueueConsumer
from infra.local.stack import LocalStack
from integrations import aws
from integrations.config import Settings
from integrations.store.connections import ConnectionRepository
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.e2e.test_oauth_flow import card, consent
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

ACCOUNT = "pat@example.com"
MANAGER_W = {
    "sub": "client-w-manager",
    "agency_id": "demo-agency",
    "client_id": "client-w",
    "role": "client_user",
    "permissions": [VIEW, MANAGE],
}


@pytest.fixture
def worker_jobs(stack: LocalStack) -> Iterator[list[dict[str, Any]]]:
    """Every sync job the stack's queue consumer hands to the sync worker while the test runs."""
    import json

    consumer = next(
        q
        for q in stack.event_sources.queues
        if isinstance(q, QueueConsumer) and q.function == "SyncWorkerFunction"
    )
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()
    original = consumer._invoke

    def spy(function: str, event: Any) -> Any:
        with lock:
            seen.extend(json.loads(record["body"]) for record in event.get("Records", []))
        return original(function, event)

    consumer._invoke = spy
    try:
        yield seen
    finally:
        consumer._invoke = original


def sandbox_get(stack: LocalStack, path: str, **params: str) -> Any:
    assert stack.urls is not None
    session = requests.Session()
    session.trust_env = False
    answer = session.get(f"{stack.urls.sandbox}{path}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()


def sandbox_post(stack: LocalStack, path: str, body: dict[str, Any]) -> Any:
    assert stack.urls is not None
    session = requests.Session()
    session.trust_env = False
    answer = session.post(f"{stack.urls.sandbox}{path}", json=body, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def test_a_changed_google_event_reaches_the_sync_worker_through_a_watch_channel(
    api: Api, stack: LocalStack, worker_jobs: list[dict[str, Any]]
) -> None:
    assert stack.urls is not None
    # Given a Google Calendar connected through the sandbox's consent page
    start = api.call(
        "POST",
        "/oauth/google_calendar/start",
        identity=MANAGER_W,
        json={"level": "client", "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text
    assert consent(api, start.json()["redirect_url"]).status_code == 302
    [listed] = card(api, MANAGER_W, "google_calendar")["connections"]
    settings = Settings.from_env()
    repository = ConnectionRepository(aws.dynamodb(), settings.table_name)
    connection = repository.get(listed["id"])
    assert connection is not None
    # and, opened by the connect itself, a watch channel on its calendar with the lookup that routes it
    [channel_key] = [key for key in connection.lookup_keys if key.startswith("LOOKUP#google_calendar#")]
    channel_id = channel_key.split("#")[3]
    lookup = repository.get_lookup("google_calendar", channel_key.split("#")[2], channel_id)
    assert lookup is not None
    channels = sandbox_get(stack, "/_sandbox/google/channels")["channels"]
    assert [c["stopped"] for c in channels if c["id"] == channel_id] == [False]

    # When someone changes an event in that calendar at Google
    sandbox_post(
        stack,
        "/_sandbox/google/events",
        {
            "account": ACCOUNT,
            "calendar_id": "primary",
            "summary": "Moved dentist",
            "start": "2026-12-01T10:00:00Z",
            "end": "2026-12-01T11:00:00Z",
        },
    )

    # Then the channel notification is accepted and the worker receives one job for this connection
    def job_for_connection() -> list[dict[str, Any]]:
        return [
            job
            for job in worker_jobs
            if job["connection_id"] == connection.id and job["hint"].get("resource_state") == "exists"
        ]

    [job] = eventually(job_for_connection)
    assert job["provider"] == "google_calendar"
    assert job["kind"] == "sync"
    assert job["hint"]["resource_id"] == lookup.attributes["resource_id"]
    deliveries = sandbox_get(stack, "/_sandbox/pushes", label="google_calendar:exists", wait="1")[
        "deliveries"
    ]
    mine = [d for d in deliveries if d["headers"]["X-Goog-Channel-ID"] == channel_id]
    assert [d["status"] for d in mine] == [200]
    # The `sync` message came before the lookup was written: acknowledged, and nothing queued for it.
    syncs = sandbox_get(stack, "/_sandbox/pushes", label="google_calendar:sync")["deliveries"]
    assert [d["status"] for d in syncs if d["headers"]["X-Goog-Channel-ID"] == channel_id] == [200]

    # When the connection is disconnected, its channel is stopped at Google and its lookup is gone
    removed = api.call("DELETE", f"/connections/{connection.id}", identity=MANAGER_W)
    assert removed.status_code == 204, removed.text
    channels = sandbox_get(stack, "/_sandbox/google/channels")["channels"]
    assert [c["stopped"] for c in channels if c["id"] == channel_id] == [True]
    assert repository.get_lookup("google_calendar", channel_key.split("#")[2], channel_id) is None


@pytest.mark.parametrize("provider", ["slack", "hubspot", "ghl", "gmail"])
def test_sandbox_signed_webhooks_are_accepted_and_tampered_ones_refused(
    stack: LocalStack, provider: str
) -> None:
    payloads = {
        "slack": {
            "type": "event_callback",
            "team_id": "T-UNKNOWN-E2E",
            "event_id": "Ev-e2e",
            "event": {"type": "app_uninstalled"},
        },
        "hubspot": [{"eventId": 1, "portalId": 404, "subscriptionType": "contact.creation", "objectId": 2}],
        "ghl": {"type": "ContactCreate", "locationId": "unknown-e2e", "id": "c1"},
        "gmail": {"emailAddress": "nobody@example.com", "historyId": "12"},
    }

    signed = sandbox_post(stack, f"/_sandbox/webhooks/{provider}", {"payload": payloads[provider]})
    tampered = sandbox_post(
        stack, f"/_sandbox/webhooks/{provider}", {"payload": payloads[provider], "tamper": True}
    )

    # Unknown accounts: verified, then acknowledged with nothing queued (so the provider stops retrying).
    assert signed["status"] == 200, signed
    assert '"unrouted":1' in signed["body"]
    # Pub/Sub's JWT proves the sender, not the body: a flipped byte there is judged as a body (400).
    expected = 400 if provider == "gmail" else 401
    assert tampered["status"] == expected, tampered
