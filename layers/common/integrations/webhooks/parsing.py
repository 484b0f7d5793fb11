"""Turn a verified push into deliveries: what to dedupe on, which connection to route to, and a hint.

A payload is only a hint: the worker re-reads current state from the provider. So a delivery carries
ids and the event type, not the provider's data. Bodies that are not what the provider documents
raise `MalformedPayload` (400); nothing here ever raises anything else.

Before verification, `secret_lookup_keys()` names the per-channel records whose stored secrets the
verifier needs (Google channel, Graph subscriptions, Calendly subscription, GHL workflow location).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    StrictStr,
    ValidationError,
)

from integrations.webhooks.errors import MalformedPayload
from integrations.webhooks.request import (
    CALENDLY_SUBSCRIPTION_PARAM,
    GHL_LOCATION_PARAM,
    WebhookRequest,
    WebhookScheme,
)


class RoutingKind(StrEnum):
    """Which lookup item finds the connection a delivery belongs to."""

    GOOGLE_CHANNEL = "google_channel"
    GMAIL_ADDRESS = "gmail_address"
    # Our own routing id in the callback URL of a Calendly subscription (`?subscription=`).
    CALENDLY_SUBSCRIPTION = "calendly_subscription"
    # Fallback when the callback URL has none: the user URI that created the subscription.
    CALENDLY_USER = "calendly_user"
    GHL_LOCATION = "ghl_location"
    GHL_COMPANY = "ghl_company"
    # A GHL workflow's call request: its own lookup per location, holding the workflow secret's digest.
    GHL_WORKFLOW = "ghl_workflow"
    HUBSPOT_PORTAL = "hubspot_portal"
    GRAPH_SUBSCRIPTION = "graph_subscription"
    SLACK_TEAM = "slack_team"


class RoutingKey(BaseModel):
    """A lookup: kind + the provider's id (a channel id, an address, a portal id...)."""

    model_config = ConfigDict(frozen=True)

    kind: RoutingKind
    value: str


class Delivery(BaseModel):
    """One event to dedupe, route and enqueue."""

    model_config = ConfigDict(frozen=True)

    provider: str
    # The provider's event id (or a digest of what identifies the event when it has none).
    event_id: str
    routing: RoutingKey
    event_type: str
    hint: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """Unique across providers: the key of the idempotency record."""
        return f"{self.provider}#{self.event_id}"


class ParsedWebhook(BaseModel):
    """What one request asks of the receiver: deliveries to enqueue and, for Slack's
    `url_verification`, a challenge to echo (answer 200 with it; nothing to enqueue)."""

    model_config = ConfigDict(frozen=True)

    deliveries: list[Delivery] = Field(default_factory=list)
    challenge: str | None = None


class CallRequested(BaseModel):
    """A GHL workflow asks the platform to call a contact (the hint of a `call_requested` delivery)."""

    model_config = ConfigDict(frozen=True)

    location_id: str
    contact_id: str | None = None
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    # Which voice agent to use, when the workflow names one (customData.agent_id).
    agent_id: str | None = None
    workflow_id: str | None = None
    # The rest of the action's custom data, as strings.
    custom: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------- helpers

_M = TypeVar("_M", bound=BaseModel)


