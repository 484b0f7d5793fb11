"""Microsoft Graph change notifications, shared by the Graph providers (Outlook calendar and mail).

Each notification names its subscription; the subscription's lookup item (written by
`subscriptions.py`) holds the digest of the clientState we set, which every notification echoes.
Lifecycle notifications (calendar-email.md §4.5) name one subscription: `subscriptionRemoved` has it
made again, `reauthorizationRequired` has it confirmed with a valid token (PATCH of its expiry), and
`missed` runs a delta pass, which reads every change since the stored cursor, notified or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, StrictStr

from integrations.sync.jobs import JobKind
from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import Id, Payload, compact, digest, json_body, model, str_or_none
from integrations.webhooks.plugin import (
    Delivery,
    KeyAccess,
    Material,
    ParsedWebhook,
    RoutingKey,
    WebhookAnswer,
    WebhookPlugin,
    text_values,
)
from integrations.webhooks.request import WebhookRequest
from integrations.webhooks.routing import Attr
from integrations.webhooks.signatures import VerificationSecrets, fail, shared_secret_matches

# Lookup kind of a Graph subscription: `LOOKUP#<provider>#subscription#<subscription id>`.
LOOKUP_SUBSCRIPTION = "subscription"
# Lifecycle events that ask for work on the named subscription rather than for a sync.
_LIFECYCLE_JOBS = {
    "lifecycle.subscriptionRemoved": JobKind.RECREATE_SUBSCRIPTION,
    "lifecycle.reauthorizationRequired": JobKind.REAUTHORIZE_SUBSCRIPTION,
}


def graph_validation_token(request: WebhookRequest) -> str | None:
    """The `validationToken` of Graph's subscription handshake, already URL-decoded, or None.

    Answer it before anything else: HTTP 200, `Content-Type: text/plain`, body = this value, within
    10 seconds. It proves nothing about the caller, so it must never reach the queue.
    """
    return request.query.get("validationToken")


@dataclass(frozen=True, slots=True)
class GraphVerifier:
    """Microsoft Graph change notifications: each item's `clientState` equals the one stored for its
    subscription. `secrets.client_states` holds only the subscriptions the caller found; items of
    other subscriptions are not routable, and the caller drops them without acting on them.
    """

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check every notification of a known subscription; require at least one."""
        try:
            payload = json.loads(request.raw_body)
        except (ValueError, RecursionError):
            raise MalformedPayload("The notification body is not JSON.") from None
        items = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise MalformedPayload("The notification body has no `value` list.")
        checked = 0
        for item in items:
            client_state = item.get("clientState")
            if not isinstance(client_state, str) or not client_state:
                raise fail(SignatureFailure.MISSING_SIGNATURE, "A notification has no clientState.")
            subscription_id = item.get("subscriptionId")
            if not isinstance(subscription_id, str):
                continue
            accepted = secrets.client_states.get(subscription_id, ())
            digests = secrets.client_state_hashes.get(subscription_id, ())
            if not any(accepted) and not any(digests):
                continue
            if not shared_secret_matches(client_state, accepted, digests, "clientState"):
                raise fail(SignatureFailure.BAD_SIGNATURE, "A notification's clientState does not match.")
            checked += 1
        if not checked:
            raise fail(SignatureFailure.BAD_SIGNATURE, "No notification belongs to a known subscription.")


class _GraphNotification(Payload):
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


class _GraphBatch(Payload):
    value: list[dict[str, Any]] = Field(min_length=1)


def _graph_items(raw_body: bytes) -> list[dict[str, Any]]:
    return model(_GraphBatch, json_body(raw_body)).value


def parse_graph(request: WebhookRequest) -> ParsedWebhook:
    """Change and lifecycle notifications (`value[]`, possibly for several subscriptions).

    Outlook notifications often carry no `id`; the fallback id is a digest of the notification without
    its clientState (a retry is byte-identical; a new change has a new etag). The clientState is a
    secret and never reaches the hint.
    """
    deliveries = []
    for item in _graph_items(request.raw_body):
        note = model(_GraphNotification, item)
        data = note.resource_data or {}
        kind = f"lifecycle.{note.lifecycle_event}" if note.lifecycle_event else (note.change_type or "")
        if not kind:
            raise MalformedPayload("A notification has neither changeType nor lifecycleEvent.")
        identity = {k: v for k, v in item.items() if k != "clientState"}
        deliveries.append(
            Delivery(
                provider=request.provider,
                event_id=note.id or digest(identity),
                routing=RoutingKey(kind=LOOKUP_SUBSCRIPTION, value=note.subscription_id),
                event_type=kind,
                hint=compact(
                    {
                        "resource": note.resource,
                        "resource_id": str_or_none(data.get("id")),
                        "etag": str_or_none(data.get("@odata.etag")),
                        "tenant_id": note.tenant_id,
                        "subscription_expiration": note.subscription_expiration,
                        "subscription_id": note.subscription_id,
                    }
                ),
            )
        )
    return ParsedWebhook(deliveries=deliveries)


class GraphWebhook(WebhookPlugin):
    """Graph notifications, verified per subscription by clientState digest (a provider's
    `webhook.py` offers `WEBHOOK = GraphWebhook()`)."""

    verifier = GraphVerifier()

    def handshake(self, request: WebhookRequest) -> WebhookAnswer | None:
        token = graph_validation_token(request)
        if token is None:
            return None
        # Proves nothing about the caller: answered before anything else, and never queued.
        return WebhookAnswer(200, token, "text/plain; charset=utf-8", {"X-Content-Type-Options": "nosniff"})

    def lookup_keys(self, request: WebhookRequest) -> list[RoutingKey]:
        try:
            ids = [item.get("subscriptionId") for item in _graph_items(request.raw_body)]
        except MalformedPayload:
            return []
        unique = dict.fromkeys(i for i in ids if isinstance(i, str) and i)
        return [RoutingKey(kind=LOOKUP_SUBSCRIPTION, value=i) for i in unique]

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(
            client_state_hashes={
                lookup.value: text_values(
                    lookup.attributes, Attr.CLIENT_STATE_SHA256, Attr.PREVIOUS_CLIENT_STATE_SHA256
                )
                for lookup in material.found()
            }
        )

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_graph(request)

    def job_kind(self, delivery: Delivery) -> JobKind:
        # A change, or `missed`: a delta pass from the stored cursor catches up on whatever it was.
        return _LIFECYCLE_JOBS.get(delivery.event_type, JobKind.SYNC)
