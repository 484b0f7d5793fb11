"""The workflow webhook a GHL workflow asks for calls through: shown and rotated on a manage-only
portal route, verified by the receiver against the location's current secret only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.domain.connection import Connection
from tests.integration.test_webhooks_failures import bus_messages, published, stack  # noqa: F401
from tests.support import seed, signing
from tests.support.events import claims, http_event
from tests.support.functions import load_handler
from tests.support.lambda_context import LambdaContextStub
from tests.support.webhook_stack import WebhookStack
from tests.support.webhooks import Push

VIEWER = "[view_integrations]"


@pytest.fixture
def ghl(stack: WebhookStack) -> Connection:  # noqa: F811
    return seed.connection(provider="ghl", client_id="client-a")


def route(method: str, connection: Connection, **who: Any) -> dict[str, Any]:
    event = http_event(method, f"/connections/{connection.id}/workflow-webhook", claims=claims(**who))
    answer: dict[str, Any] = load_handler("connectors").handler(event, LambdaContextStub())
    return answer


def body(answer: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(answer["body"])
    return found


def call_request(stack: WebhookStack, url: str, secret: str, payload: dict[str, Any]) -> int:  # noqa: F811
    query = urlsplit(url).query
    push = Push("ghl", json.dumps(payload).encode(), signing.ghl_workflow_headers(secret), query=query)
    return int(stack.send(push)["statusCode"])


def test_a_viewer_cannot_see_the_workflow_webhook_and_another_client_does_not_find_it(
    ghl: Connection,
) -> None:
    assert route("GET", ghl, permissions=VIEWER)["statusCode"] == 403
    assert route("POST", ghl, permissions=VIEWER)["statusCode"] == 403
    assert route("GET", ghl, client_id="client-b")["statusCode"] == 404
    assert route("POST", ghl, client_id="client-b")["statusCode"] == 404


def test_a_manager_sees_the_url_and_gets_the_secret_only_when_issued(ghl: Connection) -> None:
    before = route("GET", ghl)
    issued = route("POST", ghl)
    after = route("GET", ghl)

    assert before["statusCode"] == 200 and body(before)["secret_set"] is False
    assert issued["statusCode"] == 201
    secret = body(issued)["secret"]
    assert len(secret) >= 40
    assert parse_qs(urlsplit(body(issued)["url"]).query) == {
        "workflow": ["call"],
        "location": [ghl.account.id],
    }
    assert body(after) == {"url": body(issued)["url"], "secret_set": True}
    assert secret not in after["body"]


def test_a_workflow_call_carries_its_custom_data_and_a_wrong_secret_is_refused(
    stack: WebhookStack,  # noqa: F811
    bus_messages: str,  # noqa: F811
    ghl: Connection,
) -> None:
    issued = body(route("POST", ghl))
    payload = {
        "contact_id": "c-1",
        "phone": "+15550100",
        "full_name": "Ada L",
        "workflow": {"id": "wf-9"},
        "customData": {"agent_id": "agent-7", "campaign": "spring", "request_id": "r-1"},
    }

    assert call_request(stack, issued["url"], "guessed-secret", payload) == 401
    assert call_request(stack, issued["url"], issued["secret"], payload) == 200

    [event] = published(bus_messages)
    detail = event["detail"]
    assert event["detail-type"] == "Call Requested"
    assert (detail["connection_id"], detail["client_id"]) == (ghl.id, "client-a")
    assert (detail["agent_id"], detail["phone"], detail["contact_id"]) == ("agent-7", "+15550100", "c-1")
    assert detail["custom"] == {"campaign": "spring", "request_id": "r-1"}


def test_rotating_the_secret_refuses_the_old_one_at_once(
    stack: WebhookStack,  # noqa: F811
    bus_messages: str,  # noqa: F811
    ghl: Connection,
) -> None:
    first = body(route("POST", ghl))
    second = body(route("POST", ghl))

    assert first["secret"] != second["secret"]
    assert (
        call_request(stack, first["url"], first["secret"], {"phone": "+15550101", "request_id": "a"}) == 401
    )
    assert (
        call_request(stack, second["url"], second["secret"], {"phone": "+15550102", "request_id": "b"}) == 200
    )
    assert [e["detail"]["phone"] for e in published(bus_messages)] == ["+15550102"]
