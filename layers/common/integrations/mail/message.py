"""One mail message parsed with the standard library (`email.policy.default`), never trusted.

Mail arrives from anyone (BCC logging) or from a mailbox API (Gmail `format=raw`), so parsing never
raises: a header that does not parse is read as absent, a body part with an unknown charset is
decoded with replacement characters, and bodies are cut at a size limit. Attachments are metadata.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

from integrations.events import EmailAttachmentInfo, EmailParty

BODY_LIMIT = 256_000
# The header block and each header field are cut to these before parsing: the standard library's
# address parsing grows faster than linearly (a 100 kB To of `<x@y>` items takes seconds), and
# anyone on the internet can send such a header to a BCC address.
HEADER_BLOCK_LIMIT = 32_000
HEADER_FIELD_LIMIT = 8_000
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What a mail says about itself (headers and bodies), in the platform's terms."""

    message_id: str | None
    subject: str
    sender: EmailParty | None
    to: list[EmailParty] = field(default_factory=list)
    cc: list[EmailParty] = field(default_factory=list)
    reply_to: list[EmailParty] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    sent_at: datetime | None = None
    text: str = ""
    html: str = ""
    truncated: bool = False
    attachments: list[EmailAttachmentInfo] = field(default_factory=list)
    # RFC 3834 Auto-Submitted, vacation and list headers: replies nobody wrote.
    automatic: bool = False
    # A delivery status notification (RFC 3464) or a mailer-daemon notice.
    bounce: bool = False

    @property
    def recipients(self) -> list[EmailParty]:
        return [*self.to, *self.cc]


def parse_mail(raw: bytes, *, body_limit: int = BODY_LIMIT) -> ParsedMail:
    """Parse raw RFC 5322 bytes; never raises on malformed input."""
    message = email.message_from_bytes(bounded_headers(raw), policy=policy.default)
    text, html, truncated, attachments = _bodies(message, body_limit)
    return ParsedMail(
        message_id=_first_id(_header(message, "Message-ID")),
        subject=_header(message, "Subject"),
        sender=_first(_parties(message, "From")),
        to=_parties(message, "To"),
        cc=_parties(message, "Cc"),
        reply_to=_parties(message, "Reply-To"),
        in_reply_to=_first_id(_header(message, "In-Reply-To")),
        references=_MESSAGE_ID.findall(_header(message, "References")),
        sent_at=_date(_header(message, "Date")),
        text=text,
        html=html,
        truncated=truncated,
        attachments=attachments,
        automatic=_automatic(message),
        bounce=_bounce(message),
    )


def bounded_headers(raw: bytes) -> bytes:
    """The message with each header field cut to HEADER_FIELD_LIMIT bytes and the fields past
    HEADER_BLOCK_LIMIT dropped; the body is untouched. Without a blank line, all of it is headers."""
    ends = [i for i in (raw.find(b"\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    split = min(ends) + 1 if ends else len(raw)
    head, body = raw[:split], raw[split:]
    if len(head) <= HEADER_FIELD_LIMIT:
        return raw
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line  # a folded continuation of the field above
        else:
            fields.append(line)
    kept: list[bytes] = []
    size = 0
    for whole in fields:
        cut = (
            whole
            if len(whole) <= HEADER_FIELD_LIMIT
            else whole[:HEADER_FIELD_LIMIT].rstrip(b"\r\n") + b"\r\n"
        )
        if size + len(cut) > HEADER_BLOCK_LIMIT:
            break
        kept.append(cut)
        size += len(cut)
    return b"".join(kept) + body


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header the parser's registry cannot read is no header
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _parties(message: Message, name: str) -> list[EmailParty]:
    try:
        values = message.get_all(name) or []
        pairs = getaddresses([str(value) for value in values])
    except Exception:  # malformed address lists are read as empty
        return []
    parties: list[EmailParty] = []
    for display, raw_address in pairs:
        address = raw_address.strip().lower()
        if "@" in address and 3 <= len(address) <= 320 and " " not in address:
            parties.append(EmailParty(address=address, name=display.strip()[:256]))
    return parties


def _first(parties: list[EmailParty]) -> EmailParty | None:
    return parties[0] if parties else None


def _first_id(value: str) -> str | None:
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else None


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bodies(message: Message, limit: int) -> tuple[str, str, bool, list[EmailAttachmentInfo]]:
    text: list[str] = []
    html: list[str] = []
    attachments: list[EmailAttachmentInfo] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        content_type = part.get_content_type()
        filename = _filename(part)
        if disposition == "attachment" or (filename and content_type not in ("text/plain", "text/html")):
            attachments.append(_attachment(part, content_type, filename))
        elif content_type == "text/plain":
            text.append(_decoded(part))
        elif content_type == "text/html":
            html.append(_decoded(part))
        elif content_type.startswith(("image/", "audio/", "video/", "application/")):
            attachments.append(_attachment(part, content_type, filename))
    text_body, text_cut = _cut("\n".join(text), limit)
    html_body, html_cut = _cut("\n".join(html), limit)
    return text_body, html_body, text_cut or html_cut, attachments


def _filename(part: Message) -> str:
    try:
        return (part.get_filename() or "")[:512]
    except Exception:
        return ""


def _attachment(part: Message, content_type: str, filename: str) -> EmailAttachmentInfo:
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return EmailAttachmentInfo(filename=filename, content_type=content_type[:256], size=size)


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def _cut(body: str, limit: int) -> tuple[str, bool]:
    return (body, False) if len(body) <= limit else (body[:limit], True)


def _automatic(message: Message) -> bool:
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond"):
        return True
    precedence = _header(message, "Precedence").lower()
    return precedence in ("auto_reply", "bulk", "junk", "list")


def _bounce(message: Message) -> bool:
    if message.get_content_type() == "multipart/report":
        return True
    sender = _first(_parties(message, "From"))
    local = sender.address.split("@", 1)[0] if sender else ""
    if local in ("mailer-daemon", "postmaster"):
        return True
    # A null reverse path (`Return-Path: <>`) with failed recipients named is a bounce too.
    return not _header(message, "Return-Path").strip("<> ") and bool(_header(message, "X-Failed-Recipients"))


def address_of(value: str) -> str | None:
    """A bare, lower-cased address from a header-style value, or None when it holds none."""
    try:
        parsed = Address(addr_spec=value.strip())
    except Exception:
        return None
    return parsed.addr_spec.lower() if parsed.domain else None


__all__ = ["BODY_LIMIT", "EmailMessage", "ParsedMail", "address_of", "bounded_headers", "parse_mail"]
