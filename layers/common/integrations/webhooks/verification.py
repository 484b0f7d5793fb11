"""Prove a push comes from its provider, over the raw bytes, failing closed.

One verifier per scheme, all with the same shape: `verify(request, secrets, now) -> None`, raising
`SignatureInvalid` with a stable code. Every verifier:

- rejects a missing header and a missing key configuration (it never skips a check);
- compares in constant time (`hmac.compare_digest` on bytes);
- accepts any of the current and previous keys (rotation): pass them all, current first;
- enforces a timestamp tolerance, in both directions, where the scheme signs a timestamp.

Per-channel schemes (Google channel token, Microsoft clientState, GHL workflow secret, Calendly
per-subscription key) need the caller to look the channel up first: `parsing.secret_lookup_keys()`
names what to look up. An unknown channel is not verified at all: the caller answers 2xx, logs and
stores nothing.

cryptography and PyJWT are imported only by the verifiers that need them (cold start).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from integrations.webhooks.errors import MalformedPayload, SignatureFailure, SignatureInvalid
from integrations.webhooks.request import WebhookRequest, WebhookScheme

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_B64_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=")
_BEARER = re.compile(r"Bearer[ ]+(\S+)", re.IGNORECASE)

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


@dataclass(frozen=True, slots=True, repr=False)
class VerificationSecrets:
    """What the caller loaded to check one request. Each tuple: current value first, then previous ones."""

    # HMAC keys: Calendly signing keys, HubSpot app client secrets, Slack signing secrets.
    hmac_keys: tuple[str, ...] = ()
    # Per-channel shared values found by routing id: Google channel tokens, GHL workflow secrets.
    channel_tokens: tuple[str, ...] = ()
    # The same, stored as `secret_digest()` values (what lookup items hold: never the token itself).
    channel_token_hashes: tuple[str, ...] = ()
    # Google: resource ids stored with the channel (empty only while the watch answer is not stored yet).
    resource_ids: tuple[str, ...] = ()
    # Microsoft Graph: subscription id -> accepted clientState values, for the subscriptions found.
    client_states: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The same, as `secret_digest()` values per subscription id.
    client_state_hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # GHL: the app's Ed25519 public keys (PEM, or base64 of the raw 32-byte key).
    ed25519_public_keys: tuple[str, ...] = ()
    # GHL legacy `x-wh-signature`: HighLevel's published RSA public keys (PEM).
    rsa_public_keys: tuple[str, ...] = ()
    # Pub/Sub push (Gmail): Google's key set as a JWKS dict, the audiences and service accounts we set.
    jwks: Mapping[str, Any] | None = None
    audiences: tuple[str, ...] = ()
    service_account_emails: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Counts only: this object is full of secrets and may end up in a log line or a traceback.
        counts = {
            "hmac_keys": len(self.hmac_keys),
            "channel_tokens": len(self.channel_tokens) + len(self.channel_token_hashes),
            "client_states": len(set(self.client_states) | set(self.client_state_hashes)),
            "ed25519_public_keys": len(self.ed25519_public_keys),
            "rsa_public_keys": len(self.rsa_public_keys),
            "jwks": 0 if self.jwks is None else len(self.jwks.get("keys") or ()),
        }
        return f"VerificationSecrets({', '.join(f'{k}={v}' for k, v in counts.items())})"


class Verifier(Protocol):
    """Raises `SignatureInvalid` unless `request` is provably from the provider at time `now`."""

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None: ...


# --------------------------------------------------------------------------- shared checks


def _fail(code: SignatureFailure, message: str) -> SignatureInvalid:
    return SignatureInvalid(code, message)


def _required_header(request: WebhookRequest, name: str) -> str:
    value = request.headers.get(name)
    if value is None or not value.strip():
        raise _fail(SignatureFailure.MISSING_SIGNATURE, f"Header {name} is missing.")
    return value.strip()


def _configured(values: Iterable[str], what: str) -> tuple[str, ...]:
    usable = tuple(v for v in values if v)
    if not usable:
        # Fail closed: a deployment without the key rejects everything instead of accepting everything.
        raise _fail(SignatureFailure.BAD_SIGNATURE, f"No {what} is configured to verify this request.")
    return usable


def _bytes(text: str) -> bytes:
    # surrogatepass: header text from the gateway may hold lone surrogates; they must compare, not raise.
    return text.encode("utf-8", "surrogatepass")


def _matches_any(candidate: bytes, accepted: Iterable[bytes]) -> bool:
    # Compare against every accepted value (no early exit), so timing does not tell which key matched.
    results = [hmac.compare_digest(candidate, value) for value in accepted]
    return any(results)


def secret_digest(value: str) -> str:
    """Lowercase hex SHA-256 of a per-channel secret: what a lookup item stores instead of the secret."""
    return hashlib.sha256(_bytes(value)).hexdigest()


def _shared_secret_matches(candidate: str, raw: Iterable[str], digests: Iterable[str], what: str) -> bool:
    """Constant-time match of `candidate` against stored values and stored digests (fails closed)."""
    plain = tuple(v for v in raw if v)
    hashed = tuple(d for d in digests if d)
    if not plain and not hashed:
        raise _fail(SignatureFailure.BAD_SIGNATURE, f"No {what} is configured to verify this request.")
    candidate_digest = secret_digest(candidate).encode("ascii")
    # Both lists are always compared in full, so timing does not tell which form or which value matched.
    by_value = _matches_any(_bytes(candidate), [_bytes(v) for v in plain])
    by_digest = _matches_any(candidate_digest, [_bytes(d.lower()) for d in hashed])
    return by_value or by_digest


def _hmac_sha256(key: str, message: bytes) -> bytes:
    return hmac.new(_bytes(key), message, hashlib.sha256).digest()


def _epoch_seconds(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _strict_int(text: str, what: str) -> int:
    # int() would accept "+1", " 1", "1_0" and non-ASCII digits; a signed value must be exactly digits.
    if not _DIGITS.fullmatch(text):
        raise _fail(SignatureFailure.MALFORMED_SIGNATURE, f"The {what} is not a number.")
    return int(text)


def _check_fresh(signed_at_seconds: float, now: datetime, tolerance: timedelta) -> None:
    # Written as "not within" so that a NaN timestamp is refused too.
    if not abs(_epoch_seconds(now) - signed_at_seconds) <= tolerance.total_seconds():
        raise _fail(SignatureFailure.STALE_TIMESTAMP, "The signed timestamp is outside the tolerance.")


def _canonical_b64decode(text: str, size: int | None = None) -> bytes:
    """Standard base64 that re-encodes to the same text, so no two header values verify alike."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The signature is not base64.") from None
    if base64.b64encode(raw).decode("ascii") != text or (size is not None and len(raw) != size):
        raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The signature has the wrong encoding or size.")
    return raw


