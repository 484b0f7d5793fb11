"""Every events/webhook_<provider>.json is a correctly signed push (local-stack keys) that parses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from infra.local.sandbox.keys import APP_CREDENTIALS
from integrations.catalog import load_catalog
from integrations.webhooks.keyring import JwksSource
from integrations.webhooks.request import WebhookRequest, from_http_api_event
from integrations.webhooks.signatures import VerificationSecrets, secret_digest
from tests.support.webhooks import PUBLIC_API_URL, SAMPLE_IDS, parse_request, verify_request

EVENTS = Path(__file__).resolve().parents[2] / "events"
# Every catalog entry that receives pushes at POST /webhooks/{provider}.
PUSHING = frozenset(spec.id for spec in load_catalog() if spec.webhook is not None)


def sample(provider: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"webhook_{provider}.json").read_text())
    return event


def request_of(provider: str) -> WebhookRequest:
    return from_http_api_event(
        sample(provider),
        provider=provider,
        public_url=f"{PUBLIC_API_URL}/webhooks/{provider}",
        received_at=datetime.now(UTC),
    )


def signed_at(request: WebhookRequest) -> datetime:
    """When the sample was signed (samples are regenerated; their own time is the verification time)."""
    headers = request.headers
    if "X-Slack-Request-Timestamp" in headers:
        return datetime.fromtimestamp(int(headers["X-Slack-Request-Timestamp"]), UTC)
    if "X-HubSpot-Request-Timestamp" in headers:
        return datetime.fromtimestamp(int(headers["X-HubSpot-Request-Timestamp"]) / 1000, UTC)
    if "Calendly-Webhook-Signature" in headers:
        return datetime.fromtimestamp(int(headers["Calendly-Webhook-Signature"].split(",")[0][2:]), UTC)
    if "Authorization" in headers:
        claims = jwt.decode(headers["Authorization"].split(" ")[1], options={"verify_signature": False})
        return datetime.fromtimestamp(claims["iat"], UTC)
    if "X-Goog-Channel-Expiration" in headers:
        return parsedate_to_datetime(headers["X-Goog-Channel-Expiration"]) - timedelta(days=6)
    if request.raw_body.startswith(b"{") and b'"timestamp"' in request.raw_body:
        return datetime.fromisoformat(json.loads(request.raw_body)["timestamp"])
    return datetime.now(UTC)


SECRETS = {
    "slack": lambda: VerificationSecrets(hmac_keys=(APP_CREDENTIALS["slack"]["signing_secret"],)),
    "hubspot": lambda: VerificationSecrets(hmac_keys=(APP_CREDENTIALS["hubspot"]["client_secret"],)),
    "calendly": lambda: VerificationSecrets(hmac_keys=(APP_CREDENTIALS["calendly"]["webhook_signing_key"],)),
    "ghl": lambda: VerificationSecrets(ed25519_public_keys=(APP_CREDENTIALS["ghl"]["webhook_public_key"],)),
    "gmail": lambda: VerificationSecrets(
        jwks=JwksSource().key_set(APP_CREDENTIALS["pubsub"]),
        audiences=(APP_CREDENTIALS["pubsub"]["audience"],),
        service_account_emails=(APP_CREDENTIALS["pubsub"]["service_account_email"],),
    ),
    "google_calendar": lambda: VerificationSecrets(
        channel_token_hashes=(secret_digest(SAMPLE_IDS["google_token"]),),
        resource_ids=(SAMPLE_IDS["google_resource"],),
    ),
    "outlook_calendar": lambda: VerificationSecrets(
        client_state_hashes={
            SAMPLE_IDS["graph_subscription"]: (secret_digest(SAMPLE_IDS["graph_client_state"]),)
        }
    ),
    "outlook_mail": lambda: VerificationSecrets(
        client_state_hashes={
            SAMPLE_IDS["graph_subscription"]: (secret_digest(SAMPLE_IDS["graph_client_state"]),)
        }
    ),
}


def test_there_is_a_sample_for_every_provider_that_pushes() -> None:
    assert {p.stem.removeprefix("webhook_") for p in EVENTS.glob("webhook_*.json")} == PUSHING
    assert set(SECRETS) == PUSHING


@pytest.mark.parametrize("provider", sorted(PUSHING))
def test_each_sample_verifies_with_the_local_stack_keys_and_parses(provider: str) -> None:
    request = request_of(provider)

    verify_request(request, SECRETS[provider](), signed_at(request) + timedelta(seconds=1))
    parsed = parse_request(request)

    assert len(parsed.deliveries) == 1
    assert sample(provider)["requestContext"]["http"]["method"] == "POST"
    assert sample(provider)["rawPath"] == f"/webhooks/{provider}"
