"""Microsoft Graph mail: mail folders, messages (list, get, `$filter`, `$select`), attachments, message
delta, `sendMail` (JSON or MIME), `createReply` + PATCH + `send`, and the change notifications that
new messages send to subscriptions on `me/mailFolders('<folder>')/messages`.

What the product relies on, as Graph does it:

- `$filter` knows `receivedDateTime ge|gt <instant>` and `internetMessageId eq '<id>'` (others: 400).
  Lists are newest first; `$top` (default 10, at most 1000) pages with an `@odata.nextLink` (`$skip`).
- Bodies come as HTML unless `Prefer: outlook.body-content-type="text"`; `internetMessageHeaders`
  only when selected, and only on received mail. `Prefer: odata.maxpagesize` sets delta page sizes.
- Message delta is per folder: the first request may carry `changeType`, `$select` and a
  `receivedDateTime` filter, which live on in the tokens; pages follow `$skiptoken`, the round ends
  with a `$deltatoken` deltaLink; the next round lists what arrived in the folder since (moves in
  included; changes to and departures of messages are not listed). A token from before the expiry
  switch answers 410 `syncStateNotFound`; `$orderby`, `$search` and `$expand` are refused.
- `sendMail` with `Content-Type: text/plain` takes base64 MIME and keeps its Message-ID, In-Reply-To
  and References; the mail joins the conversation of a message it names. It answers 202 with no body;
  the copy lands in Sent Items. An address Exchange cannot resolve is 400 `ErrorInvalidRecipients`;
  a body over 4 MB is 413. `createReply` makes a draft (Exchange's own Message-ID) in the parent's
  conversation; `send` sends a draft.
"""

from __future__ import annotations

import base64
import binascii
import email
import html as html_lib
import re
import secrets
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import identity
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.errors import graph_error
from infra.local.sandbox.graph_mail_store import (
    FOLDERS,
    MailDeltaState,
    MailRound,
    OutlookMailbox,
    StoredMail,
    add_mail,
    folder_id,
    folder_named,
    mailbox,
    move,
    party,
    recipients,
    store_of,
)
from infra.local.sandbox.graph_store import graph_time_text
from infra.local.sandbox.graph_store import store_of as graph_store_of
from infra.local.sandbox.push import Delivery

READ_SCOPES = {"Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic"}
WRITE_SCOPES = {"Mail.ReadWrite"}
SEND_SCOPES = {"Mail.Send"}
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"
DEFAULT_PAGE = 10
MAX_PAGE = 1000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_SINCE = re.compile(r"^\s*receivedDateTime\s+(ge|gt)\s+(\S+)\s*$", re.I)
_MESSAGE_ID = re.compile(r"^\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*$", re.I)
_PAGE_SIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.I)
_TAGS = re.compile(r"<[^>]+>")


def _bad(code: str, message: str, status: int = 400) -> Reply:
    return Reply(graph_error(status, code, message))


def _not_found() -> Reply:
    return _bad("ErrorItemNotFound", "The specified object was not found in the store.", 404)


def _box(sb: Sandbox, request: Request, scopes: set[str]) -> OutlookMailbox:
    grant = require_token(sb, request, "microsoft", scopes)
    return mailbox(sb, grant.account)


def _folder(box: OutlookMailbox, value: str) -> str:
    name = folder_named(box.address, value)
    if name is None:
        raise _not_found()
    return name


def _prefers_text(request: Request) -> bool:
    raw = ",".join(request.headers.getlist("Prefer")).lower()
    return 'outlook.body-content-type="text"' in raw or "outlook.body-content-type=text" in raw


def _page_size(request: Request, default: int = DEFAULT_PAGE) -> int:
    raw = ",".join(request.headers.getlist("Prefer"))
    found = _PAGE_SIZE.search(raw)
    top = request.args.get("$top")
    try:
        size = int(top) if top else int(found.group(1)) if found else default
    except ValueError:
        raise _bad("BadRequest", f"Invalid $top value '{top}'.") from None
    return max(1, min(MAX_PAGE, size))


