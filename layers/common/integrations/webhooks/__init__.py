"""Webhook receiving, generic parts only: every provider's own rules live in `providers/<id>/webhook.py`.

- `request`: the push exactly as received (`from_http_api_event` -> `WebhookRequest`).
- `plugin`: the shape a provider's plug-in (`WEBHOOK`) implements: lookup keys, secrets, verify,
  parse, and the optional hooks (a handshake, a reply, an event instead of a job, the job's kind).
- `signatures`: the kits verifiers are built from (HMAC, timestamps, bearer, JWT over a JWKS,
  constant-time compares, `secret_digest`); `payloads`: what parsers share.
- `receiver.WebhookReceiver`: verify ▶ dedupe ▶ enqueue ▶ answer, the same for every provider
  (functions/webhooks is its HTTP edge); `dedupe` is the delivery ledger, `keyring` loads keys (app
  secrets, sealed signing keys, key sets), `routing` names lookup attributes, and `subscriptions` makes
  and removes provider-side subscriptions at connect/disconnect.

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
