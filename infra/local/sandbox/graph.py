"""Microsoft Graph: change-notification subscriptions (create with the validationToken handshake, list,
get, renew, delete) and the routes of the Graph stand-in. Events live in `graph_store`, are written by
`graph_writes`, served by `graph_events` and `graph_delta`, notified by `graph_notify`, and changed as
the person by `graph_person`.

Semantics follow /work/shared/providers/calendar-email.md §4.5: creation POSTs
`notificationUrl?validationToken=…` (and the lifecycle URL) synchronously and fails with 400 unless the
token comes back as text/plain with 200 within the timeout; Outlook events allow at most 10,080 minutes;
an expiry under 45 minutes ahead is raised to 45; notifications are `{"value": [...]}` batches.
Mail resources (`me/mailFolders('Inbox')/messages`, `me/mailFolders/{id}/messages`, `me/messages`)
need a Mail scope; their notifications come from `graph_mail`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import (
    graph_delta,
    graph_events,
    graph_mail,
    graph_mail_person,
    graph_person,
    graph_writes,
    identity,
)
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.errors import graph_error
from infra.local.sandbox.graph_events import chosen_calendar
from infra.local.sandbox.graph_mail_store import folder_named
from infra.local.sandbox.graph_store import (
    default_calendar_id,
    graph_time_text,
    store_of,
    writable_calendars,
)
from infra.local.sandbox.push import is_loopback_url

READ_SCOPES = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_SCOPES = {"Calendars.ReadWrite"}
CHANGE_TYPES = ("created", "updated", "deleted")
# Outlook event subscriptions, basic notifications (no resource data).
MAX_LIFETIME = timedelta(minutes=10_080)
MIN_LIFETIME = timedelta(minutes=45)
MAX_CLIENT_STATE = 128
_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"
# `me/events`, `me/calendars/{id}/events`, and the same under `users/{id or upn}`.
_RESOURCE = re.compile(r"/?(?:me|users/(?P<user>[^/]+))/(?:calendars/(?P<calendar>[^/]+)/)?events", re.I)
_MAIL_RESOURCE = re.compile(
    r"/?(?:me|users/(?P<user>[^/]+))/(?:mailFolders(?:\('(?P<quoted>[^']+)'\)|/(?P<folder>[^/]+))/)?messages",
    re.I,
)
# A mail subscription on `me/messages` watches every folder.
ALL_FOLDERS = "*"


@dataclass
class GraphSubscription:
    id: str
    resource: str
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires_at: float
    account: str
    client_id: str
    calendar_id: str
    created_at: float
    deleted: bool = False
    # The well-known mail folder a message subscription watches (ALL_FOLDERS for `me/messages`).
    mail_folder: str | None = None

    def public(self, now: float) -> dict[str, Any]:
        profile = identity.microsoft_profile(self.account)
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.client_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time_text(self.expires_at),
            "creatorId": profile["id"],
            "includeResourceData": None,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


@dataclass
class Handshake:
    """One validation request made at subscription creation (for tests and people to inspect)."""

    url: str
    token: str
    status: int | None
    error: str | None
    ok: bool

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "error": self.error, "ok": self.ok}


def _bad(message: str, code: str = "InvalidRequest", status: int = 400) -> Reply:
    return Reply(graph_error(status, code, message))


def _body(request: Request) -> dict[str, Any]:
    body = read_json(request)
    if body is None:
        raise _bad("Empty Payload. JSON content expected.", "BadRequest")
    return body


def _parse_time(value: Any) -> float:
    if not isinstance(value, str) or not value:
        raise _bad("expirationDateTime is a required property for subscription creation.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _bad(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _expiry(sb: Sandbox, value: Any) -> float:
    """The requested expiry, refused beyond the maximum or in the past, raised to the minimum."""
    requested, now = _parse_time(value), sb.now()
    if requested <= now:
        raise _bad("Subscription expiration date time is in the past.", "ExtensionError")
    if requested - now > MAX_LIFETIME.total_seconds():
        minutes = int(MAX_LIFETIME.total_seconds() // 60)
        raise _bad(f"Subscription expiration can only be {minutes} minutes in the future.", "ExtensionError")
    return max(requested, now + MIN_LIFETIME.total_seconds())


def _calendar_for(account: str, resource: str) -> str:
    """The calendar a subscription resource watches (400/404 in Graph's words when it names none)."""
    match = _RESOURCE.fullmatch(resource.strip())
    if match is None:
        raise _bad(f"Resource '{resource}' is not supported for change notifications.", "ExtensionError")
    user = match.group("user")
    profile = identity.microsoft_profile(account)
    if user is not None and unquote(user).lower() not in (account.lower(), profile["id"].lower()):
        # Delegated tokens may only watch their own mailbox without admin-granted Calendars.Read.Shared.
        raise _bad("Access is denied. Check credentials and try again.", "ErrorAccessDenied", 403)
    chosen = match.group("calendar")
    if chosen is None:
        return default_calendar_id(account)
    chosen = unquote(chosen)
    if chosen not in writable_calendars(account):
        raise _bad("The specified object was not found in the store.", "ErrorItemNotFound", 404)
    return chosen


def _mail_folder_for(grant: Any, resource: str) -> str | None:
    """The mail folder a subscription resource watches; None when it is no mail resource."""
    match = _MAIL_RESOURCE.fullmatch(resource.strip())
    if match is None:
        return None
    user = match.group("user")
    profile = identity.microsoft_profile(grant.account)
    if user is not None and unquote(user).lower() not in (grant.account.lower(), profile["id"].lower()):
        raise _bad("Access is denied. Check credentials and try again.", "ErrorAccessDenied", 403)
    if not graph_mail.READ_SCOPES & set(grant.scopes):
        raise _bad("Access is denied. Check credentials and try again.", "ExtensionError", 403)
    chosen = match.group("quoted") or match.group("folder")
    if chosen is None:
        return ALL_FOLDERS
    name = folder_named(grant.account, unquote(chosen))
    if name is None:
        raise _bad("The specified object was not found in the store.", "ErrorItemNotFound", 404)
    return name


def _validate_url(sb: Sandbox, url: str) -> Handshake:
    """POST `url?validationToken=…` and check the echo (the caller must not hold the state lock)."""
    import requests

    # Shaped like Graph's own tokens: spaces and colons, so a receiver that echoes it still encoded fails.
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    if not is_loopback_url(url):
        return Handshake(url, token, None, "refused: not a loopback address", False)
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.post(
            url,
            params={"validationToken": token},
            data=b"",
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=sb.config.graph_validation_timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Handshake(url, token, None, type(exc).__name__, False)
    finally:
        session.close()
    ok = (
        response.status_code == 200
        and response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower() == "text/plain"
        and response.text == token
    )
    return Handshake(url, token, response.status_code, None if ok else "unexpected answer", ok)


def _handshakes_pass(sb: Sandbox, urls: list[str]) -> Handshake | None:
    """Validate every URL; the first failure, or None when all echoed their token."""
    for url in dict.fromkeys(urls):
        handshake = _validate_url(sb, url)
        with sb.state.lock:
            store_of(sb).handshakes.append(handshake)
        if not handshake.ok:
            return handshake
    return None


def _owned(sb: Sandbox, request: Request, subscription_id: str) -> tuple[GraphSubscription, Any]:
    """A live subscription created by this app (others, deleted and expired ones are not found)."""
    grant = require_token(sb, request, "microsoft")
    found = store_of(sb).subscriptions.get(subscription_id)
    if (
        found is None
        or found.deleted
        or found.expires_at <= sb.now()
        or found.client_id != grant.client_id
        or found.account != grant.account
    ):
        raise _bad(f"The object was not found. Subscription '{subscription_id}'.", "ResourceNotFound", 404)
    return found, grant


# --- Subscriptions ---------------------------------------------------------------------------------


def create_subscription(sb: Sandbox, request: Request) -> Response:
    """POST /subscriptions: validate the body, run the handshake(s), then 201 with the subscription."""
    grant = require_token(sb, request, "microsoft", READ_SCOPES | graph_mail.READ_SCOPES)
    body = _body(request)
    raw_types = body.get("changeType")
    if not isinstance(raw_types, str) or not raw_types.strip():
        raise _bad("changeType is a required property for subscription creation.")
    change_types = tuple(dict.fromkeys(t.strip() for t in raw_types.split(",")))
    if any(t not in CHANGE_TYPES for t in change_types):
        raise _bad(f"Invalid changeType '{raw_types}'.", "ExtensionError")
    url = body.get("notificationUrl")
    if not isinstance(url, str) or not url:
        raise _bad("notificationUrl is a required property for subscription creation.")
    lifecycle = body.get("lifecycleNotificationUrl")
    if lifecycle is not None and (not isinstance(lifecycle, str) or not lifecycle):
        raise _bad("Invalid lifecycleNotificationUrl.")
    resource = body.get("resource")
    if not isinstance(resource, str) or not resource:
        raise _bad("resource is a required property for subscription creation.")
    client_state = body.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE
    ):
        raise _bad(
            f"clientState must be a string of at most {MAX_CLIENT_STATE} characters.", "ExtensionError"
        )
    mail_folder = _mail_folder_for(grant, resource)
    if mail_folder is None and not READ_SCOPES & set(grant.scopes):
        raise _bad("Access is denied. Check credentials and try again.", "ExtensionError", 403)
    calendar = "" if mail_folder is not None else _calendar_for(grant.account, resource)
    expires_at = _expiry(sb, body.get("expirationDateTime"))
    # The handshake runs outside the lock: the receiver may take its time (up to the timeout).
    failed = _handshakes_pass(sb, [url, *([lifecycle] if isinstance(lifecycle, str) else [])])
    if failed is not None:
        reason = "timed out" if failed.error in ("ReadTimeout", "ConnectTimeout") else "failed"
        return graph_error(
            400,
            "ValidationError",
            f"Subscription validation request {reason}. Notification endpoint must respond with 200 OK "
            "to validation request.",
        )
    with sb.state.lock:
        subscription = GraphSubscription(
            id=str(uuid.uuid4()),
            resource=resource,
            change_types=change_types,
            notification_url=url,
            lifecycle_url=lifecycle if isinstance(lifecycle, str) else None,
            client_state=client_state,
            expires_at=expires_at,
            account=grant.account,
            client_id=grant.client_id,
            calendar_id=calendar,
            created_at=sb.now(),
            mail_folder=mail_folder,
        )
        store_of(sb).subscriptions[subscription.id] = subscription
        answer = {"@odata.context": f"{_CONTEXT}#subscriptions/$entity", **subscription.public(sb.now())}
    return json_response(answer, status=201)


def list_subscriptions(sb: Sandbox, request: Request) -> Response:
    """GET /subscriptions: this app's live subscriptions for the signed-in user."""
    grant = require_token(sb, request, "microsoft")
    now = sb.now()
    with sb.state.lock:
        items = [
            s.public(now)
            for s in store_of(sb).subscriptions.values()
            if not s.deleted
            and s.expires_at > now
            and s.client_id == grant.client_id
            and s.account == grant.account
        ]
    return json_response({"@odata.context": f"{_CONTEXT}#subscriptions", "value": items})


def subscription_item(sb: Sandbox, request: Request, subscription_id: str) -> Response:
    """GET, PATCH (renew: `expirationDateTime` only) and DELETE one subscription."""
    body = _body(request) if request.method == "PATCH" else {}
    with sb.state.lock:
        subscription, _grant = _owned(sb, request, subscription_id)
        if request.method == "DELETE":
            subscription.deleted = True
            return Response(status=204)
        if request.method == "PATCH":
            if "expirationDateTime" not in body:
                raise _bad("expirationDateTime is required to renew a subscription.")
            subscription.expires_at = _expiry(sb, body["expirationDateTime"])
        answer = {"@odata.context": f"{_CONTEXT}#subscriptions/$entity", **subscription.public(sb.now())}
    return json_response(answer)


# --- Control ---------------------------------------------------------------------------------------


def control_event(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/microsoft/events {account, calendar_id?, subject, start, end[, id, delete]}.

    One route for all three acts (the `/_sandbox/outlook/...` routes are the fuller form): with the
    `id` of an event it edits it (or deletes it with `delete`), otherwise it creates one; each matching
    subscription gets a change notification from the push thread.
    """
    body = read_json(request) or {}
    account = str(body.get("account") or "alex@example.com")

    def when(value: Any) -> dict[str, Any]:
        return (
            value
            if isinstance(value, dict)
            else {"dateTime": str(value).removesuffix("Z"), "timeZone": "UTC"}
        )

    fields = {k: body[k] for k in graph_writes.WRITABLE if k in body}
    for key in ("start", "end"):
        if key in fields:
            fields[key] = when(fields[key])
    with sb.state.lock:
        event_id = body.get("id")
        if isinstance(event_id, str) and event_id:
            if body.get("delete"):
                graph_writes.delete(sb, account, event_id, None)
                return json_response({"id": event_id, "deleted": True})
            updated = graph_writes.update(sb, account, event_id, fields, None, person=True)
            return json_response(graph_writes.present(updated, "UTC"))
        calendar = chosen_calendar(account, body.get("calendar_id") or None)
        created = graph_writes.create(sb, account, calendar, fields, person=True)
        return json_response(graph_writes.present(created, "UTC"), status=201)


def control_subscriptions(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/microsoft/subscriptions: every subscription (deleted ones too) and the handshakes."""
    now = sb.now()
    with sb.state.lock:
        store = store_of(sb)
        items = [
            {**s.public(now), "account": s.account, "deleted": s.deleted, "expired": s.expires_at <= now}
            for s in store.subscriptions.values()
        ]
        handshakes = [h.public() for h in store.handshakes]
    return json_response({"subscriptions": items, "handshakes": handshakes})


def routes() -> list[Route]:
    base = "/microsoft/graph/v1.0"
    api = "api"
    return [
        Route(f"{base}/subscriptions", ("POST",), create_subscription, api, "microsoft"),
        Route(f"{base}/subscriptions", ("GET",), list_subscriptions, api, "microsoft"),
        Route(
            f"{base}/subscriptions/<subscription_id>",
            ("GET", "PATCH", "DELETE"),
            subscription_item,
            api,
            "microsoft",
        ),
        Route(f"{base}/me/events", ("GET", "POST"), graph_events.events_collection, api, "microsoft"),
        Route(
            f"{base}/me/calendar/events", ("GET", "POST"), graph_events.events_collection, api, "microsoft"
        ),
        Route(
            f"{base}/me/calendars/<calendar>/events",
            ("GET", "POST"),
            graph_events.events_collection,
            api,
            "microsoft",
        ),
        Route(
            f"{base}/me/events/<event_id>",
            ("GET", "PATCH", "DELETE"),
            graph_events.event_item,
            api,
            "microsoft",
        ),
        Route(f"{base}/me/calendar", ("GET",), graph_events.calendar_item, api, "microsoft"),
        Route(f"{base}/me/calendars/<calendar>", ("GET",), graph_events.calendar_item, api, "microsoft"),
        Route(f"{base}/me/calendarView", ("GET",), graph_events.calendar_view, api, "microsoft"),
        Route(f"{base}/me/calendar/calendarView", ("GET",), graph_events.calendar_view, api, "microsoft"),
        Route(
            f"{base}/me/calendars/<calendar>/calendarView",
            ("GET",),
            graph_events.calendar_view,
            api,
            "microsoft",
        ),
        Route(f"{base}/me/calendarView/delta", ("GET",), graph_delta.calendar_view_delta, api, "microsoft"),
        Route(
            f"{base}/me/calendar/calendarView/delta",
            ("GET",),
            graph_delta.calendar_view_delta,
            api,
            "microsoft",
        ),
        Route(
            f"{base}/me/calendars/<calendar>/calendarView/delta",
            ("GET",),
            graph_delta.calendar_view_delta,
            api,
            "microsoft",
        ),
        Route("/_sandbox/microsoft/events", ("POST",), control_event, "control", None),
        Route("/_sandbox/microsoft/subscriptions", ("GET",), control_subscriptions, "control", None),
        *graph_person.routes(),
        *graph_mail.routes(),
        *graph_mail_person.routes(),
    ]
