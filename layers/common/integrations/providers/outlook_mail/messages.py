"""Microsoft Graph's message resource as a parsed mail.

Graph gives the envelope as JSON (`from`, `toRecipients`, `ccRecipients`, `replyTo`, `subject`,
`sentDateTime`, `internetMessageId`) and, when selected, the transport headers of received mail
(`internetMessageHeaders`: In-Reply-To, References, Auto-Submitted...; Sent Items copies carry none).
The JSON envelope is written as headers, the other transport headers added, and the block goes through
the same never-raising parser as raw mail (`mail.message.parse_mail`). The body is asked for as text
(`Prefer: outlook.body-content-type="text"`, Exchange converts HTML itself) and cut at the parser's
limit; attachments are metadata from `/attachments?$select=name,contentType,size`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from typing import Any

from integrations.events import EmailAttachmentInfo
from integrations.mail.message import BODY_LIMIT, ParsedMail, parse_mail
from integrations.providers.support import text

# What `read` selects: everything the parsed mail and the engine need, nothing more.
SELECT = ",".join(
    (
        "id",
        "conversationId",
        "internetMessageId",
        "subject",
        "from",
        "sender",
        "toRecipients",
        "ccRecipients",
        "replyTo",
        "sentDateTime",
        "receivedDateTime",
        "isDraft",
        "parentFolderId",
        "hasAttachments",
        "body",
        "internetMessageHeaders",
    )
)
# The envelope comes from the JSON; transport headers of the same names are not taken twice.
_ENVELOPE = frozenset({"from", "to", "cc", "reply-to", "subject", "date", "message-id", "sender"})


def instant(value: Any) -> datetime | None:
    """Graph's `2030-01-05T10:00:00Z` (up to seven fractional digits) as a UTC instant."""
    raw = text(value).strip()
    if not raw:
        return None
    head, _, rest = raw.partition(".")
    fraction = "".join(c for c in rest if c.isdigit())[:6]
    try:
        moment = datetime.fromisoformat(head.removesuffix("Z") + (f".{fraction}" if fraction else ""))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def parsed(resource: dict[str, Any], attachments: list[EmailAttachmentInfo]) -> ParsedMail:
    """The message's envelope, text body and attachment metadata."""
    lines = [f"{name}: {value}" for name, value in _envelope(resource) if value]
    for header in resource.get("internetMessageHeaders") or []:
        if not isinstance(header, dict):
            continue
        name, value = _clean(text(header.get("name"))), _clean(text(header.get("value")))
        if name and ":" not in name and name.lower() not in _ENVELOPE:
            lines.append(f"{name}: {value}")
    head = parse_mail(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", errors="replace"))
    body = resource.get("body") if isinstance(resource.get("body"), dict) else {}
    assert isinstance(body, dict)
    content = text(body.get("content"))
    is_html = text(body.get("contentType")).lower() == "html"
    return replace(
        head,
        text="" if is_html else content[:BODY_LIMIT],
        html=content[:BODY_LIMIT] if is_html else "",
        truncated=len(content) > BODY_LIMIT,
        attachments=attachments,
    )


def attachment_infos(answer: Any) -> list[EmailAttachmentInfo]:
    """`/attachments?$select=name,contentType,size` as metadata (never the bytes)."""
    items = answer.get("value") if isinstance(answer, dict) else None
    found: list[EmailAttachmentInfo] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        size = item.get("size")
        found.append(
            EmailAttachmentInfo(
                filename=text(item.get("name"))[:512],
                content_type=text(item.get("contentType")).lower()[:256] or "application/octet-stream",
                size=size if isinstance(size, int) and size >= 0 else 0,
            )
        )
    return found


def _envelope(resource: dict[str, Any]) -> list[tuple[str, str]]:
    sent = instant(resource.get("sentDateTime"))
    return [
        ("From", _addresses([resource.get("from") or resource.get("sender")])),
        ("To", _addresses(resource.get("toRecipients"))),
        ("Cc", _addresses(resource.get("ccRecipients"))),
        ("Reply-To", _addresses(resource.get("replyTo"))),
        ("Subject", _clean(text(resource.get("subject")))),
        ("Date", format_datetime(sent) if sent else ""),
        ("Message-ID", _clean(text(resource.get("internetMessageId")))),
    ]


def _addresses(recipients: Any) -> str:
    """Graph recipients (`{emailAddress: {name, address}}`) as one address-list header value."""
    written = []
    for recipient in recipients if isinstance(recipients, list) else []:
        found = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        if not isinstance(found, dict):
            continue
        address = _clean(text(found.get("address")))
        if "@" in address:
            written.append(formataddr((_clean(text(found.get("name"))), address)))
    return ", ".join(written)


def _clean(value: str) -> str:
    # A line break in a value would smuggle headers into the parse.
    return " ".join(value.split())
