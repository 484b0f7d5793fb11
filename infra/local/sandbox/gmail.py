"""Gmail `users.getProfile`, `users.watch` / `users.stop`, mailbox history ids, and the Pub/Sub pushes
a new message sends.

Semantics follow /work/shared/providers/calendar-email.md §3.3-3.4: the topic must be
`projects/<the OAuth client's project>/topics/<t>`; the answer is `{historyId, expiration}` (epoch ms as a
string, 7 days ahead); a successful watch publishes one notification at once; a watch again replaces the
previous one. Pushes go to the Pub/Sub push endpoint (the gateway's `/webhooks/gmail`), with Pub/Sub's
OIDC token in `Authorization`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.auth import require_token
from infra.local.sandbox.control import pubsub_jwt
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.keys import GOOGLE_PROJECT
from infra.local.sandbox.push import Delivery

READ_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.metadata",
}
WATCH_TTL_MS = 7 * 24 * 3600 * 1000
FIRST_HISTORY_ID = 1000
_TOPIC = re.compile(
    r"projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/topics/(?P<topic>[A-Za-z][\w.~+%-]{2,254})"
)
PUSH_SUBSCRIPTION = f"projects/{GOOGLE_PROJECT}/subscriptions/gmail-push"


@dataclass
class Watch:
    topic: str
    label_ids: tuple[str, ...]
    include: bool
    expiration_ms: int
    client_id: str


@dataclass
class Mailbox:
    address: str
    history_id: int = FIRST_HISTORY_ID
    watch: Watch | None = None


@dataclass
class GmailStore:
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)


def store_of(sb: Sandbox) -> GmailStore:
    """The Gmail store (callers hold the state lock)."""
    store = sb.state.extensions.get("gmail")
    if not isinstance(store, GmailStore):
        store = GmailStore()
        sb.state.extensions["gmail"] = store
    return store


def mailbox(sb: Sandbox, address: str) -> Mailbox:
    """The account's mailbox, made on first use (callers hold the state lock)."""
    return store_of(sb).mailboxes.setdefault(address.lower(), Mailbox(address.lower()))


def _own_mailbox(sb: Sandbox, request: Request, user_id: str) -> tuple[Mailbox, str]:
    grant = require_token(sb, request, "google", READ_SCOPES)
    if user_id not in ("me", grant.account):
        raise Reply(google_error(403, "forbidden", "Delegation denied for " + grant.account))
    with sb.state.lock:
        return mailbox(sb, grant.account), grant.client_id


def _push(sb: Sandbox, box: Mailbox) -> None:
    """Publish `{emailAddress, historyId}` to the topic; Pub/Sub pushes it to the receiver."""
    now = sb.now()
    data = json.dumps({"emailAddress": box.address, "historyId": box.history_id}).encode()
    message_id = str(secrets.randbelow(10**16))
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": _rfc3339(now),
            "publish_time": _rfc3339(now),
            "attributes": {},
        },
        "subscription": PUSH_SUBSCRIPTION,
    }
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
        "Authorization": f"Bearer {pubsub_jwt(now)}",
    }
    sb.pushes.submit(
        Delivery(url=sb.config.webhook_url("gmail"), headers=headers, body=raw, label="gmail:push")
    )


