"""Gmail `users.getProfile`, `users.watch` / `users.stop`, mailbox history ids, and the Pub/Sub pushes
a new message sends.

Messages, history, sends and the person's own acts are in gmail_store, gmail_api and gmail_person.
Semantics follow /work/shared/providers/calendar-email.md §3.3-3.4: the topic must be
`projects/<the OAuth client's project>/topics/<t>`; the answer is `{historyId, expiration}` (epoch ms as a
string, 7 days ahead); a successful watch publishes one notification at once; a watch again replaces the
previous one. Pushes go to the Pub/Sub push endpoint (the gateway's `/webhooks/gmail`), with Pub/Sub's
OIDC token in `Authorization`.
"""

from __future__ import annotations

import re

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import gmail_api, gmail_person
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.gmail_store import Mailbox, Watch, mailbox, push, store_of, watched
from infra.local.sandbox.keys import GOOGLE_PROJECT

READ_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.metadata",
}
WATCH_TTL_MS = 7 * 24 * 3600 * 1000
_TOPIC = re.compile(
    r"projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/topics/(?P<topic>[A-Za-z][\w.~+%-]{2,254})"
)


def _own_mailbox(sb: Sandbox, request: Request, user_id: str) -> tuple[Mailbox, str]:
    grant = require_token(sb, request, "google", READ_SCOPES)
    if user_id not in ("me", grant.account):
        raise Reply(google_error(403, "forbidden", "Delegation denied for " + grant.account))
    with sb.state.lock:
        return mailbox(sb, grant.account), grant.client_id


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
        push(sb, box)
    return json_response({"historyId": str(history_id), "expiration": str(expiration)})


def stop(sb: Sandbox, request: Request, user_id: str) -> Response:
    """POST /users/{userId}/stop: no more notifications for this mailbox (204 even without a watch)."""
    box, _client_id = _own_mailbox(sb, request, user_id)
    with sb.state.lock:
        box.watch = None
    return Response(status=204)


def control_message(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/gmail/messages {account[, labelIds]}: a message arrives; watched mailboxes push.

    A short mail from someone@example.net (no contact of anyone); for a mail of your choosing use
    /_sandbox/gmail/receive."""
    body = read_json(request) or {}
    account = str(body.get("account") or "alex@example.com")
    labels = body.get("labelIds") or ["INBOX", "UNREAD"]
    if not isinstance(labels, list):
        return json_response({"error": "labelIds must be a list"}, 400)
    with sb.state.lock:
        box = mailbox(sb, account)
        raw = gmail_person.compose(
            sender="someone@example.net",
            sender_name="",
            to=[box.address],
            cc=[],
            subject="Hello",
            text="Hi.\n",
        )
        labels = [str(label) for label in labels]
        pushed = watched(box, labels, int(sb.now() * 1000))
        stored = gmail_person.arrive(sb, box, raw, labels, thread_id=None)
        return json_response(
            {
                "emailAddress": box.address,
                "historyId": str(box.history_id),
                "pushed": pushed,
                "id": stored.id,
            },
            status=201,
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
        *gmail_api.routes(base),
        Route("/_sandbox/gmail/messages", ("POST",), control_message, "control", None),
        Route("/_sandbox/gmail/watches", ("GET",), control_watches, "control", None),
        *gmail_person.routes(),
    ]
