"""Webhook receiving, pure code: verify a push over its raw bytes, then turn it into deliveries.

The receiver's flow (functions/webhooks):

1. `request.from_http_api_event(...)` -> `WebhookRequest`; unknown provider (`request.scheme is None`) -> 404.
2. Graph handshake: `verification.graph_validation_token(request)` -> answer 200 text/plain with it.
3. `parsing.secret_lookup_keys(request)` -> load those channels' stored secrets; none found -> 2xx, log.
4. `verification.verify_request(request, VerificationSecrets(...), now)` -> `SignatureInvalid` = 401.
5. `parsing.parse_request(request)` -> `ParsedWebhook` (`MalformedPayload` = 400); Slack challenge -> echo.
6. For each `Delivery`: look up `routing`, dedupe on `dedupe_key`, enqueue, then answer 2xx.

`receiver.WebhookReceiver` runs exactly this flow (functions/webhooks is its HTTP edge); `dedupe` is the
delivery ledger, `keyring` loads keys (app secrets, sealed Calendly keys, Google's JWKS), `routing` names
the lookup items, and `subscriptions` makes and removes provider-side subscriptions at connect/disconnect.

`signing` produces valid pushes for tests and the local stack; the receiver never imports it.
"""

from integrations.webhooks.errors import MalformedPayload, SignatureFailure, SignatureInvalid
from integrations.webhooks.request import Headers, WebhookRequest, WebhookScheme

__all__ = [
    "Headers",
    "MalformedPayload",
    "SignatureFailure",
    "SignatureInvalid",
    "WebhookRequest",
    "WebhookScheme",
]
