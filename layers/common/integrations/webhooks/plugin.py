"""What a provider's webhook plug-in is: the shape `providers/<id>/webhook.py` implements as `WEBHOOK`.

The generic receiver (`receiver.py`) runs the same steps for every provider and asks the plug-in at
each step that differs by provider:

1. `for_request(request)`: the plug-in that handles this request (a provider with two kinds of
   pushes on one URL picks by query; most answer `self`).
2. `handshake(request)`: an answer given before anything else, or None (a subscription handshake
   that proves nothing about the caller and must never reach the queue).
3. `precheck(request, now)`: cheap checks of the signature's form and freshness, before any key is
   read or opened (`SignatureInvalid`: 401).
4. `lookup_keys(request)`: the per-channel lookup items to load before verifying (from the
   unverified request: use them only to look secrets up).
5. `secrets(material, keys)`: the verification material, from the app secret's fields (the app secret
   the catalog's `webhook.app_secret` names) and the lookups found.
6. `verify(request, secrets, now)`: `SignatureInvalid` (401) unless the request is the provider's.
7. `parse(request)`: deliveries (event id, routing key, event type, hint), or a reply to echo.
8. Per delivery: `event(...)` to publish instead of queueing a job, else a job of `job_kind(...)`.

A routing key names the stored lookup kind itself (`LOOKUP#<provider>#<kind>#<value>`), so following
a push from the receiver into the provider's folder and back needs no table.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from integrations.sync.jobs import JobKind
from integrations.webhooks.errors import SignatureFailure, SignatureInvalid

if TYPE_CHECKING:
    from integrations.domain.lookup import Lookup
    from integrations.events import PlatformEvent
    from integrations.webhooks.request import WebhookRequest
    from integrations.webhooks.signatures import VerificationSecrets, Verifier


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What to answer the provider."""

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, payload: Any, **headers: str) -> WebhookAnswer:
        """A compact JSON answer."""
        return cls(status=status, body=json.dumps(payload, separators=(",", ":")), headers=headers)


class RoutingKey(BaseModel):
    """A lookup: the stored lookup kind + the provider's id (a channel id, an address, a portal id...)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    value: str


class Delivery(BaseModel):
    """One event to dedupe, route and enqueue."""

    model_config = ConfigDict(frozen=True)

    provider: str
    # The provider's event id (or a digest of what identifies the event when it has none).
    event_id: str
    routing: RoutingKey
    event_type: str
    hint: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """Unique across providers: the key of the idempotency record."""
        return f"{self.provider}#{self.event_id}"


@dataclass(frozen=True, slots=True)
class ParsedWebhook:
    """What one request asks of the receiver: deliveries to enqueue, or a `reply` to give instead
    (a verified handshake such as an Events API url_verification: answer it, enqueue nothing)."""

    deliveries: list[Delivery] = field(default_factory=list)
    reply: WebhookAnswer | None = None


def text_values(fields: Mapping[str, Any], *names: str) -> tuple[str, ...]:
    """The non-empty string values of `names`, in order (current first, then previous)."""
    return tuple(v for v in (fields.get(n) for n in names) if isinstance(v, str) and v)


@dataclass(frozen=True, slots=True)
class Material:
    """What the receiver loaded for one request's verification: the app secret's fields and the lookups
    `lookup_keys` named (None where no item exists)."""

    app: Mapping[str, Any] = field(default_factory=dict)
    lookups: Mapping[RoutingKey, Lookup | None] = field(default_factory=dict)

    def found(self) -> list[Lookup]:
        """The lookup items that exist."""
        return [lookup for lookup in self.lookups.values() if lookup is not None]

    def app_values(self, *names: str) -> tuple[str, ...]:
        """The app secret's non-empty fields `names`, current first."""
        return text_values(self.app, *names)

    def digests(self, *names: str) -> tuple[str, ...]:
        """The non-empty attributes `names` of every lookup found."""
        return tuple(v for lookup in self.found() for v in text_values(lookup.attributes, *names))


class KeyAccess(Protocol):
    """Key sources a plug-in may need beyond plain fields (the receiver's keyring adapters)."""

    def open_signing_key(self, lookup: Lookup, ciphertext: str) -> str | None:
        """A per-subscription signing key sealed in a lookup item, or None when it cannot be opened."""
        ...

    def key_set(self, fields: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """A JWKS document from an app secret's fields (inline, URL or one PEM), or None."""
        ...


class WebhookPlugin(ABC):
    """One provider's pushes. Subclasses implement `secrets` and `parse`, and either set `verifier`
    (the scheme's checks) or override `verify`; the other hooks have defaults that fit most providers."""

    # Lookup kinds whose values are personal data (a mailbox address): never logged.
    unlogged_kinds: frozenset[str] = frozenset()
    # Whether verification reads the app secret the catalog names (a per-location bearer secret does not).
    uses_app_secret: bool = True
    # The provider's signature scheme; the default `verify` delegates to it.
    verifier: Verifier | None = None

    def for_request(self, request: WebhookRequest) -> WebhookPlugin:
        """The plug-in that handles this request (a variant chosen by query), by default this one."""
        return self

    def handshake(self, request: WebhookRequest) -> WebhookAnswer | None:
        """An answer to give before loading or verifying anything, or None."""
        return None

    def precheck(self, request: WebhookRequest, now: datetime) -> None:
        """Raise `SignatureInvalid` for a request that cannot verify, before any key is read or opened.

        For schemes whose keys are costly to open (a KMS Decrypt per subscription): a missing or
        malformed signature, or a stale timestamp, is refused for free. Nothing by default.
        """
        return None

    def lookup_keys(self, request: WebhookRequest) -> list[RoutingKey]:
        """The per-channel records to load before verifying (their stored token, clientState or key).

        Read from the unverified request, so use them only to look secrets up. Empty for app-wide keys
        and when the request names nothing to look up (the verifier then refuses it); never raises.
        """
        return []

    @abstractmethod
    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        """What `verify` checks against: the current and previous keys from `material`."""

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        """Raise `SignatureInvalid` unless the request is provably the provider's at time `now`.

        By default `verifier` checks it; a plug-in without one refuses every request (never fails open).
        """
        if self.verifier is None:
            raise SignatureInvalid(SignatureFailure.MISSING_SIGNATURE, "No verifier is configured.")
        self.verifier.verify(request, secrets, now)

    @abstractmethod
    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        """Deliveries of a verified request; `MalformedPayload` when the body is not as documented."""

    def job_kind(self, delivery: Delivery) -> JobKind:
        """The job a delivery asks for: an incremental sync unless the event says otherwise."""
        return JobKind.SYNC

    def event(self, request: WebhookRequest, delivery: Delivery, lookup: Lookup) -> PlatformEvent | None:
        """A platform event to publish instead of queueing a job, or None."""
        return None