def _instant(raw: str) -> float:
    try:
        moment = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", raw.replace("z", "Z")))
    except ValueError:
        raise _bad("BadRequest", f"Invalid filter clause: '{raw}' is not a DateTimeOffset.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _matcher(raw: str | None) -> Any:
    """The `$filter` clauses Graph mail offers that the product uses; anything else is a 400."""
    if not raw:
        return lambda m: True
    since = _SINCE.match(raw)
    if since:
        moment = _instant(since.group(2))
        strict = since.group(1).lower() == "gt"
        return lambda m: m.received > moment if strict else m.received >= moment
    wanted = _MESSAGE_ID.match(raw)
    if wanted:
        value = wanted.group(1).replace("''", "'")
        return lambda m: m.message_id == value
    raise _bad("BadRequest", f"Invalid filter clause: {raw}")


def _since_of(raw: str | None) -> float | None:
    if not raw:
        return None
    since = _SINCE.match(raw)
    if since is None:
        raise _bad("BadRequest", f"The filter '{raw}' is not supported with delta.")
    return _instant(since.group(2))


# --- the message resource ------------------------------------------------------------------------


def _bodies(parsed: EmailMessage) -> tuple[str, str]:
    plain = parsed.get_body(preferencelist=("plain",))
    rich = parsed.get_body(preferencelist=("html",))
    text = plain.get_content() if plain is not None else ""
    html = rich.get_content() if rich is not None else ""
    if not text and html:
        text = html_lib.unescape(_TAGS.sub("", html))
    if not html:
        html = f"<html><body><div>{html_lib.escape(text)}</div></body></html>"
    return str(text), str(html)


def _attachments(stored: StoredMail) -> list[dict[str, Any]]:
    found = []
    for index, part in enumerate(stored.parsed.iter_attachments()):
        data = part.get_payload(decode=True)
        found.append(
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "id": f"AAMkAtt{index}" + stored.id[-12:],
                "name": part.get_filename() or "attachment",
                "contentType": part.get_content_type(),
                "size": len(data) if isinstance(data, bytes) else 0,
                "isInline": False,
                "lastModifiedDateTime": graph_time_text(stored.received),
            }
        )
    return found


def _sent_at(stored: StoredMail) -> float:
    try:
        return parsedate_to_datetime(stored.header("Date")).timestamp()
    except (TypeError, ValueError):
        return stored.received


def resource(
    stored: StoredMail, account: str, *, select: str | None = None, text_body: bool = False
) -> dict[str, Any]:
    """The message as Graph answers it (only `select`ed properties and the id, when given)."""
    parsed = stored.parsed
    text, html = _bodies(parsed)
    sender = party(stored.header("From"))
    found: dict[str, Any] = {
        "@odata.etag": f'W/"{stored.seq}"',
        "id": stored.id,
        "createdDateTime": graph_time_text(stored.received),
        "lastModifiedDateTime": graph_time_text(stored.received),
        "receivedDateTime": graph_time_text(stored.received),
        "sentDateTime": graph_time_text(_sent_at(stored)),
        "hasAttachments": any(True for _ in parsed.iter_attachments()),
        "internetMessageId": stored.message_id,
        "subject": stored.header("Subject"),
        "bodyPreview": " ".join(text.split())[:255],
        "importance": "normal",
        "parentFolderId": folder_id(account, stored.folder),
        "conversationId": stored.conversation_id,
        "isRead": stored.folder != "inbox",
        "isDraft": stored.is_draft,
        "body": {"contentType": "text", "content": text}
        if text_body
        else {"contentType": "html", "content": html},
        "sender": sender,
        "from": sender,
        "toRecipients": [party(formataddr(r)) for r in recipients(parsed, ("To",))],
        "ccRecipients": [party(formataddr(r)) for r in recipients(parsed, ("Cc",))],
        "bccRecipients": [party(formataddr(r)) for r in recipients(parsed, ("Bcc",))],
        "replyTo": [party(formataddr(r)) for r in recipients(parsed, ("Reply-To",))],
    }
    if not select:
        return found
    wanted = {s.strip() for s in select.split(",") if s.strip()}
    chosen = {k: v for k, v in found.items() if k in wanted or k in ("id", "@odata.etag")}
    if "internetMessageHeaders" in wanted and stored.folder not in ("sentitems", "drafts"):
        # Transport headers exist only on mail that travelled to this mailbox.
        chosen["internetMessageHeaders"] = [
            {"name": k, "value": " ".join(str(v).split())} for k, v in parsed.items()
        ]
    return chosen


