"""Google Calendar push: watch-channel notifications, verified by the channel token we set on `watch`.

Everything is in `X-Goog-*` headers (no body). The channel's lookup item (written by
`subscriptions.py` when the watch is made) holds the token's digest and the watched resource id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from integrations.webhooks.errors import MalformedPayload, SignatureFailure
from integrations.webhooks.payloads import compact
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
    VerificationSecrets,
    as_bytes,
    epoch_seconds,
    fail,
    matches_any,
    required_header,
    shared_secret_matches,
)

# Lookup kind of a watch channel: `LOOKUP#<provider>#channel#<X-Goog-Channel-ID>`.
LOOKUP_CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class GoogleChannelVerifier:
    """Google Calendar push: the random token we set on `watch`, echoed in `X-Goog-Channel-Token`.

    The caller passes the token(s) and resource id(s) it stored for `X-Goog-Channel-ID`. The `sync`
    message may arrive before the watch answer (and its resource id) is stored, so only `sync` is accepted
    without a stored resource id. An expired channel (`X-Goog-Channel-Expiration`) is refused.
    """

    clock_skew: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the channel token, the resource id and the channel's expiry."""
        required_header(request, "X-Goog-Channel-ID")
        token = required_header(request, "X-Goog-Channel-Token")
        resource_id = required_header(request, "X-Goog-Resource-ID")
        state = required_header(request, "X-Goog-Resource-State")
        if not shared_secret_matches(
            token, secrets.channel_tokens, secrets.channel_token_hashes, "channel token"
        ):
            raise fail(SignatureFailure.BAD_SIGNATURE, "The channel token does not match.")
        if secrets.resource_ids:
            if not matches_any(as_bytes(resource_id), [as_bytes(r) for r in secrets.resource_ids]):
                raise fail(SignatureFailure.BAD_SIGNATURE, "The resource id does not match the channel.")
        elif state != "sync":
            raise fail(SignatureFailure.BAD_SIGNATURE, "The channel has no stored resource id yet.")
        expiration = request.headers.get("X-Goog-Channel-Expiration")
        if expiration is not None:
            from email.utils import parsedate_to_datetime

            try:
                expires_at = parsedate_to_datetime(expiration)
            except (TypeError, ValueError, IndexError, OverflowError):
                raise fail(SignatureFailure.MALFORMED_SIGNATURE, "Unreadable channel expiration.") from None
            if epoch_seconds(expires_at) + self.clock_skew.total_seconds() < epoch_seconds(now):
                raise fail(SignatureFailure.STALE_TIMESTAMP, "The channel has expired.")


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
        routing=RoutingKey(kind=LOOKUP_CHANNEL, value=channel_id),
        event_type=state,
        hint=compact(
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


class GoogleCalendarWebhook(WebhookPlugin):
    """Watch-channel pushes: the channel id names the lookup; its token digest verifies the push."""

    verifier = GoogleChannelVerifier()

    def lookup_keys(self, request: WebhookRequest) -> list[RoutingKey]:
        channel_id = request.headers.get("X-Goog-Channel-ID", "").strip()
        return [RoutingKey(kind=LOOKUP_CHANNEL, value=channel_id)] if channel_id else []

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets(
            channel_token_hashes=material.digests(Attr.TOKEN_SHA256, Attr.PREVIOUS_TOKEN_SHA256),
            resource_ids=material.digests(Attr.RESOURCE_ID),
        )

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return parse_google_channel(request)


WEBHOOK = GoogleCalendarWebhook()