def _bearer_token(request: WebhookRequest) -> str:
    header = _required_header(request, "Authorization")
    match = _BEARER.fullmatch(header)
    if match is None:
        raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "Authorization is not a bearer token.")
    return match.group(1)


# --------------------------------------------------------------------------- Google Calendar push


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
        _required_header(request, "X-Goog-Channel-ID")
        token = _required_header(request, "X-Goog-Channel-Token")
        resource_id = _required_header(request, "X-Goog-Resource-ID")
        state = _required_header(request, "X-Goog-Resource-State")
        if not _shared_secret_matches(
            token, secrets.channel_tokens, secrets.channel_token_hashes, "channel token"
        ):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The channel token does not match.")
        if secrets.resource_ids:
            if not _matches_any(_bytes(resource_id), [_bytes(r) for r in secrets.resource_ids]):
                raise _fail(SignatureFailure.BAD_SIGNATURE, "The resource id does not match the channel.")
        elif state != "sync":
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The channel has no stored resource id yet.")
        expiration = request.headers.get("X-Goog-Channel-Expiration")
        if expiration is not None:
            from email.utils import parsedate_to_datetime

            try:
                expires_at = parsedate_to_datetime(expiration)
            except (TypeError, ValueError, IndexError, OverflowError):
                raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "Unreadable channel expiration.") from None
            if _epoch_seconds(expires_at) + self.clock_skew.total_seconds() < _epoch_seconds(now):
                raise _fail(SignatureFailure.STALE_TIMESTAMP, "The channel has expired.")