def _digest(*parts: object) -> str:
    """A stable id from the parts that identify an event (for providers without a unique event id)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body)
    except (ValueError, RecursionError):
        raise MalformedPayload("The body is not JSON.") from None


def _model(model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate(data)
    except (ValidationError, ValueError, RecursionError):
        # The pydantic message echoes input; the provider gets a fixed sentence instead.
        raise MalformedPayload(f"The body is not a valid {model.__name__}.") from None


def _as_str(value: Any) -> Any:
    # Providers send numeric ids as numbers or strings; keep them as exact strings (never via float).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[StrictStr, BeforeValidator(_as_str), Field(min_length=1, max_length=512)]


class _Payload(BaseModel):
    # defer_build: a receiver invocation parses one provider's bodies; build only that provider's models.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


def _compact(values: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    return {k: v for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------- Google Calendar


def parse_google_channel(request: WebhookRequest) -> ParsedWebhook:
    """A watch-channel push: no body, everything is in `X-Goog-*` headers."""
    headers = request.headers
    channel_id = headers.get("X-Goog-Channel-ID", "").strip()
    number = headers.get("X-Goog-Message-Number", "").strip()
    state = headers.get("X-Goog-Resource-State", "").strip()
    if not channel_id or not state or not (number.isascii() and number.isdigit()):
        raise MalformedPayload("The push lacks the channel id, resource state or message number.")
    delivery = Delivery(
        provider=request.provider,
        event_id=f"{channel_id}:{number}",
        routing=RoutingKey(kind=RoutingKind.GOOGLE_CHANNEL, value=channel_id),
        event_type=state,
        hint=_compact(
            {
                "resource_id": headers.get("X-Goog-Resource-ID"),
                "resource_uri": headers.get("X-Goog-Resource-URI"),
                "resource_state": state,
                "message_number": int(number),
                "channel_expiration": headers.get("X-Goog-Channel-Expiration"),
            }
        ),
    )
    return ParsedWebhook(deliveries=[delivery])


# --------------------------------------------------------------------------- Gmail via Pub/Sub


class _PubSubMessage(_Payload):
    data: StrictStr
    message_id: Id = Field(validation_alias=AliasChoices("messageId", "message_id"))
    publish_time: StrictStr | None = Field(
        default=None, validation_alias=AliasChoices("publishTime", "publish_time")
    )


class _PubSubPush(_Payload):
    message: _PubSubMessage
    subscription: StrictStr | None = None


class _GmailNotification(_Payload):
    email_address: StrictStr = Field(validation_alias="emailAddress", min_length=3, max_length=320)
    history_id: Id = Field(validation_alias="historyId")


def _b64_json(data: str) -> Any:
    """Pub/Sub `message.data`: base64 (URL-safe or standard, padding optional) of a JSON document."""
    text = data.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPayload("message.data is not base64.") from None
    return _json(raw)


def parse_pubsub_push(request: WebhookRequest) -> ParsedWebhook:
    """Gmail's `{emailAddress, historyId}` inside a Pub/Sub push; the id is the Pub/Sub messageId."""
    push = _model(_PubSubPush, _json(request.raw_body))
    note = _model(_GmailNotification, _b64_json(push.message.data))
    if not note.history_id.isdigit():
        raise MalformedPayload("historyId is not a number.")
    delivery = Delivery(
        provider=request.provider,
        event_id=push.message.message_id,
        routing=RoutingKey(kind=RoutingKind.GMAIL_ADDRESS, value=note.email_address.lower()),
        event_type="mailbox_changed",
        hint=_compact(
            {
                "history_id": note.history_id,
                "publish_time": push.message.publish_time,
                "subscription": push.subscription,
            }
        ),
    )
    return ParsedWebhook(deliveries=[delivery])


# --------------------------------------------------------------------------- Calendly


class _CalendlyInner(_Payload):
    uri: StrictStr | None = None
    event: StrictStr | None = None
    status: StrictStr | None = None
    rescheduled: bool | None = None
    scheduled_event: dict[str, Any] | None = None


class _CalendlyEvent(_Payload):
    event: StrictStr = Field(min_length=1, max_length=128)
    created_at: StrictStr | None = None
    created_by: StrictStr | None = None
    payload: _CalendlyInner


def _calendly_routing(request: WebhookRequest, created_by: str | None) -> RoutingKey:
    subscription = request.query.get(CALENDLY_SUBSCRIPTION_PARAM)
    if subscription:
        return RoutingKey(kind=RoutingKind.CALENDLY_SUBSCRIPTION, value=subscription)
    if created_by:
        return RoutingKey(kind=RoutingKind.CALENDLY_USER, value=created_by)
    raise MalformedPayload("The Calendly event names no subscription and no creator.")


