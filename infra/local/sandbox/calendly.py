"""Calendly webhook subscriptions (create, list, get, delete) and the signed deliveries a booking sends.

Semantics follow /work/shared/providers/crm-scheduling-chat.md §3.3: `organization` always required,
`user` when `scope=user`, 409 "Already Exists" for a URL already subscribed at that scope, the signing
key never echoed back, deliveries signed `Calendly-Webhook-Signature: t=<s>,v1=<hex>` over `t.body`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import identity
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.dialects import display_name, stable_uuid
from infra.local.sandbox.errors import calendly_error
from infra.local.sandbox.keys import APP_CREDENTIALS
from infra.local.sandbox.push import Delivery, is_loopback_url

EVENTS = frozenset(
    {
        "invitee.created",
        "invitee.canceled",
        "invitee_no_show.created",
        "invitee_no_show.deleted",
        "routing_form_submission.created",
        "event_type.created",
        "event_type.updated",
        "event_type.deleted",
    }
)
CREATED, CANCELED = "invitee.created", "invitee.canceled"
_ORGANIZATION_ONLY = frozenset({"routing_form_submission.created"})
SCOPES = ("user", "organization", "group")
_READ = {"webhooks:read", "webhooks:write"}
_WRITE = {"webhooks:write"}


@dataclass
class Subscription:
    uuid: str
    callback_url: str
    events: list[str]
    scope: str
    organization: str
    user: str | None
    group: str | None
    creator: str
    # Kept to sign deliveries; never returned (Calendly does not echo it).
    signing_key: str | None
    created_at: str
    state: str = "active"
    deleted: bool = False

    def resource(self, base: str) -> dict[str, Any]:
        return {
            "uri": f"{base}/webhook_subscriptions/{self.uuid}",
            "callback_url": self.callback_url,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "retry_started_at": None,
            "state": self.state,
            "events": list(self.events),
            "scope": self.scope,
            "organization": self.organization,
            "user": self.user,
            "group": self.group,
            "creator": self.creator,
        }


@dataclass
class CalendlyStore:
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    invitees: list[dict[str, Any]] = field(default_factory=list)
    # Event types a person deactivated: (account, uuid).
    inactive: set[tuple[str, str]] = field(default_factory=set)
    # Single-use scheduling links by token: {"owner": event type URI, "account", "used": int, "max": int}.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Scheduled events by uuid: {"event": resource, "invitees": [resource], "owner": account}.
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


def store_of(sb: Sandbox) -> CalendlyStore:
    """The Calendly store (callers hold the state lock)."""
    store = sb.state.extensions.get("calendly")
    if not isinstance(store, CalendlyStore):
        store = CalendlyStore()
        sb.state.extensions["calendly"] = store
    return store


def _base(request: Request) -> str:
    return f"{request.host_url.rstrip('/')}/calendly"


def _timestamp(ts: float) -> str:
    """Calendly's timestamps: microseconds and a `Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uuid_of(uri: str) -> str:
    # URIs are compared by their id part: the same resource may be named through another host alias.
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _invalid(parameter: str, message: str) -> Reply:
    return Reply(
        calendly_error(
            400,
            "Invalid Argument",
            "The supplied parameters are invalid.",
            [{"parameter": parameter, "message": message}],
        )
    )


def _forbidden() -> Reply:
    return Reply(
        calendly_error(403, "Permission Denied", "You do not have permission to access this resource.")
    )


def _not_found() -> Response:
    return calendly_error(404, "Resource Not Found", "The server could not find the requested resource.")


def _owned(me: dict[str, Any], organization: str, user: str | None) -> None:
    """The token's owner may only name its own organization and itself."""
    if _uuid_of(organization) != _uuid_of(me["current_organization"]):
        raise _forbidden()
    if user and _uuid_of(user) != _uuid_of(me["uri"]):
        raise _forbidden()