# --------------------------------------------------------------------------- Gmail via Pub/Sub push


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
        import jwt

        token = _bearer_token(request)
        if secrets.jwks is None:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "No key set is configured to verify this request.")
        audiences = _configured(secrets.audiences, "push audience")
        emails = _configured(secrets.service_account_emails, "push service account")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError):
            raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The bearer token is not a JWT.") from None
        if header.get("alg") != "RS256":
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The JWT is not signed with RS256.")
        claims = self._decode(token, header.get("kid"), secrets.jwks, audiences)
        exp, iat = claims.get("exp"), claims.get("iat")
        if not (_is_number(exp) and _is_number(iat)):
            raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The JWT times are not numbers.")
        current, leeway = _epoch_seconds(now), self.leeway.total_seconds()
        if not (iat - leeway <= current <= exp + leeway):
            raise _fail(SignatureFailure.STALE_TIMESTAMP, "The JWT is expired or not yet valid.")
        email = claims.get("email")
        if not isinstance(email, str) or not _matches_any(_bytes(email), [_bytes(e) for e in emails]):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The JWT is not from the push service account.")
        if claims.get("email_verified") is not True:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The push service account email is not verified.")

    def _decode(
        self, token: str, kid: object, jwks: Mapping[str, Any], audiences: tuple[str, ...]
    ) -> dict[str, Any]:
        import jwt

        try:
            key_set = jwt.PyJWKSet.from_dict(dict(jwks))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The configured key set is unusable.") from None
        # Rotation: Google publishes current and next keys; pick by kid, or try every RSA key without one.
        keys = [k for k in key_set.keys if k.key_type == "RSA" and (kid is None or k.key_id == kid)]
        if not keys:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "No configured key matches the JWT's key id.")
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key=key.key,
                    algorithms=["RS256"],
                    audience=list(audiences),
                    issuer=self.issuers,
                    # Times are checked against the injected `now` in verify(), not the wall clock.
                    options={
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                        "require": ["exp", "iat", "iss", "aud"],
                    },
                )
            except jwt.InvalidSignatureError:
                continue
            except (jwt.DecodeError, ValueError):
                raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The JWT is malformed.") from None
            except jwt.PyJWTError as exc:
                raise _fail(
                    SignatureFailure.BAD_SIGNATURE, f"The JWT is not for us: {type(exc).__name__}."
                ) from None
            return claims
        raise _fail(SignatureFailure.BAD_SIGNATURE, "The JWT signature does not match any configured key.")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- Calendly


