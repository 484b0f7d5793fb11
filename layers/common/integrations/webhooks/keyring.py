"""Where the receiver's keys come from: app secrets, per-subscription signing keys, Google's key set.

- App secrets (`AppSecretSource`, store.app_secrets): JSON fields, current and `previous_*` during
  a rotation.
- Calendly per-subscription signing keys (`SigningKeyBox`, store.signing_keys): the receiver needs
  the key itself (it computes an HMAC), so the lookup item holds it sealed under the tenant.
- Pub/Sub push JWT keys: an inline `jwks`, a `jwks_url` (Google: https://www.googleapis.com/oauth2/v3/certs,
  fetched and cached for an hour), or a `public_key` PEM with its `key_id` (the local sandbox).

Failures of a store or of the key-set URL raise `DependencyUnavailable` (the caller answers "retry later");
a secret that does not exist, or a field that is empty, is simply absent (verification then fails closed).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from integrations.domain.errors import DependencyUnavailable

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup

JWKS_MAX_AGE_SECONDS = 3600

__all__ = ["AppSecretSource", "DependencyUnavailable", "JwksSource", "SigningKeyBox", "text_values"]


class AppSecretSource(Protocol):
    """An app's secret fields (`{}` when the secret does not exist): store.app_secrets."""

    def fields(self, app: str) -> Mapping[str, Any]: ...


def text_values(fields: Mapping[str, Any], *names: str) -> tuple[str, ...]:
    """The non-empty string values of `names`, in order (current first, then previous)."""
    return tuple(v for v in (fields.get(n) for n in names) if isinstance(v, str) and v)


# --------------------------------------------------------------------------- Calendly signing keys


class SigningKeyBox(Protocol):
    """Seals a signing key for a lookup item (at connect), opens it (in the receiver): store.signing_keys."""

    def seal(self, connection: Connection, signing_key: str) -> str:
        """An opaque text form of `signing_key`, bound to the connection's tenant and this purpose."""
        ...

    def open(self, lookup: Lookup, ciphertext: str) -> str | None:
        """The signing key, or None when the ciphertext is not one sealed for this lookup's tenant."""
        ...


# --------------------------------------------------------------------------- Pub/Sub push key set


class JwksSource:
    """Google's push-JWT key set from the `pubsub` app secret's fields (inline, URL or one PEM)."""

    def __init__(self, max_age: float = JWKS_MAX_AGE_SECONDS, timeout: float = 2.0) -> None:
        self._max_age = max_age
        self._timeout = timeout
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Mapping[str, Any]]] = {}

    def key_set(self, fields: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The JWKS document, or None when nothing usable is configured."""
        inline = fields.get("jwks")
        if isinstance(inline, str) and inline.strip():
            try:
                inline = json.loads(inline)
            except ValueError:
                return None
        if isinstance(inline, dict) and inline.get("keys"):
            return inline
        pem, kid = fields.get("public_key"), fields.get("key_id")
        if isinstance(pem, str) and pem.strip():
            return _jwks_of_pem(pem, kid if isinstance(kid, str) else None)
        url = fields.get("jwks_url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return self._fetch(url)
        return None

    def _fetch(self, url: str) -> Mapping[str, Any]:
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and time.monotonic() - cached[0] < self._max_age:
                return cached[1]
        import urllib.request

        try:
            # The URL comes from our own app secret, never from a request.
            with urllib.request.urlopen(url, timeout=self._timeout) as answer:  # noqa: S310
                document = json.loads(answer.read(1_000_000))
        except (OSError, ValueError):
            if cached is not None:
                return cached[1]  # a stale key set beats refusing every push while Google is slow
            raise DependencyUnavailable("Google's push key set is unavailable.") from None
        if not isinstance(document, dict):
            raise DependencyUnavailable("Google's push key set is unreadable.")
        with self._lock:
            self._cache[url] = (time.monotonic(), document)
        return document


def _jwks_of_pem(pem: str, kid: str | None) -> Mapping[str, Any] | None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem.strip().replace("\\n", "\n").encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return None
    if not isinstance(key, RSAPublicKey):
        return None
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update({"alg": "RS256", "use": "sig"})
    if kid:
        jwk["kid"] = kid
    return {"keys": [jwk]}
