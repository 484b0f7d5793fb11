"""Calendly per-subscription signing keys, sealed with KMS for the lookup item that routes them.

The receiver needs the key itself (it computes an HMAC), so the lookup item holds it KMS-encrypted.
The encryption context names the tenant, the connection and `purpose = webhook_signing_key`; the
webhooks function may decrypt only under that purpose (an IAM condition in template.yaml), so it can
open signing keys but never a connection's OAuth tokens.

Opened keys are kept in the process for a few minutes: every push naming a subscription would otherwise
cost a KMS Decrypt before its signature can be checked, so unsigned pushes could drain the key's quota.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from integrations.domain.errors import DependencyUnavailable
from integrations.store.errors import error_code, unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup

SIGNING_KEY_PURPOSE = "webhook_signing_key"
# Copied from another tenant's item, tampered, or not ours to open: unusable, not an outage.
_UNUSABLE = frozenset({"InvalidCiphertextException", "IncorrectKeyException", "AccessDeniedException"})
# How long and how many opened keys (or unusable ciphertexts) a process keeps: short enough that a
# revoked grant or a replaced key is noticed soon, large enough for every subscription a warm
# function serves.
OPENED_KEY_TTL_SECONDS = 300.0
OPENED_KEY_MAX_ENTRIES = 512

_CacheKey = tuple[str, str, str, str]


def signing_key_context(connection_id: str, agency_id: str, client_id: str | None) -> dict[str, str]:
    """KMS encryption context of a per-subscription signing key: the tenant, the connection, the use."""
    return {
        "agency_id": agency_id,
        "client_id": client_id or "-",
        "connection_id": connection_id,
        "purpose": SIGNING_KEY_PURPOSE,
    }


class KmsSigningKeyBox:
    """Seals a signing key for a lookup item (at connect) and opens it (in the receiver)."""

    def __init__(
        self,
        kms: KMSClient,
        key_id: str,
        *,
        ttl_seconds: float = OPENED_KEY_TTL_SECONDS,
        max_entries: int = OPENED_KEY_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kms = kms
        self._key_id = key_id
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._opened: OrderedDict[_CacheKey, tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    @unavailable_on_aws_error("The signing key store")
    def seal(self, connection: Connection, signing_key: str) -> str:
        """base64 KMS ciphertext of `signing_key`, bound to the connection's tenant and this purpose."""
        blob = self._kms.encrypt(
            KeyId=self._key_id,
            Plaintext=signing_key.encode(),
            EncryptionContext=signing_key_context(connection.id, connection.agency_id, connection.client_id),
        )["CiphertextBlob"]
        return base64.b64encode(blob).decode("ascii")

    def open(self, lookup: Lookup, ciphertext: str) -> str | None:
        """The signing key, or None when the ciphertext is not one sealed for this lookup's tenant.

        Answered from the process's cache when this lookup's ciphertext was opened recently.
        """
        key: _CacheKey = (lookup.agency_id, lookup.client_id or "-", lookup.connection_id, ciphertext)
        now = self._monotonic()
        with self._lock:
            cached = self._opened.get(key)
            if cached is not None and now - cached[0] < self._ttl:
                return cached[1]
        opened = self._decrypt(lookup, ciphertext)  # raises DependencyUnavailable: nothing cached
        with self._lock:
            self._opened[key] = (now, opened)
            self._opened.move_to_end(key)
            while len(self._opened) > self._max_entries:
                self._opened.popitem(last=False)
        return opened

    def _decrypt(self, lookup: Lookup, ciphertext: str) -> str | None:
        try:
            blob = base64.b64decode(ciphertext, validate=True)
        except (binascii.Error, ValueError):
            return None
        context = signing_key_context(lookup.connection_id, lookup.agency_id, lookup.client_id)
        try:
            plaintext = self._kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
        except ClientError as exc:
            if error_code(exc) in _UNUSABLE:
                return None
            raise DependencyUnavailable("The signing key could not be decrypted now.") from None
        except BotoCoreError:
            raise DependencyUnavailable("The signing key could not be decrypted now.") from None
        return plaintext.decode("utf-8", "replace")
