"""Calendly webhooks: HMAC-signed with the subscription's own signing key (or the app's).

Calendly's payload names no subscription, so the callback URL we register carries our routing id
(`?subscription=<id>`); the lookup item of that id holds the subscription's signing key, sealed with
KMS (`subscriptions.py`). Without the parameter, the user who created the subscription routes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field, StrictStr

from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import Payload, compact, digest, json_body, model, str_or_none
from integrations.webhooks.plugin import (
    Delivery,
    KeyAccess,
    Material,
    ParsedWebhook,
    RoutingKey,
    WebhookPlugin,
)
from integrations.webhooks.request import WebhookRequest
from integrations.webhooks.routing import Attr
from integrations.webhooks.signatures import (
    HEX_SHA256,
    VerificationSecrets,
    as_bytes,
    check_fresh,
    configured,
    fail,
    hmac_sha256,
    matches_any,
    required_header,
    strict_int,
)

if TYPE_CHECKING:
    from integrations.domain.lookup import Lookup

# Query parameter of the callback URL we register (its value is a routing id, not a secret).
SUBSCRIPTION_PARAM = "subscription"
# Lookup kinds: our routing id in the callback URL, and the fallback when the URL has none: the user
# URI that created the subscription (written at connect).
LOOKUP_SUBSCRIPTION = "subscription"
LOOKUP_USER = "user"


@dataclass(frozen=True, slots=True)
class CalendlyVerifier:
    """`Calendly-Webhook-Signature: t=<unix s>,v1=<hex>`: HMAC-SHA256 of `t + "." + body`, signing key.

    Calendly's own example refuses timestamps older than 3 minutes; any `v1` entry may match (rotation).
    """

    tolerance: timedelta = timedelta(minutes=3)

    def precheck(self, request: WebhookRequest, now: datetime) -> None:
        """The header's form and the timestamp's freshness: free checks, before any key is opened."""
        timestamp, _ = self._parse(required_header(request, "Calendly-Webhook-Signature"))
        check_fresh(int(timestamp), now, self.tolerance)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the signature, then the timestamp."""
        timestamp, signatures = self._parse(required_header(request, "Calendly-Webhook-Signature"))
        keys = configured(secrets.hmac_keys, "Calendly signing key")
        message = as_bytes(timestamp) + b"." + request.raw_body
        expected = [hmac_sha256(key, message).hex().encode("ascii") for key in keys]
        if not any([matches_any(sig.encode("ascii"), expected) for sig in signatures]):
            raise fail(SignatureFailure.BAD_SIGNATURE, "The Calendly signature does not match.")
        check_fresh(int(timestamp), now, self.tolerance)

    @staticmethod
    def _parse(header: str) -> tuple[str, list[str]]:
        timestamps: list[str] = []
        signatures: list[str] = []
        for part in header.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The Calendly signature is not t=…,v1=….")
            if name == "t":
                timestamps.append(value)
            elif name == "v1":
                if not HEX_SHA256.fullmatch(value):
                    raise fail(SignatureFailure.MALFORMED_SIGNATURE, "A v1 signature is not SHA-256 hex.")
                signatures.append(value)
        if len(timestamps) != 1 or not signatures:
            raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The Calendly signature needs one t and a v1.")
        strict_int(timestamps[0], "Calendly timestamp")
        return timestamps[0], signatures


class _CalendlyInner(Payload):
    uri: StrictStr | None = None
    event: StrictStr | None = None
    status: StrictStr | None = None
    rescheduled: bool | None = None
    scheduled_event: dict[str, Any] | None = None


class _CalendlyEvent(Payload):
    event: StrictStr = Field(min_length=1, max_length=128)
    created_at: StrictStr | None = None
    created_by: StrictStr | None = None
    payload: _CalendlyInner


def _routing(request: WebhookRequest, created_by: str | None) -> RoutingKey:
    subscription = request.query.get(SUBSCRIPTION_PARAM)
    if subscription:
        return RoutingKey(kind=LOOKUP_SUBSCRIPTION, value=subscription)
    if created_by:
        return RoutingKey(kind=LOOKUP_USER, value=created_by)
    raise MalformedPayload("The Calendly event names no subscription and no creator.")


def parse_calendly(request: WebhookRequest) -> ParsedWebhook:
    """`invitee.created`, `invitee.canceled`, no-show and routing-form events.

    Calendly sends no event id: the id is a digest of the event name, the resource URI and the event's
    `created_at` (the same on a redelivery), so a reschedule's cancel + create are two events.
    """
    event = model(_CalendlyEvent, json_body(request.raw_body))
    inner = event.payload
    scheduled = inner.scheduled_event or {}
    identity = inner.uri or hashlib.sha256(request.raw_body).hexdigest()
    delivery = Delivery(
        provider=request.provider,
        event_id=digest(event.event, identity, event.created_at),
        routing=_routing(request, event.created_by),
        event_type=event.event,
        hint=compact(
            {
                "resource_uri": inner.uri,
                "scheduled_event_uri": inner.event or str_or_none(scheduled.get("uri")),
                "event_type_uri": str_or_none(scheduled.get("event_type")),
                "status": inner.status,
                "rescheduled": inner.rescheduled,
                "created_at": event.created_at,
            }
        ),
    )
    return ParsedWebhook(deliveries=[delivery])


class CalendlyWebhook(WebhookPlugin):
    """Verified with the subscription's own key when its lookup holds one, else with the app's key."""

    verifier = CalendlyVerifier()

    def lookup_keys(self, request: WebhookRequest) -> list[RoutingKey]:
        try:
            subscription = request.query.get(SUBSCRIPTION_PARAM)
            created_by = (
                None if subscription else model(_CalendlyEvent, json_body(request.raw_body)).created_by
            )
            return [_routing(request, created_by)]
        except MalformedPayload:
            return []

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        # Calendly signs with the subscription's own key, or with the app's key when none was set.
        own = [self._own_key(lookup, keys) for lookup in material.found()]
        app_keys = material.app_values("webhook_signing_key", "previous_webhook_signing_key")
        return VerificationSecrets(hmac_keys=(*(k for k in own if k), *app_keys))

    @staticmethod
    def _own_key(lookup: Lookup, keys: KeyAccess) -> str | None:
        ciphertext = lookup.attributes.get(Attr.SIGNING_KEY_CIPHERTEXT)
        return keys.open_signing_key(lookup, ciphertext) if ciphertext else None

    def precheck(self, request: WebhookRequest, now: datetime) -> None:
        # Opening the subscription's key costs a KMS Decrypt: refuse what cannot verify before that.
        self.verifier.precheck(request, now)

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_calendly(request)


WEBHOOK = CalendlyWebhook()
