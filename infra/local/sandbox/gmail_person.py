"""Gmail, acting as the person and the people who write to them: mail arrives, the person sends from
Gmail's own page, changes labels, deletes; plus the mailbox's truth and the expired-history switch.

Each act records history and pushes `{emailAddress, historyId}` to a live watch whose labels cover
the message, as Gmail does. No access token needed. `account` defaults to `alex@example.com`.
"""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.core import Route, Sandbox, json_response, read_json
from infra.local.sandbox.gmail_format import b64url
from infra.local.sandbox.gmail_store import (
    Mailbox,
    StoredMessage,
    add_message,
    change_labels,
    delete_message,
    expire_history,
    mailbox,
    watched,
)

DEFAULT_ACCOUNT = "alex@example.com"


def compose(
    *,
    sender: str,
    sender_name: str,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    html: str = "",
    parent: StoredMessage | None = None,
    attachments: list[dict[str, Any]] | None = None,
    when: float | None = None,
) -> bytes:
    """A mail as a mail client writes it (a reply names its parent in In-Reply-To and References)."""
    from datetime import UTC, datetime

    message = EmailMessage()
    message["From"] = f"{sender_name} <{sender}>" if sender_name else sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.fromtimestamp(when, UTC) if when else datetime.now(UTC))
    message["Message-ID"] = make_msgid(secrets.token_hex(6), sender.rpartition("@")[2] or "example.net")
    if parent is not None and parent.message_id:
        message["In-Reply-To"] = parent.message_id
        chain = parent.header("References").split()
        message["References"] = " ".join([*chain, parent.message_id])
    message.set_content(text or " ")
    if html:
        message.add_alternative(html, subtype="html")
    for item in attachments or []:
        size = int(item.get("size", 16))
        content_type = str(item.get("content_type", "application/octet-stream"))
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            secrets.token_bytes(size),
            maintype=maintype,
            subtype=subtype,
            filename=str(item.get("filename", "file")),
        )
    return message.as_bytes()


def arrive(
    sb: Sandbox,
    box: Mailbox,
    raw: bytes,
    labels: list[str],
    *,
    thread_id: str | None,
    when: float | None = None,
) -> StoredMessage:
    """A message lands in the mailbox (callers hold the state lock)."""
    return add_message(
        sb, box, raw, labels, thread_id=thread_id, internal_ms=int(when * 1000) if when else None
    )


