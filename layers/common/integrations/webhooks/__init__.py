"""The generic webhook receiver and its kits; each provider's own rules live in `providers/<id>/webhook.py`.

- `request`: the push exactly as received (`from_http_api_event` -> `WebhookRequest`).
- `plugin`: the shape a provider's plug-in (`WEBHOOK`) implements: lookup keys, secrets, verify,
  parse, and the optional hooks (a handshake, a reply, an event instead of a job, the job's kind).
- `signatures`: the kits verifiers are built from (HMAC, timestamps, bearer, JWT over a JWKS,
  constant-time compares, `secret_digest`); `payloads`: what parsers share; `errors`: why a push
  was refused (401 signature, 400 body).
- `receiver.WebhookReceiver`: verify ▶ dedupe ▶ enqueue ▶ answer, the same for every provider
  (functions/webhooks is its HTTP edge).
- Ports and the kits around them: `dedupe` (the delivery ledger's port; its DynamoDB adapter is
  store.delivery_ledger), `keyring` (app secrets, sealed signing keys, Google's key set), `routing`
  (lookup items: attribute names, keys, merging), `subscriptions` (the kit that makes and removes
  provider-side subscriptions at connect and disconnect through each provider's `MANAGER`).

Pushes for tests and the local stack are signed by tests/support/signing.py and the sandbox's own
code; nothing here signs.
"""

from integrations.webhooks.errors import MalformedPayload, SignatureFailure, SignatureInvalid
from integrations.webhooks.request import Headers, WebhookRequest

__all__ = [
    "Headers",
    "MalformedPayload",
    "SignatureFailure",
    "SignatureInvalid",
    "WebhookRequest",
]