# --- reading ------------------------------------------------------------------------------------


def _listing(sb: Sandbox, request: Request, box: OutlookMailbox, items: list[StoredMail]) -> Response:
    match = _matcher(request.args.get("$filter"))
    found = sorted((m for m in items if match(m)), key=lambda m: (m.received, m.seq), reverse=True)
    size = _page_size(request)
    try:
        skip = max(0, int(request.args.get("$skip", "0")))
    except ValueError:
        raise _bad("BadRequest", "Invalid $skip value.") from None
    page = found[skip : skip + size]
    answer: dict[str, Any] = {
        "@odata.context": f"{CONTEXT}#users('{box.address}')/messages",
        "value": [
            resource(m, box.address, select=request.args.get("$select"), text_body=_prefers_text(request))
            for m in page
        ],
    }
    if skip + size < len(found):
        args = {k: v for k, v in request.args.items() if k != "$skip"}
        answer["@odata.nextLink"] = f"{request.base_url}?{urlencode({**args, '$skip': skip + size})}"
    return json_response(answer)


def folder_item(sb: Sandbox, request: Request, folder: str) -> Response:
    """GET /me/mailFolders/{id or well-known name}: the folder (id, displayName, counts)."""
    with sb.state.lock:
        box = _box(sb, request, READ_SCOPES)
        name = _folder(box, folder)
        members = [m for m in box.messages.values() if m.folder == name]
        return json_response(
            {
                "@odata.context": f"{CONTEXT}#users('{box.address}')/mailFolders/$entity",
                "id": folder_id(box.address, name),
                "displayName": FOLDERS[name],
                "parentFolderId": folder_id(box.address, "msgfolderroot"),
                "childFolderCount": 0,
                "unreadItemCount": sum(1 for m in members if m.folder == "inbox"),
                "totalItemCount": len(members),
                "isHidden": False,
            }
        )


def folder_messages(sb: Sandbox, request: Request, folder: str) -> Response:
    """GET /me/mailFolders/{folder}/messages?$filter=&$select=&$top=&$skip= (newest first)."""
    with sb.state.lock:
        box = _box(sb, request, READ_SCOPES)
        name = _folder(box, folder)
        return _listing(sb, request, box, [m for m in box.messages.values() if m.folder == name])


def messages(sb: Sandbox, request: Request) -> Response:
    """GET /me/messages?$filter=&$select=&$top=&$skip=: every folder's messages (newest first)."""
    with sb.state.lock:
        box = _box(sb, request, READ_SCOPES)
        return _listing(sb, request, box, list(box.messages.values()))


def message_item(sb: Sandbox, request: Request, message_id: str) -> Response:
    """GET (with `$select`) or PATCH (a draft's subject, body, toRecipients, ccRecipients) one message."""
    body = read_json(request) if request.method == "PATCH" else None
    with sb.state.lock:
        box = _box(sb, request, WRITE_SCOPES if request.method == "PATCH" else READ_SCOPES)
        stored = box.messages.get(message_id)
        if stored is None:
            raise _not_found()
        if request.method == "PATCH":
            if not stored.is_draft:
                raise _bad("ErrorInvalidOperation", "Only a draft can be changed this way.")
            stored.raw = _patched(stored.parsed, body or {}).as_bytes()
            box.seq += 1
            stored.seq = box.seq
        return json_response(
            resource(
                stored, box.address, select=request.args.get("$select"), text_body=_prefers_text(request)
            )
        )


def attachments(sb: Sandbox, request: Request, message_id: str) -> Response:
    """GET /me/messages/{id}/attachments?$select=name,contentType,size: metadata, never inline bytes here."""
    with sb.state.lock:
        box = _box(sb, request, READ_SCOPES)
        stored = box.messages.get(message_id)
        if stored is None:
            raise _not_found()
        items = _attachments(stored)
        select = request.args.get("$select")
        if select:
            wanted = {s.strip() for s in select.split(",")} | {"id", "@odata.type"}
            items = [{k: v for k, v in item.items() if k in wanted} for item in items]
        return json_response({"@odata.context": f"{CONTEXT}#attachments", "value": items})


