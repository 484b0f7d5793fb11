"""The ports mail flows share: the BCC logging function and the synced mailboxes (Gmail, Outlook)
both ask who among a mail's addresses is a contact, and both log a mail on CRM contacts through one
logger, so a message that arrives both ways (BCC and mailbox sync) is logged once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from integrations.events import EmailLogged
from integrations.mail.message import ParsedMail


class MailContacts(Protocol):
    """The client's contacts by email address: the platform's contacts and those its CRMs hold."""

    def known(self, agency_id: str, client_id: str, addresses: Sequence[str]) -> dict[str, str]:
        """The given (lower-cased) addresses that are contacts of the client, each with its key
        (the platform's contact id, or a CRM-only key); addresses that are no contact are left out."""
        ...


@dataclass(frozen=True, slots=True)
class MailToLog:
    """One mail to log on the client's CRM contacts.

    `owner_addresses` are the mailbox owner's own addresses: a mail from them is outbound and logged on
    each To / Cc contact; any other mail is inbound and logged on the sender."""

    agency_id: str
    client_id: str
    owner_addresses: frozenset[str]
    mail: ParsedMail
    via: Literal["bcc", "mailbox"]
    # Create a CRM contact for a counterpart the CRM does not know (BCC logging does; a synced
    # mailbox logs only mail with known contacts).
    create_unknown: bool = False


class MailLogger(Protocol):
    """Logs a mail on its contacts in each of the client's CRMs, once per Message-ID and contact."""

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        """What was logged now (empty when everything was logged before, or nothing qualifies)."""
        ...
