"""Microsoft Graph: calendar events (list, create, get, update, delete) and change-notification
subscriptions (create with the validationToken handshake, list, get, renew, delete), plus the
notifications an event change sends.

Semantics follow /work/shared/providers/calendar-email.md §4.5: creation POSTs
`notificationUrl?validationToken=…` (and the lifecycle URL) synchronously and fails with 400 unless the
token comes back as text/plain with 200 within the timeout; Outlook events allow at most 10,080 minutes;
an expiry under 45 minutes ahead is raised to 45; notifications are `{"value": [...]}` batches.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import identity
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.dialects import stable_alnum
from infra.local.sandbox.errors import graph_error
from infra.local.sandbox.push import Delivery, is_loopback_url

READ_SCOPES = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_SCOPES = {"Calendars.ReadWrite"}
CHANGE_TYPES = ("created", "updated", "deleted")
# Outlook event subscriptions, basic notifications (no resource data).
MAX_LIFETIME = timedelta(minutes=10_080)
MIN_LIFETIME = timedelta(minutes=45)
MAX_CLIENT_STATE = 128
_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"
_CALENDARS = (("Calendar", True, True), ("Work", False, True), ("Birthdays", False, False))
_WRITABLE = ("subject", "body", "start", "end", "location", "attendees", "isAllDay", "showAs", "categories")
# `me/events`, `me/calendars/{id}/events`, and the same under `users/{id or upn}`.
_RESOURCE = re.compile(r"/?(?:me|users/(?P<user>[^/]+))/(?:calendars/(?P<calendar>[^/]+)/)?events", re.I)


def calendar_id(account: str, name: str) -> str:
    """The id `/me/calendars` gives the calendar called `name` (stable per account)."""
    return "AAMk" + stable_alnum(40, "ms-calendar", account, name)


def default_calendar_id(account: str) -> str:
    return calendar_id(account, _CALENDARS[0][0])


def _writable_calendars(account: str) -> dict[str, bool]:
    return {calendar_id(account, name): can_edit for name, _default, can_edit in _CALENDARS}


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
            "expirationDateTime": graph_time(self.expires_at),
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


@dataclass
class GraphStore:
    subscriptions: dict[str, GraphSubscription] = field(default_factory=dict)
    # account -> event id -> event
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    handshakes: list[Handshake] = field(default_factory=list)


def store_of(sb: Sandbox) -> GraphStore:
    """The Graph store (callers hold the state lock)."""
    store = sb.state.extensions.get("graph")
    if not isinstance(store, GraphStore):
        store = GraphStore()
        sb.state.extensions["graph"] = store
    return store


def graph_time(ts: float) -> str:
    """Graph's UTC timestamps: seven fractional digits and a `Z`."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


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
    if chosen not in _writable_calendars(account):
        raise _bad("The specified object was not found in the store.", "ErrorItemNotFound", 404)
    return chosen


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
    grant = require_token(sb, request, "microsoft", READ_SCOPES)
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
    calendar = _calendar_for(grant.account, resource)
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


# --- Events ----------------------------------------------------------------------------------------


def _events(store: GraphStore, account: str) -> dict[str, dict[str, Any]]:
    return store.events.setdefault(account, {})


def _stamp(sb: Sandbox, event: dict[str, Any]) -> None:
    change_key = secrets.token_urlsafe(12)
    event["changeKey"] = change_key
    event["@odata.etag"] = f'W/"{change_key}"'
    event["lastModifiedDateTime"] = graph_time(sb.now())


def _check_times(event: dict[str, Any]) -> None:
    for which in ("start", "end"):
        value = event.get(which)
        if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
            raise _bad(f"Property {which} is required and must be a dateTimeTimeZone.", "ErrorInvalidRequest")
    try:
        start = datetime.fromisoformat(event["start"]["dateTime"].replace("Z", ""))
        end = datetime.fromisoformat(event["end"]["dateTime"].replace("Z", ""))
    except ValueError:
        raise _bad("Invalid dateTime in start or end.", "ErrorInvalidRequest") from None
    if end < start:
        raise _bad("The end time must be after the start time.", "ErrorInvalidRequest")


def _create(sb: Sandbox, account: str, calendar: str, body: dict[str, Any]) -> dict[str, Any]:
    store = store_of(sb)
    event_id = "AAMkAG" + secrets.token_urlsafe(33).replace("-", "A").replace("_", "B") + "="
    now = graph_time(sb.now())
    profile = identity.microsoft_profile(account)
    person = {"emailAddress": {"name": profile["displayName"], "address": account}}
    event: dict[str, Any] = {
        "id": event_id,
        "createdDateTime": now,
        "subject": "",
        "bodyPreview": "",
        "body": {"contentType": "text", "content": ""},
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "showAs": "busy",
        "type": "singleInstance",
        "seriesMasterId": None,
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper(),
        "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}",
        "organizer": person,
        "attendees": [],
        "location": {"displayName": ""},
        "categories": [],
        "calendarId": calendar,
    }
    event.update({k: copy.deepcopy(body[k]) for k in _WRITABLE if k in body})
    _check_times(event)
    _stamp(sb, event)
    _events(store, account)[event_id] = event
    _notify(sb, account, calendar, event_id, "created", event)
    return event