def _string(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _invalid(name, "is missing")
        return None
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    return value


def create_subscription(sb: Sandbox, request: Request) -> Response:
    """POST /webhook_subscriptions (scope webhooks:write) → 201 {resource}."""
    grant = require_token(sb, request, "calendly", _WRITE)
    body = read_json(request)
    if body is None:
        raise _invalid("body", "must be a JSON object")
    url = _string(body, "url", required=True) or ""
    # Real Calendly insists on HTTPS; offline, only loopback receivers can be reached.
    if not is_loopback_url(url):
        raise _invalid("url", "must be a valid HTTPS URL")
    events = body.get("events")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise _invalid("events", "is missing")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise _invalid("events", f"contains an invalid value: {unknown[0]}")
    scope = _string(body, "scope", required=True)
    if scope not in SCOPES:
        raise _invalid("scope", "must be one of user, organization, group")
    organization = _string(body, "organization", required=True) or ""
    user = _string(body, "user", required=scope == "user")
    group = _string(body, "group", required=scope == "group")
    if scope != "organization" and _ORGANIZATION_ONLY & set(events):
        raise _invalid("events", "routing_form_submission.created is only available at organization scope")
    signing_key = _string(body, "signing_key", required=False)
    me = identity.calendly_user(grant.account, _base(request))
    _owned(me, organization, user if scope == "user" else None)
    with sb.state.lock:
        store = store_of(sb)
        for existing in store.subscriptions.values():
            if (
                not existing.deleted
                and existing.callback_url == url
                and existing.scope == scope
                and _uuid_of(existing.organization) == _uuid_of(organization)
                and (scope != "user" or _uuid_of(existing.user or "") == _uuid_of(user or ""))
            ):
                return calendly_error(409, "Already Exists", "Hook with this url already exists")
        subscription = Subscription(
            uuid=str(uuid.uuid4()),
            callback_url=url,
            events=list(dict.fromkeys(events)),
            scope=scope,
            organization=organization,
            user=user if scope == "user" else None,
            group=group if scope == "group" else None,
            creator=me["uri"],
            signing_key=signing_key,
            created_at=_timestamp(sb.now()),
        )
        store.subscriptions[subscription.uuid] = subscription
        return json_response({"resource": subscription.resource(_base(request))}, status=201)


def list_subscriptions(sb: Sandbox, request: Request) -> Response:
    """GET /webhook_subscriptions?organization=&scope=[&user=]: the active and disabled ones."""
    grant = require_token(sb, request, "calendly", _READ)
    args = request.args
    organization = args.get("organization")
    if not organization:
        raise _invalid("organization", "is missing")
    scope = args.get("scope")
    if not scope:
        raise _invalid("scope", "is missing")
    if scope not in SCOPES:
        raise _invalid("scope", "must be one of user, organization, group")
    user = args.get("user")
    if scope == "user" and not user:
        raise _invalid("user", "is missing")
    try:
        count = int(args.get("count", "20"))
    except ValueError:
        raise _invalid("count", "must be an integer") from None
    if not 1 <= count <= 100:
        raise _invalid("count", "must be between 1 and 100")
    me = identity.calendly_user(grant.account, _base(request))
    _owned(me, organization, user)
    with sb.state.lock:
        found = [
            s.resource(_base(request))
            for s in store_of(sb).subscriptions.values()
            if not s.deleted
            and s.scope == scope
            and _uuid_of(s.organization) == _uuid_of(organization)
            and (scope != "user" or _uuid_of(s.user or "") == _uuid_of(user or ""))
        ]
    # One page is enough offline: the sandbox never holds more than a handful per user.
    page = found[:count]
    pagination = {
        "count": len(page),
        "next_page": None,
        "previous_page": None,
        "next_page_token": None,
        "previous_page_token": None,
    }
    return json_response({"collection": page, "pagination": pagination})


def _find(sb: Sandbox, request: Request, subscription_uuid: str, needed: set[str]) -> Subscription:
    grant = require_token(sb, request, "calendly", needed)
    me = identity.calendly_user(grant.account, _base(request))
    subscription = store_of(sb).subscriptions.get(subscription_uuid)
    if subscription is None or subscription.deleted:
        raise Reply(_not_found())
    if _uuid_of(subscription.organization) != _uuid_of(me["current_organization"]):
        raise _forbidden()
    return subscription


def subscription_item(sb: Sandbox, request: Request, subscription_uuid: str) -> Response:
    """GET or DELETE /webhook_subscriptions/{uuid}."""
    with sb.state.lock:
        if request.method == "GET":
            found = _find(sb, request, subscription_uuid, _READ)
            return json_response({"resource": found.resource(_base(request))})
        _find(sb, request, subscription_uuid, _WRITE).deleted = True
    return Response(status=204)


# --- Deliveries ------------------------------------------------------------------------------------


def signature_header(key: str, timestamp: int, body: bytes) -> str:
    """`t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">`, as Calendly signs a delivery."""
    digest = hmac.new(key.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _deliver(sb: Sandbox, subscription: Subscription, event: str, payload: dict[str, Any]) -> None:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    # Without a key of its own, a subscription is signed with the app's key (developer console).
    key = subscription.signing_key or APP_CREDENTIALS["calendly"]["webhook_signing_key"]
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Calendly",
        "Calendly-Webhook-Signature": signature_header(key, int(sb.now()), raw),
    }
    sb.pushes.submit(
        Delivery(url=subscription.callback_url, headers=headers, body=raw, label=f"calendly:{event}")
    )


def _listens(subscription: Subscription, event: str, me: dict[str, Any]) -> bool:
    if subscription.deleted or subscription.state != "active" or event not in subscription.events:
        return False
    if _uuid_of(subscription.organization) != _uuid_of(me["current_organization"]):
        return False
    return subscription.scope == "organization" or (
        subscription.scope == "user" and _uuid_of(subscription.user or "") == _uuid_of(me["uri"])
    )


def _event_type_uri(base: str, account: str, name: str) -> str:
    if name.startswith("http"):
        return name
    return f"{base}/event_types/{stable_uuid('calendly-event-type', account, name).upper()}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _new_booking(
    sb: Sandbox, base: str, account: str, body: dict[str, Any], *, old_invitee: str | None = None
) -> dict[str, Any]:
    """A scheduled event with its one invitee, kept in the store (callers hold the state lock)."""
    me = identity.calendly_user(account, base)
    email = str(body.get("email") or "invitee@example.com")
    name = str(body.get("name") or display_name(email))
    event_type_name = str(body.get("event_type") or "Discovery Call")
    now = sb.now()
    start = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    start_time = str(body.get("start_time") or _iso(start))
    minutes = int(body.get("duration_minutes") or 30)
    end_time = _iso(_parse(start_time) + timedelta(minutes=minutes))
    event_uuid, invitee_uuid = str(uuid.uuid4()).upper(), str(uuid.uuid4()).upper()
    scheduled_uri = f"{base}/scheduled_events/{event_uuid}"
    first, _, last = name.partition(" ")
    created_at = _timestamp(now)
    scheduled_event = {
        "uri": scheduled_uri,
        "name": event_type_name if not event_type_name.startswith("http") else "Meeting",
        "status": "active",
        "start_time": start_time,
        "end_time": end_time,
        "event_type": _event_type_uri(base, account, event_type_name),
        "location": {
            "type": "google_conference",
            "status": "pushed",
            "join_url": f"https://meet.google.com/{stable_uuid('meet', event_uuid)[:12]}",
        },
        "invitees_counter": {"total": 1, "active": 1, "limit": 1},
        "event_memberships": [{"user": me["uri"], "user_email": account, "user_name": me["name"]}],
        "event_guests": [],
        "cancellation": None,
        "created_at": created_at,
        "updated_at": created_at,
    }
    given = body.get("answers")
    answers: list[Any] = given if isinstance(given, list) else []
    invitee: dict[str, Any] = {
        "uri": f"{scheduled_uri}/invitees/{invitee_uuid}",
        "email": email,
        "name": name,
        "first_name": first or None,
        "last_name": last or None,
        "status": "active",
        "timezone": str(body.get("timezone") or "America/New_York"),
        "event": scheduled_uri,
        "created_at": created_at,
        "updated_at": created_at,
        "questions_and_answers": [
            {"question": str(a.get("question", "")), "answer": str(a.get("answer", "")), "position": i}
            for i, a in enumerate(answers)
            if isinstance(a, dict)
        ],
        "tracking": {
            "utm_campaign": body.get("utm_campaign"),
            "utm_source": body.get("utm_source"),
            "utm_medium": None,
            "utm_content": None,
            "utm_term": None,
            "salesforce_uuid": None,
        },
        "cancel_url": f"https://calendly.com/cancellations/{invitee_uuid}",
        "reschedule_url": f"https://calendly.com/reschedulings/{invitee_uuid}",
        "rescheduled": False,
        "old_invitee": old_invitee,
        "new_invitee": None,
        "cancellation": None,
        "no_show": None,
        "reconfirmation": None,
        "routing_form_submission": None,
        "text_reminder_number": body.get("phone"),
    }
    store = store_of(sb)
    store.events[event_uuid] = {"event": scheduled_event, "invitees": [invitee], "owner": account}
    store.invitees.append(invitee)
    return invitee