def parse_calendly(request: WebhookRequest) -> ParsedWebhook:
    """`invitee.created`, `invitee.canceled`, no-show and routing-form events.

    Calendly sends no event id: the id is a digest of the event name, the resource URI and the event's
    `created_at` (the same on a redelivery), so a reschedule's cancel + create are two events.
    """
    event = _model(_CalendlyEvent, _json(request.raw_body))
    inner = event.payload
    scheduled = inner.scheduled_event or {}
    identity = inner.uri or hashlib.sha256(request.raw_body).hexdigest()
    delivery = Delivery(
        provider=request.provider,
        event_id=_digest(event.event, identity, event.created_at),
        routing=_calendly_routing(request, event.created_by),
        event_type=event.event,
        hint=_compact(
            {
                "resource_uri": inner.uri,
                "scheduled_event_uri": inner.event or _str_or_none(scheduled.get("uri")),
                "event_type_uri": _str_or_none(scheduled.get("event_type")),
                "status": inner.status,
                "rescheduled": inner.rescheduled,
                "created_at": event.created_at,
            }
        ),
    )
    return ParsedWebhook(deliveries=[delivery])


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- GoHighLevel


class _GhlEvent(_Payload):
    type: StrictStr = Field(min_length=1, max_length=128)
    webhook_id: Id | None = Field(default=None, validation_alias="webhookId")
    location_id: Id | None = Field(default=None, validation_alias="locationId")
    location_ids: list[Id] | None = Field(default=None, validation_alias="locationIds")
    company_id: Id | None = Field(default=None, validation_alias="companyId")
    alt_id: Id | None = Field(default=None, validation_alias="altId")
    alt_type: StrictStr | None = Field(default=None, validation_alias="altType")
    app_id: Id | None = Field(default=None, validation_alias="appId")
    id: Id | None = None
    contact_id: Id | None = Field(default=None, validation_alias="contactId")
    timestamp: StrictStr | None = None


def _ghl_routes(event: _GhlEvent) -> list[RoutingKey]:
    # Bulk installs list many locations; others name one location, an alt id, or only the company.
    if event.location_ids:
        return [
            RoutingKey(kind=RoutingKind.GHL_LOCATION, value=loc) for loc in dict.fromkeys(event.location_ids)
        ]
    if event.location_id:
        return [RoutingKey(kind=RoutingKind.GHL_LOCATION, value=event.location_id)]
    if event.alt_id and event.alt_type == "location":
        return [RoutingKey(kind=RoutingKind.GHL_LOCATION, value=event.alt_id)]
    if event.company_id:
        return [RoutingKey(kind=RoutingKind.GHL_COMPANY, value=event.company_id)]
    raise MalformedPayload("The GHL event names no location or company.")


def parse_ghl(request: WebhookRequest) -> ParsedWebhook:
    """Marketplace webhooks: route by location (or company); dedupe on `webhookId`, else a body digest."""
    payload = _json(request.raw_body)
    event = _model(_GhlEvent, payload)
    routes = _ghl_routes(event)
    base_id = event.webhook_id or hashlib.sha256(request.raw_body).hexdigest()
    hint = _compact(
        {
            "type": event.type,
            "object_id": event.id,
            "contact_id": event.contact_id,
            "company_id": event.company_id,
            "app_id": event.app_id,
            "timestamp": event.timestamp,
        }
    )
    deliveries = [
        Delivery(
            provider=request.provider,
            event_id=base_id if len(routes) == 1 else f"{base_id}:{route.value}",
            routing=route,
            event_type=event.type,
            hint=hint,
        )
        for route in routes
    ]
    return ParsedWebhook(deliveries=deliveries)


class _GhlWorkflowCall(_Payload):
    contact_id: Id | None = Field(default=None, validation_alias=AliasChoices("contact_id", "contactId"))
    phone: StrictStr | None = Field(default=None, max_length=64)
    full_name: StrictStr | None = Field(default=None, max_length=256)
    first_name: StrictStr | None = Field(default=None, max_length=256)
    last_name: StrictStr | None = Field(default=None, max_length=256)
    email: StrictStr | None = Field(default=None, max_length=320)
    workflow: dict[str, Any] | None = None
    custom_data: dict[str, Any] | None = Field(default=None, validation_alias="customData")
    request_id: Id | None = None


