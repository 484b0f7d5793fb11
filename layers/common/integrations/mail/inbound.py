"""Mail sent to a BCC logging address: SES received it, stored it in S3 and invoked us with its notice.

What happens to one message, in order:

1. SES's verdicts: spam or virus FAIL, or a DMARC failure where the sender's domain says `reject`
   (a forged From could otherwise log mail "from" the owner) → dropped and counted; nothing is read.
2. The envelope recipients (never the headers: they are the sender's to write) on the inbound
   domain, case-insensitive, `+tag` ignored, each name one address. Each address is routed on its
   own through its lookup item to its connection and so its tenant: an address in a To/Cc header
   never decides anything, and a message to two tenants' addresses is logged for each, separately.
   No such lookup → `unknown_address`; a lookup whose connection is gone → `disconnected`.
3. The stored message, read up to `READ_LIMIT` bytes (headers and text bodies come first;
   attachments are metadata and those past the limit are not listed), parsed with `parse_mail`,
   which never raises. Auto-replies and bounces are dropped (`automatic`).
4. The owner's addresses (the direction rule, below), then `MailLogger.log`, which publishes each
   `Email Logged` as it confirms the log, and "last mail logged" stored on the connection for its card.

Direction rule: only the sender of a mail can put an address in BCC, so the sender normally is the
owner. The owner's known addresses are the verified email of the person who reserved the address
(stored on the connection at reserve time) and the mailboxes the same owner connected (catalog
category `email`); for a client-level address (shared by the client's team) also the mailboxes the
client's people connected, so a mail a teammate sends from a synced mailbox is outbound both ways it
arrives. The sender counts as the owner's too when nothing is known about the owner, and for a
client-level address when the sender's domain is the domain of the owner's own known address (a
colleague; never a teammate mailbox's domain, which may be a public webmail's). A mail from the
owner is outbound (logged on its To/Cc contacts); any other mail is inbound (logged on its sender).
Addresses on the inbound domain are always the owner's: they are never contacts.

Faults: a bad message is dropped and counted, never retried. A store, CRM or bus fault raises, so
Lambda's asynchronous invocation retries (twice, then the on-failure destination); the logger
logs once per Message-ID and contact, so a retry never logs twice. A CRM that needs its owner
(reconnect, settings) is not retried: no retry within the hours Lambda keeps a notice would help,
and that CRM connection shows the error on its own card (`crm_needs_owner`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from integrations.domain.access import Level
from integrations.domain.connection import Connection, MailLogged
from integrations.domain.lookup import Lookup
from integrations.events import EmailLogged
from integrations.mail.message import BODY_LIMIT, ParsedMail, parse_mail
from integrations.mail.ports import MailLogger, MailNotLogged, MailToLog
from integrations.metrics import INBOUND_MAIL, Counter
from integrations.observability import get_logger

logger = get_logger()

# Bytes of a stored message ever read: headers and text bodies fit many times over.
READ_LIMIT = 1_000_000
# More of our addresses than this in one envelope is not a person logging mail.
MAX_ADDRESSES = 10
_LOCAL_PART = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class Outcome(StrEnum):
    """What became of one message for one of our addresses (the metric's `outcome`)."""

    LOGGED = "logged"
    # Logged before (a repeated delivery), or no counterpart to log it on.
    NOTHING_TO_LOG = "nothing_to_log"
    SPAM = "spam"
    VIRUS = "virus"
    SPOOFED = "spoofed"
    NOT_ADDRESSED = "not_addressed"
    UNKNOWN_ADDRESS = "unknown_address"
    DISCONNECTED = "disconnected"
    AUTOMATIC = "automatic"
    UNREADABLE = "unreadable"
    # A CRM of the client needs its owner first (reconnect, a setting); the others were logged.
    CRM_NEEDS_OWNER = "crm_needs_owner"


class BadNotice(ValueError):
    """The invocation is not an SES receipt notice this function can act on."""


@dataclass(frozen=True, slots=True)
class SesNotice:
    """One SES receipt notice (`Records[].ses`), as much of it as the decision needs."""

    message_id: str
    recipients: tuple[str, ...]
    spam: str
    virus: str
    dmarc: str
    dmarc_policy: str
    timestamp: str = ""
    # Set when the notice names the stored object (an S3 action's notice); a Lambda action's
    # notice does not, and the object is `<prefix><message_id>` in the configured bucket.
    bucket: str | None = None
    object_key: str | None = None

    @classmethod
    def parse(cls, record: Any) -> SesNotice:
        """Read one record; BadNotice when it is not an SES notice."""
        ses = record.get("ses") if isinstance(record, Mapping) else None
        mail = ses.get("mail") if isinstance(ses, Mapping) else None
        receipt = ses.get("receipt") if isinstance(ses, Mapping) else None
        if not isinstance(mail, Mapping) or not isinstance(receipt, Mapping):
            raise BadNotice("not an SES receipt notice")
        message_id = mail.get("messageId")
        if not isinstance(message_id, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", message_id):
            raise BadNotice("the notice has no usable messageId")
        recipients = receipt.get("recipients")
        if not isinstance(recipients, list):
            raise BadNotice("the notice has no recipients")
        found = receipt.get("action")
        action: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        return cls(
            message_id=message_id,
            recipients=tuple(r for r in recipients if isinstance(r, str))[:100],
            spam=_verdict(receipt, "spamVerdict"),
            virus=_verdict(receipt, "virusVerdict"),
            dmarc=_verdict(receipt, "dmarcVerdict"),
            dmarc_policy=str(receipt.get("dmarcPolicy") or "").lower(),
            timestamp=str(mail.get("timestamp") or ""),
            bucket=_text(action.get("bucketName")),
            object_key=_text(action.get("objectKey")),
        )

    def refused(self) -> Outcome | None:
        """The verdict that drops the message before anything is read, if any."""
        if self.virus == "FAIL":
            return Outcome.VIRUS
        if self.spam == "FAIL":
            return Outcome.SPAM
        if self.dmarc == "FAIL" and self.dmarc_policy == "reject":
            return Outcome.SPOOFED
        return None


def _verdict(receipt: Mapping[str, Any], name: str) -> str:
    value = receipt.get(name)
    status = value.get("status") if isinstance(value, Mapping) else None
    return status.upper() if isinstance(status, str) else ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def addressed(recipients: Iterable[str], domain: str) -> list[str]:
    """The local parts of our addresses among envelope recipients: lower-cased, `+tag` dropped, once each."""
    domain = domain.lower().rstrip(".")
    found: list[str] = []
    for recipient in recipients:
        local, at, host = recipient.strip().strip("<>").lower().rpartition("@")
        if not at or host.rstrip(".") != domain:
            continue
        local = local.split("+", 1)[0]
        if _LOCAL_PART.fullmatch(local) and local not in found:
            found.append(local)
    return found[:MAX_ADDRESSES]


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def owner_addresses(
    connection: Connection,
    mail: ParsedMail,
    inbound_domain: str,
    mailboxes: Iterable[str] = (),
    team: Iterable[str] = (),
) -> frozenset[str]:
    """The addresses that are the owner's for this mail (the direction rule in the module docstring).

    `team`: the mailboxes the client's people connected, the owner's side of a client-level address
    only, address by address: their domains make no colleagues (a teammate's webmail domain is everyone's)."""
    domain = inbound_domain.lower()
    known = {a.lower() for a in (connection.owner_email, *mailboxes) if a and _domain_of(a.lower()) != domain}
    ours = {
        p.address
        for p in (*([mail.sender] if mail.sender else []), *mail.to, *mail.cc, *mail.reply_to)
        if _domain_of(p.address) == domain
    }
    sender = mail.sender.address if mail.sender else None
    if sender is not None and sender not in ours:
        colleague = connection.level is Level.CLIENT and _domain_of(sender) in {_domain_of(a) for a in known}
        if not known or colleague:
            known.add(sender)
    if connection.level is Level.CLIENT:
        known |= {a.lower() for a in team if a and _domain_of(a.lower()) != domain}
    return frozenset(known | ours)


def counterpart(mail: ParsedMail, owners: frozenset[str]) -> str:
    """Who the mail was exchanged with, for the card: first other recipient if outbound, else the sender."""
    if mail.sender is None:
        return ""
    if mail.sender.address not in owners:
        return mail.sender.address
    return next((p.address for p in mail.recipients if p.address not in owners), "")


class StoredMail(Protocol):
    """The start of one stored message (`data`) and the whole message's size."""

    @property
    def data(self) -> bytes: ...

    @property
    def size(self) -> int: ...


class RawMailSource(Protocol):
    """The stored raw messages (store.raw_mail.S3RawMail)."""

    def read(self, bucket: str, key: str, limit: int) -> StoredMail | None: ...


class AddressRoutes(Protocol):
    """Lookup items and connections (store.connections.ConnectionRepository)."""

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None: ...

    def get(self, connection_id: str) -> Connection | None: ...


@dataclass(frozen=True, slots=True)
class InboundConfig:
    """Where addresses live and how they are routed (from settings and the catalog)."""

    domain: str
    bucket: str
    prefix: str
    # The inbound-address provider and the lookup kind its on_connect writes for a local part.
    provider: str
    lookup_kind: str


@dataclass(frozen=True, slots=True)
class Handled:
    """One message for one of our addresses (or for none: connection_id is then None)."""

    outcome: Outcome
    connection_id: str | None = None
    logged: int = 0


class InboundMail:
    """Decides what one received message means, and logs it through the MailLogger."""

    def __init__(
        self,
        *,
        config: InboundConfig,
        routes: AddressRoutes,
        raw_mail: RawMailSource,
        mail_logger: MailLogger,
        record: Callable[[str, MailLogged], None],
        mailboxes: Callable[[Connection], Iterable[str]],
        counter: Counter,
        team: Callable[[Connection], Iterable[str]] = lambda _: (),
        clock: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._routes = routes
        self._raw = raw_mail
        self._logger = mail_logger
        self._record = record
        self._mailboxes = mailboxes
        self._team = team
        self._counter = counter
        self._clock = clock

    def receive(self, event: Any) -> list[Handled]:
        """Every record of one SES invocation (SES sends one); raises only for faults worth a retry."""
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list) or not records:
            return self._counted([Handled(Outcome.UNREADABLE)])
        handled: list[Handled] = []
        for record in records[:10]:
            try:
                notice = SesNotice.parse(record)
            except BadNotice:
                handled += self._counted([Handled(Outcome.UNREADABLE)])
                continue
            handled += self._counted(self._handle(notice))
        return handled

    def _counted(self, handled: list[Handled]) -> list[Handled]:
        for item in handled:
            self._counter.count(INBOUND_MAIL, outcome=item.outcome.value)
            # Ids only: never an address, a subject or a body.
            logger.info(
                "inbound mail",
                extra={
                    "outcome": item.outcome.value,
                    "connection_id": item.connection_id,
                    "logged": item.logged,
                },
            )
        return handled

    def _handle(self, notice: SesNotice) -> list[Handled]:
        refused = notice.refused()
        if refused is not None:
            return [Handled(refused)]
        local_parts = addressed(notice.recipients, self._config.domain)
        if not local_parts:
            return [Handled(Outcome.NOT_ADDRESSED)]
        handled: list[Handled] = []
        routed: list[Connection] = []
        for local_part in local_parts:
            connection, miss = self._route(local_part)
            if connection is None:
                handled.append(Handled(miss))
            elif all(c.id != connection.id for c in routed):
                routed.append(connection)
        if not routed:
            return handled
        mail = self._read(notice)
        if mail is None:
            return handled + [Handled(Outcome.UNREADABLE, c.id) for c in routed]
        if mail.automatic or mail.bounce:
            return handled + [Handled(Outcome.AUTOMATIC, c.id) for c in routed]
        return handled + [self._log(connection, mail) for connection in routed]

    def _route(self, local_part: str) -> tuple[Connection | None, Outcome]:
        found = self._routes.get_lookup(self._config.provider, self._config.lookup_kind, local_part)
        if found is None:
            return None, Outcome.UNKNOWN_ADDRESS
        connection = self._routes.get(found.connection_id)
        # The lookup outlived its connection (a disconnect in progress), or points elsewhere.
        if (
            connection is None
            or connection.provider != self._config.provider
            or connection.account.id != local_part
            or (connection.agency_id, connection.client_id) != (found.agency_id, found.client_id)
        ):
            return None, Outcome.DISCONNECTED
        return connection, Outcome.LOGGED

    def _read(self, notice: SesNotice) -> ParsedMail | None:
        bucket = notice.bucket or self._config.bucket
        key = notice.object_key or f"{self._config.prefix}{notice.message_id}"
        stored = self._raw.read(bucket, key, READ_LIMIT)
        if stored is None:
            return None
        # The parser's own body limit: a mail without Message-ID is known by a digest of its body,
        # which must come out the same for its BCC copy and its synced mailbox copy.
        mail = parse_mail(stored.data, body_limit=BODY_LIMIT)
        if mail.sender is None:
            return None
        if stored.size > len(stored.data):
            mail = dataclasses.replace(mail, truncated=True)
        return mail

    def _log(self, connection: Connection, mail: ParsedMail) -> Handled:
        if connection.client_id is None:
            # An agency person's own address: the client CRMs mail is logged in belong to no client.
            return Handled(Outcome.NOTHING_TO_LOG, connection.id)
        team = self._team(connection) if connection.level is Level.CLIENT else ()
        owners = owner_addresses(connection, mail, self._config.domain, self._mailboxes(connection), team)
        entry = MailToLog(
            agency_id=connection.agency_id,
            client_id=connection.client_id,
            owner_addresses=owners,
            mail=mail,
            via="bcc",
            create_unknown=True,
        )
        outcome = Outcome.LOGGED
        try:
            logged: Sequence[EmailLogged] = self._logger.log(entry)
        except MailNotLogged as exc:
            if not exc.waits_for_person:
                self._remember(connection, mail, owners, exc.logged)
                raise
            logged, outcome = exc.logged, Outcome.CRM_NEEDS_OWNER
        self._remember(connection, mail, owners, logged)
        if not logged and outcome is Outcome.LOGGED:
            return Handled(Outcome.NOTHING_TO_LOG, connection.id)
        return Handled(outcome, connection.id, len(logged))

    def _remember(
        self, connection: Connection, mail: ParsedMail, owners: frozenset[str], logged: Sequence[EmailLogged]
    ) -> None:
        """ "Last mail logged" on the card, once something of this mail was logged."""
        if logged:
            entry = MailLogged(
                at=self._clock(), subject=mail.subject[:998], counterpart=counterpart(mail, owners)
            )
            self._record(connection.id, entry)


__all__ = [
    "READ_LIMIT",
    "AddressRoutes",
    "BadNotice",
    "Handled",
    "InboundConfig",
    "InboundMail",
    "Outcome",
    "RawMailSource",
    "SesNotice",
    "addressed",
    "counterpart",
    "owner_addresses",
]
