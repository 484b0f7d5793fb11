"""Logging mail on CRM contacts, end to end for GoHighLevel and HubSpot: raw messages parsed as they
arrive, the address directory and the mail log in DynamoDB (moto), the sandbox CRMs' real APIs.
Each test compares what the CRM holds (the sandbox's truth) with what was logged."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.events import EmailLogged
from integrations.http import RateLimited
from integrations.mail.message import parse_mail
from integrations.mail.ports import MailNotLogged, MailToLog
from integrations.store.mail_contacts import DynamoMailContacts
from integrations.store.mail_log import DynamoMailLog
from integrations.sync.contacts import client_crms
from integrations.sync.mail_logging import WRITE_LEASE, CrmMailLogger
from tests.integration.test_crm_sync import CLIENT, World
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

OWNER = "ava@agency.example"
OWNERS = frozenset({OWNER, "ava.rivers@agency.example"})
DATE = "Tue, 01 Dec 2026 09:00:00 +0000"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class _AtomicWrites:
    """A DynamoDB client whose conditional writes are atomic, as DynamoDB's are: moto checks a
    condition and writes in two steps, so threads racing on one item could both pass."""

    _WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items"})
    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name not in self._WRITES:
            return call

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return call(*args, **kwargs)

        return atomic


class MailWorld(World):
    def __init__(self, provider: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(provider, sb, tmp_path, monkeypatch)
        self.clock = Clock()
        self.logged: list[EmailLogged] = []
        self.logger = self.logger_for()

    def logger_for(self) -> CrmMailLogger:
        table = Settings.from_env().sync_table_name
        container = self.container
        return CrmMailLogger(
            contacts=DynamoMailContacts(_AtomicWrites(aws_clients.dynamodb()), table),
            ledger=DynamoMailLog(_AtomicWrites(aws_clients.dynamodb()), table),
            mirror=container.crm_store,
            crm_connections=lambda agency_id, client_id: client_crms(
                container.connections, container.provider_crms.has_crm, agency_id, client_id
            ),
            adapter=container.provider_crms.adapter,
            publish=self.logged.extend,
            clock=self.clock,
        )

    def known_in_crm(self, first: str, email: str) -> str:
        """A contact the person made in the CRM, pulled by a sweep (so the directory knows it)."""
        external_id = self.person_creates(first, email)
        self.worker.handle(self.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
        return external_id

    def log(
        self,
        raw: bytes,
        *,
        via: str = "bcc",
        create_unknown: bool = True,
        client_id: str = CLIENT,
        logger: CrmMailLogger | None = None,
    ) -> Sequence[EmailLogged]:
        entry = MailToLog(
            agency_id="agency-1",
            client_id=client_id,
            owner_addresses=OWNERS,
            mail=parse_mail(raw),
            via=via,  # type: ignore[arg-type]
            create_unknown=create_unknown,
        )
        return (logger or self.logger).log(entry)

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Each CRM contact's email (by address) with the mail records logged on it."""
        key = "notes" if self.provider == "ghl" else "emails"
        return {
            str(c["email"] if self.provider == "ghl" else c["properties"]["email"]): list(c[key])
            for c in self.truth()
        }

    def upserts(self) -> int:
        suffix = "/contacts/upsert" if self.provider == "ghl" else "/contacts/batch/upsert"
        return len(self.requests(suffix))


@pytest.fixture(params=["ghl", "hubspot"])
def world(
    request: pytest.FixtureRequest, server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MailWorld]:
    server.reset()
    yield MailWorld(str(request.param), server, tmp_path, monkeypatch)
    clear_cache()


def mail(
    sender: str,
    to: Sequence[str],
    *,
    cc: Sequence[str] = (),
    subject: str = "Pricing for next quarter",
    message_id: str | None = "<20261201090000.1@agency.example>",
    body: str = "Here are the numbers we discussed.",
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = DATE
    if message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="quote.pdf")
    return bytes(message)


def _direction(world: MailWorld, record: dict[str, Any]) -> str:
    if world.provider == "ghl":
        return "inbound" if str(record["body"]).startswith("Email received") else "outbound"
    return "inbound" if record["properties"]["hs_email_direction"] == "INCOMING_EMAIL" else "outbound"


def _subject_and_body(world: MailWorld, record: dict[str, Any]) -> str:
    if world.provider == "ghl":
        return str(record["body"])
    props = record["properties"]
    return f"{props['hs_email_subject']}\n{props['hs_email_text']}\n{props['hs_email_headers']}"


