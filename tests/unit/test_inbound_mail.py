"""Mail at a BCC logging address: verdicts, which envelope address decides the tenant, and direction."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount, MailLogged
from integrations.domain.lookup import Lookup
from integrations.events import EmailLogged, EmailParty, PlatformEvent
from integrations.mail.inbound import (
    READ_LIMIT,
    InboundConfig,
    InboundMail,
    Outcome,
    addressed,
    counterpart,
    owner_addresses,
)
from integrations.mail.message import parse_mail
from integrations.mail.ports import MailToLog

DOMAIN = "bcc.example.test"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "events" / "inbound_mail_ses.json"

OUTBOUND = (
    b"From: Sam Rivera <sam@agency.example>\r\n"
    b"To: Kim <kim@client.example>\r\n"
    b"Subject: Pricing for next quarter\r\n"
    b"Message-ID: <m1@agency.example>\r\n"
    b"Date: Tue, 1 Dec 2026 09:00:00 +0000\r\n\r\n"
    b"Here are the numbers.\r\n"
)


def connection(
    local: str, agency: str = "agency-1", client: str | None = "client-a", **extra: Any
) -> Connection:
    return Connection(
        id=f"conn-{local}",
        provider="bcc_email",
        level=extra.pop("level", Level.USER),
        agency_id=agency,
        client_id=client,
        user_id=extra.pop("user_id", "user-1"),
        account=ExternalAccount(id=local, label=f"{local}@{DOMAIN}"),
        owner_email=extra.pop("owner_email", "sam@agency.example"),
        **extra,
    )


class Routes:
    def __init__(self, *connections: Connection) -> None:
        self.connections = {c.id: c for c in connections}
        self.lookups = {
            c.account.id: Lookup("bcc_email", "address", c.account.id, c.id, c.agency_id, c.client_id, {})
            for c in connections
        }

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None:
        assert (provider, kind) == ("bcc_email", "address")
        return self.lookups.get(value)

    def get(self, connection_id: str) -> Connection | None:
        return self.connections.get(connection_id)


@dataclass
class Stored:
    data: bytes
    size: int


@dataclass
class RawMail:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    reads: list[tuple[str, str, int]] = field(default_factory=list)

    def read(self, bucket: str, key: str, limit: int) -> Stored | None:
        self.reads.append((bucket, key, limit))
        raw = self.objects.get((bucket, key))
        return None if raw is None else Stored(raw[:limit], len(raw))


@dataclass
class FakeLogger:
    """Logs on every recipient (outbound) or the sender (inbound), once per Message-ID and tenant."""

    entries: list[MailToLog] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    fail: Exception | None = None
    # The real logger publishes each Email Logged as it confirms the log.
    published: list[PlatformEvent] = field(default_factory=list)

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        if self.fail is not None:
            raise self.fail
        self.entries.append(entry)
        mail = entry.mail
        assert mail.sender is not None
        message_id = mail.message_id or "<derived@derived.invalid>"
        outbound = mail.sender.address in entry.owner_addresses
        targets = (
            [p.address for p in mail.recipients if p.address not in entry.owner_addresses]
            if outbound
            else [mail.sender.address]
        )
        logged = []
        for address in targets:
            key = (entry.client_id, message_id, address)
            if key in self.seen:
                continue
            self.seen.add(key)
            logged.append(
                EmailLogged(
                    log_id=f"{len(self.seen)}",
                    agency_id=entry.agency_id,
                    client_id=entry.client_id,
                    connection_id="crm-1",
                    provider="hubspot",
                    record_id="r1",
                    contact_external_id=address,
                    direction="outbound" if outbound else "inbound",
                    via=entry.via,
                    internet_message_id=message_id,
                    subject=mail.subject,
                    sender=EmailParty(address=mail.sender.address),
                )
            )
        self.published += logged
        return logged


class Counts:
    def __init__(self) -> None:
        self.counts: list[tuple[str, int, dict[str, str]]] = []

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counts.append((name, value, dimensions))

    def outcomes(self) -> list[str]:
        return [d["outcome"] for _, _, d in self.counts]


class World:
    def __init__(self, *connections: Connection) -> None:
        self.routes = Routes(*connections)
        self.raw = RawMail()
        self.logger = FakeLogger()
        self.published = self.logger.published
        self.recorded: list[tuple[str, MailLogged]] = []
        self.counter = Counts()
        self.mailboxes: dict[str, list[str]] = {}
        self.team: dict[str, list[str]] = {}
        self.inbound = InboundMail(
            config=InboundConfig(DOMAIN, "mail-bucket", "inbound/", "bcc_email", "address"),
            routes=self.routes,
            raw_mail=self.raw,
            mail_logger=self.logger,
            record=lambda cid, entry: self.recorded.append((cid, entry)),
            mailboxes=lambda c: self.mailboxes.get(c.id, []),
            team=lambda c: self.team.get(c.id, []),
            counter=self.counter,
            clock=lambda: NOW,
        )

    def deliver(self, raw: bytes, *recipients: str, message_id: str = "ses-1", **verdicts: str) -> list[Any]:
        self.raw.objects[("mail-bucket", f"inbound/{message_id}")] = raw
        return self.inbound.receive(ses_event(list(recipients), message_id=message_id, **verdicts))


def ses_event(recipients: list[str], *, message_id: str = "ses-1", **verdicts: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    record = event["Records"][0]["ses"]
    record["mail"]["messageId"] = message_id
    record["mail"]["destination"] = recipients
    record["receipt"]["recipients"] = recipients
    for name, status in verdicts.items():
        record["receipt"][f"{name}Verdict"] = {"status": status}
    return event


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(("verdict", "outcome"), [("spam", Outcome.SPAM), ("virus", Outcome.VIRUS)])
def test_spam_or_virus_is_dropped_and_counted_without_reading_the_message(
    verdict: str, outcome: Outcome
) -> None:
    world = World(connection("log-aaaa"))

    handled = world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}", **{verdict: "FAIL"})

    assert [h.outcome for h in handled] == [outcome]
    assert world.raw.reads == [] and world.logger.entries == [] and world.published == []
    assert world.counter.outcomes() == [outcome.value]


def test_gray_spam_verdict_is_still_logged() -> None:
    world = World(connection("log-aaaa"))

    handled = world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}", spam="GRAY")

    assert [h.outcome for h in handled] == [Outcome.LOGGED]


def test_a_forged_sender_whose_domain_says_reject_is_dropped() -> None:
    world = World(connection("log-aaaa"))
    event = ses_event([f"log-aaaa@{DOMAIN}"], dmarc="FAIL")
    event["Records"][0]["ses"]["receipt"]["dmarcPolicy"] = "REJECT"
    world.raw.objects[("mail-bucket", "inbound/ses-1")] = OUTBOUND

    handled = world.inbound.receive(event)

    assert [h.outcome for h in handled] == [Outcome.SPOOFED]
    assert world.logger.entries == []


# --------------------------------------------------------------------------- recipients


def test_our_addresses_are_matched_case_insensitively_with_plus_tags_dropped() -> None:
    found = addressed(
        [
            f"LOG-AAAA+deals@{DOMAIN.upper()}",
            f"log-aaaa@{DOMAIN}",
            "kim@client.example",
            f"log-bbbb@sub.{DOMAIN}",
        ],
        DOMAIN,
    )

    assert found == ["log-aaaa"]


def test_an_unknown_address_is_dropped_and_counted() -> None:
    world = World(connection("log-aaaa"))

    handled = world.deliver(OUTBOUND, f"log-ffff@{DOMAIN}")

    assert [h.outcome for h in handled] == [Outcome.UNKNOWN_ADDRESS]
    assert world.raw.reads == [] and world.logger.entries == []


def test_a_lookup_left_behind_by_a_disconnect_is_dropped() -> None:
    gone = connection("log-aaaa")
    world = World(gone)
    del world.routes.connections[gone.id]

    handled = world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")

    assert [h.outcome for h in handled] == [Outcome.DISCONNECTED]
    assert world.logger.entries == []


def test_only_the_envelope_address_decides_the_tenant_not_the_headers() -> None:
    mine, theirs = connection("log-aaaa"), connection("log-bbbb", agency="agency-2", client="client-z")
    world = World(mine, theirs)
    # Tenant 2's address is in the To header, but the envelope delivers to tenant 1's only.
    raw = OUTBOUND.replace(
        b"To: Kim <kim@client.example>", f"To: kim@client.example, log-bbbb@{DOMAIN}".encode()
    )

    world.deliver(raw, f"log-aaaa@{DOMAIN}")

    assert [(e.agency_id, e.client_id) for e in world.logger.entries] == [("agency-1", "client-a")]
    assert {e.agency_id for e in world.published if isinstance(e, EmailLogged)} == {"agency-1"}


def test_two_tenants_addresses_in_one_envelope_are_logged_separately() -> None:
    mine, theirs = connection("log-aaaa"), connection("log-bbbb", agency="agency-2", client="client-z")
    world = World(mine, theirs)

    handled = world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}", f"log-bbbb@{DOMAIN}")

    assert {(h.connection_id, h.outcome) for h in handled} == {
        ("conn-log-aaaa", Outcome.LOGGED),
        ("conn-log-bbbb", Outcome.LOGGED),
    }
    assert sorted((e.agency_id, e.client_id) for e in world.logger.entries) == [
        ("agency-1", "client-a"),
        ("agency-2", "client-z"),
    ]


def test_mail_for_none_of_our_addresses_is_not_addressed() -> None:
    world = World(connection("log-aaaa"))

    handled = world.deliver(OUTBOUND, "someone@elsewhere.example")

    assert [h.outcome for h in handled] == [Outcome.NOT_ADDRESSED]


# --------------------------------------------------------------------------- direction


def test_mail_from_the_owner_is_logged_outbound_with_the_bcc_address_never_a_contact() -> None:
    world = World(connection("log-aaaa"))

    world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")

    [entry] = world.logger.entries
    assert entry.via == "bcc" and entry.create_unknown
    assert "sam@agency.example" in entry.owner_addresses
    [event] = world.published
    assert isinstance(event, EmailLogged) and event.direction == "outbound"
    assert event.contact_external_id == "kim@client.example"
    assert world.recorded == [
        (
            "conn-log-aaaa",
            MailLogged(at=NOW, subject="Pricing for next quarter", counterpart="kim@client.example"),
        )
    ]


def test_mail_from_someone_else_to_a_personal_address_is_inbound() -> None:
    world = World(connection("log-aaaa", owner_email="robin@agency.example"))
    raw = OUTBOUND.replace(b"To: Kim <kim@client.example>", b"To: robin@agency.example")
    raw = raw.replace(b"From: Sam Rivera <sam@agency.example>", b"From: Kim <kim@client.example>")

    world.deliver(raw, f"log-aaaa@{DOMAIN}")

    [event] = world.published
    assert isinstance(event, EmailLogged) and event.direction == "inbound"
    assert event.contact_external_id == "kim@client.example"


def test_without_a_known_owner_the_sender_is_the_owner() -> None:
    mail = parse_mail(OUTBOUND)

    owners = owner_addresses(connection("log-aaaa", owner_email=None), mail, DOMAIN)

    assert owners == {"sam@agency.example"}


def test_a_colleague_on_a_shared_client_address_is_the_owners_side() -> None:
    shared = connection("log-aaaa", owner_email="robin@agency.example", level=Level.CLIENT, user_id=None)

    owners = owner_addresses(shared, parse_mail(OUTBOUND), DOMAIN)

    assert owners == {"robin@agency.example", "sam@agency.example"}


def test_a_stranger_on_a_personal_address_is_not_the_owner() -> None:
    personal = connection("log-aaaa", owner_email="robin@agency.example")

    owners = owner_addresses(personal, parse_mail(OUTBOUND), DOMAIN)

    assert owners == {"robin@agency.example"}


def test_the_owners_connected_mailboxes_are_owner_addresses() -> None:
    personal = connection("log-aaaa", owner_email=None)

    owners = owner_addresses(personal, parse_mail(OUTBOUND), DOMAIN, ["robin@gmail.example"])

    assert owners == {"robin@gmail.example"}
    assert counterpart(parse_mail(OUTBOUND), owners) == "sam@agency.example"


TEAMMATE = OUTBOUND.replace(b"Sam Rivera <sam@agency.example>", b"Alex <alex@gmail.example>")


def test_a_teammates_connected_mailbox_is_the_owners_side_of_a_shared_client_address() -> None:
    shared = connection("log-aaaa", owner_email="robin@agency.example", level=Level.CLIENT, user_id=None)

    owners = owner_addresses(shared, parse_mail(TEAMMATE), DOMAIN, team=["alex@gmail.example"])

    assert owners == {"robin@agency.example", "alex@gmail.example"}
    assert counterpart(parse_mail(TEAMMATE), owners) == "kim@client.example"


def test_a_teammates_webmail_domain_makes_nobody_else_a_colleague() -> None:
    shared = connection("log-aaaa", owner_email="robin@agency.example", level=Level.CLIENT, user_id=None)
    stranger = TEAMMATE.replace(b"alex@gmail.example", b"someone@gmail.example")

    owners = owner_addresses(shared, parse_mail(stranger), DOMAIN, team=["alex@gmail.example"])

    assert owners == {"robin@agency.example", "alex@gmail.example"}
    assert counterpart(parse_mail(stranger), owners) == "someone@gmail.example"


def test_a_personal_address_does_not_take_the_teams_mailboxes() -> None:
    personal = connection("log-aaaa", owner_email="robin@agency.example")

    owners = owner_addresses(personal, parse_mail(TEAMMATE), DOMAIN, team=["alex@gmail.example"])

    assert owners == {"robin@agency.example"}


def test_mail_a_teammate_sends_with_the_shared_address_is_logged_outbound() -> None:
    shared = connection("log-aaaa", owner_email="robin@agency.example", level=Level.CLIENT, user_id=None)
    world = World(shared)
    world.team[shared.id] = ["alex@gmail.example"]

    world.deliver(TEAMMATE, f"log-aaaa@{DOMAIN}")

    [entry] = world.logger.entries
    assert "alex@gmail.example" in entry.owner_addresses
    [event] = world.published
    assert isinstance(event, EmailLogged) and event.direction == "outbound"


# --------------------------------------------------------------------------- the message itself


def test_a_repeated_delivery_logs_nothing_new_and_records_nothing() -> None:
    world = World(connection("log-aaaa"))
    world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")

    again = world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")

    assert [h.outcome for h in again] == [Outcome.NOTHING_TO_LOG]
    assert len(world.published) == 1 and len(world.recorded) == 1


def test_auto_replies_and_bounces_are_dropped() -> None:
    world = World(connection("log-aaaa"))

    handled = world.deliver(b"Auto-Submitted: auto-replied\r\n" + OUTBOUND, f"log-aaaa@{DOMAIN}")

    assert [h.outcome for h in handled] == [Outcome.AUTOMATIC]
    assert world.logger.entries == []


def test_a_missing_stored_message_is_unreadable_and_not_retried() -> None:
    world = World(connection("log-aaaa"))

    handled = world.inbound.receive(ses_event([f"log-aaaa@{DOMAIN}"], message_id="never-stored"))

    assert [h.outcome for h in handled] == [Outcome.UNREADABLE]


def test_a_crm_waiting_for_its_owner_is_not_retried_and_what_was_logged_is_shown() -> None:
    from integrations.domain.errors import ReauthRequired
    from integrations.mail.ports import MailNotLogged

    world = World(connection("log-aaaa"))
    logged = list(
        FakeLogger().log(
            MailToLog("agency-1", "client-a", frozenset({"sam@agency.example"}), parse_mail(OUTBOUND), "bcc")
        )
    )
    world.logger.fail = MailNotLogged({"crm-2": ReauthRequired("Reconnect.")}, logged, waits_for_person=True)

    handled = world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")

    assert [(h.outcome, h.logged) for h in handled] == [(Outcome.CRM_NEEDS_OWNER, 1)]
    assert [cid for cid, _ in world.recorded] == ["conn-log-aaaa"]


def test_a_crm_outage_after_a_partial_log_is_retried_and_the_partial_log_shown() -> None:
    from integrations.domain.errors import ProviderUnavailable
    from integrations.mail.ports import MailNotLogged

    world = World(connection("log-aaaa"))
    logged = list(
        FakeLogger().log(
            MailToLog("agency-1", "client-a", frozenset({"sam@agency.example"}), parse_mail(OUTBOUND), "bcc")
        )
    )
    world.logger.fail = MailNotLogged({"crm-2": ProviderUnavailable("Down.")}, logged)

    with pytest.raises(MailNotLogged):
        world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")
    assert [cid for cid, _ in world.recorded] == ["conn-log-aaaa"]


def test_a_huge_message_is_read_only_up_to_the_limit_and_marked_truncated() -> None:
    world = World(connection("log-aaaa"))
    huge = OUTBOUND + b"x" * (READ_LIMIT * 3)

    world.deliver(huge, f"log-aaaa@{DOMAIN}")

    assert world.raw.reads == [("mail-bucket", "inbound/ses-1", READ_LIMIT)]
    [entry] = world.logger.entries
    assert entry.mail.truncated


def test_a_crm_fault_raises_so_the_invocation_is_retried() -> None:
    from integrations.domain.errors import ProviderUnavailable

    world = World(connection("log-aaaa"))
    world.logger.fail = ProviderUnavailable("The CRM is down.")

    with pytest.raises(ProviderUnavailable):
        world.deliver(OUTBOUND, f"log-aaaa@{DOMAIN}")
    assert world.recorded == []


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": [{"ses": {}}]}, {"Records": "x"}, []])
def test_events_that_are_no_ses_notice_are_unreadable(event: Any) -> None:
    world = World(connection("log-aaaa"))

    handled = world.inbound.receive(event)

    assert {h.outcome for h in handled} == {Outcome.UNREADABLE}


def test_huge_headers_are_cut_before_parsing_and_the_body_kept() -> None:
    from integrations.mail.message import HEADER_BLOCK_LIMIT, HEADER_FIELD_LIMIT, bounded_headers

    raw = b"To: " + b"<x@y> " * 50_000 + b"\r\n" + b"X-Many: 1\r\n" * 20_000 + OUTBOUND

    bounded = bounded_headers(raw)

    head, _, body = bounded.partition(b"\r\n\r\n")
    assert len(head) <= HEADER_BLOCK_LIMIT
    assert all(len(line) <= HEADER_FIELD_LIMIT for line in head.split(b"\r\n"))
    assert body == b"Here are the numbers.\r\n"
    assert bounded_headers(OUTBOUND) == OUTBOUND