# --- delta --------------------------------------------------------------------------------------


def _gone() -> Reply:
    return _bad(
        "syncStateNotFound",
        "The sync state generation is not found. Restart the sync with a new delta request.",
        410,
    )


def delta(sb: Sandbox, request: Request, folder: str) -> Response:
    """GET /me/mailFolders/{folder}/messages/delta[?changeType=&$select=&$filter=receivedDateTime ge ...]:
    one page of the folder's round; `$skiptoken` / `$deltatoken` continue. Stale tokens: 410."""
    refused = [name for name in ("$orderby", "$search", "$expand") if name in request.args]
    if refused:
        raise _bad("ErrorInvalidUrlQuery", f"The query parameter '{refused[0]}' is not supported with delta.")
    size = _page_size(request)
    text_body = _prefers_text(request)
    with sb.state.lock:
        box = _box(sb, request, READ_SCOPES)
        store = store_of(sb)
        skip, token = request.args.get("$skiptoken"), request.args.get("$deltatoken")
        if skip:
            round_id, _, offset_text = skip.rpartition(".")
            found = store.rounds.get(round_id)
            if (
                found is None
                or found.epoch != box.epoch
                or found.account != box.address
                or not offset_text.isdigit()
            ):
                raise _gone()
            offset = int(offset_text)
        else:
            if token:
                state = store.delta_states.get(token)
                if state is None or state.epoch != box.epoch or state.account != box.address:
                    raise _gone()
            else:
                change = request.args.get("changeType")
                if change not in (None, "created", "updated", "deleted"):
                    raise _bad("BadRequest", f"Invalid changeType '{change}'.")
                state = MailDeltaState(
                    account=box.address,
                    folder=_folder(box, folder),
                    change_type=change,
                    since=_since_of(request.args.get("$filter")),
                    select=request.args.get("$select"),
                    seq=-1,
                    epoch=box.epoch,
                )
            found, offset = _round(box, store, state, text_body), 0
        chunk = found.items[offset : offset + size]
        round_id = skip.rpartition(".")[0] if skip else store.keep_round(found)
    answer: dict[str, Any] = {"@odata.context": f"{CONTEXT}#Collection(message)", "value": chunk}
    if offset + size < len(found.items):
        answer["@odata.nextLink"] = f"{request.base_url}?$skiptoken={round_id}.{offset + size}"
    else:
        answer["@odata.deltaLink"] = f"{request.base_url}?$deltatoken={found.state}"
    return json_response(answer)


def _round(box: OutlookMailbox, store: Any, state: MailDeltaState, text_body: bool) -> MailRound:
    """What arrived in the state's folder since it was made, and the state the next round starts from."""
    items = []
    if state.change_type in (None, "created"):
        arrived = [
            m
            for m in box.messages.values()
            if m.folder == state.folder
            and m.seq > state.seq
            and (state.since is None or m.received >= state.since)
        ]
        arrived.sort(key=lambda m: m.seq)
        items = [resource(m, box.address, select=state.select, text_body=text_body) for m in arrived]
    after = MailDeltaState(
        state.account, state.folder, state.change_type, state.since, state.select, box.seq, box.epoch
    )
    return MailRound(items=items, state=store.keep_state(after), epoch=box.epoch, account=box.address)


def expire(sb: Sandbox, account: str) -> int:
    """Kill every delta and skip token of one mailbox (callers hold the lock); the new epoch."""
    box = mailbox(sb, account)
    box.epoch += 1
    return box.epoch


# --- sending ------------------------------------------------------------------------------------


def _check_recipients(parsed: EmailMessage) -> None:
    found = recipients(parsed)
    if not found:
        raise _bad(
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., "
            "A message can't be sent because it contains no recipients.",
        )
    for _display, address in found:
        if not _ADDRESS.fullmatch(address):
            raise _bad(
                "ErrorInvalidRecipients",
                f"At least one recipient is not valid., Recipient '{address}' is not resolved. "
                "All recipients must be resolved before a message can be submitted.",
            )


