"""Produce valid pushes for every provider with given keys: for tests and samples.

Test-only: the Lambda layer does not ship it. The provider sandbox signs its real pushes with its own
code (infra/local/sandbox), and both go through exactly the verification production deliveries do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

from integrations.providers.hubspot.webhook import hubspot_v3_signature
from integrations.providers.slack.webhook import slack_signature


@dataclass(frozen=True, slots=True)
class KeyPair:
    """PEM texts of a freshly generated key pair."""

    private_pem: str
    public_pem: str


def generate_ed25519_keypair() -> KeyPair:
    """A GHL-style app key pair (Ed25519)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return _pems(Ed25519PrivateKey.generate())


def generate_rsa_keypair(bits: int = 2048) -> KeyPair:
    """An RSA key pair (GHL legacy signatures, Pub/Sub push JWTs)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return _pems(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def _pems(private_key: Any) -> KeyPair:
    from cryptography.hazmat.primitives import serialization

    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return KeyPair(private_pem=private_pem, public_pem=public_pem)


def _private_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem.encode("ascii"), password=None)


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


# --------------------------------------------------------------------------- HMAC schemes


def calendly_headers(body: bytes, signing_key: str, signed_at: datetime) -> dict[str, str]:
    """`Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`."""
    timestamp = str(_unix(signed_at))
    digest = hmac.new(signing_key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Calendly-Webhook-Signature": f"t={timestamp},v1={digest}"}


def slack_headers(body: bytes, signing_secret: str, signed_at: datetime) -> dict[str, str]:
    """`X-Slack-Signature` and `X-Slack-Request-Timestamp` (unix seconds)."""
    timestamp = str(_unix(signed_at))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(signing_secret, timestamp, body),
    }


def hubspot_headers(
    method: str, url: str, body: bytes, client_secret: str, signed_at: datetime
) -> dict[str, str]:
    """`X-HubSpot-Signature-v3` over method + public URL + body + timestamp (epoch ms)."""
    timestamp = str(int(signed_at.timestamp() * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": hubspot_v3_signature(client_secret, method, url, body, timestamp),
    }


# --------------------------------------------------------------------------- GoHighLevel


def ghl_headers(body: bytes, ed25519_private_pem: str) -> dict[str, str]:
    """`X-GHL-Signature`: base64 Ed25519 signature of the raw body."""
    signature = _private_key(ed25519_private_pem).sign(body)
    return {
        "Content-Type": "application/json",
        "X-GHL-Signature": base64.b64encode(signature).decode("ascii"),
    }


def ghl_legacy_headers(body: bytes, rsa_private_pem: str) -> dict[str, str]:
    """Legacy `x-wh-signature`: base64 RSA PKCS#1 v1.5 SHA-256 signature of the raw body."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = _private_key(rsa_private_pem).sign(body, padding.PKCS1v15(), hashes.SHA256())
    return {"Content-Type": "application/json", "x-wh-signature": base64.b64encode(signature).decode("ascii")}


def ghl_workflow_headers(location_secret: str) -> dict[str, str]:
    """What a GHL workflow's Custom Webhook action sends: the location's secret as a bearer token."""
    return {"Content-Type": "application/json", "Authorization": f"Bearer {location_secret}"}


# --------------------------------------------------------------------------- Google Calendar


def google_channel_headers(
    *,
    channel_id: str,
    token: str,
    resource_id: str,
    message_number: int,
    resource_state: str = "exists",
    resource_uri: str = "https://www.googleapis.com/calendar/v3/calendars/primary/events",
    expires_at: datetime | None = None,
) -> dict[str, str]:
    """The headers of a watch-channel push (Google sends no body)."""
    headers = {
        "X-Goog-Channel-ID": channel_id,
        "X-Goog-Channel-Token": token,
        "X-Goog-Message-Number": str(message_number),
        "X-Goog-Resource-ID": resource_id,
        "X-Goog-Resource-State": resource_state,
        "X-Goog-Resource-URI": resource_uri,
        "User-Agent": "APIs-Google",
    }
    if expires_at is not None:
        headers["X-Goog-Channel-Expiration"] = format_datetime(expires_at, usegmt=True)
    return headers


# --------------------------------------------------------------------------- Gmail via Pub/Sub push


def rsa_public_jwk(public_pem: str, kid: str) -> dict[str, Any]:
    """A JWKS entry for an RSA public key, as Google publishes its certs."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(public_pem.encode("ascii"))
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    """A key set document from JWKS entries."""
    return {"keys": list(keys)}


def pubsub_push_token(
    *,
    private_pem: str,
    kid: str,
    audience: str,
    email: str,
    issued_at: datetime,
    lifetime: timedelta = timedelta(hours=1),
    issuer: str = "https://accounts.google.com",
    email_verified: bool = True,
) -> str:
    """The OIDC JWT Pub/Sub sends with an authenticated push (RS256, kid, Google's claims)."""
    import jwt

    iat = _unix(issued_at)
    claims = {
        "iss": issuer,
        "aud": audience,
        "azp": "109876543210987654321",
        "sub": "109876543210987654321",
        "email": email,
        "email_verified": email_verified,
        "iat": iat,
        "exp": iat + int(lifetime.total_seconds()),
    }
    return jwt.encode(claims, _private_key(private_pem), algorithm="RS256", headers={"kid": kid})


def pubsub_push_headers(token: str) -> dict[str, str]:
    """The push request's headers around a token from `pubsub_push_token`."""
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def pubsub_push_body(
    *, email_address: str, history_id: int, message_id: str, subscription: str, published_at: datetime
) -> bytes:
    """A Pub/Sub push body carrying Gmail's `{emailAddress, historyId}` notification."""
    data = json.dumps({"emailAddress": email_address, "historyId": history_id}).encode()
    message = {
        "data": base64.urlsafe_b64encode(data).decode("ascii"),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": published_at.isoformat().replace("+00:00", "Z"),
        "publish_time": published_at.isoformat().replace("+00:00", "Z"),
        "attributes": {},
    }
    return json.dumps({"message": message, "subscription": subscription}).encode()


# --------------------------------------------------------------------------- Microsoft Graph


def graph_notification(
    *,
    subscription_id: str,
    client_state: str,
    resource_id: str,
    change_type: str = "updated",
    resource: str | None = None,
    etag: str = 'W/"DwAAABYAAAA"',
    expires_at: datetime | None = None,
    tenant_id: str = "00000000-0000-0000-0000-000000000000",
) -> dict[str, Any]:
    """One basic (ids only) change notification for an Outlook event."""
    note: dict[str, Any] = {
        "subscriptionId": subscription_id,
        "clientState": client_state,
        "changeType": change_type,
        "resource": resource or f"Users/me/Events/{resource_id}",
        "tenantId": tenant_id,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": f"Users/me/Events/{resource_id}",
            "@odata.etag": etag,
            "id": resource_id,
        },
    }
    if expires_at is not None:
        note["subscriptionExpirationDateTime"] = expires_at.isoformat()
    return note


def graph_notification_body(*notifications: dict[str, Any]) -> bytes:
    """The `{"value": [...]}` batch Graph posts."""
    return json.dumps({"value": list(notifications)}).encode()
