"""Slack Events API: app-wide, signed with the app's signing secret, routed by team.

`url_verification` is answered with its challenge once the request is verified; `event_callback`
(e.g. `app_uninstalled`, `tokens_revoked`) and `app_rate_limited` are deliveries for the team's
connection (the `team` lookup written at connect).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, StrictInt, StrictStr

from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import Payload, compact, json_body, model
from integrations.webhooks.plugin import (
    Delivery,
    KeyAccess,
    Material,
    ParsedWebhook,
    RoutingKey,
    WebhookAnswer,
    WebhookPlugin,
)
from integrations.webhooks.request import WebhookRequest
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

# Lookup kind of a workspace (written at connect).
LOOKUP_TEAM = "team"


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    return "v0=" + hmac_sha256(secret, b"v0:" + as_bytes(timestamp) + b":" + body).hex()


@dataclass(frozen=True, slots=True)
class SlackVerifier:
    """`X-Slack-Signature` over `v0:{X-Slack-Request-Timestamp}:{body}` with the app signing secret."""

    tolerance: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the signature, then the timestamp."""
        signature = required_header(request, "X-Slack-Signature")
        timestamp = required_header(request, "X-Slack-Request-Timestamp")
        seconds = strict_int(timestamp, "Slack timestamp")
        if not (signature.startswith("v0=") and HEX_SHA256.fullmatch(signature[3:])):
            raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The Slack signature is not v0=<hex>.")
        keys = configured(secrets.hmac_keys, "Slack signing secret")
        expected = [slack_signature(key, timestamp, request.raw_body).encode("ascii") for key in keys]
        if not matches_any(signature.encode("ascii"), expected):
            raise fail(SignatureFailure.BAD_SIGNATURE, "The Slack signature does not match.")
        check_fresh(seconds, now, self.tolerance)


class _SlackAuthorization(Payload):
    team_id: StrictStr | None = None


class _SlackInnerEvent(Payload):
    type: StrictStr = Field(min_length=1, max_length=128)
    tokens: dict[str, list[StrictStr]] | None = None


class _SlackEnvelope(Payload):
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
    envelope = model(_SlackEnvelope, json_body(request.raw_body))
    if envelope.type == "url_verification":
        if not envelope.challenge:
            raise MalformedPayload("url_verification without a challenge.")
        return ParsedWebhook(reply=WebhookAnswer.of_json(200, {"challenge": envelope.challenge}))
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
        routing=RoutingKey(kind=LOOKUP_TEAM, value=team_id),
        event_type=event_type,
        hint=compact(
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


class SlackWebhook(WebhookPlugin):
    """App-wide events keyed by the app's signing secret (current and previous)."""

    verifier = SlackVerifier()

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(hmac_keys=material.app_values("signing_secret", "previous_signing_secret"))

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_slack(request)


WEBHOOK = SlackWebhook()