def _exchange_message_id(account: str) -> str:
    return make_msgid(secrets.token_hex(10).upper(), "EUR01.PROD.OUTLOOK.COM")


def _from_json(account: str, message: dict[str, Any]) -> EmailMessage:
    """A JSON message (subject, body, toRecipients, ccRecipients, bccRecipients) as MIME."""

    def addresses(key: str) -> str:
        values = message.get(key) or []
        written = []
        for item in values if isinstance(values, list) else []:
            found = item.get("emailAddress") if isinstance(item, dict) else None
            if isinstance(found, dict) and found.get("address"):
                written.append(formataddr((str(found.get("name") or ""), str(found["address"]))))
        return ", ".join(written)

    built = EmailMessage()
    for header, key in (("To", "toRecipients"), ("Cc", "ccRecipients"), ("Bcc", "bccRecipients")):
        value = addresses(key)
        if value:
            built[header] = value
    built["Subject"] = str(message.get("subject") or "")
    for extra in message.get("internetMessageHeaders") or []:
        name = str(extra.get("name") or "") if isinstance(extra, dict) else ""
        if not name.lower().startswith("x-"):
            raise _bad(
                "InvalidInternetMessageHeader", "The internet message header name should start with 'x-'."
            )
        built[name] = str(extra.get("value") or "")
    body = message.get("body") if isinstance(message.get("body"), dict) else {}
    content = str((body or {}).get("content") or "")
    if str((body or {}).get("contentType") or "text").lower() == "html":
        built.set_content(content, subtype="html")
    else:
        built.set_content(content or " ")
    return built


def _send(sb: Sandbox, box: OutlookMailbox, parsed: EmailMessage) -> StoredMail:
    """Send as the mailbox: From is the account, a Message-ID is kept or given; lands in Sent Items."""
    _check_recipients(parsed)
    del parsed["From"]
    parsed["From"] = formataddr((identity.microsoft_profile(box.address)["displayName"], box.address))
    if "Date" not in parsed:
        parsed["Date"] = format_datetime(datetime.fromtimestamp(sb.now(), UTC))
    if not str(parsed.get("Message-ID") or "").strip():
        parsed["Message-ID"] = _exchange_message_id(box.address)
    stored = add_mail(sb, box, parsed.as_bytes(), "sentitems", received=sb.now())
    notify(sb, box, stored)
    return stored


def send_mail(sb: Sandbox, request: Request) -> Response:
    """POST /me/sendMail: JSON `{message, saveToSentItems}` or, with `Content-Type: text/plain`, the
    base64 MIME message (its Message-ID, In-Reply-To and References kept). 202, no body."""
    mime = request.mimetype == "text/plain"
    raw = request.get_data()
    if len(raw) > MAX_REQUEST_BYTES:
        raise _bad("RequestEntityTooLarge", "The request is larger than 4 MB.", 413)
    if mime:
        try:
            decoded = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _bad(
                "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
            ) from None
        parsed = email.message_from_bytes(decoded, policy=policy.default)
    else:
        body = read_json(request)
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            raise _bad("ErrorInvalidRequest", "The message is required.")
        parsed = None
    with sb.state.lock:
        box = _box(sb, request, SEND_SCOPES)
        if parsed is None:
            parsed = _from_json(box.address, message)  # type: ignore[arg-type]
        assert isinstance(parsed, EmailMessage)
        _send(sb, box, parsed)
    return Response(status=202)


def create_reply(sb: Sandbox, request: Request, message_id: str) -> Response:
    """POST /me/messages/{id}/createReply [{comment}]: a reply draft in Drafts, addressed to the sender,
    `RE:` subject, In-Reply-To / References and the parent's conversation, Exchange's own Message-ID."""
    body = read_json(request) or {}
    with sb.state.lock:
        box = _box(sb, request, WRITE_SCOPES)
        parent = box.messages.get(message_id)
        if parent is None:
            raise _not_found()
        draft = EmailMessage()
        draft["From"] = box.address
        draft["To"] = parent.header("Reply-To") or parent.header("From")
        subject = parent.header("Subject")
        draft["Subject"] = subject if subject.lower().startswith("re:") else f"RE: {subject}"
        draft["Message-ID"] = _exchange_message_id(box.address)
        if parent.message_id:
            draft["In-Reply-To"] = parent.message_id
            draft["References"] = " ".join([*parent.header("References").split(), parent.message_id])
        draft.set_content(str(body.get("comment") or " "))
        stored = add_mail(sb, box, draft.as_bytes(), "drafts", received=sb.now(), draft=True)
        return json_response(resource(stored, box.address), status=201)