@dataclass(frozen=True, slots=True)
class CalendlyVerifier:
    """`Calendly-Webhook-Signature: t=<unix s>,v1=<hex>`: HMAC-SHA256 of `t + "." + body`, signing key.

    Calendly's own example refuses timestamps older than 3 minutes; any `v1` entry may match (rotation).
    """

    tolerance: timedelta = timedelta(minutes=3)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the signature, then the timestamp."""
        timestamp, signatures = self._parse(_required_header(request, "Calendly-Webhook-Signature"))
        keys = _configured(secrets.hmac_keys, "Calendly signing key")
        message = _bytes(timestamp) + b"." + request.raw_body
        expected = [_hmac_sha256(key, message).hex().encode("ascii") for key in keys]
        if not any([_matches_any(sig.encode("ascii"), expected) for sig in signatures]):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The Calendly signature does not match.")
        _check_fresh(int(timestamp), now, self.tolerance)

    @staticmethod
    def _parse(header: str) -> tuple[str, list[str]]:
        timestamps: list[str] = []
        signatures: list[str] = []
        for part in header.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The Calendly signature is not t=…,v1=….")
            if name == "t":
                timestamps.append(value)
            elif name == "v1":
                if not _HEX_SHA256.fullmatch(value):
                    raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "A v1 signature is not SHA-256 hex.")
                signatures.append(value)
        if len(timestamps) != 1 or not signatures:
            raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The Calendly signature needs one t and a v1.")
        _strict_int(timestamps[0], "Calendly timestamp")
        return timestamps[0], signatures


# --------------------------------------------------------------------------- GoHighLevel


def _pem_text(text: str) -> bytes:
    # Keys pasted into environment variables or JSON often arrive with literal "\n" instead of newlines.
    return text.strip().replace("\\n", "\n").encode("ascii")


@functools.lru_cache(maxsize=32)
def _ed25519_key(text: str) -> Ed25519PublicKey | None:
    """A GHL app key as PEM, as base64 of the DER SubjectPublicKeyInfo, or as base64 of the raw 32 bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        if "BEGIN" in text:
            key = load_pem_public_key(_pem_text(text))
        else:
            raw = base64.b64decode(text.strip(), validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else load_der_public_key(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


@functools.lru_cache(maxsize=32)
def _rsa_key(text: str) -> RSAPublicKey | None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(_pem_text(text))
    except (ValueError, TypeError, UnicodeEncodeError):
        return None
    return key if isinstance(key, RSAPublicKey) else None


def _payload_timestamp(raw_body: bytes) -> float | None:
    """The signed payload's `timestamp` (ISO-8601, or epoch s/ms), if the body carries one."""
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):
        return None  # not JSON: the parser answers 400
    value = payload.get("timestamp") if isinstance(payload, dict) else None
    if value is None:
        return None
    try:
        if _is_number(value):
            # Epoch milliseconds or seconds: anything past year 5138 in seconds is read as milliseconds.
            return value / 1000 if value > 100_000_000_000 else float(value)
        if isinstance(value, str):
            return _epoch_seconds(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        pass
    raise _fail(SignatureFailure.STALE_TIMESTAMP, "The payload timestamp is unreadable.")


@dataclass(frozen=True, slots=True)
class GhlVerifier:
    """HighLevel marketplace webhooks.

    `X-GHL-Signature`: Ed25519 over the raw body, base64, the app's public key. Legacy `x-wh-signature`:
    RSA PKCS#1 v1.5 SHA-256, base64, HighLevel's published key, checked only when the new header is absent
    (as the official SDKs do). The payload `timestamp` is refused beyond the tolerance when present
    (HighLevel's advice; the signature itself has no timestamp).
    """

    tolerance: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the Ed25519 signature (or the legacy RSA one), then the payload timestamp."""
        if "X-GHL-Signature" in request.headers:
            self._verify_ed25519(request, secrets)
        elif "x-wh-signature" in request.headers:
            self._verify_rsa(request, secrets)
        else:
            raise _fail(SignatureFailure.MISSING_SIGNATURE, "Header X-GHL-Signature is missing.")
        signed_at = _payload_timestamp(request.raw_body)
        if signed_at is not None:
            _check_fresh(signed_at, now, self.tolerance)

    @staticmethod
    def _verify_ed25519(request: WebhookRequest, secrets: VerificationSecrets) -> None:
        from cryptography.exceptions import InvalidSignature

        signature = _canonical_b64decode(_required_header(request, "X-GHL-Signature"), size=64)
        keys = [k for k in map(_ed25519_key, _configured(secrets.ed25519_public_keys, "GHL public key")) if k]
        if not keys:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "No configured GHL public key is usable.")
        valid = False
        for key in keys:
            try:
                key.verify(signature, request.raw_body)
                valid = True
            except InvalidSignature:
                continue
        if not valid:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The GHL signature does not match.")

    @staticmethod
    def _verify_rsa(request: WebhookRequest, secrets: VerificationSecrets) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = _canonical_b64decode(_required_header(request, "x-wh-signature"))
        keys = [k for k in map(_rsa_key, _configured(secrets.rsa_public_keys, "GHL legacy public key")) if k]
        if not keys:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "No configured GHL legacy public key is usable.")
        valid = False
        for key in keys:
            if len(signature) != key.key_size // 8:
                continue
            try:
                key.verify(signature, request.raw_body, padding.PKCS1v15(), hashes.SHA256())
                valid = True
            except InvalidSignature:
                continue
        if not valid:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The GHL legacy signature does not match.")


@dataclass(frozen=True, slots=True)
class GhlWorkflowVerifier:
    """A GHL workflow's Custom Webhook action: HighLevel does not sign these, so each location gets its
    own random secret, sent by the action as `Authorization: Bearer <secret>`."""

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Compare the bearer secret with the location's stored secret(s)."""
        token = _bearer_token(request)
        if not _shared_secret_matches(
            token, secrets.channel_tokens, secrets.channel_token_hashes, "workflow secret"
        ):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The workflow secret does not match.")


# --------------------------------------------------------------------------- HubSpot

# The percent-encodings HubSpot's request-validation page says to decode in the URI before signing;
# every other escape (e.g. %20, %26, %3D) stays as sent.
_HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_HUBSPOT_ESCAPES = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)


def hubspot_signed_uri(url: str) -> str:
    """The URI as HubSpot v3 signs it: the public URL with HubSpot's listed escapes decoded."""
    return _HUBSPOT_ESCAPES.sub(lambda m: _HUBSPOT_DECODED[m.group(0).upper()], url)


def hubspot_v3_signature(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + uri + body + timestamp)), as HubSpot computes it."""
    message = _bytes(method.upper()) + _bytes(hubspot_signed_uri(url)) + body + _bytes(timestamp)
    return base64.b64encode(_hmac_sha256(secret, message)).decode("ascii")


@dataclass(frozen=True, slots=True)
class HubSpotVerifier:
    """`X-HubSpot-Signature-v3` + `X-HubSpot-Request-Timestamp` (epoch ms), keyed by the app client secret.

    Only v3 is accepted: v1/v2 sign neither a timestamp (replayable forever) nor, for v1, the URL.
    """

    tolerance: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the v3 signature over method, public URL, raw body and timestamp, then the timestamp."""
        signature = _required_header(request, "X-HubSpot-Signature-v3")
        timestamp = _required_header(request, "X-HubSpot-Request-Timestamp")
        millis = _strict_int(timestamp, "HubSpot timestamp")
        if not _B64_SHA256.fullmatch(signature):
            raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The HubSpot signature is not base64 SHA-256.")
        keys = _configured(secrets.hmac_keys, "HubSpot client secret")
        if not request.url:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The public URL of this endpoint is not configured.")
        expected = [
            hubspot_v3_signature(key, request.method, request.url, request.raw_body, timestamp).encode(
                "ascii"
            )
            for key in keys
        ]
        if not _matches_any(signature.encode("ascii"), expected):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The HubSpot signature does not match.")
        _check_fresh(millis / 1000, now, self.tolerance)