def parse_ghl_workflow(request: WebhookRequest) -> ParsedWebhook:
    """A workflow's (Custom) Webhook action asking for a call.

    Accepts the standard Webhook action body (contact fields at the top, `workflow`, `customData`) and a
    custom body with the same names. The location is the one in the URL, whose secret was verified. The
    event id is `request_id` when the workflow sends one; otherwise a digest of the body and the minute
    it arrived, so a quick retry is a duplicate but the same workflow firing again later is not.
    """
    location_id = request.query.get(GHL_LOCATION_PARAM, "").strip()
    if not location_id:
        raise MalformedPayload("The workflow URL names no location.")
    body = _model(_GhlWorkflowCall, _json(request.raw_body))
    custom = {str(k): str(v) for k, v in (body.custom_data or {}).items() if isinstance(v, str | int | float)}
    name = body.full_name or " ".join(p for p in (body.first_name, body.last_name) if p) or None
    call = CallRequested(
        location_id=location_id,
        contact_id=body.contact_id or custom.get("contact_id"),
        phone=body.phone or custom.get("phone"),
        name=name,
        email=body.email or custom.get("email"),
        agent_id=custom.pop("agent_id", None),
        workflow_id=_str_or_none((body.workflow or {}).get("id")),
        custom=custom,
    )
    if not (call.phone or call.contact_id):
        raise MalformedPayload("A call request needs a phone number or a contact id.")
    minute = request.received_at.replace(second=0, microsecond=0).isoformat()
    event_id = (
        body.request_id or custom.get("request_id") or _digest(location_id, request.raw_body.hex(), minute)
    )
    delivery = Delivery(
        provider=request.provider,
        event_id=event_id,
        routing=RoutingKey(kind=RoutingKind.GHL_WORKFLOW, value=location_id),
        event_type="call_requested",
        hint=call.model_dump(mode="json"),
    )
    return ParsedWebhook(deliveries=[delivery])


# --------------------------------------------------------------------------- HubSpot


class _HubSpotEvent(_Payload):
    event_id: Id = Field(validation_alias="eventId")
    portal_id: Id = Field(validation_alias="portalId")
    subscription_id: Id | None = Field(default=None, validation_alias="subscriptionId")
    subscription_type: StrictStr | None = Field(default=None, validation_alias="subscriptionType")
    event_type: StrictStr | None = Field(default=None, validation_alias="eventType")
    occurred_at: StrictInt | None = Field(default=None, validation_alias="occurredAt")
    object_id: Id | None = Field(default=None, validation_alias="objectId")
    object_type_id: Id | None = Field(default=None, validation_alias="objectTypeId")
    property_name: StrictStr | None = Field(default=None, validation_alias="propertyName")
    change_source: StrictStr | None = Field(default=None, validation_alias="changeSource")
    attempt_number: StrictInt | None = Field(default=None, validation_alias="attemptNumber")
    from_object_id: Id | None = Field(default=None, validation_alias="fromObjectId")
    to_object_id: Id | None = Field(default=None, validation_alias="toObjectId")
    association_type: StrictStr | None = Field(default=None, validation_alias="associationType")
    primary_object_id: Id | None = Field(default=None, validation_alias="primaryObjectId")
    merged_object_ids: list[Id] | None = Field(default=None, validation_alias="mergedObjectIds")


def parse_hubspot(request: WebhookRequest) -> ParsedWebhook:
    """A batch (JSON array, up to 100) of events from possibly many portals; one delivery per event.

    HubSpot says `eventId` is not guaranteed unique, so the dedupe id binds it to the subscription,
    object, property and time of the event (the same on every retry; `attemptNumber` is left out).
    """
    payload = _json(request.raw_body)
    if not isinstance(payload, list):
        raise MalformedPayload("The HubSpot body is not an array of events.")
    deliveries = []
    for item in payload:
        event = _model(_HubSpotEvent, item)
        kind = event.subscription_type or event.event_type
        if not kind:
            raise MalformedPayload("A HubSpot event has no subscriptionType.")
        deliveries.append(
            Delivery(
                provider=request.provider,
                event_id=_digest(
                    event.event_id,
                    event.portal_id,
                    event.subscription_id,
                    kind,
                    event.object_id,
                    event.property_name,
                    event.occurred_at,
                ),
                routing=RoutingKey(kind=RoutingKind.HUBSPOT_PORTAL, value=event.portal_id),
                event_type=kind,
                hint=_compact(
                    {
                        "event_id": event.event_id,
                        "object_id": event.object_id,
                        "object_type_id": event.object_type_id,
                        "property_name": event.property_name,
                        "occurred_at": event.occurred_at,
                        "change_source": event.change_source,
                        "attempt_number": event.attempt_number,
                        "from_object_id": event.from_object_id,
                        "to_object_id": event.to_object_id,
                        "association_type": event.association_type,
                        "primary_object_id": event.primary_object_id,
                        "merged_object_ids": list(event.merged_object_ids)
                        if event.merged_object_ids
                        else None,
                    }
                ),
            )
        )
    return ParsedWebhook(deliveries=deliveries)


