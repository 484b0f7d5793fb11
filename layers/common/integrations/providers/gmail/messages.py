"""Gmail's Message resource (`format=full`) as a parsed mail.

`format=full` rather than `raw`: its payload carries the text parts' bodies and only the size and an
`attachmentId` of each attachment, so reading a mail with a 20 MB attachment downloads kilobytes.
The headers go through the same never-raising parser as raw mail (`mail.message.parse_mail`); the
bodies are decoded from the payload's parts and cut at the parser's limit (calendar-email.md §3.6).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from integrations.events import EmailAttachmentInfo
from integrations.mail.message import BODY_LIMIT, ParsedMail, parse_mail
from integrations.providers.support import text

# Labels whose messages are never published: not sent, not received, or not wanted.
HIDDEN_LABELS = frozenset({"DRAFT", "SPAM", "TRASH"})
SENT_LABEL = "SENT"


def b64url_bytes(value: str) -> bytes:
    """Gmail's base64url data (padding optional); b'' when it does not decode."""
    cleaned = value.strip().replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return b""


def received_at(resource: dict[str, Any]) -> datetime:
    """`internalDate` (epoch ms as a string): when Gmail accepted the message."""
    try:
        return datetime.fromtimestamp(int(text(resource.get("internalDate"))) / 1000, UTC)
    except ValueError:
        return datetime.now(UTC)


def parsed(resource: dict[str, Any], body_limit: int = BODY_LIMIT) -> ParsedMail:
    """The message's headers, bodies and attachment metadata."""
    payload = resource.get("payload") if isinstance(resource.get("payload"), dict) else {}
    assert isinstance(payload, dict)
    headers = _headers(payload)
    head = parse_mail(("\r\n".join(f"{name}: {value}" for name, value in headers) + "\r\n\r\n").encode())
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[EmailAttachmentInfo] = []
    for part in _leaves(payload):
        mime = text(part.get("mimeType")).lower()
        body = part.get("body") if isinstance(part.get("body"), dict) else {}
        assert isinstance(body, dict)
        filename = text(part.get("filename"))[:512]
        if filename or body.get("attachmentId"):
            size = body.get("size")
            attachments.append(
                EmailAttachmentInfo(
                    filename=filename,
                    content_type=mime[:256] or "application/octet-stream",
                    size=size if isinstance(size, int) and size >= 0 else 0,
                )
            )
        elif mime in ("text/plain", "text/html"):
            decoded = _decoded(b64url_bytes(text(body.get("data"))), _charset(_headers(part)))
            (texts if mime == "text/plain" else htmls).append(decoded)
    text_body, html_body = "\n".join(texts), "\n".join(htmls)
    truncated = len(text_body) > body_limit or len(html_body) > body_limit
    return replace(
        head,
        text=text_body[:body_limit],
        html=html_body[:body_limit],
        truncated=truncated,
        attachments=attachments,
    )


def _headers(part: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for header in part.get("headers") or []:
        if not isinstance(header, dict):
            continue
        name, value = text(header.get("name")), text(header.get("value"))
        # A name or value with a line break would smuggle headers into the parse.
        if name and "\n" not in name and "\r" not in name:
            found.append((name, " ".join(value.split())))
    return found


def _leaves(part: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    children = [p for p in part.get("parts") or [] if isinstance(p, dict)]
    if not children or depth > 20:
        return [part]
    return [leaf for child in children for leaf in _leaves(child, depth + 1)]


def _charset(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            for param in value.split(";")[1:]:
                key, _, found = param.strip().partition("=")
                if key.lower() == "charset" and found:
                    return found.strip('"')
    return "utf-8"


def _decoded(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")
