"""Gmail's mail API (calendar-email.md §3.2, 3.5-3.7): history.list, messages.list / get / send,
threads.get, with Gmail's paging, its 404 for an out-of-date history id, and its 400s.

Search (`q` of messages.list) knows what the product and its tests use: `newer_than:` / `older_than:`
(Nd, Nh, Nm, Ny), `after:` / `before:` (epoch seconds or yyyy/mm/dd), `rfc822msgid:` (with or without
angle brackets), `in:inbox|sent|anywhere`, `label:`, `from:`, `to:`, `subject:`; any other word must
appear in the subject or the text.
"""

from __future__ import annotations

import base64
import binascii
import email
import re
import secrets
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.gmail_format import FORMATS, resource
from infra.local.sandbox.gmail_store import (
    Mailbox,
    StoredMessage,
    add_message,
    mailbox,
    message_ids,
    recipients,
)

READ_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
}
SEND_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.send",
}
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
MAX_SEND_BYTES = 36_700_160
# What Gmail accepts as an address (a domain of dot-separated labels, no empty label).
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_TERM = re.compile(r'(\w+):("[^"]*"|\S+)|("[^"]*"|\S+)')


def _not_found() -> Response:
    return google_error(404, "notFound", "Requested entity was not found.")


def _box(sb: Sandbox, request: Request, user_id: str, scopes: set[str]) -> Mailbox:
    grant = require_token(sb, request, "google", scopes)
    if user_id not in ("me", grant.account):
        raise Reply(google_error(403, "forbidden", "Delegation denied for " + grant.account))
    return mailbox(sb, grant.account)


def _page_size(request: Request, default: int = 100) -> int:
    try:
        return max(1, min(500, int(request.args.get("maxResults", default))))
    except ValueError:
        raise Reply(google_error(400, "invalidArgument", "Invalid maxResults")) from None


def _offset(token: str | None, scope: str) -> int:
    """Page tokens are opaque to callers; here, the listing they belong to and an offset."""
    if not token:
        return 0
    try:
        found, _, offset = base64.urlsafe_b64decode(token.encode()).decode().rpartition("|")
        if found == scope:
            return int(offset)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise Reply(google_error(400, "invalidArgument", "Invalid pageToken"))


