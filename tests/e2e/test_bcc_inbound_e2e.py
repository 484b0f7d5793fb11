"""Mail to a BCC logging address through the whole local stack: an SMTP client → the SMTP listener
standing in for SES receiving → the raw mail bucket → the inbound mail function → the HubSpot sandbox,
with `Email Logged` on the bus and the last mail on the address's card."""

from __future__ import annotations

import random
import smtplib
import uuid
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from infra.local.stack import LocalStack
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.e2e.test_oauth_flow import card, consent
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


class Client:
    """A client with HubSpot connected and a BCC logging address, its manager writing from sam@…"""

    def __init__(self, api: Api, stack: LocalStack) -> None:
        assert stack.urls is not None and stack.urls.smtp is not None
        self.api, self.stack = api, stack
        tag = uuid.uuid4().hex[:8]
        self.manager = {
            "sub": f"manager-{tag}",
            "agency_id": "demo-agency",
            "client_id": f"client-{tag}",
            "role": "client_user",
            "permissions": [VIEW, MANAGE],
            "email": f"sam-{tag}@agency.example",
        }
        self.hub = str(random.randint(10_000_000, 99_999_999))  # noqa: S311 - a test account id
        host, port = stack.urls.smtp.removeprefix("smtp://").split(":")
        self.smtp = (host, int(port))

    def connect_hubspot(self) -> None:
        start = self.api.call(
            "POST",
            "/oauth/hubspot/start",
            identity=self.manager,
            json={"level": "client", "return_to": f"{self.api.base}/portal/"},
        )
        assert start.status_code == 200, start.text
        assert consent(self.api, start.json()["redirect_url"], account=self.hub).status_code == 302

    def reserve_address(self) -> dict[str, Any]:
        answer = self.api.call(
            "POST", "/integrations/bcc_email/connect", identity=self.manager, json={"level": "client"}
        )
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def send(self, message: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(*self.smtp, timeout=10) as client:
            refused: dict[str, tuple[int, bytes]] = client.send_message(
                message, from_addr=str(self.manager["email"]), to_addrs=recipients
            )
            return refused

    def hubspot_contacts(self) -> list[dict[str, Any]]:
        assert self.stack.urls is not None
        http = requests.Session()
        http.trust_env = False
        answer = http.get(
            f"{self.stack.urls.sandbox}/_sandbox/hubspot/contacts", params={"hub_id": self.hub}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        contacts: list[dict[str, Any]] = answer.json()["contacts"]
        return contacts


def mail(sender: str, to: str, subject: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Sam Rivera <{sender}>"
    message["To"] = f"Kim Lee <{to}>"
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@agency.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Here are the numbers for next quarter.")
    return message


def logged_events(api: Api, subject: str) -> list[dict[str, Any]]:
    answer = api.call("GET", "/dev/events", params={"detail_type": "Email Logged", "limit": 500})
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["events"] if e["detail"].get("subject") == subject]


def test_mail_sent_with_the_bcc_address_is_logged_in_hubspot_and_announced(
    api: Api, stack: LocalStack
) -> None:
    client = Client(api, stack)
    client.connect_hubspot()
    address = client.reserve_address()["account_label"]
    kim = f"kim-{uuid.uuid4().hex[:6]}@client.example"
    subject = f"Pricing {uuid.uuid4().hex[:6]}"

    refused = client.send(
        mail(str(client.manager["email"]), kim, subject), [kim.replace("@", "+x@"), address]
    )

    # SES answers for its own domain only: the contact's address is refused, ours accepted.
    assert list(refused) == [kim.replace("@", "+x@")]
    [event] = eventually(lambda: logged_events(api, subject), timeout=30)
    detail = event["detail"]
    assert (detail["agency_id"], detail["client_id"]) == ("demo-agency", client.manager["client_id"])
    assert (detail["direction"], detail["via"], detail["provider"]) == ("outbound", "bcc", "hubspot")
    [contact] = [c for c in client.hubspot_contacts() if c["properties"].get("email") == kim]
    assert [e["properties"].get("hs_email_subject") for e in contact["emails"]] == [subject]
    [listed] = card(api, client.manager, "bcc_email")["connections"]
    assert listed["last_mail_logged"]["subject"] == subject
    assert listed["last_mail_logged"]["counterpart"] == kim


def test_a_spam_verdict_is_accepted_by_smtp_and_never_logged(api: Api, stack: LocalStack) -> None:
    client = Client(api, stack)
    client.connect_hubspot()
    address = client.reserve_address()["account_label"]
    kim = f"kim-{uuid.uuid4().hex[:6]}@client.example"
    subject = f"Spam {uuid.uuid4().hex[:6]}"

    refused = client.send(mail(str(client.manager["email"]), kim, subject, X_Sandbox_Spam="FAIL"), [address])

    assert refused == {}
    assert stack.smtp is not None
    stack.smtp.handler.wait_idle()
    assert logged_events(api, subject) == []
    assert not [c for c in client.hubspot_contacts() if c["properties"].get("email") == kim]


def test_mail_for_another_domain_is_refused_with_550(stack: LocalStack) -> None:
    assert stack.urls is not None and stack.urls.smtp is not None
    host, port = stack.urls.smtp.removeprefix("smtp://").split(":")

    with smtplib.SMTP(host, int(port), timeout=10) as client:
        client.ehlo()
        client.mail("sam@agency.example")
        code, _ = client.rcpt("someone@elsewhere.example")

    assert code == 550
