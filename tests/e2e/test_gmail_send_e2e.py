"""Sending as a person through the local stack: the platform publishes `Email Send Requested` (twice,
as at-least-once delivery may), the worker sends it from the person's Gmail mailbox once, and
`Email Sent` reaches the bus once, naming the request."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from infra.local.stack import LocalStack
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.e2e.test_dev_platform_routes import listed, publish
from tests.e2e.test_oauth_flow import card, consent
from tests.e2e.test_webhooks_e2e import sandbox_get
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

# A mailbox no other e2e test touches (the stack and the sandbox are shared by the package).
ACCOUNT = "gmail-sender-e2e@example.com"
PERSON = {
    "sub": "client-gmail-sender",
    "agency_id": "demo-agency",
    "client_id": "client-gmail-send",
    "role": "client_user",
    "permissions": [VIEW, MANAGE],
}


def test_a_requested_mail_is_sent_once_from_the_persons_gmail(api: Api, stack: LocalStack) -> None:
    # Given a person who connected Gmail
    start = api.call(
        "POST",
        "/oauth/gmail/start",
        identity=PERSON,
        json={"level": "user", "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text
    assert consent(api, start.json()["redirect_url"], account=ACCOUNT).status_code == 302
    [connection] = card(api, PERSON, "gmail", level="user")["connections"]
    request_id = f"req-{uuid.uuid4().hex}"
    detail: dict[str, Any] = {
        "request_id": request_id,
        "agency_id": PERSON["agency_id"],
        "client_id": PERSON["client_id"],
        "user_id": PERSON["sub"],
        "to": [{"address": "jordan@example.com", "name": "Jordan Lee"}],
        "subject": "Pricing",
        "text": "Tuesday at 10 works.\n",
    }

    # When the platform asks to send a mail as that person, and the event arrives twice
    for _ in range(2):
        assert publish(api, "Email Send Requested", detail).status_code == 202

    # Then the person's Gmail sent it once, and the bus hears of it once, with Gmail's ids
    def sent() -> list[dict[str, Any]] | None:
        mailbox = sandbox_get(stack, "/_sandbox/gmail/mailbox", account=ACCOUNT)
        found = [m for m in mailbox["messages"] if "SENT" in m["labelIds"]]
        return found or None

    def announced() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in listed(api, detail_type="Email Sent", limit=500)
            if e["detail"]["request_id"] == request_id
        ]
        return found or None

    [mail] = eventually(sent)
    [event] = eventually(announced)
    assert mail["messageId"].startswith("<integrations.") and mail["to"] == "Jordan Lee <jordan@example.com>"
    assert event["detail"]["connection_id"] == connection["id"]
    assert (event["detail"]["message_id"], event["detail"]["thread_id"]) == (mail["id"], mail["threadId"])
    assert len(eventually(sent)) == 1
