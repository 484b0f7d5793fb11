"""Gmail's Message resource in each `format` (calendar-email.md §3.6), made from the stored raw bytes.

`raw`: the whole message, base64url. `full`: the MIME tree in `payload` (`partId`, `mimeType`,
`filename`, `headers`, `body{size, data}` for text parts, `body{size, attachmentId}` for attachments,
`parts`). `metadata`: the top-level headers only (filtered by `metadataHeaders`). `minimal`: ids and
labels.
"""

from __future__ import annotations

import base64
import hashlib
from email.message import Message
from typing import Any

from infra.local.sandbox.gmail_store import StoredMessage

FORMATS = ("minimal", "metadata", "full", "raw")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def resource(
    stored: StoredMessage, fmt: str = "full", metadata_headers: list[str] | None = None
) -> dict[str, Any]:
    """The message as messages.get answers it."""
    found: dict[str, Any] = {
        "id": stored.id,
        "threadId": stored.thread_id,
        "labelIds": list(stored.labels),
        "historyId": str(stored.history_id),
        "internalDate": str(stored.internal_ms),
        "sizeEstimate": len(stored.raw),
    }
    if fmt == "minimal":
        return found
    parsed = stored.parsed
    found["snippet"] = _snippet(parsed)
    if fmt == "raw":
        found["raw"] = b64url(stored.raw)
        return found
    if fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers or []}
        headers = [h for h in _headers(parsed) if not wanted or h["name"].lower() in wanted]
        found["payload"] = {"mimeType": parsed.get_content_type(), "headers": headers}
        return found
    found["payload"] = _part(stored.id, parsed, "")
    return found


def _headers(part: Message) -> list[dict[str, str]]:
    return [{"name": name, "value": " ".join(str(value).split())} for name, value in part.items()]


def _part(message_id: str, part: Message, part_id: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": _headers(part),
    }
    if part.is_multipart():
        children = part.get_payload()
        assert isinstance(children, list)
        node["body"] = {"size": 0}
        node["parts"] = [
            _part(message_id, child, f"{part_id}.{i}" if part_id else str(i))
            for i, child in enumerate(children)
        ]
        return node
    data = part.get_payload(decode=True)
    content = data if isinstance(data, bytes) else b""
    if node["filename"] or part.get_content_disposition() == "attachment":
        # Attachments come by id (users.messages.attachments.get), never inline in `full`.
        digest = hashlib.sha256(f"{message_id}:{part_id}".encode()).hexdigest()[:24]
        node["body"] = {"size": len(content), "attachmentId": f"ANGjdJ{digest}"}
    else:
        node["body"] = {"size": len(content), "data": b64url(content)}
    return node


def _snippet(parsed: Message) -> str:
    for part in parsed.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return " ".join(data.decode("utf-8", "replace").split())[:200]
    return ""
