"""The ports mail flows share: the BCC logging function and the synced mailboxes (Gmail, Outlook)
both ask who among a mail's addresses is a contact, and both log a mail on CRM contacts through one
logger, so a message that arrives both ways (BCC and mailbox sync) is logged once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from integrations.domain.errors import ProviderUnavailable
from integrations.events import EmailLogged
from integrations.http import RateLimited
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
    """Logs a mail on its contacts in each of the client's CRMs, once per Message-ID and contact, and
    announces each logging as `Email Logged` itself."""

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        """What was logged now (empty when everything was logged before, or nothing qualifies)."""
        ...


class MailNotLogged(Exception):
    """The mail is not yet logged in every CRM. `causes` holds each connection's error in its own
    meaning; `logged` what was logged (and announced) meanwhile. Log the same mail again later: after
    `retry_after` seconds when a CRM said so; once the owner reconnected or fixed the settings when
    every cause `waits_for_person`."""

    def __init__(
        self,
        causes: Mapping[str, Exception],
        logged: Sequence[EmailLogged],
        *,
        retry_after: float | None = None,
        waits_for_person: bool = False,
    ) -> None:
        self.causes = dict(causes)
        self.logged = list(logged)
        self.retry_after = retry_after
        self.waits_for_person = waits_for_person
        names = ", ".join(f"{c}: {type(e).__name__}" for c, e in sorted(self.causes.items()))
        super().__init__(f"The mail is not logged in every CRM yet ({names}).")

    def as_fault(self) -> ProviderUnavailable:
        """The engine's retryable fault for what is missing: wait as long as the slowest CRM asked."""
        if self.retry_after is not None:
            return RateLimited(str(self), retry_after=self.retry_after)
        return ProviderUnavailable(str(self))


def log_mail(logger: MailLogger, entry: MailToLog) -> Sequence[EmailLogged]:
    """Log a synced mailbox's mail. A CRM that waits for its owner (reconnect, settings) is left to its
    own card; any other failure is raised as the engine's retryable fault, and logging the same mail
    again later logs only what is missing."""
    try:
        return logger.log(entry)
    except MailNotLogged as exc:
        if exc.waits_for_person:
            return exc.logged
        raise exc.as_fault() from exc
