"""Correctly signed provider pushes with the keys the local stack uses (infra/local/sandbox/keys.py).

Run `python -m tests.support.webhooks` to rewrite events/webhook_<provider>.json with fresh timestamps
(signed timestamps go stale after a few minutes, by design), then `sam local invoke WebhooksFunction
-e events/webhook_<provider>.json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from infra.local.sandbox.keys import APP_CREDENTIALS, GOOGLE_KEY_ID, ghl_signing_key, google_signing_key
from integrations.webhooks.plugin import ParsedWebhook, RoutingKey, WebhookPlugin
from integrations.webhooks.receiver import webhook_for
from integrations.webhooks.request import Headers, WebhookRequest
from integrations.webhooks.signatures import VerificationSecrets
from tests.support import signing
from tests.support.events import http_event

PUBLIC_API_URL = "http://127.0.0.1:3000"
EVENTS = Path(__file__).resolve().parents[2] / "events"

# Routing values the samples name (an unknown account is acknowledged with 200 and nothing queued).
SAMPLE_IDS = {
    "slack_team": "T0SAMPLE",
    "hubspot_portal": "62515",
    "ghl_location": "ve9EPM428h8vShlRW1KT",
    "calendly_subscription": "sample-subscription",
    "calendly_user": "https://api.calendly.com/users/SAMPLEUSER",
    "gmail_address": "user@example.com",
    "google_channel": "sample-channel",
    "google_token": "sample-channel-token",
    "google_resource": "sample-resource-id",
    "graph_subscription": "sample-subscription-id",
    "graph_client_state": "sample-client-state",
}


@dataclass(frozen=True)
class Push:
    """One push as its provider sends it."""

    provider: str
    body: bytes
    headers: dict[str, str]
    query: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def event(self) -> dict[str, Any]:
        """The API Gateway HTTP API (v2) event of this push to `/webhooks/<provider>`."""
        event = http_event(
            "POST",
            f"/webhooks/{self.provider}",
            raw_body=self.body,
            headers=self.headers,
            query=dict(parse_qsl(self.query, keep_blank_values=True)) or None,
        )
        event["rawQueryString"] = self.query
        event["pathParameters"] = {"provider": self.provider}
        event["routeKey"] = "POST /webhooks/{provider}"
        event["requestContext"]["routeKey"] = "POST /webhooks/{provider}"
        return event

    @property
    def url(self) -> str:
        base = f"{PUBLIC_API_URL}/webhooks/{self.provider}"
        return f"{base}?{self.query}" if self.query else base


def _pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return str(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
    )


def ghl_private_pem() -> str:
    return _pem(ghl_signing_key())


def google_private_pem() -> str:
    return _pem(google_signing_key())


def slack_push(at: datetime, team_id: str = SAMPLE_IDS["slack_team"], secret: str | None = None) -> Push:
    body = json.dumps(
        {
            "token": "unused-verification-token",
            "team_id": team_id,
            "api_app_id": APP_CREDENTIALS["slack"]["app_id"],
            "event": {"type": "app_uninstalled"},
            "type": "event_callback",
            "event_id": "Ev0SAMPLE01",
            "event_time": int(at.timestamp()),
        },
        separators=(",", ":"),
    ).encode()
    key = secret or APP_CREDENTIALS["slack"]["signing_secret"]
    return Push("slack", body, signing.slack_headers(body, key, at))


def hubspot_push(
    at: datetime, portal_id: str = SAMPLE_IDS["hubspot_portal"], secret: str | None = None
) -> Push:
    occurred = int(at.timestamp() * 1000)
    body = json.dumps(
        [
            {
                "eventId": 1001,
                "subscriptionId": 2002,
                "portalId": int(portal_id),
                "appId": int(APP_CREDENTIALS["hubspot"]["app_id"]),
                "occurredAt": occurred,
                "subscriptionType": "contact.creation",
                "attemptNumber": 0,
                "objectId": 3003,
                "changeSource": "CRM",
            }
        ],
        separators=(",", ":"),
    ).encode()
    key = secret or APP_CREDENTIALS["hubspot"]["client_secret"]
    url = f"{PUBLIC_API_URL}/webhooks/hubspot"
    return Push("hubspot", body, signing.hubspot_headers("POST", url, body, key, at))


def calendly_push(
    at: datetime,
    subscription: str = SAMPLE_IDS["calendly_subscription"],
    signing_key: str | None = None,
    event_uri: str = "https://api.calendly.com/scheduled_events/SAMPLE/invitees/INV1",
) -> Push:
    body = json.dumps(
        {
            "event": "invitee.created",
            "created_at": at.isoformat().replace("+00:00", "Z"),
            "created_by": SAMPLE_IDS["calendly_user"],
            "payload": {
                "uri": event_uri,
                "event": "https://api.calendly.com/scheduled_events/SAMPLE",
                "status": "active",
                "rescheduled": False,
            },
        },
        separators=(",", ":"),
    ).encode()
    key = signing_key or APP_CREDENTIALS["calendly"]["webhook_signing_key"]
    return Push(
        "calendly", body, signing.calendly_headers(body, key, at), query=f"subscription={subscription}"
    )


def ghl_push(
    at: datetime, location_id: str = SAMPLE_IDS["ghl_location"], private_pem: str | None = None
) -> Push:
    body = json.dumps(
        {
            "type": "ContactCreate",
            "locationId": location_id,
            "id": "nmFmQEsNgz6AVpgLVUJ0",
            "webhookId": f"wh-{int(at.timestamp())}",
            "timestamp": at.isoformat().replace("+00:00", "Z"),
        },
        separators=(",", ":"),
    ).encode()
    return Push("ghl", body, signing.ghl_headers(body, private_pem or ghl_private_pem()))


def gmail_push(
    at: datetime,
    address: str = SAMPLE_IDS["gmail_address"],
    private_pem: str | None = None,
    kid: str = GOOGLE_KEY_ID,
    message_id: str = "2070443601311540",
) -> Push:
    creds = APP_CREDENTIALS["pubsub"]
    body = signing.pubsub_push_body(
        email_address=address,
        history_id=9876,
        message_id=message_id,
        subscription="projects/sandbox-project/subscriptions/gmail-push",
        published_at=at,
    )
    token = signing.pubsub_push_token(
        private_pem=private_pem or google_private_pem(),
        kid=kid,
        audience=creds["audience"],
        email=creds["service_account_email"],
        issued_at=at,
    )
    return Push("gmail", body, signing.pubsub_push_headers(token))


def google_push(
    at: datetime,
    channel_id: str = SAMPLE_IDS["google_channel"],
    token: str = SAMPLE_IDS["google_token"],
    resource_id: str = SAMPLE_IDS["google_resource"],
    message_number: int = 2,
) -> Push:
    from datetime import timedelta

    headers = signing.google_channel_headers(
        channel_id=channel_id,
        token=token,
        resource_id=resource_id,
        message_number=message_number,
        expires_at=at + timedelta(days=6),
    )
    return Push("google_calendar", b"", headers)


def graph_push(
    subscription_id: str = SAMPLE_IDS["graph_subscription"],
    client_state: str = SAMPLE_IDS["graph_client_state"],
    resource_id: str = "AAMkAGI2SAMPLE",
) -> Push:
    note = signing.graph_notification(
        subscription_id=subscription_id, client_state=client_state, resource_id=resource_id
    )
    return Push(
        "outlook_calendar", signing.graph_notification_body(note), {"Content-Type": "application/json"}
    )


def graph_mail_push(
    subscription_id: str = SAMPLE_IDS["graph_subscription"],
    client_state: str = SAMPLE_IDS["graph_client_state"],
    message_id: str = "AAMkAGI2MAIL",
) -> Push:
    note = signing.graph_notification(
        subscription_id=subscription_id,
        client_state=client_state,
        resource_id=message_id,
        change_type="created",
        resource=f"Users/me/mailFolders('Inbox')/messages/{message_id}",
    )
    return Push("outlook_mail", signing.graph_notification_body(note), {"Content-Type": "application/json"})


def samples(at: datetime) -> Mapping[str, Push]:
    """One correctly signed push per provider (the local stack's keys)."""
    return {
        "slack": slack_push(at),
        "hubspot": hubspot_push(at),
        "calendly": calendly_push(at),
        "ghl": ghl_push(at),
        "gmail": gmail_push(at),
        "google_calendar": google_push(at),
        "outlook_calendar": graph_push(),
        "outlook_mail": graph_mail_push(),
    }


def write_samples(at: datetime | None = None) -> list[Path]:
    """Rewrite events/webhook_<provider>.json, signed at `at` (now by default)."""
    moment = (at or datetime.now(UTC)).replace(microsecond=0)
    written = []
    for provider, push in samples(moment).items():
        path = EVENTS / f"webhook_{provider}.json"
        path.write_text(json.dumps(push.event(), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_samples():
        print(written.relative_to(EVENTS.parent))


# --------------------------------------------------------------------------- plug-ins by request


def plain_request(
    provider: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> WebhookRequest:
    """An unsigned POST to `/webhooks/{provider}` (for parsing and routing checks)."""
    url = f"{PUBLIC_API_URL}/webhooks/{provider}"
    return WebhookRequest(
        provider=provider,
        method="POST",
        raw_body=body,
        headers=Headers(headers or {}),
        query={},
        path=f"/webhooks/{provider}",
        url=url,
        received_at=datetime.now(UTC),
    )


def plugin_of(request: WebhookRequest) -> WebhookPlugin:
    """The plug-in the receiver would hand this request to."""
    found = webhook_for(request.provider)
    assert found is not None, f"{request.provider} receives no pushes"
    return found[1].for_request(request)


def verify_request(request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
    """Verify as the receiver does, with the request's plug-in."""
    plugin_of(request).verify(request, secrets, now)


def parse_request(request: WebhookRequest) -> ParsedWebhook:
    """Parse as the receiver does, with the request's plug-in."""
    return plugin_of(request).parse(request)


def secret_lookup_keys(request: WebhookRequest) -> list[RoutingKey]:
    """The lookups the receiver loads before verifying this request."""
    return plugin_of(request).lookup_keys(request)
