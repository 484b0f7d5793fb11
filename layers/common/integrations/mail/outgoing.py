"""A requested mail as RFC 5322 bytes, built with the standard library (`email.message.EmailMessage`).

Threading a reply (RFC 5322 §3.6.4, and Gmail's rule in calendar-email.md §3.7): `In-Reply-To` names
the parent's Message-ID, `References` is the parent's References followed by that id, and the subject
is the parent's with one `Re: ` in front, so every client files it in the same conversation.

The Message-ID is derived from the request: the same request always gets the same Message-ID, so a
send whose outcome was lost can be looked for in the mailbox before anything is sent again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from integrations.events import EmailParty, EmailSendRequested
from integrations.mail.message import ParsedMail

# References grows with every reply; keep the first and the latest ids when it gets long (RFC 5322
# allows trimming, and some servers refuse very long header lines).
MAX_REFERENCES = 20
_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment's bytes, downloaded by reference before the mail is built."""

    filename: str
    content_type: str
    data: bytes


def our_message_id(agency_id: str, request_id: str, domain: str) -> str:
    """The Message-ID of the mail sent for one request: `<integrations.<32 hex>@<domain>>`."""
    digest = hashlib.sha256(f"{agency_id}\0{request_id}".encode()).hexdigest()[:32]
    return f"<integrations.{digest}@{domain or 'localhost'}>"


def base_subject(subject: str) -> str:
    """The subject without its reply and forward prefixes (`Re: Fwd: x` → `x`)."""
    return _PREFIX.sub("", subject).strip()


def reply_subject(requested: str, parent_subject: str) -> str:
    """A reply's subject: the parent's, with one `Re: ` (what the request asked, when it matches)."""
    base = base_subject(parent_subject)
    if requested.strip().lower().startswith("re:") and base_subject(requested) == base:
        return requested.strip()
    return f"Re: {base}" if base else "Re:"


def references(parent: ParsedMail) -> list[str]:
    """The References of a reply to `parent`: its own References, then its Message-ID."""
    chain = [*parent.references]
    if parent.message_id and parent.message_id not in chain:
        chain.append(parent.message_id)
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def build_message(
    request: EmailSendRequested,
    *,
    sender: str,
    message_id: str,
    sent_at: datetime,
    parent: ParsedMail | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> bytes:
    """The whole message as bytes (CRLF line ends, as SMTP and the Gmail API take it)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _address(EmailParty(address=sender))
    message["To"] = [_address(p) for p in request.to]
    if request.cc:
        message["Cc"] = [_address(p) for p in request.cc]
    if request.bcc:
        # The provider delivers to Bcc and strips the header from what recipients get.
        message["Bcc"] = [_address(p) for p in request.bcc]
    if parent is not None:
        message["Subject"] = reply_subject(request.subject, parent.subject)
        if parent.message_id:
            message["In-Reply-To"] = parent.message_id
        chain = references(parent)
        if chain:
            message["References"] = " ".join(chain)
    else:
        message["Subject"] = request.subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id
    if request.text:
        message.set_content(request.text)
        if request.html:
            message.add_alternative(request.html, subtype="html")
    else:
        message.set_content(request.html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message.as_bytes()


def _address(party: EmailParty) -> Address:
    local, _, domain = party.address.rpartition("@")
    return Address(display_name=party.name, username=local, domain=domain)
