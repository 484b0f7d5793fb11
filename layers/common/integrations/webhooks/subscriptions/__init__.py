"""Provider-side push subscriptions, made at connect and removed at disconnect.

Per-connection subscriptions: a Google Calendar watch channel per synced calendar, a Calendly webhook
subscription with its own signing key, a Microsoft Graph subscription, a Gmail `users.watch`. GHL,
HubSpot and Slack webhooks are configured once per app. Each provider's manager lives in its folder,
`integrations/providers/<id>/subscriptions.py`, as `MANAGER`.

Contract for callers (connect flow, disconnect, renewal jobs):

- `for_provider(provider_id, context)` -> a manager, or None when the provider has no per-connection pushes.
- `manager.subscribe(spec, connection, access_token) -> list[Lookup]`: creates the subscriptions and
  returns the lookup items that route and verify their pushes. Write them with
  `ConnectionRepository.put_lookups(connection, merge_lookups(on_connect_lookups, these))`. Raises on a
  provider failure (nothing half-made is returned); the caller logs it and carries on.
- `manager.unsubscribe(spec, connection, access_token, lookups)`: best effort, never raises for a
  provider failure; pass the connection's stored lookups (`stored_lookups`). Deleting the lookup
  items is the repository's job (`ConnectionRepository.delete`).
- Renewal (before `Attr.EXPIRES_AT`): subscribe again, write the new lookups, then unsubscribe the old
  ones (create before delete, so there is no gap; both deliver for a moment and dedupe absorbs it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from integrations.domain.connection import utcnow
from integrations.webhooks.routing import parse_lookup_key

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.keyring import AppSecretSource, SigningKeyBox


class SubscriptionNotConfigured(RuntimeError):
    """The deployment lacks what a subscription needs (public URL, KMS key, Pub/Sub topic)."""


@dataclass(frozen=True, slots=True)
class SubscriptionContext:
    """What managers need besides the connection: our public URL, key sealing, app secrets, a clock."""

    public_api_url: str
    signing_keys: SigningKeyBox | None = None
    app_secrets: AppSecretSource | None = None
    clock: Callable[[], datetime] = field(default=utcnow)

    def webhook_url(self, provider: str) -> str:
        """`<PUBLIC_API_URL>/webhooks/<provider>`: where a provider sends this connection's pushes."""
        if not self.public_api_url:
            raise SubscriptionNotConfigured("PUBLIC_API_URL is not set; providers cannot reach us.")
        return f"{self.public_api_url.rstrip('/')}/webhooks/{provider}"

    def app_fields(self, app: str) -> Mapping[str, Any]:
        return self.app_secrets.fields(app) if self.app_secrets is not None else {}


class SubscriptionManager(Protocol):
    """Creates and removes one provider's per-connection push subscriptions."""

    # Lookup kinds its subscriptions are stored under: when the connection subscribes again (reconnect,
    # config change), stored ones of these kinds that the new set does not keep are stopped and removed.
    kinds: frozenset[str]
    # Config fields whose change needs new subscriptions (the calendars a channel watches).
    config_fields: frozenset[str]

    def subscribe(self, spec: ProviderSpec, connection: Connection, access_token: str) -> list[Lookup]: ...

    def unsubscribe(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> None: ...


def _factory(provider_id: str) -> Callable[[SubscriptionContext], SubscriptionManager] | None:
    """The provider folder's `subscriptions.MANAGER`, unless the entry never reads changes."""
    from integrations.catalog import load_catalog
    from integrations.providers.registry import part

    catalog = load_catalog()
    if provider_id in catalog and not catalog.get(provider_id).reads_changes:
        return None
    module = part(provider_id, "subscriptions")
    return getattr(module, "MANAGER", None) if module is not None else None


def for_provider(provider_id: str, context: SubscriptionContext) -> SubscriptionManager | None:
    """The provider's subscription manager, or None (app-level webhooks, or no pushes at all)."""
    factory = _factory(provider_id)
    if factory is None:
        return None
    return factory(context)


class LookupReader(Protocol):
    """Reads one lookup item (store.connections.ConnectionRepository)."""

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None: ...


def stored_lookups(repository: LookupReader, connection: Connection) -> list[Lookup]:
    """The connection's lookup items as stored (what `unsubscribe` needs at disconnect)."""
    found: list[Lookup] = []
    for key in connection.lookup_keys:
        parts = parse_lookup_key(key)
        if parts is None:
            continue
        lookup = repository.get_lookup(*parts)
        if lookup is not None and lookup.connection_id == connection.id:
            found.append(lookup)
    return found


def subscribe_at_connect(
    spec: ProviderSpec, connection: Connection, access_token: str, context: SubscriptionContext
) -> list[Lookup]:
    """Open the connection's push subscriptions; their lookups, to be written with the connect's own."""
    manager = for_provider(spec.id, context)
    return manager.subscribe(spec, connection, access_token) if manager is not None else []


def unsubscribe_at_disconnect(
    spec: ProviderSpec,
    connection: Connection,
    access_token: str,
    repository: LookupReader,
    context: SubscriptionContext,
) -> None:
    """Close the connection's push subscriptions (best effort) before its lookups are deleted."""
    manager = for_provider(spec.id, context)
    if manager is not None:
        manager.unsubscribe(spec, connection, access_token, stored_lookups(repository, connection))


__all__ = [
    "SubscriptionContext",
    "SubscriptionManager",
    "SubscriptionNotConfigured",
    "for_provider",
    "stored_lookups",
    "subscribe_at_connect",
    "unsubscribe_at_disconnect",
]