def _cancel(sb: Sandbox, invitee: dict[str, Any], reason: str | None, new_invitee: str | None) -> None:
    """Cancel an invitee and its scheduled event in place (callers hold the state lock)."""
    now = _timestamp(sb.now())
    invitee.update(
        status="canceled",
        updated_at=now,
        rescheduled=new_invitee is not None,
        new_invitee=new_invitee,
        cancellation={"canceled_by": invitee["name"], "reason": reason, "canceler_type": "invitee"},
    )
    entry = store_of(sb).events[_uuid_of(invitee["event"])]
    entry["event"].update(status="canceled", updated_at=now, cancellation=invitee["cancellation"])


def _payload_of(sb: Sandbox, invitee: dict[str, Any], me: dict[str, Any]) -> dict[str, Any]:
    entry = store_of(sb).events[_uuid_of(invitee["event"])]
    return {**invitee, "scheduled_event": dict(entry["event"])}


def _announce(sb: Sandbox, event: str, invitee: dict[str, Any], account: str, base: str) -> int:
    """Signed deliveries of `event` to every matching active subscription (state lock held)."""
    me = identity.calendly_user(account, base)
    payload = {
        "event": event,
        "created_at": invitee["updated_at"],
        "created_by": me["uri"],
        "payload": _payload_of(sb, invitee, me),
    }
    targets = [s for s in store_of(sb).subscriptions.values() if _listens(s, event, me)]
    for subscription in targets:
        _deliver(sb, subscription, event, payload)
    return len(targets)


