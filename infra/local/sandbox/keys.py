"""Fixed sandbox app credentials and signing keys, derived deterministically from public seeds.

Every value here is public by design: it only unlocks the offline sandbox. Deriving instead of
generating means the launcher, the sandbox and the tests agree on the keys even when they run in
different processes, and no key material is committed as a file.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

_SEED = b"integrations-provider-sandbox/v1"

# The Google signing key id, as it appears in the JWKS and in JWT headers (`kid`).
GOOGLE_KEY_ID = "sandbox-google-1"
PUBSUB_AUDIENCE = "https://integrations.sandbox.invalid/webhooks/gmail"
PUBSUB_SERVICE_ACCOUNT = "gmail-push@sandbox-project.iam.gserviceaccount.com"
PUBSUB_ISSUER = "https://accounts.google.com"
# The Google Cloud project of the sandbox OAuth client; Gmail's watch only publishes to its topics.
GOOGLE_PROJECT = "sandbox-project"
PUBSUB_TOPIC = f"projects/{GOOGLE_PROJECT}/topics/gmail"


def derive(label: str, length: int = 32) -> str:
    """A stable url-safe string for `label` (client ids, secrets, signing keys)."""
    digest = hashlib.sha256(_SEED + b"/" + label.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=").replace("-", "x").replace("_", "y")[:length]


def _stream(label: str, blocks: int) -> bytes:
    """A deterministic byte stream of `blocks` * 32 bytes (SHA-256 in counter mode)."""
    return b"".join(
        hashlib.sha256(_SEED + label.encode() + i.to_bytes(4, "big")).digest() for i in range(blocks)
    )


_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]
_SMALL_PRODUCT = 1
for _p in _SMALL_PRIMES:
    _SMALL_PRODUCT *= _p


def _is_probable_prime(n: int, label: str) -> bool:
    """Miller-Rabin with derived witnesses (the numbers are 1024-bit; 24 rounds is plenty here)."""
    witnesses = _stream(label, 6)
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for i in range(0, 24 * 8, 8):
        a = 2 + int.from_bytes(witnesses[i : i + 8], "big") % (n - 4)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(label: str, bits: int) -> int:
    width = bits // 8
    chunk = _stream(label, (width + 31) // 32)[:width]
    # Top two bits set (so p*q has the full size), low bit set (odd); then walk odd numbers.
    candidate = int.from_bytes(chunk, "big") | (3 << (bits - 2)) | 1
    while True:
        if (
            math.gcd(candidate, _SMALL_PRODUCT) == 1
            and candidate % 65537 != 1
            and _is_probable_prime(candidate, f"{label}/{candidate % 1000003}")
        ):
            return candidate
        candidate += 2


@cache
def google_signing_key() -> rsa.RSAPrivateKey:
    """The RSA key that signs Google id_tokens and Pub/Sub push JWTs (derived once per process)."""
    p, q = _prime("google-rsa-p", 1024), _prime("google-rsa-q", 1024)
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


@cache
def ghl_signing_key() -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key the sandbox signs GHL webhook deliveries with (`X-GHL-Signature`)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(_SEED + b"/ghl-ed25519").digest())


def _public_pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def google_jwks() -> dict[str, Any]:
    """The JWKS document Google-style verifiers fetch (`/google/oauth2/v3/certs`)."""
    public = google_signing_key().public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": GOOGLE_KEY_ID,
                "n": _b64url_uint(public.n),
                "e": _b64url_uint(public.e),
            }
        ]
    }


def _build_credentials() -> dict[str, dict[str, str]]:
    ghl_app_id = hashlib.sha256(_SEED + b"/ghl-app").hexdigest()[:24]
    return {
        "google": {
            "client_id": f"{derive('google-client', 12).lower()}-sandbox.apps.googleusercontent.com",
            "client_secret": "GOCSPX-" + derive("google-secret", 28),
        },
        "ghl": {
            # GHL derives the app id from the client id's prefix before the first '-'.
            "client_id": f"{ghl_app_id}-{derive('ghl-client', 8).lower()}",
            "client_secret": derive("ghl-secret", 36),
            "app_id": ghl_app_id,
            "webhook_public_key": _public_pem(ghl_signing_key()),
        },
        "hubspot": {
            "client_id": str(_uuid_from("hubspot-client")),
            "client_secret": str(_uuid_from("hubspot-secret")),
            "app_id": str(int(hashlib.sha256(_SEED + b"/hubspot-app").hexdigest()[:7], 16)),
        },
        "calendly": {
            "client_id": derive("calendly-client", 43),
            "client_secret": derive("calendly-secret", 43),
            "webhook_signing_key": derive("calendly-signing", 43),
        },
        "slack": {
            "client_id": f"{int(hashlib.sha256(_SEED + b'/slack-a').hexdigest()[:11], 16)}."
            f"{int(hashlib.sha256(_SEED + b'/slack-b').hexdigest()[:11], 16)}",
            "client_secret": hashlib.sha256(_SEED + b"/slack-secret").hexdigest()[:32],
            "signing_secret": hashlib.sha256(_SEED + b"/slack-signing").hexdigest()[:32],
            "app_id": "A" + derive("slack-app", 10).upper(),
        },
        "microsoft": {
            "client_id": str(_uuid_from("microsoft-client")),
            "client_secret": derive("microsoft-secret", 40),
        },
        "pubsub": {
            "audience": PUBSUB_AUDIENCE,
            "service_account_email": PUBSUB_SERVICE_ACCOUNT,
            "issuer": PUBSUB_ISSUER,
            "topic_name": PUBSUB_TOPIC,
            "key_id": GOOGLE_KEY_ID,
            "public_key": _public_pem(google_signing_key()),
        },
    }


def _uuid_from(label: str) -> str:
    import uuid

    return str(uuid.UUID(bytes=hashlib.sha256(_SEED + label.encode()).digest()[:16], version=4))


class _Credentials(Mapping[str, dict[str, str]]):
    """Built on first use: deriving the RSA key costs a fraction of a second, not worth paying at import."""

    def _data(self) -> dict[str, dict[str, str]]:
        return _credentials()

    def __getitem__(self, app: str) -> dict[str, str]:
        return self._data()[app]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())


@cache
def _credentials() -> dict[str, dict[str, str]]:
    return _build_credentials()


# app -> the app secret the local stack stores as `<stage>/integrations/apps/<app>`.
APP_CREDENTIALS: Mapping[str, dict[str, str]] = _Credentials()
