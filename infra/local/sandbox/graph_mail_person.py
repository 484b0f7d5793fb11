"""Outlook mail, acting as the person and the people who write to them: mail arrives, the person sends
from Outlook itself, saves a draft, moves a mail; plus the mailbox's truth, the delta-expiry switch,
and lifecycle notifications.

Each arrival in a folder gets a new sequence number (so the next message delta round lists it) and
sends a change notification (`created`) to every live subscription on that folder, as Outlook does.
No access token needed. `account` defaults to `alex@example.com`.
"""

from __future__ import annotations

import base64
import email
from email import policy
from email.message import EmailMessage
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import graph_mail, graph_notify
from infra.local.sandbox.core import Route, Sandbox, json_response, read_json
from infra.local.sandbox.gmail_person import compose
from infra.local.sandbox.graph_mail_store import (
    OutlookMailbox,
    StoredMail,
    add_mail,
    folder_named,
    mailbox,
    move,
)
from infra.local.sandbox.graph_notify import LIFECYCLE_EVENTS
from infra.local.sandbox.graph_store import graph_time_text
from infra.local.sandbox.graph_store import store_of as graph_store_of

DEFAULT_ACCOUNT = "alex@example.com"


def _list(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _body(request: Request) -> tuple[dict[str, Any], str]:
    body = read_json(request) or {}
    return body, str(body.get("account") or request.args.get("account") or DEFAULT_ACCOUNT).lower()


def _mail(
    *,
    sender: str,
    sender_name: str,
    body: dict[str, Any],
    to: list[str],
    parent: StoredMail | None,
    attachments: list[dict[str, Any]] | None = None,
) -> bytes:
    """A mail as a mail client writes it; a reply names its parent in In-Reply-To and References."""
    subject = str(body.get("subject") or (f"RE: {parent.header('Subject')}" if parent else "Hello"))
    raw = compose(
        sender=sender,
        sender_name=sender_name,
        to=to,
        cc=_list(body.get("cc"), []),
        subject=subject,
        text=str(body.get("text") or "Hello.\n"),
        html=str(body.get("html") or ""),
        attachments=attachments,
        when=body.get("received_at"),
    )
    if parent is None or not parent.message_id:
        return raw
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    message["In-Reply-To"] = parent.message_id
    message["References"] = " ".join([*parent.header("References").split(), parent.message_id])
    return message.as_bytes()


def _answer(box: OutlookMailbox, stored: StoredMail, pushed: int) -> Response:
    return json_response(
        {
            "id": stored.id,
            "conversationId": stored.conversation_id,
            "internetMessageId": stored.message_id,
            "folder": stored.folder,
            "pushed": pushed,
        },
        status=201,
    )


def receive(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/outlook/mail/receive: someone mails the person; the mail lands in the Inbox and
    notifies. Body: {account, from, from_name, to (default [account]), cc, subject, text, html,
    reply_to (the id of a message in this mailbox: the mail answers it and joins its conversation),
    attachments [{filename, content_type, size}], folder (default inbox; junkemail for junk),
    received_at (epoch seconds)}."""
    body, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        parent = box.messages.get(str(body.get("reply_to") or ""))
        raw = _mail(
            sender=str(body.get("from") or "jordan@example.com"),
            sender_name=str(body.get("from_name") or ""),
            body=body,
            to=_list(body.get("to"), [account]),
            parent=parent,
            attachments=list(body.get("attachments") or []),
        )
        folder = folder_named(account, str(body.get("folder") or "inbox")) or "inbox"
        received = body.get("received_at")
        stored = add_mail(sb, box, raw, folder, received=float(received) if received else None)
        return _answer(box, stored, graph_mail.notify(sb, box, stored))


def send_from_outlook(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/outlook/mail/send: the person writes a mail in Outlook itself; it lands in Sent
    Items and notifies. Body: {account, to, cc, subject, text, html, reply_to (a message id in this
    mailbox to answer)}."""
    body, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        parent = box.messages.get(str(body.get("reply_to") or ""))
        raw = _mail(sender=account, sender_name="", body=body, to=_list(body.get("to"), []), parent=parent)
        stored = add_mail(sb, box, raw, "sentitems", received=None)
        return _answer(box, stored, graph_mail.notify(sb, box, stored))


def save_draft(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/outlook/mail/draft: the person saves a draft (in Drafts, isDraft true; never sent).
    Body: {account, to, cc, subject, text, folder (default drafts; a draft filed elsewhere is still
    a draft)}."""
    body, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        raw = _mail(sender=account, sender_name="", body=body, to=_list(body.get("to"), []), parent=None)
        folder = folder_named(account, str(body.get("folder") or "drafts")) or "drafts"
        stored = add_mail(sb, box, raw, folder, received=None, draft=True)
        return _answer(box, stored, graph_mail.notify(sb, box, stored))


def move_mail(sb: Sandbox, request: Request, message_id: str) -> Response:
    """POST /_sandbox/outlook/mail/messages/<id>/move {account, folder}: the person files a mail
    (archive, deleteditems, junkemail, inbox...); its id stays, it is new to the folder it enters."""
    body, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        stored = box.messages.get(message_id)
        folder = folder_named(account, str(body.get("folder") or ""))
        if stored is None or folder is None:
            return json_response({"error": "no such message or folder"}, 404)
        move(box, stored, folder)
        return _answer(box, stored, graph_mail.notify(sb, box, stored))


def truth(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/outlook/mail/mailbox?account=: every message as stored (id, folder, isDraft,
    conversation, the headers that thread it, `raw` MIME in base64) and the delta epoch."""
    _, account = _body(request)
    with sb.state.lock:
        box = mailbox(sb, account)
        items = [
            {
                "id": m.id,
                "folder": m.folder,
                "isDraft": m.is_draft,
                "conversationId": m.conversation_id,
                "internetMessageId": m.message_id,
                "inReplyTo": m.header("In-Reply-To"),
                "references": m.header("References"),
                "subject": m.header("Subject"),
                "from": m.header("From"),
                "to": m.header("To"),
                "cc": m.header("Cc"),
                "receivedDateTime": graph_time_text(m.received),
                "raw": base64.b64encode(m.raw).decode("ascii"),
            }
            for m in sorted(box.messages.values(), key=lambda m: m.seq)
        ]
        return json_response({"address": box.address, "epoch": box.epoch, "messages": items})


def expire_delta(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/outlook/mail/delta/expire {account}: fault switch. Every message delta and skip
    token handed out so far answers 410 `syncStateNotFound` (Exchange drops old sync states)."""
    _, account = _body(request)
    with sb.state.lock:
        epoch = graph_mail.expire(sb, account)
    return json_response({"address": account, "epoch": epoch})


def lifecycle(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/outlook/mail/lifecycle {account, event, subscription_id?}: Graph sends a lifecycle
    notification (`reauthorizationRequired`, `subscriptionRemoved` or `missed`) to the lifecycle URL of
    every live mail subscription of the mailbox, or only of the one named. `subscriptionRemoved` also
    removes it at Graph, as Graph does."""
    body, account = _body(request)
    event = str(body.get("event") or "reauthorizationRequired")
    if event not in LIFECYCLE_EVENTS:
        return json_response({"error": f"event must be one of {', '.join(LIFECYCLE_EVENTS)}"}, 400)
    only = body.get("subscription_id")
    with sb.state.lock:
        chosen = [
            s
            for s in graph_store_of(sb).subscriptions.values()
            if not s.deleted
            and s.account.lower() == account
            and s.mail_folder
            and (only is None or s.id == only)
        ]
        sent = graph_notify.lifecycle(sb, chosen, event)
    return json_response({"sent": sent})


def routes() -> list[Route]:
    base = "/_sandbox/outlook/mail"
    return [
        Route(f"{base}/receive", ("POST",), receive, "control", None),
        Route(f"{base}/send", ("POST",), send_from_outlook, "control", None),
        Route(f"{base}/draft", ("POST",), save_draft, "control", None),
        Route(f"{base}/messages/<message_id>/move", ("POST",), move_mail, "control", None),
        Route(f"{base}/mailbox", ("GET",), truth, "control", None),
        Route(f"{base}/delta/expire", ("POST",), expire_delta, "control", None),
        Route(f"{base}/lifecycle", ("POST",), lifecycle, "control", None),
    ]