# --------------------------------------------------------------------------- Microsoft Graph


class _GraphNotification(_Payload):
    subscription_id: Id = Field(validation_alias="subscriptionId")
    id: StrictStr | None = None
    change_type: StrictStr | None = Field(default=None, validation_alias="changeType")
    lifecycle_event: StrictStr | None = Field(default=None, validation_alias="lifecycleEvent")
    resource: StrictStr | None = None
    tenant_id: StrictStr | None = Field(default=None, validation_alias="tenantId")
    resource_data: dict[str, Any] | None = Field(default=None, validation_alias="resourceData")
    subscription_expiration: StrictStr | None = Field(
        default=None, validation_alias="subscriptionExpirationDateTime"
    )


class _GraphBatch(_Payload):
    value: list[dict[str, Any]] = Field(min_length=1)


def _graph_items(raw_body: bytes) -> list[dict[str, Any]]:
    return _model(_GraphBatch, _json(raw_body)).value


def parse_graph(request: WebhookRequest) -> ParsedWebhook:
    """Change and lifecycle notifications (`value[]`, possibly for several subscriptions).

    Outlook notifications often carry no `id`; the fallback id is a digest of the notification without
    its clientState (a retry is byte-identical; a new change has a new etag). The clientState is a
    secret and never reaches the hint.
    """
    deliveries = []
    for item in _graph_items(request.raw_body):
        note = _model(_GraphNotification, item)
        data = note.resource_data or {}
        kind = f"lifecycle.{note.lifecycle_event}" if note.lifecycle_event else (note.change_type or "")
        if not kind:
            raise MalformedPayload("A notification has neither changeType nor lifecycleEvent.")
        identity = {k: v for k, v in item.items() if k != "clientState"}
        deliveries.append(
            Delivery(
                provider=request.provider,
                event_id=note.id or _digest(identity),
                routing=RoutingKey(kind=RoutingKind.GRAPH_SUBSCRIPTION, value=note.subscription_id),
                event_type=kind,
                hint=_compact(
                    {
                        "resource": note.resource,
                        "resource_id": _str_or_none(data.get("id")),
                        "etag": _str_or_none(data.get("@odata.etag")),
                        "tenant_id": note.tenant_id,
                        "subscription_expiration": note.subscription_expiration,
                    }
                ),
            )
        )
    return ParsedWebhook(deliveries=deliveries)


# --------------------------------------------------------------------------- Slack


class _SlackAuthorization(_Payload):
    team_id: StrictStr | None = None


class _SlackInnerEvent(_Payload):
    type: StrictStr = Field(min_length=1, max_length=128)
    tokens: dict[str, list[StrictStr]] | None = None


class _SlackEnvelope(_Payload):
    type: StrictStr = Field(min_length=1, max_length=128)
    challenge: StrictStr | None = None
    team_id: StrictStr | None = None
    api_app_id: StrictStr | None = None
    enterprise_id: StrictStr | None = None
    event_id: StrictStr | None = None
    event_time: StrictInt | None = None
    event: _SlackInnerEvent | None = None
    authorizations: list[_SlackAuthorization] | None = None
    minute_rate_limited: StrictInt | None = None


