"""HubSpot webhooks: batches of events from any installed portal, signed with the app's client secret.

Configured once per app; each event names its portal, routed by the `portal` lookup written at
connect. Verified with v3 signatures only.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, StrictInt, StrictStr

from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import Id, Payload, compact, digest, json_body, model
from integrations.webhooks.plugin import (
    Delivery,
    KeyAccess,
    Material,
    ParsedWebhook,
    RoutingKey,
    WebhookPlugin,
)
from integrations.webhooks.request import WebhookRequest
from integrations.webhooks.signatures import (
    B64_SHA256,
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

# Lookup kind of an installed portal (written at connect).
LOOKUP_PORTAL = "portal"

# The percent-encodings HubSpot's request-validation page says to decode in the URI before signing;
# every other escape (e.g. %20, %26, %3D) stays as sent.
_HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_HUBSPOT_ESCAPES = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)


def hubspot_signed_uri(url: str) -> str:
    """The URI as HubSpot v3 signs it: the public URL with HubSpot's listed escapes decoded."""
    return _HUBSPOT_ESCAPES.sub(lambda m: _HUBSPOT_DECODED[m.group(0).upper()], url)


def hubspot_v3_signature(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + uri + body + timestamp)), as HubSpot computes it."""
    message = as_bytes(method.upper()) + as_bytes(hubspot_signed_uri(url)) + body + as_bytes(timestamp)
    return base64.b64encode(hmac_sha256(secret, message)).decode("ascii")


@dataclass(frozen=True, slots=True)
class HubSpotVerifier:
    """`X-HubSpot-Signature-v3` + `X-HubSpot-Request-Timestamp` (epoch ms), keyed by the app client secret.

    Only v3 is accepted: v1/v2 sign neither a timestamp (replayable forever) nor, for v1, the URL.
    """

    tolerance: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the v3 signature over method, public URL, raw body and timestamp, then the timestamp."""
        signature = required_header(request, "X-HubSpot-Signature-v3")
        timestamp = required_header(request, "X-HubSpot-Request-Timestamp")
        millis = strict_int(timestamp, "HubSpot timestamp")
        if not B64_SHA256.fullmatch(signature):
            raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The HubSpot signature is not base64 SHA-256.")
        keys = configured(secrets.hmac_keys, "HubSpot client secret")
        if not request.url:
            raise fail(SignatureFailure.BAD_SIGNATURE, "The public URL of this endpoint is not configured.")
        expected = [
            hubspot_v3_signature(key, request.method, request.url, request.raw_body, timestamp).encode(
                "ascii"
            )
            for key in keys
        ]
        if not matches_any(signature.encode("ascii"), expected):
            raise fail(SignatureFailure.BAD_SIGNATURE, "The HubSpot signature does not match.")
        check_fresh(millis / 1000, now, self.tolerance)


class _HubSpotEvent(Payload):
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
    payload = json_body(request.raw_body)
    if not isinstance(payload, list):
        raise MalformedPayload("The HubSpot body is not an array of events.")
    deliveries = []
    for item in payload:
        event = model(_HubSpotEvent, item)
        kind = event.subscription_type or event.event_type
        if not kind:
            raise MalformedPayload("A HubSpot event has no subscriptionType.")
        deliveries.append(
            Delivery(
                provider=request.provider,
                event_id=digest(
                    event.event_id,
                    event.portal_id,
                    event.subscription_id,
                    kind,
                    event.object_id,
                    event.property_name,
                    event.occurred_at,
                ),
                routing=RoutingKey(kind=LOOKUP_PORTAL, value=event.portal_id),
                event_type=kind,
                hint=compact(
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


class HubSpotWebhook(WebhookPlugin):
    """App-wide webhooks keyed by the app's client secret (current and previous)."""

    verifier = HubSpotVerifier()

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(hmac_keys=material.app_values("client_secret", "previous_client_secret"))

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_hubspot(request)


WEBHOOK = HubSpotWebhook()
