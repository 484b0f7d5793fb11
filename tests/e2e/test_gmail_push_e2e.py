"""Gmail pushes through the local stack: connecting watches the mailbox at Gmail, a new message makes
Pub/Sub push an OIDC-signed notification to the gateway's `/webhooks/gmail`, the webhooks function
verifies it and queues one sync job for the worker (a redelivery is queued once), and disconnecting
stops the watch at Gmail."""

from __future__ import annotations

import base64
import json
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

# A mailbox no other e2e test touches: the stack (and the sandbox's mailboxes) is shared by the package.
ACCOUNT = "gmail-e2e@example.com"
PERSON = {
    "sub": "client-gmail-user",
    "agency_id": "demo-agency",
    "client_id": "client-gmail",
    "role": "client_user",
    "permissions": [VIEW, MANAGE],
}
__all__ = ["worker_jobs"]  # the fixture, re-exported so pytest finds it here


def _connect_gmail(api: Api) -> Connection:
    start = api.call(
        "POST",
        "/oauth/gmail/start",
        identity=PERSON,
        json={"level": "user", "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text
    done = consent(api, start.json()["redirect_url"], account=ACCOUNT)
    assert done.status_code == 302
    assert done.headers["Location"].endswith("?integration=gmail&result=connected"), done.headers
    [listed] = card(api, PERSON, "gmail", level="user")["connections"]
    repository = ConnectionRepository(aws.dynamodb(), Settings.from_env().table_name)
    connection = repository.get(listed["id"])
    assert connection is not None
    return connection


def _watch_of(stack: LocalStack) -> Any:
    mailboxes = sandbox_get(stack, "/_sandbox/gmail/watches")["mailboxes"]
    [mine] = [m for m in mailboxes if m["emailAddress"] == ACCOUNT]
    return mine["watch"]


def _pushes_for(stack: LocalStack, history_id: str) -> list[dict[str, Any]]:
    deliveries = sandbox_get(stack, "/_sandbox/pushes", label="gmail:push", wait="1")["deliveries"]
    return [d for d in deliveries if f'"historyId": {history_id}' in _decoded(d["body"])]


def _decoded(body: str) -> str:
    """The `{emailAddress, historyId}` document inside a Pub/Sub push envelope."""
    return base64.b64decode(json.loads(body)["message"]["data"]).decode()


def test_a_new_gmail_message_reaches_the_worker_once_and_disconnect_stops_the_watch(
    api: Api, stack: LocalStack, worker_jobs: list[dict[str, Any]]
) -> None:
    assert stack.urls is not None
    # Given a Gmail mailbox connected by a person: the connect itself called users.watch at Gmail
    connection = _connect_gmail(api)
    assert connection.account.label == ACCOUNT
    watch = _watch_of(stack)
    assert watch is not None
    assert watch["labelIds"] == ["INBOX", "SENT"]
    assert watch["labelFilterBehavior"] == "include"
    assert watch["topicName"].startswith("projects/") and "/topics/" in watch["topicName"]

    # When a message arrives in that mailbox
    arrived = sandbox_post(stack, "/_sandbox/gmail/messages", {"account": ACCOUNT})
    assert arrived["pushed"] is True
    history_id = arrived["historyId"]

    # Then Pub/Sub pushes it with its OIDC token, the receiver accepts it, and one sync job reaches
    # the worker for this connection, carrying the history id to read changes from
    def jobs() -> list[dict[str, Any]]:
        return [
            j
            for j in worker_jobs
            if j["connection_id"] == connection.id and j["hint"].get("history_id") == history_id
        ]

    [job] = eventually(jobs)
    assert job["provider"] == "gmail"
    assert job["kind"] == "sync"
    assert job["hint"]["event_type"] == "mailbox_changed"
    [push] = _pushes_for(stack, history_id)
    assert push["url"] == f"{stack.urls.gateway}/webhooks/gmail"
    assert push["headers"]["Authorization"].startswith("Bearer ey")
    assert push["status"] == 200

    # When Pub/Sub delivers the same message again (at-least-once), it is acknowledged, not re-queued
    again = api.call(
        "POST",
        "/webhooks/gmail",
        data=push["body"].encode(),
        headers={k: v for k, v in push["headers"].items() if k.lower() != "content-length"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["duplicates"] == 1
    # An unsigned copy proves nothing and is refused before anything is looked at
    forged = api.call(
        "POST", "/webhooks/gmail", data=push["body"].encode(), headers={"Content-Type": "application/json"}
    )
    assert forged.status_code == 401, forged.text
    # Whatever the queue consumer still has in flight would have arrived by now.
    assert eventually(lambda: len(jobs()) > 1, timeout=1.5) is False
    assert len(jobs()) == 1

    # When the connection is disconnected, the watch is stopped at Gmail (users.stop)
    removed = api.call("DELETE", f"/connections/{connection.id}", identity=PERSON)
    assert removed.status_code == 204, removed.text
    assert _watch_of(stack) is None
    stops = sandbox_get(stack, "/_sandbox/requests", app="google", method="POST")["requests"]
    assert any(str(r.get("path", "")).endswith("/gmail/v1/users/me/stop") for r in stops), stops

    # and a later message is no longer pushed
    later = sandbox_post(stack, "/_sandbox/gmail/messages", {"account": ACCOUNT})
    assert later["pushed"] is False