def parse_slack(request: WebhookRequest) -> ParsedWebhook:
    """Events API: `url_verification` (echo the challenge), `event_callback` (e.g. `app_uninstalled`,
    `tokens_revoked`, deduped on `event_id`) and `app_rate_limited`."""
    envelope = _model(_SlackEnvelope, _json(request.raw_body))
    if envelope.type == "url_verification":
        if not envelope.challenge:
            raise MalformedPayload("url_verification without a challenge.")
        return ParsedWebhook(challenge=envelope.challenge)
    team_id = envelope.team_id or next((a.team_id for a in envelope.authorizations or () if a.team_id), None)
    if not team_id:
        raise MalformedPayload("The Slack event names no team.")
    if envelope.type == "event_callback":
        if envelope.event is None or not envelope.event_id:
            raise MalformedPayload("event_callback without an event or event_id.")
        event_type, event_id = envelope.event.type, envelope.event_id
    elif envelope.type == "app_rate_limited":
        event_type, event_id = envelope.type, f"app_rate_limited:{team_id}:{envelope.minute_rate_limited}"
    else:
        event_type, event_id = (
            envelope.type,
            envelope.event_id or hashlib.sha256(request.raw_body).hexdigest(),
        )
    tokens = envelope.event.tokens if envelope.event is not None else None
    delivery = Delivery(
        provider=request.provider,
        event_id=event_id,
        routing=RoutingKey(kind=RoutingKind.SLACK_TEAM, value=team_id),
        event_type=event_type,
        hint=_compact(
            {
                "api_app_id": envelope.api_app_id,
                "enterprise_id": envelope.enterprise_id,
                "event_time": envelope.event_time,
                "revoked_tokens": {k: list(v) for k, v in tokens.items()} if tokens else None,
                "retry_num": request.headers.get("X-Slack-Retry-Num"),
            }
        ),
    )
    return ParsedWebhook(deliveries=[delivery])


# --------------------------------------------------------------------------- registry

Parser = Callable[[WebhookRequest], ParsedWebhook]

PARSERS: Mapping[WebhookScheme, Parser] = {
    WebhookScheme.GOOGLE_CHANNEL: parse_google_channel,
    WebhookScheme.PUBSUB_PUSH: parse_pubsub_push,
    WebhookScheme.CALENDLY: parse_calendly,
    WebhookScheme.GHL: parse_ghl,
    WebhookScheme.GHL_WORKFLOW: parse_ghl_workflow,
    WebhookScheme.HUBSPOT: parse_hubspot,
    WebhookScheme.GRAPH: parse_graph,
    WebhookScheme.SLACK: parse_slack,
}


def parse_request(request: WebhookRequest) -> ParsedWebhook:
    """Parse a verified request with its scheme's parser."""
    scheme = request.scheme
    parser = PARSERS.get(scheme) if scheme is not None else None
    if parser is None:
        raise MalformedPayload(f"No webhook parser for provider {request.provider!r}.")
    return parser(request)


def secret_lookup_keys(request: WebhookRequest) -> list[RoutingKey]:
    """The per-channel records to load before verifying (their stored token, clientState or key).

    Read from the unverified request, so use them only to look secrets up. Empty for schemes whose
    keys are app-wide (Pub/Sub, GHL, HubSpot, Slack) and when the request names nothing to look up
    (the verifier then refuses it).
    """
    scheme = request.scheme
    if scheme is WebhookScheme.GOOGLE_CHANNEL:
        channel_id = request.headers.get("X-Goog-Channel-ID", "").strip()
        return [RoutingKey(kind=RoutingKind.GOOGLE_CHANNEL, value=channel_id)] if channel_id else []
    if scheme is WebhookScheme.GHL_WORKFLOW:
        location_id = request.query.get(GHL_LOCATION_PARAM, "").strip()
        return [RoutingKey(kind=RoutingKind.GHL_WORKFLOW, value=location_id)] if location_id else []
    try:
        if scheme is WebhookScheme.GRAPH:
            ids = [item.get("subscriptionId") for item in _graph_items(request.raw_body)]
            unique = dict.fromkeys(i for i in ids if isinstance(i, str) and i)
            return [RoutingKey(kind=RoutingKind.GRAPH_SUBSCRIPTION, value=i) for i in unique]
        if scheme is WebhookScheme.CALENDLY:
            subscription = request.query.get(CALENDLY_SUBSCRIPTION_PARAM)
            created_by = None if subscription else _model(_CalendlyEvent, _json(request.raw_body)).created_by
            return [_calendly_routing(request, created_by)]
    except MalformedPayload:
        return []
    return []
