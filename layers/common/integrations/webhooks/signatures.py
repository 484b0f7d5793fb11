"""Signature kits every provider's webhook verifier is built from, failing closed.

A verifier (`providers/<id>/webhook.py`) has one shape: `verify(request, secrets, now) -> None`,
raising `SignatureInvalid` with a stable code. Built from these helpers, every verifier:

- rejects a missing header and a missing key configuration (it never skips a check);
- compares in constant time (`hmac.compare_digest` on bytes);
- accepts any of the current and previous keys (rotation): pass them all, current first;
- enforces a timestamp tolerance, in both directions, where the scheme signs a timestamp.

Per-channel schemes (a watch channel's token, a subscription's clientState, a per-location bearer
secret, a per-subscription HMAC key) need the caller to look the channel up first: the plug-in's
`lookup_keys()` names what to look up. An unknown channel is not verified at all: the caller answers
2xx, logs and stores nothing.

PyJWT is imported only by the helper that needs it (cold start).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeGuard

from integrations.webhooks.errors import SignatureFailure, SignatureInvalid
from integrations.webhooks.request import WebhookRequest

_DIGITS = re.compile(r"[0-9]{1,19}")
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
B64_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=")
_BEARER = re.compile(r"Bearer[ ]+(\S+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True, repr=False)
class VerificationSecrets:
    """What the caller loaded to check one request. Each tuple: current value first, then previous ones."""

    # HMAC keys: per-subscription signing keys, app client secrets, app signing secrets.
    hmac_keys: tuple[str, ...] = ()
    # Per-channel shared values found by routing id: watch-channel tokens, per-location bearer secrets.
    channel_tokens: tuple[str, ...] = ()
    # The same, stored as `secret_digest()` values (what lookup items hold: never the token itself).
    channel_token_hashes: tuple[str, ...] = ()
    # Watched resource ids stored with a channel (empty only while the watch answer is not stored yet).
    resource_ids: tuple[str, ...] = ()
    # Subscription id -> accepted clientState values, for the subscriptions found.
    client_states: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The same, as `secret_digest()` values per subscription id.
    client_state_hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # An app's Ed25519 public keys (PEM, or base64 of the raw 32-byte key).
    ed25519_public_keys: tuple[str, ...] = ()
    # Published RSA public keys (PEM) for legacy RSA signatures.
    rsa_public_keys: tuple[str, ...] = ()
    # Signed push JWTs: the issuer's key set as a JWKS dict, the audiences and service accounts we set.
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

    def has_keys(self) -> bool:
        """Whether anything at all could verify a request (any key, token, digest or key set)."""
        return bool(
            self.hmac_keys
            or self.channel_tokens
            or self.channel_token_hashes
            or any(self.client_states.values())
            or any(self.client_state_hashes.values())
            or self.ed25519_public_keys
            or self.rsa_public_keys
            or self.jwks
        )


class Verifier(Protocol):
    """Raises `SignatureInvalid` unless `request` is provably from the provider at time `now`."""

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None: ...


# --------------------------------------------------------------------------- shared checks


def fail(code: SignatureFailure, message: str) -> SignatureInvalid:
    """The refusal to raise: 401, with a stable reason for logs and metrics."""
    return SignatureInvalid(code, message)


def required_header(request: WebhookRequest, name: str) -> str:
    """The header's stripped value; a missing or blank header is a missing signature."""
    value = request.headers.get(name)
    if value is None or not value.strip():
        raise fail(SignatureFailure.MISSING_SIGNATURE, f"Header {name} is missing.")
    return value.strip()


def configured(values: Iterable[str], what: str) -> tuple[str, ...]:
    """The non-empty configured keys; none at all refuses the request."""
    usable = tuple(v for v in values if v)
    if not usable:
        # Fail closed: a deployment without the key rejects everything instead of accepting everything.
        raise fail(SignatureFailure.BAD_SIGNATURE, f"No {what} is configured to verify this request.")
    return usable


def as_bytes(text: str) -> bytes:
    """UTF-8 bytes of header or key text, as signatures are computed over them."""
    # surrogatepass: header text from the gateway may hold lone surrogates; they must compare, not raise.
    return text.encode("utf-8", "surrogatepass")


def matches_any(candidate: bytes, accepted: Iterable[bytes]) -> bool:
    """Constant-time membership: `candidate` equals one of `accepted`."""
    # Compare against every accepted value (no early exit), so timing does not tell which key matched.
    results = [hmac.compare_digest(candidate, value) for value in accepted]
    return any(results)


def secret_digest(value: str) -> str:
    """Lowercase hex SHA-256 of a per-channel secret: what a lookup item stores instead of the secret."""
    return hashlib.sha256(as_bytes(value)).hexdigest()