def _update(sb: Sandbox, account: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    event = _find_event(sb, account, event_id)
    updated = {**event, **{k: copy.deepcopy(body[k]) for k in _WRITABLE if k in body}}
    _check_times(updated)
    _stamp(sb, updated)
    _events(store_of(sb), account)[event_id] = updated
    _notify(sb, account, updated["calendarId"], event_id, "updated", updated)
    return updated


def _delete(sb: Sandbox, account: str, event_id: str) -> None:
    event = _find_event(sb, account, event_id)
    del _events(store_of(sb), account)[event_id]
    _notify(sb, account, event["calendarId"], event_id, "deleted", event)


def _find_event(sb: Sandbox, account: str, event_id: str) -> dict[str, Any]:
    event = _events(store_of(sb), account).get(event_id)
    if event is None:
        raise _bad("The specified object was not found in the store.", "ErrorItemNotFound", 404)
    return event


def _visible(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "calendarId"}


def _calendar_arg(account: str, calendar: str | None) -> str:
    if calendar is None:
        return default_calendar_id(account)
    if calendar not in _writable_calendars(account):
        raise _bad("The specified object was not found in the store.", "ErrorItemNotFound", 404)
    return calendar


def events_collection(sb: Sandbox, request: Request, calendar: str | None = None) -> Response:
    """GET or POST /me/events and /me/calendars/{id}/events."""
    if request.method == "GET":
        grant = require_token(sb, request, "microsoft", READ_SCOPES)
        with sb.state.lock:
            chosen = _calendar_arg(grant.account, calendar)
            items = [
                _visible(e)
                for e in _events(store_of(sb), grant.account).values()
                if e["calendarId"] == chosen
            ]
        return json_response({"@odata.context": f"{_CONTEXT}#users('me')/events", "value": items})
    grant = require_token(sb, request, "microsoft", WRITE_SCOPES)
    body = _body(request)
    with sb.state.lock:
        chosen = _calendar_arg(grant.account, calendar)
        if not _writable_calendars(grant.account)[chosen]:
            raise _bad("Access is denied. Check credentials and try again.", "ErrorAccessDenied", 403)
        event = _create(sb, grant.account, chosen, body)
        return json_response(
            {"@odata.context": f"{_CONTEXT}#users('me')/events/$entity", **_visible(event)}, 201
        )


def event_item(sb: Sandbox, request: Request, event_id: str) -> Response:
    """GET, PATCH and DELETE /me/events/{id}."""
    if request.method == "GET":
        grant = require_token(sb, request, "microsoft", READ_SCOPES)
        with sb.state.lock:
            return json_response(_visible(_find_event(sb, grant.account, event_id)))
    grant = require_token(sb, request, "microsoft", WRITE_SCOPES)
    if request.method == "DELETE":
        with sb.state.lock:
            _delete(sb, grant.account, event_id)
        return Response(status=204)
    body = _body(request)
    with sb.state.lock:
        return json_response(_visible(_update(sb, grant.account, event_id, body)))


# --- Notifications ---------------------------------------------------------------------------------


def _notify(
    sb: Sandbox, account: str, calendar: str, event_id: str, change: str, event: dict[str, Any]
) -> None:
    """Queue one notification per live subscription watching this calendar for this change type."""
    now = sb.now()
    profile = identity.microsoft_profile(account)
    path = f"Users/{profile['id']}/Events/{event_id}"
    for subscription in store_of(sb).subscriptions.values():
        if (
            subscription.deleted
            or subscription.expires_at <= now
            or subscription.account != account
            or subscription.calendar_id != calendar
            or change not in subscription.change_types
        ):
            continue
        item: dict[str, Any] = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_time(subscription.expires_at),
            "changeType": change,
            "resource": path,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": path,
                "@odata.etag": event.get("@odata.etag"),
                "id": event_id,
            },
            "clientState": subscription.client_state,
            "tenantId": profile["tid"],
        }
        raw = json.dumps({"value": [item]}, separators=(",", ":")).encode()
        sb.pushes.submit(
            Delivery(
                url=subscription.notification_url,
                headers={"Content-Type": "application/json; charset=utf-8"},
                body=raw,
                label=f"microsoft:{change}",
            )
        )


# --- Control ---------------------------------------------------------------------------------------


def control_event(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/microsoft/events {account, calendar_id?, subject, start, end[, id, delete]}.

    Creates, changes or (with `delete`) removes an event as its user would in Outlook; each matching
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

    fields = {k: body[k] for k in _WRITABLE if k in body}
    for key in ("start", "end"):
        if key in fields:
            fields[key] = when(fields[key])
    with sb.state.lock:
        event_id = body.get("id")
        if isinstance(event_id, str) and event_id:
            if body.get("delete"):
                _delete(sb, account, event_id)
                return json_response({"id": event_id, "deleted": True})
            return json_response(_visible(_update(sb, account, event_id, fields)))
        calendar = _calendar_arg(account, body.get("calendar_id") or None)
        return json_response(_visible(_create(sb, account, calendar, fields)), status=201)


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
    return [
        Route(f"{base}/subscriptions", ("POST",), create_subscription, "api", "microsoft"),
        Route(f"{base}/subscriptions", ("GET",), list_subscriptions, "api", "microsoft"),
        Route(
            f"{base}/subscriptions/<subscription_id>",
            ("GET", "PATCH", "DELETE"),
            subscription_item,
            "api",
            "microsoft",
        ),
        Route(f"{base}/me/events", ("GET", "POST"), events_collection, "api", "microsoft"),
        Route(
            f"{base}/me/calendars/<calendar>/events", ("GET", "POST"), events_collection, "api", "microsoft"
        ),
        Route(f"{base}/me/events/<event_id>", ("GET", "PATCH", "DELETE"), event_item, "api", "microsoft"),
        Route("/_sandbox/microsoft/events", ("POST",), control_event, "control", None),
        Route("/_sandbox/microsoft/subscriptions", ("GET",), control_subscriptions, "control", None),
    ]