# --------------------------------------------------------------------------- Microsoft Graph


def graph_validation_token(request: WebhookRequest) -> str | None:
    """The `validationToken` of Graph's subscription handshake, already URL-decoded, or None.

    Answer it before anything else: HTTP 200, `Content-Type: text/plain`, body = this value, within
    10 seconds. It proves nothing about the caller, so it must never reach the queue.
    """
    return request.query.get("validationToken")


@dataclass(frozen=True, slots=True)
class GraphVerifier:
    """Microsoft Graph change notifications: each item's `clientState` equals the one stored for its
    subscription. `secrets.client_states` holds only the subscriptions the caller found; items of
    other subscriptions are not routable, and the caller drops them without acting on them.
    """

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check every notification of a known subscription; require at least one."""
        try:
            payload = json.loads(request.raw_body)
        except (ValueError, RecursionError):
            raise MalformedPayload("The notification body is not JSON.") from None
        items = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise MalformedPayload("The notification body has no `value` list.")
        checked = 0
        for item in items:
            client_state = item.get("clientState")
            if not isinstance(client_state, str) or not client_state:
                raise _fail(SignatureFailure.MISSING_SIGNATURE, "A notification has no clientState.")
            subscription_id = item.get("subscriptionId")
            if not isinstance(subscription_id, str):
                continue
            accepted = secrets.client_states.get(subscription_id, ())
            digests = secrets.client_state_hashes.get(subscription_id, ())
            if not any(accepted) and not any(digests):
                continue
            if not _shared_secret_matches(client_state, accepted, digests, "clientState"):
                raise _fail(SignatureFailure.BAD_SIGNATURE, "A notification's clientState does not match.")
            checked += 1
        if not checked:
            raise _fail(SignatureFailure.BAD_SIGNATURE, "No notification belongs to a known subscription.")


# --------------------------------------------------------------------------- Slack


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    return "v0=" + _hmac_sha256(secret, b"v0:" + _bytes(timestamp) + b":" + body).hex()


@dataclass(frozen=True, slots=True)
class SlackVerifier:
    """`X-Slack-Signature` over `v0:{X-Slack-Request-Timestamp}:{body}` with the app signing secret."""

    tolerance: timedelta = timedelta(minutes=5)

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Check the signature, then the timestamp."""
        signature = _required_header(request, "X-Slack-Signature")
        timestamp = _required_header(request, "X-Slack-Request-Timestamp")
        seconds = _strict_int(timestamp, "Slack timestamp")
        if not (signature.startswith("v0=") and _HEX_SHA256.fullmatch(signature[3:])):
            raise _fail(SignatureFailure.MALFORMED_SIGNATURE, "The Slack signature is not v0=<hex>.")
        keys = _configured(secrets.hmac_keys, "Slack signing secret")
        expected = [slack_signature(key, timestamp, request.raw_body).encode("ascii") for key in keys]
        if not _matches_any(signature.encode("ascii"), expected):
            raise _fail(SignatureFailure.BAD_SIGNATURE, "The Slack signature does not match.")
        _check_fresh(seconds, now, self.tolerance)


