"""Where the receiver's keys come from: app secrets, per-subscription signing keys, Google's key set.

- App secrets (`APP_SECRET_PREFIX + app`, JSON) through Powertools Parameters, cached 60 s, so a
  rotation (current + `previous_*` fields) reaches every warm container within a minute.
- Calendly per-subscription signing keys: the receiver needs the key itself (it computes an HMAC), so
  the lookup item holds it KMS-encrypted. The encryption context names the tenant, the connection and
  `purpose = webhook_signing_key`; the webhooks function may decrypt only under that purpose (an IAM
  condition in template.yaml), so it can open signing keys but never a connection's OAuth tokens.
- Pub/Sub push JWT keys: an inline `jwks`, a `jwks_url` (Google: https://www.googleapis.com/oauth2/v3/certs,
  fetched and cached for an hour), or a `public_key` PEM with its `key_id` (the local sandbox).

Failures of AWS or of the key-set URL raise `DependencyUnavailable` (the caller answers "retry later");
a secret that does not exist, or a field that is empty, is simply absent (verification then fails closed).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from integrations.domain.errors import IntegrationError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup

SIGNING_KEY_PURPOSE = "webhook_signing_key"
SECRET_MAX_AGE_SECONDS = 60
JWKS_MAX_AGE_SECONDS = 3600
_NOT_FOUND = frozenset({"ResourceNotFoundException"})


class DependencyUnavailable(IntegrationError):
    """A store or key source we depend on failed: nothing the sender did; answer "retry later"."""

    status = 503
    code = "dependency_unavailable"


class AppSecretSource(Protocol):
    """An app's secret fields (`{}` when the secret does not exist)."""

    def fields(self, app: str) -> Mapping[str, Any]: ...


class SecretsManagerAppSecrets:
    """App secrets read with Powertools Parameters (`get_secret(..., transform="json", max_age=60)`)."""

    def __init__(
        self, client: SecretsManagerClient, prefix: str, max_age: int = SECRET_MAX_AGE_SECONDS
    ) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._provider = SecretsProvider(boto3_client=client)
        self._prefix = prefix
        self._max_age = max_age

    def fields(self, app: str) -> Mapping[str, Any]:
        """The secret's JSON fields; `{}` when it does not exist or is not a JSON object."""
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        try:
            value = self._provider.get(self._prefix + app, transform="json", max_age=self._max_age)
        except TransformParameterError:
            return {}
        except GetParameterError as exc:
            # Powertools wraps every SDK error; the original is the context of its exception.
            cause = exc.__context__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return {}
            raise DependencyUnavailable("App secrets are unavailable.") from None
        return value if isinstance(value, dict) else {}


def text_values(fields: Mapping[str, Any], *names: str) -> tuple[str, ...]:
    """The non-empty string values of `names`, in order (current first, then previous)."""
    return tuple(v for v in (fields.get(n) for n in names) if isinstance(v, str) and v)


# --------------------------------------------------------------------------- Calendly signing keys


def signing_key_context(connection_id: str, agency_id: str, client_id: str | None) -> dict[str, str]:
    """KMS encryption context of a per-subscription signing key: the tenant, the connection, the use."""
    return {
        "agency_id": agency_id,
        "client_id": client_id or "-",
        "connection_id": connection_id,
        "purpose": SIGNING_KEY_PURPOSE,
    }


class SigningKeyBox:
    """Seals a signing key for a lookup item (at connect) and opens it (in the receiver)."""

    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    def seal(self, connection: Connection, signing_key: str) -> str:
        """base64 KMS ciphertext of `signing_key`, bound to the connection's tenant and this purpose."""
        blob = self._kms.encrypt(
            KeyId=self._key_id,
            Plaintext=signing_key.encode(),
            EncryptionContext=signing_key_context(connection.id, connection.agency_id, connection.client_id),
        )["CiphertextBlob"]
        return base64.b64encode(blob).decode("ascii")

    def open(self, lookup: Lookup, ciphertext: str) -> str | None:
        """The signing key, or None when the ciphertext is not one sealed for this lookup's tenant."""
        try:
            blob = base64.b64decode(ciphertext, validate=True)
        except (binascii.Error, ValueError):
            return None
        context = signing_key_context(lookup.connection_id, lookup.agency_id, lookup.client_id)
        try:
            plaintext = self._kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidCiphertextException", "IncorrectKeyException", "AccessDeniedException"):
                # Copied from another tenant's item, tampered, or not ours to open: unusable, not an outage.
                return None
            raise DependencyUnavailable("The signing key could not be decrypted now.") from None
        except BotoCoreError:
            raise DependencyUnavailable("The signing key could not be decrypted now.") from None
        return plaintext.decode("utf-8", "replace")


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
