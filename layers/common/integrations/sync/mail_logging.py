"""Log a mail on its contacts in each of the client's CRMs, once (design §8, CRM adapters; §9 Email
Logged). `CrmMailLogger` implements `mail.ports.MailLogger` for the BCC logging address and for
synced mailboxes alike, so a message that arrives both ways is logged once.

Which mails: automatic replies and bounces (`ParsedMail.automatic` / `.bounce`) and mails without a
sender are skipped. A mail from one of the owner's addresses is outbound and logged on each To / Cc
address that is not the owner's; any other mail is inbound and logged on its sender.

Which contacts: each counterpart's id in the CRM comes from the client's address directory. An
address the CRM does not hold is skipped, unless the caller asks to create unknown contacts (BCC
logging) or the address is a platform contact: then the CRM's upsert by email makes it, once, however
many mails from the new address arrive together (a lease per client and address; the others wait
briefly and read the directory again). What the CRM made is mirrored, so it does not come back from
the next pull as a change of the person's.

Once: a mail is identified by its Message-ID; a mail without one by a digest of its sender,
recipients, date, subject and body (`derived_message_id`), the same for its BCC copy and its mailbox
copy. Each (connection, Message-ID, contact) is claimed in the ledger before the CRM write and
confirmed with the CRM's record id after it. A concurrent logger of the same mail waits for that
confirmation; a logger that died after its CRM write and before its confirmation leaves a claim that
the next logger takes over once its lease ran out, asking the CRM first whether the record exists
(`CrmAdapter.logged_email`), so neither a redelivery nor a crash logs twice.

Events: each log publishes one `Email Logged` whose `log_id` is the same for every delivery of that
log; it is published again only by a logger that finds the log confirmed long ago but unannounced
(its writer died in between).

Failures: a CRM that refuses or fails keeps its error's meaning (`RateLimited` with the provider's
wait, `ReauthRequired`, `ConfigRequired`, `ProviderUnavailable`); the other CRMs are still logged, and
then `MailNotLogged` names each connection's error. Nothing is lost: logging the same mail again later
logs what is missing and nothing twice. A store outage raises `DependencyUnavailable` as is.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.events import ContactFields, EmailLogged, EmailParty
from integrations.http import ProviderApiError, RateLimited
from integrations.mail.ledger import AddressBook, AddressEntryLike, LogState, MailLedger
from integrations.mail.message import ParsedMail
from integrations.mail.ports import MailNotLogged, MailToLog
from integrations.sync.crm import CrmAdapter, LoggedMail, MirroredContact, cut
from integrations.sync.errors import ConfigRequired

if TYPE_CHECKING:
    from integrations.domain.connection import Connection

# Longer than a CRM write can take (10 s read timeout, a few tries): a live writer is never overtaken.
WRITE_LEASE = timedelta(seconds=60)
CREATE_LEASE_SECONDS = 30.0
# How long a logger waits for another one logging the same mail or creating the same contact.
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.1
# A log confirmed this long ago and still unannounced lost its writer: announce it again.
ANNOUNCE_AFTER = timedelta(seconds=60)
# The CRM refused the write: it did not happen, the claim can go at once.
_REFUSED = (RateLimited, ReauthRequired, ConfigRequired, ProviderApiError)
_CRM_FAULTS = (ProviderUnavailable, ReauthRequired, ConfigRequired, ProviderApiError)


class MirrorWriter(Protocol):
    """store.crm.DynamoCrmStore: what the CRM holds of a contact we made (and its address)."""

    def put_mirrored(
        self,
        connection_id: str,
        entries: Sequence[MirroredContact],
        *,
        agency_id: str,
        client_id: str | None,
    ) -> None: ...


class LoggerBusy(ProviderUnavailable):
    """Another logger is writing the same mail or creating the same contact and did not finish
    within the wait: log the mail again shortly (nothing is lost, nothing is logged twice)."""

    code = "mail_log_busy"


def not_logged(causes: Mapping[str, Exception], logged: Sequence[EmailLogged]) -> MailNotLogged:
    """What the CRMs' errors mean for the caller: when to retry, or that only their owner can help."""
    waits = [e.retry_after for e in causes.values() if isinstance(e, RateLimited) and e.retry_after]
    return MailNotLogged(
        causes,
        logged,
        retry_after=max(waits) if waits else None,
        waits_for_person=all(isinstance(e, ReauthRequired | ConfigRequired) for e in causes.values()),
    )


@dataclass(frozen=True, slots=True)
class Counterpart:
    """One address the mail is logged on, with the display name its header gave."""

    address: str
    name: str = ""