# --- which contacts, which direction ---


def test_an_outbound_mail_to_two_contacts_is_logged_on_both(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    world.known_in_crm("Jo", "jo@example.com")

    logged = world.log(mail(f"Ava <{OWNER}>", ["Sam Rivera <sam@example.com>", "jo@example.com"]))

    records = world.records()
    assert {e.contact_external_id for e in logged} == {str(c["id"]) for c in world.truth()}
    assert {e.direction for e in logged} == {"outbound"} and len(logged) == 2
    for address in ("sam@example.com", "jo@example.com"):
        (record,) = records[address]
        assert _direction(world, record) == "outbound"
        shown = _subject_and_body(world, record)
        assert "Pricing for next quarter" in shown
        assert "Here are the numbers we discussed." in shown
        assert "quote.pdf" in shown
    assert world.logged == list(logged)
    assert {e.via for e in logged} == {"bcc"} and {e.contact_created for e in logged} == {False}


def test_an_inbound_mail_from_a_known_contact_is_logged_on_the_sender(world: MailWorld) -> None:
    external_id = world.known_in_crm("Sam", "sam@example.com")

    (event,) = world.log(mail("Sam <sam@example.com>", [OWNER]), via="mailbox", create_unknown=False)

    assert (event.direction, event.contact_external_id, event.via) == ("inbound", external_id, "mailbox")
    (record,) = world.records()["sam@example.com"]
    assert _direction(world, record) == "inbound"
    assert event.record_id == str(record["id"])


def test_an_unknown_sender_is_created_once_from_the_mail_and_then_logged(world: MailWorld) -> None:
    (event,) = world.log(mail('"Rivera, Sam" <sam@new.example>', [OWNER]))
    again = world.log(mail('"Rivera, Sam" <sam@new.example>', [OWNER]))

    (contact,) = world.truth()
    first = contact["firstName"] if world.provider == "ghl" else contact["properties"]["firstname"]
    last = contact["lastName"] if world.provider == "ghl" else contact["properties"]["lastname"]
    assert (first, last) == ("Sam", "Rivera")
    assert event.contact_created and event.contact_external_id == str(contact["id"])
    assert again == []
    assert len(world.records()["sam@new.example"]) == 1
    # The contact we made is mirrored: the next pull does not report it as the person's change.
    world.worker.handle(world.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
    assert world.changed() == []


def test_a_synced_mailbox_logs_nothing_for_an_unknown_sender(world: MailWorld) -> None:
    assert world.log(mail("stranger@nowhere.example", [OWNER]), via="mailbox", create_unknown=False) == []
    assert world.truth() == []


def test_the_owner_in_cc_is_never_a_counterpart(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    world.known_in_crm("Lee", "lee@colleague.example")

    # Inbound to a colleague with the owner in Cc: logged on the sender only.
    inbound = world.log(
        mail("sam@example.com", ["lee@colleague.example"], cc=[OWNER], message_id="<in-1@example.com>")
    )
    # Outbound with the owner's other address in Cc: logged on the contact only.
    outbound = world.log(
        mail(
            OWNER, ["sam@example.com"], cc=["ava.rivers@agency.example"], message_id="<out-1@agency.example>"
        )
    )

    assert [(e.direction, e.internet_message_id) for e in inbound] == [("inbound", "<in-1@example.com>")]
    assert [(e.direction, e.internet_message_id) for e in outbound] == [
        ("outbound", "<out-1@agency.example>")
    ]
    records = world.records()
    assert len(records["sam@example.com"]) == 2
    assert records["lee@colleague.example"] == []
    assert set(records) == {"sam@example.com", "lee@colleague.example"}


def test_auto_replies_and_bounces_are_never_logged(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    auto_reply = mail(
        "sam@example.com", [OWNER], subject="Out of office", headers={"Auto-Submitted": "auto-replied"}
    )
    bounce = mail("MAILER-DAEMON@mx.example.com", [OWNER], subject="Undelivered Mail Returned to Sender")

    assert world.log(auto_reply) == []
    assert world.log(bounce) == []
    assert world.records() == {"sam@example.com": []}


def test_a_mail_without_a_message_id_is_logged_once_under_a_stable_id(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")

    (event,) = world.log(mail("sam@example.com", [OWNER], message_id=None), via="bcc")
    again = world.log(mail("sam@example.com", [OWNER], message_id=None), via="mailbox", create_unknown=False)

    assert again == []
    assert event.internet_message_id.endswith("@derived.invalid>")
    assert len(world.records()["sam@example.com"]) == 1


# --- once ---


def test_the_same_message_via_bcc_and_via_the_mailbox_is_logged_once(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    raw = mail(OWNER, ["sam@example.com"])

    first = world.log(raw, via="bcc")
    second = world.log(raw, via="mailbox", create_unknown=False)

    assert len(first) == 1 and second == []
    assert len(world.records()["sam@example.com"]) == 1
    assert [e.log_id for e in world.logged] == [first[0].log_id]


def test_a_crash_between_the_crm_write_and_its_record_does_not_log_twice(
    world: MailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    raw = mail(OWNER, ["sam@example.com"])
    ledger = world.logger._ledger
    confirm = ledger.confirm

    def crash(*args: Any) -> None:
        raise RuntimeError("the function timed out")

    monkeypatch.setattr(ledger, "confirm", crash)
    with pytest.raises(RuntimeError):
        world.log(raw)
    monkeypatch.setattr(ledger, "confirm", confirm)

    # While the dead writer's lease runs, a retry waits instead of writing; after it, it takes over.
    world.clock.now += WRITE_LEASE + timedelta(seconds=1)
    (event,) = world.log(raw)

    (record,) = world.records()["sam@example.com"]
    assert event.record_id == str(record["id"])
    assert world.log(raw) == []


def test_ten_concurrent_mails_from_one_unknown_sender_make_one_contact_and_ten_logs(world: MailWorld) -> None:
    results = _concurrently(
        world,
        [mail("New Lead <lead@new.example>", [OWNER], message_id=f"<m{n}@new.example>") for n in range(10)],
    )

    (contact,) = world.truth()
    assert world.upserts() == 1
    assert len(world.records()["lead@new.example"]) == 10
    assert sorted(len(r) for r in results) == [1] * 10
    assert {e.contact_external_id for r in results for e in r} == {str(contact["id"])}


def test_ten_concurrent_copies_of_one_mail_make_one_contact_and_one_log(world: MailWorld) -> None:
    raw = mail("New Lead <lead@new.example>", [OWNER], message_id="<same@new.example>")

    results = _concurrently(world, [raw] * 10)

    assert len(world.truth()) == 1
    assert world.upserts() == 1
    assert len(world.records()["lead@new.example"]) == 1
    assert sorted(len(r) for r in results) == [0] * 9 + [1]


def _concurrently(world: MailWorld, raws: Sequence[bytes]) -> list[Sequence[EmailLogged]]:
    results: list[Sequence[EmailLogged]] = [()] * len(raws)
    errors: list[BaseException] = []
    start = threading.Barrier(len(raws))

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = world.log(raws[index])
        except BaseException as error:  # reported below, with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(raws))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


# --- tenants and faults ---


def test_another_clients_contacts_are_never_matched(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    # Client B connects the same CRM account: its directory still knows nobody.
    tokens = connect(world.sb, world.provider)
    seed.connection(
        provider=world.provider,
        agency_id="agency-1",
        client_id="client-b",
        account_id=world.account,
        access_token=str(tokens["access_token"]),
        refresh_token=str(tokens["refresh_token"]),
    )

    logged = world.log(mail("sam@example.com", [OWNER]), client_id="client-b", create_unknown=False)

    assert logged == []
    assert world.records() == {"sam@example.com": []}


def test_a_rate_limited_crm_keeps_the_mail_for_a_retry_that_logs_it_once(world: MailWorld) -> None:
    world.known_in_crm("Sam", "sam@example.com")
    answer = world.sb.http.post(
        world.sb.url("/_sandbox/faults"),
        json={"app": world.provider, "kind": "rate_limit", "retry_after": 7, "endpoint": "api"},
    )
    assert answer.status_code == 201, answer.text
    raw = mail(OWNER, ["sam@example.com"])

    with pytest.raises(MailNotLogged) as refused:
        world.log(raw)

    (cause,) = refused.value.causes.values()
    assert isinstance(cause, RateLimited)
    assert refused.value.retry_after == 7 and not refused.value.waits_for_person
    assert world.records()["sam@example.com"] == []
    (event,) = world.log(raw)
    assert world.log(raw) == []
    assert len(world.records()["sam@example.com"]) == 1
    assert event.connection_id == world.connection_id