def control_invitee(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/calendly/invitees {account, event_type, name, email[, start_time, phone, answers,
    timezone, event]}: someone books with the account's user (`invitee.created`).

    `answers` is a list of {question, answer}. With `event: invitee.canceled` a booking is made and
    canceled at once. Each matching active subscription gets a signed delivery from the push thread.
    """
    body = read_json(request) or {}
    account = str(body.get("account") or "alex@example.com")
    event = str(body.get("event") or "invitee.created")
    if event not in (CREATED, CANCELED):
        return json_response({"error": "event must be invitee.created or invitee.canceled"}, 400)
    base = _base(request)
    with sb.state.lock:
        invitee = _new_booking(sb, base, account, body)
        if event == CANCELED:
            _cancel(sb, invitee, None, None)
        deliveries = _announce(sb, event, invitee, account, base)
        answer = _payload_of(sb, invitee, {})
    return json_response({"invitee": answer, "deliveries": deliveries}, status=201)


def _owned_invitee(sb: Sandbox, invitee_uuid: str) -> tuple[dict[str, Any], str] | Response:
    for entry in store_of(sb).events.values():
        for invitee in entry["invitees"]:
            if _uuid_of(invitee["uri"]) == invitee_uuid.upper():
                return invitee, str(entry["owner"])
    return json_response({"error": "no such invitee"}, 404)


def control_cancel(sb: Sandbox, request: Request, invitee_uuid: str) -> Response:
    """POST /_sandbox/calendly/invitees/{uuid}/cancel {reason?}: the invitee cancels their booking."""
    body = read_json(request) or {}
    base = _base(request)
    with sb.state.lock:
        found = _owned_invitee(sb, invitee_uuid)
        if isinstance(found, Response):
            return found
        invitee, account = found
        if invitee["status"] == "canceled":
            return json_response({"error": "already canceled"}, 409)
        _cancel(sb, invitee, str(body.get("reason") or "") or None, None)
        deliveries = _announce(sb, CANCELED, invitee, account, base)
        answer = _payload_of(sb, invitee, {})
    return json_response({"invitee": answer, "deliveries": deliveries})


def control_reschedule(sb: Sandbox, request: Request, invitee_uuid: str) -> Response:
    """POST /_sandbox/calendly/invitees/{uuid}/reschedule {start_time}: the invitee picks a new time.

    As at Calendly: the old invitee is canceled with `rescheduled: true` and `new_invitee`, and a new
    invitee (on a new scheduled event) names the old one in `old_invitee`; two deliveries, cancel first.
    """
    body = read_json(request) or {}
    base = _base(request)
    with sb.state.lock:
        found = _owned_invitee(sb, invitee_uuid)
        if isinstance(found, Response):
            return found
        old, account = found
        if old["status"] == "canceled":
            return json_response({"error": "already canceled"}, 409)
        entry = store_of(sb).events[_uuid_of(old["event"])]["event"]
        again = {
            "email": old["email"],
            "name": old["name"],
            "event_type": entry["event_type"],
            "timezone": old["timezone"],
            "phone": old["text_reminder_number"],
            "answers": old["questions_and_answers"],
            **body,
        }
        new = _new_booking(sb, base, account, again, old_invitee=old["uri"])
        store_of(sb).events[_uuid_of(new["event"])]["event"]["name"] = entry["name"]
        _cancel(sb, old, "Rescheduled", new["uri"])
        deliveries = _announce(sb, CANCELED, old, account, base)
        deliveries += _announce(sb, CREATED, new, account, base)
        answer = {"old": _payload_of(sb, old, {}), "new": _payload_of(sb, new, {})}
    return json_response({**answer, "deliveries": deliveries})


def control_disable(sb: Sandbox, request: Request, subscription_uuid: str) -> Response:
    """POST /_sandbox/calendly/subscriptions/{uuid}/disable: the subscription is `disabled`, as after a
    day of failed deliveries; nothing is delivered to it again (Calendly has no re-enable)."""
    with sb.state.lock:
        subscription = store_of(sb).subscriptions.get(subscription_uuid)
        if subscription is None or subscription.deleted:
            return json_response({"error": "no such subscription"}, 404)
        subscription.state = "disabled"
        return json_response({"subscription": subscription.resource(_base(request))})


# --- Event types and scheduling links ---------------------------------------------------------------

_EVENT_TYPES = (("Discovery Call", 15), ("Strategy Session", 30), ("Onboarding", 60))


def event_types(sb: Sandbox, account: str, base: str) -> list[dict[str, Any]]:
    """The account's event types as `GET /event_types` lists them (callers hold the state lock)."""
    me = identity.calendly_user(account, base)
    inactive = store_of(sb).inactive
    collection = []
    for name, minutes in _EVENT_TYPES:
        slug = name.lower().replace(" ", "-")
        uid = stable_uuid("calendly-event-type", account, name).upper()
        collection.append(
            {
                "uri": f"{base}/event_types/{uid}",
                "name": name,
                "active": (account, uid) not in inactive,
                "slug": slug,
                "scheduling_url": f"{me['scheduling_url']}/{slug}",
                "duration": minutes,
                "kind": "solo",
                "pooling_type": None,
                "type": "StandardEventType",
                "color": "#0069ff",
                "created_at": "2024-01-15T10:00:00.000000Z",
                "updated_at": "2024-01-15T10:00:00.000000Z",
                "internal_note": None,
                "description_plain": None,
                "description_html": None,
                "profile": {"type": "User", "name": me["name"], "owner": me["uri"]},
                "secret": False,
                "admin_managed": False,
            }
        )
    return collection


def _event_type(sb: Sandbox, account: str, base: str, uri_or_uuid: str) -> dict[str, Any] | None:
    wanted = _uuid_of(uri_or_uuid).upper()
    return next((e for e in event_types(sb, account, base) if _uuid_of(e["uri"]) == wanted), None)


def event_type_item(sb: Sandbox, request: Request, event_type_uuid: str) -> Response:
    """GET /event_types/{uuid}: one of the token owner's event types."""
    grant = require_token(sb, request, "calendly", {"event_types:read"})
    with sb.state.lock:
        found = _event_type(sb, grant.account, _base(request), event_type_uuid)
    if found is None:
        return _not_found()
    return json_response({"resource": found})


def create_scheduling_link(sb: Sandbox, request: Request) -> Response:
    """POST /scheduling_links {max_event_count: 1, owner: event type URI, owner_type: EventType}
    (scope scheduling_links:write) → 201 {resource: {booking_url, owner, owner_type}}: books once."""
    grant = require_token(sb, request, "calendly", {"scheduling_links:write"})
    body = read_json(request)
    if body is None:
        raise _invalid("body", "must be a JSON object")
    if body.get("max_event_count") != 1:
        raise _invalid("max_event_count", "must be 1")
    if body.get("owner_type") != "EventType":
        raise _invalid("owner_type", "must be EventType")
    owner = _string(body, "owner", required=True) or ""
    base = _base(request)
    with sb.state.lock:
        found = _event_type(sb, grant.account, base, owner)
        if found is None:
            raise _invalid("owner", "is invalid")
        if not found["active"]:
            raise _invalid("owner", "event type is inactive")
        token = uuid.uuid4().hex[:20]
        store_of(sb).links[token] = {"owner": found["uri"], "account": grant.account, "used": 0, "max": 1}
    booking_url = f"{request.host_url.rstrip('/')}/_sandbox/calendly/d/{token}"
    resource = {"booking_url": booking_url, "owner": found["uri"], "owner_type": "EventType"}
    return json_response({"resource": resource}, status=201)


def control_book_link(sb: Sandbox, request: Request, token: str) -> Response:
    """POST /_sandbox/calendly/d/{token} {name, email[, start_time, phone, answers]}: book through a
    scheduling link as the invitee; a single-use link that was used answers 410, as Calendly's page
    says the link is no longer valid. Query parameters of the link (name, email) prefill."""
    body = {**dict(request.args.items()), **(read_json(request) or {})}
    base = _base(request)
    with sb.state.lock:
        link = store_of(sb).links.get(token)
        if link is None:
            return json_response({"error": "no such scheduling link"}, 404)
        if link["used"] >= link["max"]:
            return json_response({"error": "This link has already been used."}, 410)
        found = _event_type(sb, link["account"], base, link["owner"])
        if found is None or not found["active"]:
            return json_response({"error": "This event type is no longer available."}, 410)
        link["used"] += 1
        invitee = _new_booking(sb, base, link["account"], {**body, "event_type": found["uri"]})
        store_of(sb).events[_uuid_of(invitee["event"])]["event"]["name"] = found["name"]
        deliveries = _announce(sb, CREATED, invitee, link["account"], base)
        answer = _payload_of(sb, invitee, {})
    return json_response({"invitee": answer, "deliveries": deliveries}, status=201)


def control_event_type_active(sb: Sandbox, request: Request, event_type_uuid: str) -> Response:
    """POST /_sandbox/calendly/event_types/{uuid}/active {account, active}: turn an event type off or
    on, as its owner would at Calendly."""
    body = read_json(request) or {}
    account = str(body.get("account") or "alex@example.com")
    with sb.state.lock:
        found = _event_type(sb, account, _base(request), event_type_uuid)
        if found is None:
            return json_response({"error": "no such event type"}, 404)
        key = (account, _uuid_of(found["uri"]).upper())
        if body.get("active", False):
            store_of(sb).inactive.discard(key)
        else:
            store_of(sb).inactive.add(key)
    return json_response({"uri": found["uri"], "active": bool(body.get("active", False))})


# --- Scheduled events and invitees (API v2) -------------------------------------------------------

_EVENTS_READ = {"scheduled_events:read"}


def _page(items: list[dict[str, Any]], request: Request, path: str) -> Response:
    try:
        count = int(request.args.get("count", "20"))
        offset = int(request.args.get("page_token") or 0)
    except ValueError:
        raise _invalid("count", "must be an integer") from None
    if not 1 <= count <= 100:
        raise _invalid("count", "must be between 1 and 100")
    page = items[offset : offset + count]
    more = offset + count < len(items)
    args = {k: v for k, v in request.args.items() if k != "page_token"}
    query = "&".join(f"{k}={v}" for k, v in {**args, "page_token": str(offset + count)}.items())
    next_page = f"{request.host_url.rstrip('/')}{path}?{query}" if more else None
    pagination = {
        "count": len(page),
        "next_page": next_page,
        "previous_page": None,
        "next_page_token": str(offset + count) if more else None,
        "previous_page_token": None,
    }
    return json_response({"collection": page, "pagination": pagination})


def list_scheduled_events(sb: Sandbox, request: Request) -> Response:
    """GET /scheduled_events?user=…[&status=&min_start_time=&max_start_time=&invitee_email=&sort=&count=
    &page_token=]: the token owner's meetings, sorted by start time."""
    grant = require_token(sb, request, "calendly", _EVENTS_READ)
    me = identity.calendly_user(grant.account, _base(request))
    user, organization = request.args.get("user"), request.args.get("organization")
    if not user and not organization:
        raise _invalid("user", "one of user, organization, group must be provided")
    _owned(me, organization or me["current_organization"], user)
    status = request.args.get("status")
    if status not in (None, "active", "canceled"):
        raise _invalid("status", "must be one of active, canceled")
    sort = request.args.get("sort", "start_time:asc")
    if sort not in ("start_time:asc", "start_time:desc"):
        raise _invalid("sort", "must be start_time:asc or start_time:desc")
    low, high = request.args.get("min_start_time"), request.args.get("max_start_time")
    email = request.args.get("invitee_email")
    with sb.state.lock:
        items = [
            dict(entry["event"])
            for entry in store_of(sb).events.values()
            if entry["owner"] == grant.account
            and (status is None or entry["event"]["status"] == status)
            and (low is None or _parse(entry["event"]["start_time"]) >= _parse(low))
            and (high is None or _parse(entry["event"]["start_time"]) < _parse(high))
            and (email is None or any(i["email"] == email for i in entry["invitees"]))
        ]
    items.sort(key=lambda e: str(e["start_time"]), reverse=sort.endswith("desc"))
    return _page(items, request, "/calendly/scheduled_events")


def _own_event(sb: Sandbox, request: Request, event_uuid: str) -> dict[str, Any]:
    grant = require_token(sb, request, "calendly", _EVENTS_READ)
    entry = store_of(sb).events.get(event_uuid.upper())
    if entry is None:
        raise Reply(_not_found())
    if entry["owner"] != grant.account:
        raise _forbidden()
    return entry


def scheduled_event(sb: Sandbox, request: Request, event_uuid: str) -> Response:
    """GET /scheduled_events/{uuid}."""
    with sb.state.lock:
        return json_response({"resource": dict(_own_event(sb, request, event_uuid)["event"])})


def event_invitees(sb: Sandbox, request: Request, event_uuid: str) -> Response:
    """GET /scheduled_events/{uuid}/invitees[?status=&email=&count=&page_token=]."""
    status, email = request.args.get("status"), request.args.get("email")
    with sb.state.lock:
        entry = _own_event(sb, request, event_uuid)
        items = [
            dict(i)
            for i in entry["invitees"]
            if (status is None or i["status"] == status) and (email is None or i["email"] == email)
        ]
    return _page(items, request, f"/calendly/scheduled_events/{event_uuid}/invitees")


def event_invitee(sb: Sandbox, request: Request, event_uuid: str, invitee_uuid: str) -> Response:
    """GET /scheduled_events/{uuid}/invitees/{invitee_uuid}."""
    with sb.state.lock:
        entry = _own_event(sb, request, event_uuid)
        for invitee in entry["invitees"]:
            if _uuid_of(invitee["uri"]) == invitee_uuid.upper():
                return json_response({"resource": dict(invitee)})
    return _not_found()


def control_subscriptions(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/calendly/subscriptions: every subscription, deleted ones included (no keys)."""
    base = _base(request)
    with sb.state.lock:
        items = [
            {**s.resource(base), "deleted": s.deleted, "has_signing_key": s.signing_key is not None}
            for s in store_of(sb).subscriptions.values()
        ]
    return json_response({"subscriptions": items})


def routes() -> list[Route]:
    base = "/calendly/webhook_subscriptions"
    return [
        Route(base, ("POST",), create_subscription, "api", "calendly"),
        Route(base, ("GET",), list_subscriptions, "api", "calendly"),
        Route(f"{base}/<subscription_uuid>", ("GET", "DELETE"), subscription_item, "api", "calendly"),
        Route("/_sandbox/calendly/invitees", ("POST",), control_invitee, "control", None),
        Route("/_sandbox/calendly/subscriptions", ("GET",), control_subscriptions, "control", None),
        Route(
            "/_sandbox/calendly/subscriptions/<subscription_uuid>/disable",
            ("POST",),
            control_disable,
            "control",
            None,
        ),
        Route(
            "/_sandbox/calendly/invitees/<invitee_uuid>/cancel", ("POST",), control_cancel, "control", None
        ),
        Route(
            "/_sandbox/calendly/invitees/<invitee_uuid>/reschedule",
            ("POST",),
            control_reschedule,
            "control",
            None,
        ),
        Route("/calendly/scheduled_events", ("GET",), list_scheduled_events, "api", "calendly"),
        Route("/calendly/event_types/<event_type_uuid>", ("GET",), event_type_item, "api", "calendly"),
        Route("/calendly/scheduling_links", ("POST",), create_scheduling_link, "api", "calendly"),
        Route("/_sandbox/calendly/d/<token>", ("POST",), control_book_link, "control", None),
        Route(
            "/_sandbox/calendly/event_types/<event_type_uuid>/active",
            ("POST",),
            control_event_type_active,
            "control",
            None,
        ),
        Route("/calendly/scheduled_events/<event_uuid>", ("GET",), scheduled_event, "api", "calendly"),
        Route(
            "/calendly/scheduled_events/<event_uuid>/invitees", ("GET",), event_invitees, "api", "calendly"
        ),
        Route(
            "/calendly/scheduled_events/<event_uuid>/invitees/<invitee_uuid>",
            ("GET",),
            event_invitee,
            "api",
            "calendly",
        ),
    ]
