"""The composition root: every adapter of one process, built on first use, at the edge.

A function's module scope builds one `Container` from validated settings; handlers ask it for the
service they run (`webhook_receiver`, `oauth_service`, ...). Each adapter is built the first time
something needs it, and its module is imported only then: a webhook receiver never imports what
only OAuth needs, and no AWS client is created before the first request. Tests build their own
container (or replace one of its cached adapters) to swap in fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from integrations.config import Settings, TokenStorage
from integrations.domain.connection import Connection, utcnow

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.catalog import Catalog, ProviderSpec
    from integrations.connections.apply import ConnectionTransitions
    from integrations.connections.connect import Connector
    from integrations.connections.disconnect import Disconnector
    from integrations.domain.credentials import AppCredentials, Credentials
    from integrations.metrics import Counter
    from integrations.oauth.apps import AppCredentialStore
    from integrations.oauth.revocation import GrantRevoker
    from integrations.oauth.service import OAuthService
    from integrations.oauth.tokens import TokenManager
    from integrations.portal.service import PortalService
    from integrations.store.agencies import AgencyRepository
    from integrations.store.app_secrets import SecretsManagerAppSecrets
    from integrations.store.bus import EventBridgePublisher
    from integrations.store.connections import ConnectionRepository
    from integrations.store.delivery_ledger import DynamoDeliveryLedger
    from integrations.store.due import DynamoDueConnections
    from integrations.store.leases import DynamoRefreshLeases
    from integrations.store.oauth_sessions import DynamoSessionStore
    from integrations.store.queue import SqsJobQueue
    from integrations.store.signing_keys import KmsSigningKeyBox
    from integrations.store.vault import TokenVault
    from integrations.sync.scheduler import SyncScheduler
    from integrations.sync.worker import SyncWorker
    from integrations.webhooks.receiver import WebhookReceiver
    from integrations.webhooks.subscriptions import SubscriptionContext


class Container:
    """Every adapter of one process, each built once, on first use (`cached_property`)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    # --- stores (store/) ---

    @cached_property
    def catalog(self) -> Catalog:
        from integrations.catalog import load_catalog

        return load_catalog()

    @cached_property
    def connections(self) -> ConnectionRepository:
        from integrations import aws
        from integrations.store.connections import ConnectionRepository

        return ConnectionRepository(aws.dynamodb(), self.settings.table_name)

    @cached_property
    def agencies(self) -> AgencyRepository:
        from integrations import aws
        from integrations.store.agencies import AgencyRepository

        return AgencyRepository(aws.dynamodb(), self.settings.table_name)

    @cached_property
    def vault(self) -> TokenVault:
        return build_vault(self.settings)

    @cached_property
    def events(self) -> EventBridgePublisher:
        from integrations import aws
        from integrations.store.bus import EventBridgePublisher

        return EventBridgePublisher(aws.events(), self.settings.event_bus_name)

    @cached_property
    def jobs(self) -> SqsJobQueue:
        from integrations import aws
        from integrations.store.queue import SqsJobQueue

        return SqsJobQueue(aws.sqs(), self.settings.sync_queue_url)

    @cached_property
    def app_secrets(self) -> SecretsManagerAppSecrets:
        from integrations import aws
        from integrations.store.app_secrets import SecretsManagerAppSecrets

        return SecretsManagerAppSecrets(
            aws.secretsmanager(), self.settings.app_secret_prefix, self.settings.agency_app_secret_prefix
        )

    @cached_property
    def signing_keys(self) -> KmsSigningKeyBox:
        from integrations import aws
        from integrations.store.signing_keys import KmsSigningKeyBox

        return KmsSigningKeyBox(aws.kms(), self.settings.kms_key_id)

    @cached_property
    def delivery_ledger(self) -> DynamoDeliveryLedger:
        from integrations import aws
        from integrations.store.delivery_ledger import DynamoDeliveryLedger

        return DynamoDeliveryLedger(aws.dynamodb(), self.settings.state_table_name)

    @cached_property
    def oauth_sessions(self) -> DynamoSessionStore:
        from integrations import aws
        from integrations.store.oauth_sessions import DynamoSessionStore

        return DynamoSessionStore(aws.dynamodb(), self.settings.state_table_name, self.clock)

    @cached_property
    def leases(self) -> DynamoRefreshLeases:
        from integrations import aws
        from integrations.store.leases import DynamoRefreshLeases

        return DynamoRefreshLeases(aws.dynamodb(), self.settings.state_table_name)

    @cached_property
    def due_connections(self) -> DynamoDueConnections:
        from integrations import aws
        from integrations.store.due import DynamoDueConnections

        return DynamoDueConnections(aws.dynamodb(), self.settings.table_name)

    @cached_property
    def counter(self) -> Counter:
        """Outcome counts as CloudWatch embedded metrics (the namespace comes from the environment)."""
        from integrations.metrics import EmfCounter

        return EmfCounter()

    # --- what the stores serve ---

    @cached_property
    def apps(self) -> AppCredentialStore:
        from integrations.oauth.apps import AppCredentialStore

        return AppCredentialStore(self.app_secrets, clock=self.clock)

    @cached_property
    def token_manager(self) -> TokenManager:
        from integrations.oauth.tokens import TokenManager

        return TokenManager(
            catalog=self.catalog,
            connections=self.connections,
            vault=self.vault,
            events=self.events,
            apps=self.apps,
            leases=self.leases,
            clock=self.clock,
            counter=self.counter,
        )

    @cached_property
    def subscriptions(self) -> SubscriptionContext:
        from integrations.webhooks.subscriptions import SubscriptionContext

        return SubscriptionContext(
            public_api_url=self.settings.public_api_url,
            signing_keys=self.signing_keys,
            app_secrets=self.app_secrets,
            clock=self.clock,
        )

    @cached_property
    def transitions(self) -> ConnectionTransitions:
        from integrations.connections.apply import ConnectionTransitions

        return ConnectionTransitions(self.connections, self.events, self.clock)

    # Credentials as ports: the token manager and the app store import the HTTP stack, which a
    # request that never needs a token must not pay for, so they are built on the first call.

    def fresh_credentials(self, connection: Connection) -> Credentials:
        """Usable credentials for the connection, refreshed first when they are about to expire."""
        return self.token_manager.credentials(connection)

    def app_credentials(self, spec: ProviderSpec, agency_id: str) -> AppCredentials | None:
        """The OAuth app the agency's connections of `spec` use, None when there is none."""
        return self.apps.for_agency(spec, agency_id)

    # --- the connection lifecycle ---

    @cached_property
    def connector(self) -> Connector:
        from integrations.connections.connect import build_connector

        return build_connector(
            catalog=self.catalog,
            connections=self.connections,
            agencies=self.agencies,
            vault=self.vault,
            transitions=self.transitions,
            jobs=self.jobs,
            subscriptions=self.subscriptions,
            inbound_email_domain=self.settings.inbound_email_domain,
            clock=self.clock,
            revoke=self.revoke_grant,
        )

    @cached_property
    def disconnector(self) -> Disconnector:
        from integrations.connections.disconnect import Disconnector

        return Disconnector(
            catalog=self.catalog,
            connections=self.connections,
            vault=self.vault,
            events=self.events,
            fresh_credentials=self.fresh_credentials,
            app_credentials=self.app_credentials,
            subscriptions=self.subscriptions,
            revoke=self.revoke_grant,
        )

    @cached_property
    def revoke_grant(self) -> GrantRevoker:
        from integrations.oauth.revocation import GrantRevoker

        return GrantRevoker()

    # --- the services each function runs ---

    @cached_property
    def oauth_service(self) -> OAuthService:
        from integrations.oauth.service import OAuthService

        return OAuthService(
            catalog=self.catalog,
            sessions=self.oauth_sessions,
            apps=self.apps,
            connector=self.connector,
            public_api_url=self.settings.public_api_url,
            allowed_return_origins=self.settings.allowed_return_origins,
            clock=self.clock,
        )

    def portal_service(self, logger: Logger) -> PortalService:
        """The portal's use cases over the shared adapters."""
        from integrations.portal.service import PortalService

        return PortalService(
            catalog=self.catalog,
            connections=self.connections,
            agencies=self.agencies,
            transitions=self.transitions,
            fresh_credentials=self.fresh_credentials,
            disconnector=self.disconnector,
            clock=self.clock,
            logger=logger,
            subscriptions=lambda: self.subscriptions,
        )

    def webhook_receiver(self, logger: Logger) -> WebhookReceiver:
        """The receiver over the stores it needs, and nothing of OAuth's."""
        from integrations.webhooks.receiver import WebhookReceiver

        return WebhookReceiver(
            lookups=self.connections,
            ledger=self.delivery_ledger,
            jobs=self.jobs,
            events=self.events,
            app_secrets=self.app_secrets,
            signing_keys=self.signing_keys,
            logger=logger,
            clock=self.clock,
        )

    def sync_scheduler(self) -> SyncScheduler:
        from integrations.sync.scheduler import SyncScheduler

        return SyncScheduler(self.due_connections, self.jobs)

    def sync_worker(self, logger: Logger) -> SyncWorker:
        from integrations.sync.worker import SyncWorker

        # The token manager (and the HTTP stack it imports) is built only when a job needs a token.
        return SyncWorker(self.connections, self.fresh_credentials, logger)


def build_vault(settings: Settings) -> TokenVault:
    """The token vault the settings choose (KMS-encrypted items, or one secret per connection)."""
    from integrations import aws
    from integrations.store.vault import KmsTokenVault, SecretsManagerTokenVault

    if settings.token_storage is TokenStorage.SECRETS_MANAGER:
        return SecretsManagerTokenVault(aws.secretsmanager(), settings.stage, settings.kms_key_id or None)
    return KmsTokenVault(aws.dynamodb(), aws.kms(), settings.table_name, settings.kms_key_id)


__all__ = ["Container", "build_vault"]
