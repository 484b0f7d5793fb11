"""A correctly signed push whose JSON holds a lone surrogate escape (`\\ud800`) is accepted, the
surrogate replaced by U+FFFD: never a 5xx, never the 429 that makes GHL redeliver forever."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.sandbox.keys import APP_CREDENTIALS
from tests.support import signing, webhook_stack
from tests.support.events import body_of
from tests.support.webhook_stack import WebhookStack
from tests.support.webhooks import (
    SAMPLE_IDS,
    Push,
    calendly_push,
    ghl_private_pem,
    ghl_push,
    gmail_push,
    graph_push,
    hubspot_push,
    slack_push,
)

LONE = "\ud800"


@pytest.fixture
def stack(aws: Any, lambda_context: Any) -> WebhookStack:
    stack = webhook_stack.start(aws, lambda_context)
    webhook_stack.known_accounts(stack, SAMPLE_IDS)
    return stack


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _dumps(payload: Any) -> bytes:
    # ensure_ascii writes the lone surrogate as the escape `\ud800`, as a JavaScript sender would.
    body = json.dumps(payload, separators=(",", ":")).encode()
    assert b"\\ud800" in body
    return body


def _slack(at: datetime) -> Push:
    payload = json.loads(slack_push(at).body)
    payload["event_id"] = "Ev0SAMPLE" + LONE
    body = _dumps(payload)
    return Push("slack", body, signing.slack_headers(body, APP_CREDENTIALS["slack"]["signing_secret"], at))


def _hubspot(at: datetime) -> Push:
    push = hubspot_push(at)
    payload = json.loads(push.body)
    payload[0]["subscriptionType"] = "contact.creation" + LONE
    body = _dumps(payload)
    secret = APP_CREDENTIALS["hubspot"]["client_secret"]
    return Push("hubspot", body, signing.hubspot_headers("POST", push.url, body, secret, at))


def _calendly(at: datetime) -> Push:
    key = webhook_stack.keys().calendly_subscription_key
    return calendly_push(at, signing_key=key, event_uri="https://api.calendly.com/invitees/" + LONE)


def _ghl(at: datetime) -> Push:
    payload = json.loads(ghl_push(at).body)
    payload["id"] = "contact" + LONE
    body = _dumps(payload)
    return Push("ghl", body, signing.ghl_headers(body, ghl_private_pem()))


def _gmail(at: datetime) -> Push:
    # Pub/Sub's JWT does not sign the body: anyone holding a push token can send this one.
    push = gmail_push(at)
    payload = json.loads(push.body)
    data = {"emailAddress": SAMPLE_IDS["gmail_address"], "historyId": "9876", "unknown": LONE}
    payload["message"]["data"] = base64.urlsafe_b64encode(_dumps(data)).decode("ascii")
    payload["message"]["messageId"] = payload["message"]["message_id"] = "20704436" + LONE
    payload["subscription"] = "projects/p/subscriptions/gmail-push" + LONE
    return Push("gmail", _dumps(payload), push.headers)


def _outlook(at: datetime) -> Push:
    push = graph_push()
    payload = json.loads(push.body)
    payload["value"][0]["resourceData"]["id"] = "AAMk" + LONE
    return Push("outlook_calendar", _dumps(payload), push.headers)


PUSHES: dict[str, Callable[[datetime], Push]] = {
    "slack": _slack,
    "hubspot": _hubspot,
    "calendly": _calendly,
    "ghl": _ghl,
    "gmail": _gmail,
    "outlook_calendar": _outlook,
}


def _has_lone_surrogate(value: Any) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(value, ensure_ascii=False))


@pytest.mark.parametrize("provider", sorted(PUSHES))
def test_a_signed_push_with_a_lone_surrogate_is_accepted_with_it_replaced(
    stack: WebhookStack, provider: str
) -> None:
    push = PUSHES[provider](_now())
    answers = [stack.send(push) for _ in range(2)]

    assert [a["statusCode"] for a in answers] == [200, 200]
    assert body_of(answers[0])["received"] == 1
    assert body_of(answers[1]) == {"received": 0, "duplicates": 1, "unrouted": 0}
    queued = stack.queued()
    assert not _has_lone_surrogate(queued)
    assert "\ufffd" in json.dumps(queued, ensure_ascii=False)


def test_a_gmail_history_id_with_a_lone_surrogate_is_malformed(stack: WebhookStack) -> None:
    push = gmail_push(_now())
    payload = json.loads(push.body)
    data = {"emailAddress": SAMPLE_IDS["gmail_address"], "historyId": "9876" + LONE}
    payload["message"]["data"] = base64.urlsafe_b64encode(_dumps(data)).decode("ascii")

    answer = stack.send(Push("gmail", json.dumps(payload).encode(), push.headers))

    assert answer["statusCode"] == 400
    assert stack.queued_count() == 0
