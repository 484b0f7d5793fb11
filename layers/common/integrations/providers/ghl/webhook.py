"""GoHighLevel pushes, two kinds on one URL (`/webhooks/ghl`):

- Marketplace webhooks, signed by HighLevel with the app's key (Ed25519, or legacy RSA), routed by
  location (or company, for agency-level events) to the lookups written at connect.
- A workflow's Custom Webhook action asking for a call (`?workflow=call&location=<id>`). HighLevel does
  not sign these, so each location gets its own random secret (`issue_workflow_secret`), sent by the
  action as `Authorization: Bearer <secret>`; its lookup holds only the secret's digest. A verified
  call request publishes `Call Requested` instead of queueing a sync job.

HighLevel redelivers only on 429 (the catalog's `webhook.retry_status`; provider page §1.7).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictStr

from integrations.events import CallRequested as CallRequestedEvent
from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import Id, Payload, compact, digest, json_body, model, str_or_none
from integrations.webhooks.plugin import (
    Delivery,
    KeyAccess,
    Material,
    ParsedWebhook,
    RoutingKey,
    WebhookPlugin,
)
from integrations.webhooks.request import WebhookRequest
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.signatures import (
    VerificationSecrets,
    bearer_token,
    canonical_b64decode,
    check_fresh,
    configured,
    epoch_seconds,
    fail,
    is_number,
    pem_text,
    required_header,
    shared_secret_matches,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.events import PlatformEvent

# Query parameters of the workflow URL we hand out (their values are routing ids, not secrets).
WORKFLOW_PARAM = "workflow"
LOCATION_PARAM = "location"
# Lookup kinds: a location and a company (written at connect), and a location's workflow secret.
LOOKUP_LOCATION = "location"
LOOKUP_COMPANY = "company"
LOOKUP_WORKFLOW = "workflow"
# Agency-level connections keep the company id in the account id with this prefix.
COMPANY_PREFIX = "company:"
CALL_REQUESTED = "call_requested"


# --------------------------------------------------------------------------- marketplace webhooks


@functools.lru_cache(maxsize=32)
def _ed25519_key(text: str) -> Ed25519PublicKey | None:
    """A GHL app key as PEM, as base64 of the DER SubjectPublicKeyInfo, or as base64 of the raw 32 bytes."""
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        if "BEGIN" in text:
            key = load_pem_public_key(pem_text(text))
        else:
            raw = base64.b64decode(text.strip(), validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else load_der_public_key(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


@functools.lru_cache(maxsize=32)
def _rsa_key(text: str) -> RSAPublicKey | None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem_text(text))
    except (ValueError, TypeError, UnicodeEncodeError):
        return None
    return key if isinstance(key, RSAPublicKey) else None


def _payload_timestamp(raw_body: bytes) -> float | None:
    """The signed payload's `timestamp` (ISO-8601, or epoch s/ms), if the body carries one."""
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):
        return None  # not JSON: the parser answers 400
    value = payload.get("timestamp") if isinstance(payload, dict) else None
    if value is None:
        return None
    try:
        if is_number(value):
            # Epoch milliseconds or seconds: anything past year 5138 in seconds is read as milliseconds.
            return value / 1000 if value > 100_000_000_000 else float(value)
        if isinstance(value, str):
            return epoch_seconds(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        pass
    raise fail(SignatureFailure.STALE_TIMESTAMP, "The payload timestamp is unreadable.")


@dataclass(frozen=True, slots=True)
class GhlVerifier:
    """HighLevel marketplace webhooks.

    `X-GHL-Signature`: Ed25519 over the raw body, base64, the app's public key. Legacy `x-wh-signature`:
    RSA PKCS#1 v1.5 SHA-256, base64, HighLevel's published key, checked only when the new header is absent
    (as the official SDKs do). The payload `timestamp` is refused beyond the tolerance when present
    (HighLevel's advice; the signature itself has no timestamp).
    """

    tolerance: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the Ed25519 signature (or the legacy RSA one), then the payload timestamp."""
        if "X-GHL-Signature" in request.headers:
            self._verify_ed25519(request, secrets)
        elif "x-wh-signature" in request.headers:
            self._verify_rsa(request, secrets)
        else:
            raise fail(SignatureFailure.MISSING_SIGNATURE, "Header X-GHL-Signature is missing.")
        signed_at = _payload_timestamp(request.raw_body)
        if signed_at is not None:
            check_fresh(signed_at, now, self.tolerance)

    @staticmethod
    def _verify_ed25519(request: WebhookRequest, secrets: VerificationSecrets) -> None:
        from cryptography.exceptions import InvalidSignature

        signature = canonical_b64decode(required_header(request, "X-GHL-Signature"), size=64)
        keys = [k for k in map(_ed25519_key, configured(secrets.ed25519_public_keys, "GHL public key")) if k]
        if not keys:
            raise fail(SignatureFailure.BAD_SIGNATURE, "No configured GHL public key is usable.")
        valid = False
        for key in keys:
            try:
                key.verify(signature, request.raw_body)
                valid = True
            except InvalidSignature:
                continue
        if not valid:
            raise fail(SignatureFailure.BAD_SIGNATURE, "The GHL signature does not match.")

    @staticmethod
    def _verify_rsa(request: WebhookRequest, secrets: VerificationSecrets) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = canonical_b64decode(required_header(request, "x-wh-signature"))
        keys = [k for k in map(_rsa_key, configured(secrets.rsa_public_keys, "GHL legacy public key")) if k]
        if not keys:
            raise fail(SignatureFailure.BAD_SIGNATURE, "No configured GHL legacy public key is usable.")
        valid = False
        for key in keys:
            if len(signature) != key.key_size // 8:
                continue
            try:
                key.verify(signature, request.raw_body, padding.PKCS1v15(), hashes.SHA256())
                valid = True
            except InvalidSignature:
                continue
        if not valid:
            raise fail(SignatureFailure.BAD_SIGNATURE, "The GHL legacy signature does not match.")


class _GhlEvent(Payload):
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


def _routes(event: _GhlEvent) -> list[RoutingKey]:
    # Bulk installs list many locations; others name one location, an alt id, or only the company.
    if event.location_ids:
        return [RoutingKey(kind=LOOKUP_LOCATION, value=loc) for loc in dict.fromkeys(event.location_ids)]
    if event.location_id:
        return [RoutingKey(kind=LOOKUP_LOCATION, value=event.location_id)]
    if event.alt_id and event.alt_type == "location":
        return [RoutingKey(kind=LOOKUP_LOCATION, value=event.alt_id)]
    if event.company_id:
        return [RoutingKey(kind=LOOKUP_COMPANY, value=event.company_id)]
    raise MalformedPayload("The GHL event names no location or company.")


def parse_ghl(request: WebhookRequest) -> ParsedWebhook:
    """Marketplace webhooks: route by location (or company); dedupe on `webhookId`, else a body digest."""
    payload = json_body(request.raw_body)
    event = model(_GhlEvent, payload)
    routes = _routes(event)
    base_id = event.webhook_id or hashlib.sha256(request.raw_body).hexdigest()
    hint = compact(
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


# --------------------------------------------------------------------------- workflow call requests


@dataclass(frozen=True, slots=True)
class GhlWorkflowVerifier:
    """A GHL workflow's Custom Webhook action: HighLevel does not sign these, so each location gets its
    own random secret, sent by the action as `Authorization: Bearer <secret>`."""

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Compare the bearer secret with the location's stored secret(s)."""
        token = bearer_token(request)
        if not shared_secret_matches(
            token, secrets.channel_tokens, secrets.channel_token_hashes, "workflow secret"
        ):
            raise fail(SignatureFailure.BAD_SIGNATURE, "The workflow secret does not match.")


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


class _GhlWorkflowCall(Payload):
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
    location_id = request.query.get(LOCATION_PARAM, "").strip()
    if not location_id:
        raise MalformedPayload("The workflow URL names no location.")
    body = model(_GhlWorkflowCall, json_body(request.raw_body))
    custom = {str(k): str(v) for k, v in (body.custom_data or {}).items() if isinstance(v, str | int | float)}
    name = body.full_name or " ".join(p for p in (body.first_name, body.last_name) if p) or None
    call = CallRequested(
        location_id=location_id,
        contact_id=body.contact_id or custom.get("contact_id"),
        phone=body.phone or custom.get("phone"),
        name=name,
        email=body.email or custom.get("email"),
        agent_id=custom.pop("agent_id", None),
        workflow_id=str_or_none((body.workflow or {}).get("id")),
        custom=custom,
    )
    if not (call.phone or call.contact_id):
        raise MalformedPayload("A call request needs a phone number or a contact id.")
    minute = request.received_at.replace(second=0, microsecond=0).isoformat()
    event_id = (
        body.request_id or custom.get("request_id") or digest(location_id, request.raw_body.hex(), minute)
    )
    delivery = Delivery(
        provider=request.provider,
        event_id=event_id,
        routing=RoutingKey(kind=LOOKUP_WORKFLOW, value=location_id),
        event_type=CALL_REQUESTED,
        hint=call.model_dump(mode="json"),
    )
    return ParsedWebhook(deliveries=[delivery])


@dataclass(frozen=True, slots=True, repr=False)
class WorkflowSecret:
    """A GHL workflow secret, shown to the agency once: the action sends it as `Authorization: Bearer`."""

    secret: str
    url: str
    lookup: Lookup

    def __repr__(self) -> str:
        return f"WorkflowSecret(url={self.url!r})"


def workflow_url(public_api_url: str, location_id: str) -> str:
    """The URL a GHL workflow's Custom Webhook action posts call requests to."""
    return (
        f"{public_api_url.rstrip('/')}/webhooks/ghl?{WORKFLOW_PARAM}=call"
        f"&{LOCATION_PARAM}={quote(location_id, safe='')}"
    )


def issue_workflow_secret(
    connection: Connection, public_api_url: str, previous: Lookup | None = None
) -> WorkflowSecret:
    """A new random workflow secret for the connection's GHL location; the lookup stores its digest
    (and the digest it replaces, so workflows keep working until they are updated)."""
    from integrations.webhooks.signatures import secret_digest

    location_id = connection.account.id
    if not location_id or location_id.startswith(COMPANY_PREFIX):
        raise ValueError("Workflow call requests need a location-level GoHighLevel connection.")
    secret = secrets.token_urlsafe(32)
    lookup = make_lookup(
        connection,
        LOOKUP_WORKFLOW,
        location_id,
        **{
            Attr.TOKEN_SHA256: secret_digest(secret),
            Attr.PREVIOUS_TOKEN_SHA256: previous.attributes.get(Attr.TOKEN_SHA256, "") if previous else "",
        },
    )
    return WorkflowSecret(secret=secret, url=workflow_url(public_api_url, location_id), lookup=lookup)


# --------------------------------------------------------------------------- the plug-ins


class GhlWorkflowWebhook(WebhookPlugin):
    """Call requests from a workflow: the location in the URL names the lookup holding its secret."""

    # The per-location secret is all it needs: the app's keys do not sign these.
    uses_app_secret = False
    verifier = GhlWorkflowVerifier()

    def lookup_keys(self, request: WebhookRequest) -> list[RoutingKey]:
        location_id = request.query.get(LOCATION_PARAM, "").strip()
        return [RoutingKey(kind=LOOKUP_WORKFLOW, value=location_id)] if location_id else []

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(
            channel_token_hashes=material.digests(Attr.TOKEN_SHA256, Attr.PREVIOUS_TOKEN_SHA256)
        )

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_ghl_workflow(request)

    def event(self, request: WebhookRequest, delivery: Delivery, lookup: Lookup) -> PlatformEvent | None:
        """A call request is for the platform's voice agents, not for sync: publish `Call Requested`."""
        if delivery.event_type != CALL_REQUESTED:
            return None
        call = CallRequested.model_validate(delivery.hint)
        return CallRequestedEvent(
            connection_id=lookup.connection_id,
            provider=request.provider,
            agency_id=lookup.agency_id,
            client_id=lookup.client_id,
            contact_id=call.contact_id,
            phone=call.phone,
            name=call.name,
            email=call.email,
            workflow_id=call.workflow_id,
            agent_id=call.agent_id,
            custom=call.custom,
            received_at=request.received_at,
        )


class GhlWebhook(WebhookPlugin):
    """Marketplace webhooks, verified with the app's keys; a workflow URL is handled by `WORKFLOW`."""

    verifier = GhlVerifier()

    def for_request(self, request: WebhookRequest) -> WebhookPlugin:
        # A GHL workflow URL carries `?workflow=...`.
        return WORKFLOW if WORKFLOW_PARAM in request.query else self

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(
            ed25519_public_keys=material.app_values("webhook_public_key", "previous_webhook_public_key"),
            rsa_public_keys=material.app_values(
                "legacy_webhook_public_key", "previous_legacy_webhook_public_key"
            ),
        )

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_ghl(request)


WORKFLOW = GhlWorkflowWebhook()
WEBHOOK = GhlWebhook()