def _list(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _body(request: Request) -> tuple[dict[str, Any], str]:
    body = read_json(request) or {}
    return body, str(body.get("account") or request.args.get("account") or DEFAULT_ACCOUNT).lower()


def _answer(sb: Sandbox, box: Mailbox, stored: StoredMessage, pushed: bool) -> Response:
    return json_response(
        {
            "id": stored.id,
            "threadId": stored.thread_id,
            "messageId": stored.message_id,
            "historyId": str(box.history_id),
            "pushed": pushed,
        },
        status=201,
    )


def receive(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/gmail/receive: someone mails the person; the mail lands in INBOX and pushes.

    Body: {account, from, from_name, to (default [account]), cc, subject, text, html, reply_to (the
    id of a message in this mailbox: the mail answers it and joins its thread), attachments
    [{filename, content_type, size}], labelIds (default INBOX, UNREAD), received_at (epoch seconds)}.
    """
    body, account = _body(request)
    sender = str(body.get("from") or "jordan@example.com")
    with sb.state.lock:
        box = mailbox(sb, account)
        parent = box.messages.get(str(body.get("reply_to") or ""))
        raw = compose(
            sender=sender,
            sender_name=str(body.get("from_name") or ""),
            to=_list(body.get("to"), [account]),
            cc=_list(body.get("cc"), []),
            subject=str(body.get("subject") or (f"Re: {parent.header('Subject')}" if parent else "Hello")),
            text=str(body.get("text") or "Hello.\n"),
            html=str(body.get("html") or ""),
            parent=parent,
            attachments=list(body.get("attachments") or []),
            when=body.get("received_at"),
        )
        labels = _list(body.get("labelIds"), ["INBOX", "UNREAD"])
        pushed = watched(box, labels, int(sb.now() * 1000))
        stored = arrive(
            sb, box, raw, labels, thread_id=parent.thread_id if parent else None, when=body.get("received_at")
        )
        return _answer(sb, box, stored, pushed)


def send_from_gmail(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/gmail/send: the person writes a mail in Gmail's own page; labelled SENT, pushes.

    Body: {account, to, cc, subject, text, html, reply_to (a message id in this mailbox to answer)}."""
    body, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        parent = box.messages.get(str(body.get("reply_to") or ""))
        raw = compose(
            sender=account,
            sender_name="",
            to=_list(body.get("to"), []),
            cc=_list(body.get("cc"), []),
            subject=str(body.get("subject") or (f"Re: {parent.header('Subject')}" if parent else "Hello")),
            text=str(body.get("text") or "Hello.\n"),
            html=str(body.get("html") or ""),
            parent=parent,
        )
        pushed = watched(box, ["SENT"], int(sb.now() * 1000))
        stored = arrive(sb, box, raw, ["SENT"], thread_id=parent.thread_id if parent else None)
        return _answer(sb, box, stored, pushed)


def relabel(sb: Sandbox, request: Request, message_id: str) -> Response:
    """POST /_sandbox/gmail/messages/<id>/labels {account, add, remove}: the person files, stars,
    archives or reads a mail (labelAdded / labelRemoved in history; the message is not new)."""
    body, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        stored = box.messages.get(message_id)
        if stored is None:
            return json_response({"error": "no such message"}, 404)
        change_labels(sb, box, stored, _list(body.get("add"), []), _list(body.get("remove"), []))
        return json_response({"id": stored.id, "labelIds": stored.labels, "historyId": str(box.history_id)})


def delete(sb: Sandbox, request: Request, message_id: str) -> Response:
    """DELETE /_sandbox/gmail/messages/<id>?account=: the person deletes a mail for good."""
    _, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        stored = box.messages.get(message_id)
        if stored is None:
            return json_response({"error": "no such message"}, 404)
        delete_message(sb, box, stored)
        return json_response({"id": message_id, "historyId": str(box.history_id)})


def truth(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/gmail/mailbox?account=: every message as stored (ids, thread, labels, the headers
    that thread it, and `raw`, base64url), the history id and the oldest history id still known."""
    _, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        messages = [
            {
                "id": m.id,
                "threadId": m.thread_id,
                "labelIds": list(m.labels),
                "internalDate": str(m.internal_ms),
                "messageId": m.message_id,
                "inReplyTo": m.header("In-Reply-To"),
                "references": m.header("References"),
                "subject": m.header("Subject"),
                "from": m.header("From"),
                "to": m.header("To"),
                "cc": m.header("Cc"),
                "raw": b64url(m.raw),
            }
            for m in box.messages.values()
        ]
        return json_response(
            {
                "emailAddress": box.address,
                "historyId": str(box.history_id),
                "historyFloor": str(box.history_floor),
                "messages": messages,
            }
        )


def expire(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/gmail/history/expire {account}: fault switch. Every history id handed out so far
    is out of date: history.list from one answers 404 (Gmail keeps history a week, sometimes hours)."""
    _, account = _body(request)
    with sb.state.lock:
        floor = expire_history(mailbox(sb, account))
    return json_response({"emailAddress": account, "historyFloor": str(floor)})


def routes() -> list[Route]:
    return [
        Route("/_sandbox/gmail/receive", ("POST",), receive, "control", None),
        Route("/_sandbox/gmail/send", ("POST",), send_from_gmail, "control", None),
        Route("/_sandbox/gmail/messages/<message_id>/labels", ("POST",), relabel, "control", None),
        Route("/_sandbox/gmail/messages/<message_id>", ("DELETE",), delete, "control", None),
        Route("/_sandbox/gmail/mailbox", ("GET",), truth, "control", None),
        Route("/_sandbox/gmail/history/expire", ("POST",), expire, "control", None),
    ]