def counterparts(
    mail: ParsedMail, owner_addresses: frozenset[str]
) -> tuple[Literal["inbound", "outbound"], list[Counterpart]]:
    """The mail's direction and the addresses it is logged on."""
    owners = {a.strip().lower() for a in owner_addresses}
    if mail.sender is None:
        return "inbound", []
    if mail.sender.address in owners:
        seen: dict[str, Counterpart] = {}
        for party in mail.recipients:
            if party.address not in owners and party.address not in seen:
                seen[party.address] = Counterpart(party.address, party.name)
        return "outbound", list(seen.values())
    return "inbound", [Counterpart(mail.sender.address, mail.sender.name)]


def derived_message_id(mail: ParsedMail) -> str:
    """A stable stand-in for a missing Message-ID: a digest of what both copies of one mail (its BCC
    copy and its mailbox copy) carry alike: sender, recipients, date, subject and body, with
    whitespace collapsed (transports rewrap lines). Ends in `.invalid`, so it never names a real mail."""
    body = " ".join((mail.text or mail.html).split())
    parts = [
        mail.sender.address if mail.sender else "",
        ",".join(sorted(p.address for p in mail.to)),
        ",".join(sorted(p.address for p in mail.cc)),
        mail.sent_at.isoformat() if mail.sent_at else "",
        " ".join(mail.subject.split()),
        body,
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"<{digest}@derived.invalid>"


def log_id(connection_id: str, message_id: str, external_id: str) -> str:
    """The same for every delivery of one log (connection, Message-ID, contact)."""
    raw = f"{connection_id}\x1f{message_id}\x1f{external_id}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:32]


def split_name(name: str) -> tuple[str, str]:
    """First and last name from a display name ("Sam Rivera", "Rivera, Sam")."""
    cleaned = " ".join(name.replace('"', "").split())
    if "," in cleaned:
        last, _, first = cleaned.partition(",")
        return first.strip(), last.strip()
    first, _, last = cleaned.partition(" ")
    return first, last


def logged_mail(
    mail: ParsedMail, direction: Literal["inbound", "outbound"], message_id: str, now: datetime
) -> LoggedMail:
    """What the CRMs keep of the mail: bodies cut, attachments by name."""
    assert mail.sender is not None
    text, text_cut = cut(mail.text)
    html, html_cut = cut(mail.html)
    return LoggedMail(
        direction=direction,
        internet_message_id=message_id,
        subject=mail.subject[:998],
        text=text,
        html=html,
        truncated=mail.truncated or text_cut or html_cut,
        sender=mail.sender,
        to=mail.to,
        cc=mail.cc,
        sent_at=mail.sent_at or now,
        attachments=[a.filename for a in mail.attachments if a.filename],
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """One contact in one CRM, ready to log on."""

    external_id: str
    contact_id: str | None
    created: bool


class CrmMailLogger:
    """`mail.ports.MailLogger` over the client's CRM connections."""

    def __init__(
        self,
        *,
        contacts: AddressBook,
        ledger: MailLedger,
        mirror: MirrorWriter,
        crm_connections: Callable[[str, str], Sequence[Connection]],
        adapter: Callable[[Connection], CrmAdapter | None],
        publish: Callable[[Sequence[EmailLogged]], None],
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self._contacts = contacts
        self._ledger = ledger
        self._mirror = mirror
        self._crms = crm_connections
        self._adapter = adapter
        self._publish = publish
        self._clock = clock
        self._sleep = sleep
        self._wait = wait_seconds

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        """Log the mail in each of the client's CRMs; what was logged now (already published)."""
        mail = entry.mail
        if mail.automatic or mail.bounce or mail.sender is None:
            return []
        direction, parties = counterparts(mail, entry.owner_addresses)
        if not parties:
            return []
        connections = self._crms(entry.agency_id, entry.client_id)
        if not connections:
            return []
        message_id = mail.message_id or derived_message_id(mail)
        record = logged_mail(mail, direction, message_id, self._clock())
        book = self._contacts.entries(entry.agency_id, entry.client_id, [p.address for p in parties])
        logged: list[EmailLogged] = []
        causes: dict[str, Exception] = {}
        for connection in connections:
            adapter = self._adapter(connection)
            if adapter is None:
                continue
            try:
                logged += self._log_in(connection, adapter, entry, record, parties, book)
            except _CRM_FAULTS as error:
                # This CRM stops here; the others are still logged. A retry resumes where it stopped.
                causes[connection.id] = error
        if causes:
            raise not_logged(causes, logged)
        return logged

    def _log_in(
        self,
        connection: Connection,
        adapter: CrmAdapter,
        entry: MailToLog,
        record: LoggedMail,
        parties: Sequence[Counterpart],
        book: Mapping[str, AddressEntryLike],
    ) -> list[EmailLogged]:
        logged: list[EmailLogged] = []
        for party in parties:
            target = self._target(connection, adapter, entry, party, book.get(party.address))
            if target is None:
                continue
            event = self._log_once(connection, adapter, entry, record, target)
            if event is not None:
                logged.append(event)
        return logged

    # --- the contact in one CRM ---

    def _target(
        self,
        connection: Connection,
        adapter: CrmAdapter,
        entry: MailToLog,
        party: Counterpart,
        known: AddressEntryLike | None,
    ) -> _Target | None:
        contact_id = known.contact_id if known is not None else None
        if known is not None and connection.id in known.external_ids:
            return _Target(known.external_ids[connection.id], contact_id, created=False)
        # A synced mailbox logs only on contacts; a platform contact this CRM lacks is made there too.
        if not entry.create_unknown and contact_id is None:
            return None
        return self._create(connection, adapter, entry, party, contact_id)

    def _create(
        self,
        connection: Connection,
        adapter: CrmAdapter,
        entry: MailToLog,
        party: Counterpart,
        contact_id: str | None,
    ) -> _Target:
        """Make the address's contact in this CRM, one logger at a time per client and address."""
        agency_id, client_id, address = entry.agency_id, entry.client_id, party.address
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + self._wait
        while True:
            if self._contacts.claim_creation(
                agency_id, client_id, address, holder, self._clock(), CREATE_LEASE_SECONDS
            ):
                try:
                    # Whoever held the lease before may have made it: read again under the lease.
                    made = self._made(connection, entry, address)
                    if made is not None:
                        return made
                    first, last = split_name(party.name)
                    fields = ContactFields(first_name=first[:256], last_name=last[:256], email=address)
                    written = adapter.upsert_contact(fields, None)
                    self._mirror.put_mirrored(
                        connection.id,
                        [
                            MirroredContact(
                                written.external_id, written.change_hash, written.fields, contact_id
                            )
                        ],
                        agency_id=agency_id,
                        client_id=client_id,
                    )
                    return _Target(written.external_id, contact_id, created=True)
                finally:
                    self._contacts.release_creation(agency_id, client_id, address, holder)
            made = self._made(connection, entry, address)
            if made is not None:
                return made
            if time.monotonic() >= deadline:
                raise LoggerBusy("Another logger is still creating this contact; log the mail again shortly.")
            self._sleep(POLL_SECONDS)

    def _made(self, connection: Connection, entry: MailToLog, address: str) -> _Target | None:
        found = self._contacts.entries(entry.agency_id, entry.client_id, [address]).get(address)
        if found is None or connection.id not in found.external_ids:
            return None
        return _Target(found.external_ids[connection.id], found.contact_id, created=False)

    # --- once per (connection, Message-ID, contact) ---

    def _log_once(
        self,
        connection: Connection,
        adapter: CrmAdapter,
        entry: MailToLog,
        mail: LoggedMail,
        target: _Target,
    ) -> EmailLogged | None:
        message_id, external_id = mail.internet_message_id, target.external_id
        deadline = time.monotonic() + self._wait
        waited = False
        while True:
            now = self._clock()
            claim = self._ledger.claim(connection.id, message_id, external_id, now, WRITE_LEASE)
            if claim.state is LogState.DONE:
                stale = claim.done_at is None or now - claim.done_at >= ANNOUNCE_AFTER
                if claim.announced or waited or not stale:
                    return None
                # Confirmed long ago, never announced: its writer died in between.
                return self._announce(connection, entry, mail, target, claim.record_id)
            if claim.state is not LogState.BUSY:
                break
            if time.monotonic() >= deadline:
                raise LoggerBusy("Another logger is still logging this mail; log it again shortly.")
            waited = True
            self._sleep(POLL_SECONDS)
        record_id = adapter.logged_email(external_id, mail) if claim.state is LogState.TAKEN_OVER else None
        if record_id is None:
            try:
                record_id = adapter.log_email(external_id, mail)
            except _REFUSED:
                self._ledger.release(connection.id, message_id, external_id)
                raise
            # Any other failure (a timeout) may have written: the claim stays pending, and whoever
            # takes it over after its lease asks the CRM before writing.
        self._ledger.confirm(connection.id, message_id, external_id, record_id, self._clock())
        return self._announce(connection, entry, mail, target, record_id)

    def _announce(
        self, connection: Connection, entry: MailToLog, mail: LoggedMail, target: _Target, record_id: str
    ) -> EmailLogged:
        event = EmailLogged(
            log_id=log_id(connection.id, mail.internet_message_id, target.external_id),
            agency_id=entry.agency_id,
            client_id=entry.client_id,
            connection_id=connection.id,
            provider=connection.provider,
            record_id=record_id,
            contact_external_id=target.external_id,
            contact_id=target.contact_id,
            contact_created=target.created,
            direction=mail.direction,
            via=entry.via,
            internet_message_id=mail.internet_message_id,
            subject=mail.subject,
            sender=EmailParty(address=mail.sender.address, name=mail.sender.name),
            logged_at=self._clock(),
        )
        self._publish([event])
        self._ledger.announced(connection.id, mail.internet_message_id, target.external_id)
        return event
