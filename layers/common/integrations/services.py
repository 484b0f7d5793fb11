"""The ports the portal and OAuth use, as one bundle the composition root (container.py) fills in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from integrations.domain.connection import Connection, utcnow
from integrations.domain.credentials import AppCredentials, Credentials

if TYPE_CHECKING:
    from integrations.catalog import Catalog, ProviderSpec
    from integrations.config import Settings
    from integrations.events import EventPublisher
    from integrations.store.agencies import AgencyRepository
    from integrations.store.connections import ConnectionRepository
    from integrations.store.vault import TokenVault
    from integrations.webhooks.subscriptions import SubscriptionContext


class CredentialSource(Protocol):
    """Hands out usable credentials for a connection (refreshing them first when needed)."""

    def credentials(self, connection: Connection) -> Credentials: ...


class AppCredentialSource(Protocol):
    """Resolves the OAuth app a connection uses: the agency's white-label app, else the platform's."""

    def for_agency(self, spec: ProviderSpec, agency_id: str) -> AppCredentials | None: ...


class StoredCredentials:
    """Credentials as stored, without refreshing: for providers whose tokens do not expire."""

    def __init__(self, vault: TokenVault) -> None:
        self._vault = vault

    def credentials(self, connection: Connection) -> Credentials:
        from integrations.store.vault import credential_ref

        found = self._vault.get(credential_ref(connection))
        return found if found is not None else Credentials()


@dataclass
class Services:
    """The ports the portal and OAuth use; built by container.Container."""

    settings: Settings
    catalog: Catalog
    connections: ConnectionRepository
    agencies: AgencyRepository
    vault: TokenVault
    events: EventPublisher
    subscriptions: SubscriptionContext
    clock: Callable[[], datetime] = utcnow
    credential_source: CredentialSource | None = field(default=None)
    app_source: AppCredentialSource | None = field(default=None)
    # Installs the token manager and app credentials on first use: most requests never need them,
    # and they import the HTTP stack, which every cold start would otherwise pay for.
    install_sources: Callable[[Services], None] | None = field(default=None)

    def fresh_credentials(self, connection: Connection) -> Credentials:
        """Usable credentials for the connection, refreshed first when they are about to expire."""
        self._ensure_sources()
        source = self.credential_source or StoredCredentials(self.vault)
        return source.credentials(connection)

    def app_credentials(self, spec: ProviderSpec, agency_id: str) -> AppCredentials | None:
        """The OAuth app the agency's connections of `spec` use, None when there is none."""
        self._ensure_sources()
        return self.app_source.for_agency(spec, agency_id) if self.app_source else None

    def _ensure_sources(self) -> None:
        if self.credential_source is None and self.install_sources is not None:
            self.install_sources(self)
