"""Mail through the whole local stack, as a checker would try it against `make dev`: two clients, each
with its CRM (HubSpot for A, GoHighLevel for B) connected through the sandbox's consent pages and the
same person in each CRM; a person of client A connects Gmail. Mail that the person receives and sends
in Gmail, and the same mail through SMTP to A's BCC logging address, is announced on the bus and logged
once on the right contact in A's CRM, never in B's; private mail is neither announced nor logged.

The CRM sandboxes are the truth: one engagement (HubSpot) per logged mail on A's contact, no note
(GoHighLevel) on B's."""

from __future__ import annotations

import random
import smtplib
import string
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from infra.local.stack import LocalStack
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.e2e.test_dev_platform_routes import listed, publish
from tests.e2e.test_oauth_flow import card, consent
from tests.e2e.test_webhooks_e2e import sandbox_get, sandbox_post
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

# Each wait covers a webhook or push, a queue hop and a worker run; generous for a loaded machine.
WAIT = 30.0


def _identity(client_id: str, sub: str, email: str) -> dict[str, Any]:
    return {
        "sub": sub,
        "agency_id": "demo-agency",
        "client_id": client_id,
        "role": "client_user",
        "permissions": [VIEW, MANAGE],
        "email": email,
    }


def _connect(api: Api, identity: dict[str, Any], provider: str, level: str, account: str) -> dict[str, Any]:
    start = api.call(
        "POST",
        f"/oauth/{provider}/start",
        identity=identity,
        json={"level": level, "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text
    done = consent(api, start.json()["redirect_url"], account=account)
    assert done.status_code == 302, done.text
    assert done.headers["Location"].endswith(f"?integration={provider}&result=connected"), done.headers
    [connection] = card(api, identity, provider, level=level)["connections"]
    found: dict[str, Any] = connection
    return found


def _options(api: Api, identity: dict[str, Any], connection_id: str, name: str, **query: str) -> list[Any]:
    answer = api.call("GET", f"/connections/{connection_id}/options/{name}", identity=identity, params=query)
    assert answer.status_code == 200, answer.text
    options: list[Any] = answer.json()["options"]
    return options


def _configure(api: Api, identity: dict[str, Any], connection_id: str, config: dict[str, Any]) -> None:
    """Save the settings a CRM needs before it syncs, as the portal's configure step does."""
    answer = api.call("PATCH", f"/connections/{connection_id}", identity=identity, json={"config": config})
    assert answer.status_code == 200, answer.text


@dataclass
class World:
    """Two clients of one agency, their CRMs, one shared correspondent, and A's person with Gmail."""

    api: Api
    stack: LocalStack
    tag: str
    manager_a: dict[str, Any]
    manager_b: dict[str, Any]
    person_a: dict[str, Any]
    hub: str
    location: str
    gmail: str
    kim: str
    contact_id_a: str
    hubspot_connection: str
    ghl_connection: str
    gmail_connection: str
    bcc_address: str
    hubspot_contact: str
    ghl_contact: str

    def events(self, detail_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in listed(self.api, detail_type=detail_type, limit=500)
            if all(e["detail"].get(k) == v for k, v in match.items())
        ]

    def hubspot_emails(self) -> list[dict[str, Any]]:
        contacts = sandbox_get(self.stack, "/_sandbox/hubspot/contacts", hub_id=self.hub)["contacts"]
        [contact] = [c for c in contacts if c["id"] == self.hubspot_contact]
        emails: list[dict[str, Any]] = contact["emails"]
        return emails

    def ghl_contacts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = sandbox_get(
            self.stack, "/_sandbox/ghl/contacts", location_id=self.location
        )["contacts"]
        return found

    def gmail_message(self, gmail_id: str) -> dict[str, Any]:
        mailbox = sandbox_get(self.stack, "/_sandbox/gmail/mailbox", account=self.gmail)
        [message] = [m for m in mailbox["messages"] if m["id"] == gmail_id]
        found: dict[str, Any] = message
        return found

    def receive(self, sender: str, subject: str, name: str = "") -> dict[str, Any]:
        """Someone mails the person's Gmail."""
        body = {"account": self.gmail, "from": sender, "from_name": name, "subject": subject}
        arrived: dict[str, Any] = sandbox_post(self.stack, "/_sandbox/gmail/receive", body)
        assert arrived["pushed"] is True
        return arrived

    def smtp(self, message: EmailMessage, recipients: list[str]) -> dict[str, Any]:
        assert self.stack.urls is not None and self.stack.urls.smtp is not None
        host, port = self.stack.urls.smtp.removeprefix("smtp://").split(":")
        with smtplib.SMTP(host, int(port), timeout=10) as client:
            refused: dict[str, Any] = client.send_message(message, to_addrs=recipients)
        assert self.stack.smtp is not None
        self.stack.smtp.handler.wait_idle()
        return refused


def _build(api: Api, stack: LocalStack) -> World:
    tag = uuid.uuid4().hex[:8]
    manager_a = _identity(f"client-mail-a-{tag}", f"manager-a-{tag}", f"sam-{tag}@agency.example")
    manager_b = _identity(f"client-mail-b-{tag}", f"manager-b-{tag}", f"lee-{tag}@agency.example")
    person_a = _identity(str(manager_a["client_id"]), f"person-a-{tag}", f"alex-{tag}@example.com")
    hub = str(random.randint(10_000_000, 99_999_999))  # noqa: S311 - a test account id
    location = "Loc" + "".join(random.choices(string.ascii_letters + string.digits, k=17))  # noqa: S311
    gmail = str(person_a["email"])
    kim = f"kim-{tag}@client.example"

    # Given client A's HubSpot and client B's GoHighLevel, connected through the consent pages
    hubspot = _connect(api, manager_a, "hubspot", "client", hub)
    ghl = _connect(api, manager_b, "ghl", "client", location)
    mapping = {"first_name": "firstname", "last_name": "lastname", "email": "email"}
    _configure(api, manager_a, hubspot["id"], {"property_mapping": mapping})
    pipeline = _options(api, manager_b, ghl["id"], "pipeline_id")[0]["value"]
    stage = _options(api, manager_b, ghl["id"], "stage_id", depends_on=pipeline)[0]["value"]
    _configure(api, manager_b, ghl["id"], {"pipeline_id": pipeline, "stage_id": stage})

    # and the same correspondent in both: in A as a platform contact pushed to HubSpot, in B made by a
    # person in GoHighLevel and synced through its webhook
    contact_id_a = f"ct-{tag}"
    fields = {"first_name": "Kim", "last_name": "Lee", "email": kim}
    upserted = {
        "contact_id": contact_id_a,
        "agency_id": "demo-agency",
        "client_id": manager_a["client_id"],
        "fields": fields,
        "version": 1,
    }
    assert publish(api, "Contact Upserted", upserted).status_code == 202
    made = sandbox_post(
        stack,
        "/_sandbox/ghl/contacts",
        {"location_id": location, "firstName": "Kim", "lastName": "Lee", "email": kim},
    )
    ghl_contact = str(made["contact"]["id"])

    def in_hubspot() -> str | None:
        contacts = sandbox_get(stack, "/_sandbox/hubspot/contacts", hub_id=hub)["contacts"]
        return next((str(c["id"]) for c in contacts if c["properties"].get("email") == kim), None)

    hubspot_contact = eventually(in_hubspot, timeout=WAIT)
    assert hubspot_contact, "the platform's contact never reached client A's HubSpot"
    synced_b = eventually(
        lambda: [
            e
            for e in listed(api, detail_type="Contact Changed", limit=500)
            if e["detail"]["connection_id"] == ghl["id"] and e["detail"]["external_id"] == ghl_contact
        ],
        timeout=WAIT,
    )
    assert synced_b, "client B's GoHighLevel contact was never synced"

    # and A's BCC logging address, reserved by A's manager
    reserved = api.call(
        "POST", "/integrations/bcc_email/connect", identity=manager_a, json={"level": "client"}
    )
    assert reserved.status_code == 201, reserved.text

    # and a person of client A who connected Gmail
    mailbox = _connect(api, person_a, "gmail", "user", gmail)
    return World(
        api=api,
        stack=stack,
        tag=tag,
        manager_a=manager_a,
        manager_b=manager_b,
        person_a=person_a,
        hub=hub,
        location=location,
        gmail=gmail,
        kim=kim,
        contact_id_a=contact_id_a,
        hubspot_connection=str(hubspot["id"]),
        ghl_connection=str(ghl["id"]),
        gmail_connection=str(mailbox["id"]),
        bcc_address=str(reserved.json()["account_label"]),
        hubspot_contact=hubspot_contact,
        ghl_contact=ghl_contact,
    )


@pytest.fixture(scope="module")
def world(api: Api, stack: LocalStack) -> World:
    return _build(api, stack)


def _no_notes_in_b(world: World) -> None:
    [contact] = [c for c in world.ghl_contacts() if c["id"] == world.ghl_contact]
    assert contact["notes"] == []
    assert world.events("Email Logged", client_id=world.manager_b["client_id"]) == []
    assert world.events("Email Logged", connection_id=world.ghl_connection) == []


def test_mail_from_a_contact_is_received_and_logged_once_on_that_contact_in_its_clients_crm(
    world: World,
) -> None:
    subject = f"Quote {world.tag}"

    # When the contact mails the person's Gmail
    arrived = world.receive(world.kim, subject, name="Kim Lee")

    # Then the bus hears `Email Received` for A's contact, once
    [received] = eventually(
        lambda: world.events("Email Received", connection_id=world.gmail_connection, subject=subject),
        timeout=WAIT,
    )
    detail = received["detail"]
    assert detail["contact_ids"] == [world.contact_id_a]
    assert (detail["agency_id"], detail["client_id"]) == ("demo-agency", world.manager_a["client_id"])
    assert detail["message_id"] == arrived["id"] and detail["internet_message_id"] == arrived["messageId"]
    # and it is logged once on that contact in A's HubSpot
    [logged] = eventually(lambda: world.events("Email Logged", subject=subject), timeout=WAIT)
    assert logged["detail"]["connection_id"] == world.hubspot_connection
    assert logged["detail"]["contact_external_id"] == world.hubspot_contact
    assert logged["detail"]["contact_id"] == world.contact_id_a
    assert (logged["detail"]["direction"], logged["detail"]["via"]) == ("inbound", "mailbox")
    [engagement] = [e for e in world.hubspot_emails() if e["properties"]["hs_email_subject"] == subject]
    assert engagement["properties"]["hs_email_direction"] == "INCOMING_EMAIL"
    # and nothing reaches client B's GoHighLevel, though the same address is B's contact too
    _no_notes_in_b(world)

    # When the same mail (same Message-ID) also reaches A's BCC logging address through SMTP
    message = EmailMessage()
    message["From"] = f"Kim Lee <{world.kim}>"
    message["To"] = world.gmail
    message["Subject"] = subject
    message["Message-ID"] = arrived["messageId"]
    message.set_content("Hello.\n")
    refused = world.smtp(message, [world.bcc_address])

    # Then it is still logged once
    assert refused == {}
    assert len(world.events("Email Logged", subject=subject)) == 1
    assert [e for e in world.hubspot_emails() if e["properties"]["hs_email_subject"] == subject] == [
        engagement
    ]
    _no_notes_in_b(world)


def test_mail_the_person_sends_from_gmail_to_a_contact_is_announced_and_logged_outbound_once(
    world: World,
) -> None:
    subject = f"Proposal {world.tag}"

    # When the person writes to the contact in Gmail's own page
    sent = sandbox_post(
        world.stack, "/_sandbox/gmail/send", {"account": world.gmail, "to": [world.kim], "subject": subject}
    )
    assert sent["pushed"] is True

    # Then the bus hears `Email Sent` for A's contact, and one outbound log on the HubSpot contact
    [announced] = eventually(
        lambda: world.events("Email Sent", connection_id=world.gmail_connection, subject=subject),
        timeout=WAIT,
    )
    assert announced["detail"]["contact_ids"] == [world.contact_id_a]
    assert announced["detail"]["message_id"] == sent["id"]
    [logged] = eventually(lambda: world.events("Email Logged", subject=subject), timeout=WAIT)
    assert logged["detail"]["contact_external_id"] == world.hubspot_contact
    assert (logged["detail"]["direction"], logged["detail"]["via"]) == ("outbound", "mailbox")
    [engagement] = [e for e in world.hubspot_emails() if e["properties"]["hs_email_subject"] == subject]
    assert engagement["properties"]["hs_email_direction"] == "EMAIL"
    _no_notes_in_b(world)


def test_private_mail_is_neither_announced_nor_logged(world: World) -> None:
    private, later = f"Dinner {world.tag}", f"Follow-up {world.tag}"
    before = len(world.hubspot_emails())

    # When a stranger mails the person, and then the contact does
    world.receive(f"friend-{world.tag}@elsewhere.example", private, name="A Friend")
    world.receive(world.kim, later, name="Kim Lee")

    # Then the contact's mail, read after the stranger's, is announced and logged
    assert eventually(lambda: world.events("Email Logged", subject=later), timeout=WAIT), (
        "the contact's mail after the private one was never logged"
    )
    # and the private one was read and dropped: nothing published, nothing logged anywhere
    for detail_type in ("Email Received", "Email Sent", "Email Logged"):
        assert world.events(detail_type, subject=private) == []
    subjects = [e["properties"]["hs_email_subject"] for e in world.hubspot_emails()]
    assert private not in subjects and len(subjects) == before + 1
    _no_notes_in_b(world)


def test_a_mail_the_person_sends_from_gmail_with_the_clients_bcc_address_is_logged_once_outbound(
    world: World,
) -> None:
    subject = f"Contract {world.tag}"

    # When the person writes to the contact in Gmail, with the client's BCC logging address in Bcc:
    # Gmail keeps the mail in SENT, and the same mail reaches the address through SMTP
    sent = sandbox_post(
        world.stack, "/_sandbox/gmail/send", {"account": world.gmail, "to": [world.kim], "subject": subject}
    )
    copy = EmailMessage()
    copy["From"] = world.gmail
    copy["To"] = world.kim
    copy["Subject"] = subject
    copy["Message-ID"] = world.gmail_message(sent["id"])["messageId"]
    copy.set_content("Hello.\n")
    assert world.smtp(copy, [world.bcc_address]) == {}

    # Then it is logged once, outbound, on the contact: the person is the client's team, no contact
    [announced] = eventually(
        lambda: world.events("Email Sent", connection_id=world.gmail_connection, subject=subject),
        timeout=WAIT,
    )
    assert announced["detail"]["contact_ids"] == [world.contact_id_a]
    [logged] = eventually(lambda: world.events("Email Logged", subject=subject), timeout=WAIT)
    assert logged["detail"]["contact_external_id"] == world.hubspot_contact
    assert logged["detail"]["direction"] == "outbound"
    assert len(world.events("Email Logged", subject=subject)) == 1
    contacts = sandbox_get(world.stack, "/_sandbox/hubspot/contacts", hub_id=world.hub)["contacts"]
    assert [c["properties"].get("email") for c in contacts] == [world.kim]
    _no_notes_in_b(world)
