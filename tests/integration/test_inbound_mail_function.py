"""The inbound mail function against the template's resources in moto: the raw mail bucket SES writes
to, the lookup items and connections in the main table, and the card's "last mail logged"."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.local.resources import LocalResources
from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.lookup import Lookup
from integrations.events import EmailLogged, EmailParty
from integrations.mail.ports import MailToLog
from integrations.store.connections import ConnectionRepository
from integrations.store.raw_mail import S3RawMail
from tests.support.functions import load_handler

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "inbound_mail_ses.json"
DOMAIN = "bcc.integrations.invalid"
RAW = (
    b"From: Sam Rivera <sam@agency.example>\r\nTo: Kim <kim@client.example>\r\n"
    b"Subject: Pricing for next quarter\r\nMessage-ID: <m1@agency.example>\r\n\r\nHello.\r\n"
)


class RecordingLogger:
    def __init__(self) -> None:
        self.entries: list[MailToLog] = []

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        self.entries.append(entry)
        return [
            EmailLogged(
                log_id="l1",
                agency_id=entry.agency_id,
                client_id=entry.client_id,
                connection_id="crm-1",
                provider="hubspot",
                record_id="r1",
                contact_external_id="51",
                direction="outbound",
                via="bcc",
                internet_message_id=entry.mail.message_id or "",
                subject=entry.mail.subject,
                sender=EmailParty(address="sam@agency.example"),
            )
        ]


@pytest.fixture
def inbound(aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, RecordingLogger]:
    for name, value in aws.environment("InboundMailFunction").items():
        monkeypatch.setenv(name, value)
    module = load_handler("inbound_mail")
    logger = RecordingLogger()
    module.container.__dict__["mail_logger"] = logger
    return module, logger


def repository() -> ConnectionRepository:
    return ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)


def reserve(local: str = "log-0123456789abcdef") -> Connection:
    connection = Connection(
        id=f"conn-{local}",
        provider="bcc_email",
        level=Level.CLIENT,
        agency_id="agency-1",
        client_id="client-a",
        account=ExternalAccount(id=local, label=f"{local}@{DOMAIN}"),
        owner_email="sam@agency.example",
    )
    repo = repository()
    repo.create(connection)
    repo.put_lookups(
        connection, [Lookup("bcc_email", "address", local, connection.id, "agency-1", "client-a", {})]
    )
    return connection


def store(aws: LocalResources, message_id: str, raw: bytes) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=aws.buckets["InboundMailBucket"], Key=f"inbound/{message_id}", Body=raw)


def notice(message_id: str, recipient: str, **verdicts: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    record = event["Records"][0]["ses"]
    record["mail"]["messageId"] = message_id
    record["receipt"]["recipients"] = [recipient]
    for name, status in verdicts.items():
        record["receipt"][f"{name}Verdict"] = {"status": status}
    return event


def test_a_stored_message_is_logged_and_the_card_remembers_it(
    aws: LocalResources, inbound: tuple[ModuleType, RecordingLogger], lambda_context: Any
) -> None:
    module, logger = inbound
    connection = reserve()
    store(aws, "msg-1", RAW)

    answer = module.handler(notice("msg-1", connection.account.label.upper()), lambda_context)

    assert answer == {"handled": [{"outcome": "logged", "logged": 1}]}
    [entry] = logger.entries
    assert (entry.agency_id, entry.client_id, entry.via, entry.create_unknown) == (
        "agency-1",
        "client-a",
        "bcc",
        True,
    )
    assert "sam@agency.example" in entry.owner_addresses
    saved = repository().get(connection.id)
    assert saved is not None and saved.last_mail_logged is not None
    assert saved.last_mail_logged.subject == "Pricing for next quarter"
    assert saved.last_mail_logged.counterpart == "kim@client.example"


def test_spam_is_dropped_without_reading_the_bucket(
    aws: LocalResources, inbound: tuple[ModuleType, RecordingLogger], lambda_context: Any
) -> None:
    module, logger = inbound
    connection = reserve()

    answer = module.handler(notice("never-stored", connection.account.label, spam="FAIL"), lambda_context)

    assert answer == {"handled": [{"outcome": "spam", "logged": 0}]}
    assert logger.entries == []


def test_an_expired_message_is_unreadable_not_an_error(
    aws: LocalResources, inbound: tuple[ModuleType, RecordingLogger], lambda_context: Any
) -> None:
    module, _ = inbound
    connection = reserve()

    answer = module.handler(notice("expired", connection.account.label), lambda_context)

    assert answer == {"handled": [{"outcome": "unreadable", "logged": 0}]}


def test_a_large_message_is_read_only_up_to_the_limit(aws: LocalResources) -> None:
    store(aws, "big", RAW + b"x" * 3_000_000)
    raw_mail = S3RawMail(aws_clients.s3())

    found = raw_mail.read(aws.buckets["InboundMailBucket"], "inbound/big", 1_000)
    missing = raw_mail.read(aws.buckets["InboundMailBucket"], "inbound/none", 1_000)

    assert found is not None and len(found.data) == 1_000 and found.size == len(RAW) + 3_000_000
    assert found.data.startswith(b"From: Sam Rivera")
    assert missing is None


def test_an_unknown_address_on_our_domain_is_dropped(
    aws: LocalResources, inbound: tuple[ModuleType, RecordingLogger], lambda_context: Any
) -> None:
    module, logger = inbound
    store(aws, "msg-2", RAW)

    answer = module.handler(notice("msg-2", f"log-ffffffffffffffff@{DOMAIN}"), lambda_context)

    assert answer == {"handled": [{"outcome": "unknown_address", "logged": 0}]}
    assert logger.entries == []