def shared_secret_matches(candidate: str, raw: Iterable[str], digests: Iterable[str], what: str) -> bool:
    """Constant-time match of `candidate` against stored values and stored digests (fails closed)."""
    plain = tuple(v for v in raw if v)
    hashed = tuple(d for d in digests if d)
    if not plain and not hashed:
        raise fail(SignatureFailure.BAD_SIGNATURE, f"No {what} is configured to verify this request.")
    candidate_digest = secret_digest(candidate).encode("ascii")
    # Both lists are always compared in full, so timing does not tell which form or which value matched.
    by_value = matches_any(as_bytes(candidate), [as_bytes(v) for v in plain])
    by_digest = matches_any(candidate_digest, [as_bytes(d.lower()) for d in hashed])
    return by_value or by_digest


def hmac_sha256(key: str, message: bytes) -> bytes:
    """HMAC-SHA256 of `message` with a text key."""
    return hmac.new(as_bytes(key), message, hashlib.sha256).digest()


def epoch_seconds(moment: datetime) -> float:
    """Unix seconds of `moment` (a naive time is read as UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float, never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def strict_int(text: str, what: str) -> int:
    """A signed number that is exactly ASCII digits, or a malformed-signature refusal."""
    # int() would accept "+1", " 1", "1_0" and non-ASCII digits; a signed value must be exactly digits.
    if not _DIGITS.fullmatch(text):
        raise fail(SignatureFailure.MALFORMED_SIGNATURE, f"The {what} is not a number.")
    return int(text)


def check_fresh(signed_at_seconds: float, now: datetime, tolerance: timedelta) -> None:
    """Refuse a signed timestamp further than `tolerance` from `now`, in either direction."""
    # Written as "not within" so that a NaN timestamp is refused too.
    if not abs(epoch_seconds(now) - signed_at_seconds) <= tolerance.total_seconds():
        raise fail(SignatureFailure.STALE_TIMESTAMP, "The signed timestamp is outside the tolerance.")


def canonical_b64decode(text: str, size: int | None = None) -> bytes:
    """Standard base64 that re-encodes to the same text, so no two header values verify alike."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The signature is not base64.") from None
    if base64.b64encode(raw).decode("ascii") != text or (size is not None and len(raw) != size):
        raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The signature has the wrong encoding or size.")
    return raw


def bearer_token(request: WebhookRequest) -> str:
    """The token of `Authorization: Bearer <token>`."""
    header = required_header(request, "Authorization")
    match = _BEARER.fullmatch(header)
    if match is None:
        raise fail(SignatureFailure.MALFORMED_SIGNATURE, "Authorization is not a bearer token.")
    return match.group(1)


def pem_text(text: str) -> bytes:
    """PEM bytes of a key pasted into configuration."""
    # Keys pasted into environment variables or JSON often arrive with literal "\n" instead of newlines.
    return text.strip().replace("\\n", "\n").encode("ascii")


# --------------------------------------------------------------------------- JWT over a JWKS


def rs256_claims(
    token: str, jwks: Mapping[str, Any] | None, audiences: tuple[str, ...], issuers: tuple[str, ...]
) -> dict[str, Any]:
    """The claims of an RS256 JWT signed by a key of `jwks`, for one of `audiences` and `issuers`.

    Times are not checked here: the caller checks `exp`/`iat` against its injected `now`.
    """
    import jwt

    if jwks is None:
        raise fail(SignatureFailure.BAD_SIGNATURE, "No key set is configured to verify this request.")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError):
        raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The bearer token is not a JWT.") from None
    if header.get("alg") != "RS256":
        raise fail(SignatureFailure.BAD_SIGNATURE, "The JWT is not signed with RS256.")
    kid = header.get("kid")
    try:
        key_set = jwt.PyJWKSet.from_dict(dict(jwks))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise fail(SignatureFailure.BAD_SIGNATURE, "The configured key set is unusable.") from None
    # Rotation: issuers publish current and next keys; pick by kid, or try every RSA key without one.
    keys = [k for k in key_set.keys if k.key_type == "RSA" and (kid is None or k.key_id == kid)]
    if not keys:
        raise fail(SignatureFailure.BAD_SIGNATURE, "No configured key matches the JWT's key id.")
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                audience=list(audiences),
                issuer=issuers,
                # Times are checked against the injected `now` by the caller, not the wall clock.
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
            raise fail(SignatureFailure.MALFORMED_SIGNATURE, "The JWT is malformed.") from None
        except jwt.PyJWTError as exc:
            raise fail(
                SignatureFailure.BAD_SIGNATURE, f"The JWT is not for us: {type(exc).__name__}."
            ) from None
        return claims
    raise fail(SignatureFailure.BAD_SIGNATURE, "The JWT signature does not match any configured key.")