def _token(scope: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{scope}|{offset}".encode()).decode()


def history_list(sb: Sandbox, request: Request, user_id: str) -> Response:
    """GET users/{userId}/history?startHistoryId=&historyTypes=&labelId=&pageToken=&maxResults=."""
    start_text = request.args.get("startHistoryId", "")
    if not start_text.isdigit():
        return google_error(400, "invalidArgument", "Invalid startHistoryId")
    start = int(start_text)
    types = request.args.getlist("historyTypes") or list(HISTORY_TYPES)
    if any(t not in HISTORY_TYPES for t in types):
        return google_error(400, "invalidArgument", "Invalid value for historyTypes")
    label = request.args.get("labelId")
    size = _page_size(request)
    with sb.state.lock:
        box = _box(sb, request, user_id, READ_SCOPES | {"https://www.googleapis.com/auth/gmail.metadata"})
        if start < box.history_floor:
            # Gmail keeps history about a week (sometimes hours); older ids are simply unknown.
            return _not_found()
        records = [
            r
            for r in box.history
            if r.id > start
            and r.kind in types
            and (label is None or label in r.message.get("labelIds", r.label_ids))
        ]
        scope = f"h:{start}:{','.join(types)}:{label or ''}"
        offset = _offset(request.args.get("pageToken"), scope)
        page = records[offset : offset + size]
        answer: dict[str, Any] = {"historyId": str(box.history_id)}
        if page:
            answer["history"] = [_history_item(r) for r in page]
        if offset + size < len(records):
            answer["nextPageToken"] = _token(scope, offset + size)
    return json_response(answer)


def _history_item(record: Any) -> dict[str, Any]:
    ref = {"id": record.message["id"], "threadId": record.message["threadId"]}
    item: dict[str, Any] = {"id": str(record.id), "messages": [ref]}
    if record.kind == "messageAdded":
        item["messagesAdded"] = [{"message": record.message}]
    elif record.kind == "messageDeleted":
        item["messagesDeleted"] = [{"message": ref}]
    else:
        item[f"{record.kind}s"] = [{"message": record.message, "labelIds": record.label_ids}]
    return item


def messages_list(sb: Sandbox, request: Request, user_id: str) -> Response:
    """GET users/{userId}/messages?q=&labelIds=&includeSpamTrash=&pageToken=&maxResults= (newest first)."""
    query = request.args.get("q", "")
    labels = request.args.getlist("labelIds")
    spam_trash = request.args.get("includeSpamTrash", "false").lower() == "true"
    size = _page_size(request)
    with sb.state.lock:
        box = _box(sb, request, user_id, READ_SCOPES)
        match = _matcher(query, sb.now())
        found = [
            m
            for m in box.messages.values()
            if all(label in m.labels for label in labels)
            and (spam_trash or not {"SPAM", "TRASH"} & set(m.labels))
            and match(m)
        ]
        found.sort(key=lambda m: (m.internal_ms, m.history_id), reverse=True)
        scope = f"m:{query}:{','.join(labels)}:{spam_trash}"
        offset = _offset(request.args.get("pageToken"), scope)
        page = found[offset : offset + size]
        answer: dict[str, Any] = {"resultSizeEstimate": len(page)}
        if page:
            answer["messages"] = [m.ref() for m in page]
        if offset + size < len(found):
            answer["nextPageToken"] = _token(scope, offset + size)
    return json_response(answer)


def _matcher(query: str, now: float) -> Any:
    tests: list[Any] = []
    for key, value, word in _TERM.findall(query):
        tests.append(_test(key.lower(), (value or word).strip('"'), now))
    return lambda m: all(test(m) for test in tests)


def _test(key: str, value: str, now: float) -> Any:
    if key in ("newer_than", "older_than"):
        seconds = _age(value)
        cutoff = (now - seconds) * 1000
        return (
            (lambda m: m.internal_ms > cutoff) if key == "newer_than" else (lambda m: m.internal_ms < cutoff)
        )
    if key in ("after", "before"):
        moment = _moment(value) * 1000
        return (lambda m: m.internal_ms > moment) if key == "after" else (lambda m: m.internal_ms < moment)
    if key == "rfc822msgid":
        wanted = value if value.startswith("<") else f"<{value}>"
        return lambda m: m.message_id == wanted
    if key == "in":
        if value == "anywhere":
            return lambda m: True
        return lambda m: value.upper() in m.labels
    if key == "label":
        return lambda m: value.upper() in m.labels or value in m.labels
    if key in ("from", "to", "subject"):
        header = {"from": "From", "to": "To", "subject": "Subject"}[key]
        return lambda m: value.lower() in m.header(header).lower()
    word = f"{key}:{value}" if key else value
    return lambda m: word.lower() in (m.header("Subject") + " " + _text_of(m)).lower()


def _age(value: str) -> float:
    units = {"d": 86400, "h": 3600, "m": 30 * 86400, "y": 365 * 86400}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit():
        raise Reply(google_error(400, "invalidArgument", f"Invalid query: {value}"))
    return int(value[:-1]) * units[value[-1]]


def _moment(value: str) -> float:
    if value.isdigit():
        return float(value)
    try:
        return datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise Reply(google_error(400, "invalidArgument", f"Invalid query: {value}")) from None


def _text_of(stored: StoredMessage) -> str:
    body = stored.parsed.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


def messages_get(sb: Sandbox, request: Request, user_id: str, message_id: str) -> Response:
    """GET users/{userId}/messages/{id}?format=minimal|metadata|full|raw&metadataHeaders=."""
    fmt = request.args.get("format", "full")
    if fmt not in FORMATS:
        return google_error(400, "invalidArgument", f"Invalid value for format: {fmt}")
    with sb.state.lock:
        box = _box(sb, request, user_id, READ_SCOPES | {"https://www.googleapis.com/auth/gmail.metadata"})
        stored = box.messages.get(message_id)
        if stored is None:
            return _not_found()
        return json_response(resource(stored, fmt, request.args.getlist("metadataHeaders")))


def threads_get(sb: Sandbox, request: Request, user_id: str, thread_id: str) -> Response:
    """GET users/{userId}/threads/{id}?format=: the thread's messages, oldest first."""
    fmt = request.args.get("format", "full")
    if fmt not in FORMATS or fmt == "raw":
        return google_error(400, "invalidArgument", f"Invalid value for format: {fmt}")
    with sb.state.lock:
        box = _box(sb, request, user_id, READ_SCOPES)
        members = [m for m in box.messages.values() if m.thread_id == thread_id]
        if not members:
            return _not_found()
        return json_response(
            {
                "id": thread_id,
                "historyId": str(max(m.history_id for m in members)),
                "messages": [resource(m, fmt, request.args.getlist("metadataHeaders")) for m in members],
            }
        )


def messages_send(sb: Sandbox, request: Request, user_id: str) -> Response:
    """POST users/{userId}/messages/send {raw, threadId}: sent as the account, labelled SENT.

    The message joins `threadId` only when it also references a message of that thread and its
    subject matches; recipients Gmail cannot parse are refused with 400 `Invalid To header`."""
    body = read_json(request)
    if body is None:
        return google_error(400, "parseError", "Parse Error")
    raw_text = body.get("raw")
    if not isinstance(raw_text, str) or not raw_text:
        return google_error(
            400,
            "invalidArgument",
            "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
        )
    try:
        raw = base64.urlsafe_b64decode(raw_text + "=" * (-len(raw_text) % 4))
    except (binascii.Error, ValueError):
        return google_error(400, "invalidArgument", "Invalid value for ByteString")
    if len(raw) > MAX_SEND_BYTES:
        return google_error(413, "uploadTooLarge", "Request payload size exceeds the limit")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    found = recipients(parsed)
    if not found:
        return google_error(400, "invalidArgument", "Recipient address required")
    for header, address in found:
        if not _ADDRESS.fullmatch(address):
            return google_error(400, "invalidArgument", f"Invalid {header} header")
    thread_id = body.get("threadId")
    with sb.state.lock:
        box = _box(sb, request, user_id, SEND_SCOPES)
        # Gmail sends as the account, and gives the message a Message-ID when it has none.
        del parsed["From"]
        parsed["From"] = box.address
        if not message_ids(str(parsed.get("Message-ID") or "")):
            del parsed["Message-ID"]
            parsed["Message-ID"] = make_msgid(f"CA{secrets.token_hex(6)}", "mail.gmail.com")
        stored = add_message(
            sb,
            box,
            parsed.as_bytes(),
            ["SENT"],
            thread_id=thread_id if isinstance(thread_id, str) else None,
            internal_ms=None,
        )
        return json_response({"id": stored.id, "threadId": stored.thread_id, "labelIds": ["SENT"]})


def routes(base: str) -> list[Route]:
    return [
        Route(f"{base}/history", ("GET",), history_list, "api", "google"),
        Route(f"{base}/messages", ("GET",), messages_list, "api", "google"),
        Route(f"{base}/messages/send", ("POST",), messages_send, "api", "google"),
        Route(f"{base}/messages/<message_id>", ("GET",), messages_get, "api", "google"),
        Route(f"{base}/threads/<thread_id>", ("GET",), threads_get, "api", "google"),
    ]
