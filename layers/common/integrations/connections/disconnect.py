"""Disconnect (design §5): provider clean-up best effort, announce, then delete what is ours.

Revoking at the provider and removing its push subscriptions never block a disconnect: a provider
that is down, or a grant already dead, must not keep a connection its owner wants gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from integrations.domain.authorization import Scope
from integrations.events import IntegrationDisconnected
from integrations.observability import get_logger
from integrations.store.vault import CredentialsUnreadable, credential_ref

if TYPE_CHECKING:
    from integrations.catalog.loader import Catalog
    from integrations.catalog.model import ProviderSpec
    from integrations.connections.apply import EventSink
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import AppCredentials, Credentials
    from integrations.domain.lookup import Lookup
    from integrations.store.vault import TokenVault
    from integrations.webhooks.subscriptions import SubscriptionContext

logger = get_logger()


# Revokes a grant at its provider (oauth.revocation.GrantRevoker); raises what the provider answered.
Revoke = Callable[["ProviderSpec", "Credentials", "AppCredentials | None"], None]


class ConnectionRemoval(Protocol):
    """What disconnect reads and deletes (store.connections.ConnectionRepository)."""

    def list_for_scope(self, scope: Scope) -> list[Connection]: ...

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None: ...

    def delete(self, connection: Connection) -> None: ...


class Disconnector:
    """Removes a connection the caller was already allowed to manage."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        connections: ConnectionRemoval,
        vault: TokenVault,
        events: EventSink,
        fresh_credentials: Callable[[Connection], Credentials],
        app_credentials: Callable[[ProviderSpec, str], AppCredentials | None],
        subscriptions: SubscriptionContext,
        revoke: Revoke,
    ) -> None:
        self._subscriptions = subscriptions
        self._revoke = revoke
        self._catalog = catalog
        self._connections = connections
        self._vault = vault
        self._events = events
        self._fresh_credentials = fresh_credentials
        self._app_credentials = app_credentials

    def disconnect(self, connection: Connection) -> None:
        """Revoke and unsubscribe (best effort), announce, then delete credentials, lookups and connection."""
        spec = self._catalog.get(connection.provider)
        credentials = self._credentials_for_cleanup(connection)
        if credentials is not None:
            self._provider_cleanup(spec, connection, credentials)
        # Announce first: a crash after this repeats the event on retry; the reverse order could lose it.
        # So a bus failure here fails the request (the portal retries), unlike status events.
        self._events.publish(IntegrationDisconnected.of(connection))
        self._vault.delete(credential_ref(connection))
        self._connections.delete(connection)
        logger.info("connection disconnected", extra={"connection_id": connection.id, "provider": spec.id})

    def _credentials_for_cleanup(self, connection: Connection) -> Credentials | None:
        """A fresh token to unsubscribe and revoke with; as stored when refreshing fails; None without any."""
        try:
            return self._fresh_credentials(connection)
        except Exception as exc:  # an expired or revoked grant must not block the disconnect
            logger.info(
                "no fresh token at disconnect",
                extra={"connection_id": connection.id, "error": type(exc).__name__},
            )
        try:
            return self._vault.get(credential_ref(connection))
        except CredentialsUnreadable:
            logger.warning("credentials unreadable at disconnect", extra={"connection_id": connection.id})
            return None

    def _provider_cleanup(self, spec: ProviderSpec, connection: Connection, credentials: Credentials) -> None:
        self._unsubscribe(spec, connection, credentials)
        if not spec.revocable:
            return
        if self._grant_still_used(spec, connection):
            # Revoking a Google grant ends every scope of that account for the app (Gmail and Calendar alike).
            logger.info("revoke skipped: grant still used", extra={"connection_id": connection.id})
            return
        try:
            self._revoke(spec, credentials, self._app_credentials(spec, connection.agency_id))
        except Exception as exc:  # a provider failure never blocks a disconnect
            logger.warning(
                "revoke failed", extra={"connection_id": connection.id, "error": type(exc).__name__}
            )

    def _unsubscribe(self, spec: ProviderSpec, connection: Connection, credentials: Credentials) -> None:
        if credentials.access_token is None or not connection.lookup_keys:
            return
        from integrations.webhooks.subscriptions import unsubscribe_at_disconnect

        try:
            token = credentials.access_token.get_secret_value()
            unsubscribe_at_disconnect(spec, connection, token, self._connections, self._subscriptions)
        except Exception as exc:  # a provider failure never blocks a disconnect
            logger.warning(
                "provider unsubscribe failed",
                extra={"connection_id": connection.id, "error": type(exc).__name__},
            )

    def _grant_still_used(self, spec: ProviderSpec, connection: Connection) -> bool:
        """Does another connection of the same owner use the same account through the same OAuth app?"""
        if spec.oauth is None:
            return False
        owner = Scope(connection.agency_id, connection.level, connection.client_id, connection.user_id)
        for other in self._connections.list_for_scope(owner):
            other_spec = self._catalog.get(other.provider)
            if (
                other.id != connection.id
                and other.account.id == connection.account.id
                and other_spec.oauth is not None
                and other_spec.oauth.app == spec.oauth.app
            ):
                return True
        return False
