"""After a connect: the provider's own set-up, push subscriptions, their lookups, the first sync job.

A reconnect of the same account subscribes again and then stops the subscriptions the new ones replace
(connections.resubscribe), so no change arrives twice.

Every step is logged and none is fatal: the connection exists and works without them (scheduled
sync covers a connection without pushes, and a missed first job only delays the first sync).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from integrations.connections.resubscribe import SubscriptionLookups, retire_replaced, stored_subscriptions
from integrations.domain.connection import utcnow
from integrations.observability import get_logger
from integrations.providers import registry
from integrations.sync.jobs import JobKind, SyncJob

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext, SubscriptionManager

logger = get_logger()

# Opens the connection's push subscriptions with a fresh access token; returns their lookups.
Subscribe = Callable[["ProviderSpec", "Connection", str], "list[Lookup]"]


class JobSink(Protocol):
    """Sends a job to the sync queue (sync.jobs.JobQueue); raises when it was not queued."""

    def send(self, job: SyncJob) -> None: ...


class AfterConnect:
    """Runs the steps that follow a create or a re-authorization."""

    def __init__(
        self,
        lookups: SubscriptionLookups,
        jobs: JobSink | None,
        clock: Callable[[], datetime] = utcnow,
        *,
        subscriptions: SubscriptionContext | None = None,
        subscribe: Subscribe | None = None,
    ) -> None:
        self._lookups = lookups
        self._jobs = jobs
        self._clock = clock
        self._subscriptions = subscriptions
        self._subscribe = subscribe or self._subscribe_at_connect

    def _subscribe_at_connect(
        self, spec: ProviderSpec, connection: Connection, access_token: str
    ) -> list[Lookup]:
        from integrations.webhooks.subscriptions import subscribe_at_connect

        if self._subscriptions is None:
            return []
        return subscribe_at_connect(spec, connection, access_token, self._subscriptions)

    def run(self, spec: ProviderSpec, connection: Connection, credentials: Credentials) -> None:
        """Provider lookups, push subscriptions (replacing a reconnect's old ones) and the first sync job.

        Each step is logged, never raised.
        """
        about = {"provider": spec.id, "connection_id": connection.id}
        manager, old = self._replaceable(spec, connection)
        groups: list[list[Lookup]] = []
        try:
            groups.append(registry.module_for(spec.id).on_connect(spec, connection, credentials))
        except Exception:
            logger.exception("on_connect failed", extra=about)
        token = credentials.access_token.get_secret_value() if credentials.access_token else None
        subscribed: list[Lookup] | None = None
        if token is not None:
            try:
                subscribed = self._subscribe(spec, connection, token)
                groups.append(subscribed)
            except Exception:
                # Pushes are a speed-up: scheduled sync still covers the connection without them.
                logger.exception("subscribe failed", extra=about)
        try:
            # One item per key (a transaction refuses two); the subscriptions' items win.
            merged = {item.key: item for group in groups for item in group}
            self._lookups.put_lookups(connection, list(merged.values()))
        except Exception:
            logger.exception("lookups not written", extra=about)
            subscribed = None  # the new ones are not routable: the old ones stay
        if manager is not None and token is not None and subscribed is not None and old:
            self._retire(spec, connection, token, manager, old, subscribed)
        self._first_sync(connection)

    def _replaceable(
        self, spec: ProviderSpec, connection: Connection
    ) -> tuple[SubscriptionManager | None, list[Lookup]]:
        """The provider's subscription manager and the subscriptions a reconnect would replace."""
        if self._subscriptions is None or not connection.lookup_keys:
            return None, []
        from integrations.webhooks.subscriptions import for_provider

        try:
            manager = for_provider(spec.id, self._subscriptions)
            if manager is None:
                return None, []
            return manager, stored_subscriptions(manager, self._lookups, connection)
        except Exception:
            logger.exception("stored subscriptions not read", extra={"connection_id": connection.id})
            return None, []

    def _retire(
        self,
        spec: ProviderSpec,
        connection: Connection,
        token: str,
        manager: SubscriptionManager,
        old: list[Lookup],
        new: list[Lookup],
    ) -> None:
        try:
            retire_replaced(spec, connection, token, manager, self._lookups, old=old, new=new)
        except Exception:
            logger.exception("replaced subscriptions not removed", extra={"connection_id": connection.id})

    def _first_sync(self, connection: Connection) -> None:
        if self._jobs is None:
            logger.info(
                "no sync queue: first sync left to the scheduler", extra={"connection_id": connection.id}
            )
            return
        job = SyncJob(
            kind=JobKind.SYNC,
            connection_id=connection.id,
            provider=connection.provider,
            hint={"reason": "connected"},
            received_at=self._clock(),
        )
        try:
            self._jobs.send(job)
        except Exception:
            logger.exception("initial sync not queued", extra={"connection_id": connection.id})