# --------------------------------------------------------------------------- registry

VERIFIERS: Mapping[WebhookScheme, Verifier] = {
    WebhookScheme.GOOGLE_CHANNEL: GoogleChannelVerifier(),
    WebhookScheme.PUBSUB_PUSH: PubSubPushVerifier(),
    WebhookScheme.CALENDLY: CalendlyVerifier(),
    WebhookScheme.GHL: GhlVerifier(),
    WebhookScheme.GHL_WORKFLOW: GhlWorkflowVerifier(),
    WebhookScheme.HUBSPOT: HubSpotVerifier(),
    WebhookScheme.GRAPH: GraphVerifier(),
    WebhookScheme.SLACK: SlackVerifier(),
}


def verify_request(
    request: WebhookRequest,
    secrets: VerificationSecrets,
    now: datetime,
    verifiers: Mapping[WebhookScheme, Verifier] = VERIFIERS,
) -> None:
    """Verify `request` with its scheme's verifier; a provider without one is refused, never passed."""
    scheme = request.scheme
    verifier = verifiers.get(scheme) if scheme is not None else None
    if verifier is None:
        raise _fail(SignatureFailure.BAD_SIGNATURE, f"No webhook verifier for provider {request.provider!r}.")
    verifier.verify(request, secrets, now)
