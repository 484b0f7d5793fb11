"""Gmail push: mailbox changes published to our Pub/Sub topic, pushed to us with a Google OIDC JWT.

The push names the mailbox address; the connection is found by the `email` lookup written at
connect. The JWT authenticates the sender but does not sign the body, which is only a hint.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import AliasChoices, Field, StrictStr

from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import Id, Payload, compact, json_body, model
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
    VerificationSecrets,
    as_bytes,
    bearer_token,
    configured,
    epoch_seconds,
    fail,
    is_number,
    matches_any,
    rs256_claims,
)

# Lookup kind of a mailbox: `LOOKUP#<provider>#email#<lowercased address>` (written at connect).
LOOKUP_EMAIL = "email"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


@dataclass(frozen=True, slots=True)
class PubSubPushVerifier:
    """Pub/Sub authenticated push: an RS256 OIDC JWT from Google in `Authorization: Bearer`.

    Checks the signature against the configured JWKS (Google's certs in production, the local stack's
    own keys offline), `iss`, `aud`, `exp`/`iat` against `now`, and that `email` is our push service
    account with `email_verified` true (cloud.google.com/pubsub/docs/authenticate-push-subscriptions).
    The JWT authenticates the sender but does not sign the body; the body is only a hint (a mailbox
    address and a historyId), and the worker reads the mailbox's real history with its own token.
    """

    issuers: tuple[str, ...] = GOOGLE_ISSUERS
    leeway: timedelta = timedelta(seconds=60)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Verify the push JWT."""
        token = bearer_token(request)
        if secrets.jwks is None:
            raise fail(SignatureFailure.BAD_SIGNATURE, "No key set is configured to verify this request.")
        audiences = configured(secrets.audiences, "push audience")
        emails = configured(secrets.service_account_emails, "push service account")
        claims = rs256_claims(token, secrets.jwks, audiences, self.issuers)
        exp, iat = claims.get("exp"), claims.get("iat")
        if not (is_number(exp) and is_number(iat)):
            raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The JWT times are not numbers.")
        current, leeway = epoch_seconds(now), self.leeway.total_seconds()
        if not (iat - leeway <= current <= exp + leeway):
            raise fail(SignatureFailure.STALE_TIMESTAMP, "The JWT is expired or not yet valid.")
        email = claims.get("email")
        if not isinstance(email, str) or not matches_any(as_bytes(email), [as_bytes(e) for e in emails]):
            raise fail(SignatureFailure.BAD_SIGNATURE, "The JWT is not from the push service account.")
        if claims.get("email_verified") is not True:
            raise fail(SignatureFailure.BAD_SIGNATURE, "The push service account email is not verified.")


class _PubSubMessage(Payload):
    data: StrictStr
    message_id: Id = Field(validation_alias=AliasChoices("messageId", "message_id"))
    publish_time: StrictStr | None = Field(
        default=None, validation_alias=AliasChoices("publishTime", "publish_time")
    )


class _PubSubPush(Payload):
    message: _PubSubMessage
    subscription: StrictStr | None = None


class _GmailNotification(Payload):
    email_address: StrictStr = Field(validation_alias="emailAddress", min_length=3, max_length=320)
    history_id: Id = Field(validation_alias="historyId")


def _b64_json(data: str) -> Any:
    """Pub/Sub `message.data`: base64 (URL-safe or standard, padding optional) of a JSON document."""
    text = data.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPayload("message.data is not base64.") from None
    return json_body(raw)


def parse_pubsub_push(request: WebhookRequest) -> ParsedWebhook:
    """Gmail's `{emailAddress, historyId}` inside a Pub/Sub push; the id is the Pub/Sub messageId."""
    push = model(_PubSubPush, json_body(request.raw_body))
    note = model(_GmailNotification, _b64_json(push.message.data))
    if not note.history_id.isdigit():
        raise MalformedPayload("historyId is not a number.")
    delivery = Delivery(
        provider=request.provider,
        event_id=push.message.message_id,
        routing=RoutingKey(kind=LOOKUP_EMAIL, value=note.email_address.lower()),
        event_type="mailbox_changed",
        hint=compact(
            {
                "history_id": note.history_id,
                "publish_time": push.message.publish_time,
                "subscription": push.subscription,
            }
        ),
    )
    return ParsedWebhook(deliveries=[delivery])


class GmailWebhook(WebhookPlugin):
    """Pub/Sub pushes, verified with the push app secret: its key set, audience and service account."""

    # A mailbox address is personal data: it never reaches a log line.
    unlogged_kinds = frozenset({LOOKUP_EMAIL})
    verifier = PubSubPushVerifier()

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(
            jwks=keys.key_set(material.app),
            audiences=material.app_values("audience", "previous_audience"),
            service_account_emails=material.app_values(
                "service_account_email", "previous_service_account_email"
            ),
        )

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_pubsub_push(request)


WEBHOOK = GmailWebhook()