def _rfc3339(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


PROFILE_SCOPES = {
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
}


def profile(sb: Sandbox, request: Request, user_id: str) -> Response:
    """GET /users/{userId}/profile: the address and the mailbox's current history id."""
    grant = require_token(sb, request, "google", PROFILE_SCOPES)
    if user_id not in ("me", grant.account):
        return google_error(403, "forbidden", "Delegation denied for " + grant.account)
    with sb.state.lock:
        history_id = mailbox(sb, grant.account).history_id
    return json_response(
        {"emailAddress": grant.account, "messagesTotal": 42, "threadsTotal": 30, "historyId": str(history_id)}
    )


def watch(sb: Sandbox, request: Request, user_id: str) -> Response:
    """POST /users/{userId}/watch {topicName, labelIds, labelFilterBehavior} → {historyId, expiration}."""
    box, client_id = _own_mailbox(sb, request, user_id)
    body = read_json(request)
    if body is None:
        return google_error(400, "parseError", "Parse Error")
    topic = body.get("topicName")
    if not isinstance(topic, str) or not topic:
        return google_error(400, "invalidArgument", "Invalid topicName does not match projects/*/topics/*")
    match = _TOPIC.fullmatch(topic)
    if match is None or match.group("project") != GOOGLE_PROJECT:
        return google_error(
            400, "invalidArgument", f"Invalid topicName does not match projects/{GOOGLE_PROJECT}/topics/*"
        )
    labels = body.get("labelIds") or []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return google_error(400, "invalidArgument", "Invalid value for: labelIds")
    behavior = str(body.get("labelFilterBehavior") or body.get("labelFilterAction") or "include").lower()
    if behavior not in ("include", "exclude"):
        return google_error(400, "invalidArgument", f"Invalid value for: labelFilterBehavior ({behavior})")
    with sb.state.lock:
        expiration = int(sb.now() * 1000) + WATCH_TTL_MS
        box.watch = Watch(topic, tuple(labels), behavior == "include", expiration, client_id)
        history_id = box.history_id
        # Gmail publishes one notification as soon as a watch succeeds.
        _push(sb, box)
    return json_response({"historyId": str(history_id), "expiration": str(expiration)})


def stop(sb: Sandbox, request: Request, user_id: str) -> Response:
    """POST /users/{userId}/stop: no more notifications for this mailbox (204 even without a watch)."""
    box, _client_id = _own_mailbox(sb, request, user_id)
    with sb.state.lock:
        box.watch = None
    return Response(status=204)


def _watched(box: Mailbox, labels: list[str], now_ms: int) -> bool:
    watch = box.watch
    if watch is None or watch.expiration_ms <= now_ms:
        return False
    if not watch.label_ids:
        return True
    overlap = bool(set(watch.label_ids) & set(labels))
    return overlap if watch.include else not overlap


def control_message(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/gmail/messages {account[, labelIds]}: a message arrives; watched mailboxes push."""
    body = read_json(request) or {}
    account = str(body.get("account") or "alex@example.com")
    labels = body.get("labelIds") or ["INBOX", "UNREAD"]
    if not isinstance(labels, list):
        return json_response({"error": "labelIds must be a list"}, 400)
    with sb.state.lock:
        box = mailbox(sb, account)
        # History ids grow, but not one by one.
        box.history_id += 1 + secrets.randbelow(5)
        pushed = _watched(box, [str(label) for label in labels], int(sb.now() * 1000))
        if pushed:
            _push(sb, box)
        return json_response(
            {"emailAddress": box.address, "historyId": str(box.history_id), "pushed": pushed}, status=201
        )


def control_watches(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/gmail/watches: each mailbox's history id and watch."""
    with sb.state.lock:
        items = [
            {
                "emailAddress": box.address,
                "historyId": str(box.history_id),
                "watch": None
                if box.watch is None
                else {
                    "topicName": box.watch.topic,
                    "labelIds": list(box.watch.label_ids),
                    "labelFilterBehavior": "include" if box.watch.include else "exclude",
                    "expiration": str(box.watch.expiration_ms),
                },
            }
            for box in store_of(sb).mailboxes.values()
        ]
    return json_response({"mailboxes": items})


def routes() -> list[Route]:
    base = "/google/gmail/v1/users/<user_id>"
    return [
        Route(f"{base}/profile", ("GET",), profile, "api", "google"),
        Route(f"{base}/watch", ("POST",), watch, "api", "google"),
        Route(f"{base}/stop", ("POST",), stop, "api", "google"),
        Route("/_sandbox/gmail/messages", ("POST",), control_message, "control", None),
        Route("/_sandbox/gmail/watches", ("GET",), control_watches, "control", None),
    ]
