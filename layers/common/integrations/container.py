"""The composition root: adapters built once per process, at the edge; tests swap in their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from integrations import aws
from integrations.catalog import Catalog, ProviderSpec, load_catalog
from integrations.config import Settings, TokenStorage
from integrations.domain.connection import Connection, utcnow
from integrations.domain.credentials import AppCredentials, Credentials
from integrations.events import EventPublisher
from integrations.store.agencies import AgencyRepository
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import KmsTokenVault, SecretsManagerTokenVault, TokenVault, credential_ref


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
        found = self._vault.get(credential_ref(connection))
        return found if found is not None else Credentials()


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    connections: ConnectionRepository
    agencies: AgencyRepository
    vault: TokenVault
    events: EventPublisher
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
        self._ensure_sources()
        return self.app_source.for_agency(spec, agency_id) if self.app_source else None

    def _ensure_sources(self) -> None:
        if self.credential_source is None and self.install_sources is not None:
            self.install_sources(self)


def install_token_manager(services: Services) -> None:
    """The production sources: the OAuth token manager and the platform/agency app credentials."""
    from integrations.oauth.tokens import install

    install(services)


def build_vault(settings: Settings) -> TokenVault:
    if settings.token_storage is TokenStorage.SECRETS_MANAGER:
        return SecretsManagerTokenVault(aws.secretsmanager(), settings.stage, settings.kms_key_id or None)
    return KmsTokenVault(aws.dynamodb(), aws.kms(), settings.table_name, settings.kms_key_id)


def build_services(settings: Settings | None = None) -> Services:
    settings = settings or Settings.from_env()
    return Services(
        settings=settings,
        catalog=load_catalog(),
        connections=ConnectionRepository(aws.dynamodb(), settings.table_name),
        agencies=AgencyRepository(aws.dynamodb(), settings.table_name),
        vault=build_vault(settings),
        events=EventPublisher(aws.events(), settings.event_bus_name),
        install_sources=install_token_manager,
    )