def _patched(parsed: EmailMessage, body: dict[str, Any]) -> EmailMessage:
    changed = _from_json("", {**body, "subject": body.get("subject", parsed.get("Subject") or "")})
    for header in ("From", "Message-ID", "In-Reply-To", "References"):
        if parsed.get(header) is not None:
            changed[header] = str(parsed[header])
    for header in ("To", "Cc"):
        key = "toRecipients" if header == "To" else "ccRecipients"
        if key not in body and parsed.get(header) is not None:
            changed[header] = str(parsed[header])
    if "body" not in body:
        text, _html = _bodies(parsed)
        changed.set_content(text or " ")
    return changed


def send_draft(sb: Sandbox, request: Request, message_id: str) -> Response:
    """POST /me/messages/{id}/send: a draft is sent (moved to Sent Items, Message-ID kept). 202."""
    with sb.state.lock:
        box = _box(sb, request, SEND_SCOPES)
        stored = box.messages.get(message_id)
        if stored is None:
            raise _not_found()
        if not stored.is_draft:
            raise _bad("ErrorInvalidOperation", "Only a draft can be sent.")
        _check_recipients(stored.parsed)
        stored.is_draft = False
        stored.received = sb.now()
        move(box, stored, "sentitems")
        notify(sb, box, stored)
    return Response(status=202)


# --- change notifications -----------------------------------------------------------------------


def notify(sb: Sandbox, box: OutlookMailbox, stored: StoredMail, change: str = "created") -> int:
    """One notification per live subscription on the message's folder that asked for `change`
    (callers hold the state lock); how many were queued."""
    now = sb.now()
    profile = identity.microsoft_profile(box.address)
    path = f"Users/{profile['id']}/Messages/{stored.id}"
    queued = 0
    for subscription in graph_store_of(sb).subscriptions.values():
        if (
            subscription.deleted
            or subscription.expires_at <= now
            or subscription.account.lower() != box.address
            or subscription.mail_folder not in (stored.folder, "*")
            or change not in subscription.change_types
        ):
            continue
        item = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_time_text(subscription.expires_at),
            "changeType": change,
            "resource": path,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Message",
                "@odata.id": path,
                "@odata.etag": f'W/"{stored.seq}"',
                "id": stored.id,
            },
            "clientState": subscription.client_state,
            "tenantId": profile["tid"],
        }
        post_notification(sb, subscription.notification_url, {"value": [item]}, f"microsoft:mail:{change}")
        queued += 1
    return queued


def post_notification(sb: Sandbox, url: str, payload: dict[str, Any], label: str) -> None:
    """Queue one `{"value": [...]}` POST from the push thread."""
    import json

    raw = json.dumps(payload, separators=(",", ":")).encode()
    sb.pushes.submit(
        Delivery(url=url, headers={"Content-Type": "application/json; charset=utf-8"}, body=raw, label=label)
    )


def routes() -> list[Route]:
    base = "/microsoft/graph/v1.0/me"
    api, app = "api", "microsoft"
    return [
        Route(f"{base}/mailFolders/<folder>", ("GET",), folder_item, api, app),
        Route(f"{base}/mailFolders/<folder>/messages", ("GET",), folder_messages, api, app),
        Route(f"{base}/mailFolders/<folder>/messages/delta", ("GET",), delta, api, app),
        Route(f"{base}/messages", ("GET",), messages, api, app),
        Route(f"{base}/messages/<message_id>", ("GET", "PATCH"), message_item, api, app),
        Route(f"{base}/messages/<message_id>/attachments", ("GET",), attachments, api, app),
        Route(f"{base}/messages/<message_id>/createReply", ("POST",), create_reply, api, app),
        Route(f"{base}/messages/<message_id>/send", ("POST",), send_draft, api, app),
        Route(f"{base}/sendMail", ("POST",), send_mail, api, app),
    ]
