"""Which mailbox messages reach the platform, and as what (design §9: Email Received / Sent).

The privacy rule: a message is published only when it was exchanged with the client's contacts, i.e.
when `MailContacts.known` finds a contact among its From / To / Cc addresses other than the mailbox
owner's own. Any other mail is private: it is read, found to concern nobody the platform knows, and
dropped; nothing of it is stored or logged. A connection with no client (agency staff) has no
contacts, so it publishes nothing.

A published message is `Email Sent` when it left from the mailbox, else `Email Received`; once per
provider message id (`publish_once`), so a repeated page, a window listing after an expired cursor and
a send this service made itself publish it once. Each one is then handed to the `MailLogger`
(`via="mailbox"`), which logs it on the CRM contacts once per Message-ID.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from integrations.events import EmailParty, EmailReceived, EmailSent
from integrations.mail.ports import MailContacts, MailLogger, MailToLog, log_mail

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.events import EmailMessageEvent, PlatformEvent
    from integrations.mail.message import ParsedMail
    from integrations.sync.mail import MailboxAdapter, MailboxMessage

# Message-IDs this service gives the mail it sends: `<integrations.<32 hex>@<domain>>`. A sent message
# carrying one is announced by the send (with its request id), never by the mailbox pull.
# The sender of a mail whose From header does not parse (the event model needs one).
UNKNOWN_SENDER = "unknown@invalid"
_OURS = re.compile(r"<integrations\.[0-9a-f]{32}@[^<>\s]+>")


def is_our_send(internet_message_id: str | None) -> bool:
    """Whether a Message-ID is one this service generated for an `Email Send Requested`."""
    return bool(internet_message_id and _OURS.fullmatch(internet_message_id))


def once_key(connection_id: str, message_id: str) -> str:
    """The once-only key of one message of one mailbox (shared by the pull and the send)."""
    return f"mail:{connection_id}:{message_id}"


def email_id(connection_id: str, message_id: str) -> str:
    """The same message of the same mailbox always gets the same id (consumers deduplicate on it)."""
    return hashlib.sha256(f"{connection_id}\0{message_id}".encode()).hexdigest()[:32]


def counterparts(mail: ParsedMail, owner: frozenset[str]) -> list[str]:
    """The addresses a mail was exchanged with: From, To and Cc, minus the owner's own."""
    parties = [*([mail.sender] if mail.sender else []), *mail.to, *mail.cc]
    found: list[str] = []
    for party in parties:
        if party.address not in owner and party.address not in found:
            found.append(party.address)
    return found


def message_event(
    connection: Connection,
    mail: ParsedMail,
    *,
    message_id: str,
    thread_id: str | None,
    sent: bool,
    sent_at: datetime,
    contact_ids: Sequence[str],
    fallback_sender: str,
    request_id: str | None = None,
) -> EmailMessageEvent:
    """The bus event for one published message."""
    fields = {
        "email_id": email_id(connection.id, message_id),
        "connection_id": connection.id,
        "provider": connection.provider,
        "agency_id": connection.agency_id,
        "client_id": connection.client_id,
        "user_id": connection.user_id,
        "message_id": message_id,
        "thread_id": thread_id,
        "internet_message_id": mail.message_id,
        "sender": mail.sender or EmailParty(address=fallback_sender),
        "to": mail.to,
        "cc": mail.cc,
        "subject": mail.subject,
        "text": mail.text,
        "html": mail.html,
        "truncated": mail.truncated,
        "attachments": mail.attachments,
        "contact_ids": sorted(set(contact_ids)),
        "sent_at": mail.sent_at or sent_at,
    }
    if sent:
        return EmailSent(**fields, request_id=request_id)
    return EmailReceived(**fields)


class MailPublisher:
    """Applies the privacy rule to read messages, publishes the ones that qualify and logs them."""

    def __init__(
        self,
        *,
        connection: Connection,
        contacts: MailContacts,
        logger: MailLogger,
        publish_once: Callable[[str, Sequence[PlatformEvent]], bool],
    ) -> None:
        self._connection = connection
        self._contacts = contacts
        self._logger = logger
        self._publish_once = publish_once

    def deliver(self, adapter: MailboxAdapter, messages: Sequence[MailboxMessage]) -> int:
        """Publish and log the messages exchanged with contacts; returns how many were published now."""
        connection = self._connection
        if connection.client_id is None:
            return 0
        addresses_of_owner = adapter.owner_addresses()
        owner = frozenset(addresses_of_owner)
        primary = addresses_of_owner[0] if addresses_of_owner else UNKNOWN_SENDER
        published = 0
        for message in messages:
            if message.sent and is_our_send(message.mail.message_id):
                continue  # the send announces it, with its request id
            addresses = counterparts(message.mail, owner)
            known = (
                self._contacts.known(connection.agency_id, connection.client_id, addresses)
                if addresses
                else {}
            )
            if not known:
                continue  # private: nobody the platform knows
            event = message_event(
                connection,
                message.mail,
                message_id=message.ref.message_id,
                thread_id=message.ref.thread_id,
                sent=message.sent,
                sent_at=message.received_at,
                contact_ids=list(known.values()),
                fallback_sender=primary if message.sent else UNKNOWN_SENDER,
            )
            published += self._publish_once(once_key(connection.id, message.ref.message_id), [event])
            # Logged whether published now or before: the logger is once per Message-ID itself, and a
            # run cut between the two must still log.
            log_mail(
                self._logger,
                MailToLog(
                    agency_id=connection.agency_id,
                    client_id=connection.client_id,
                    owner_addresses=owner,
                    mail=message.mail,
                    via="mailbox",
                ),
            )
        return published
