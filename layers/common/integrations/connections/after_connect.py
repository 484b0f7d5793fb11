"""After a connect: the provider's own set-up, push subscriptions, their lookups, the first sync job.

Every step is logged and none is fatal: the connection exists and works without them (scheduled
sync covers a connection without pushes, and a missed first job only delays the first sync).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from integrations.domain.connection import utcnow
from integrations.observability import get_logger
from integrations.providers import registry
from integrations.sync.jobs import JobKind, SyncJob

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext

logger = get_logger()

# Opens the connection's push subscriptions with a fresh access token; returns their lookups.
Subscribe = Callable[["ProviderSpec", "Connection", str], "list[Lookup]"]


class LookupWriter(Protocol):
    """Writes a connection's lookup items (store.connections.ConnectionRepository)."""

    def put_lookups(self, connection: Connection, lookups: list[Lookup]) -> None: ...


class JobSink(Protocol):
    """Sends a job to the sync queue (sync.jobs.JobQueue); raises when it was not queued."""

    def send(self, job: SyncJob) -> None: ...


class AfterConnect:
    """Runs the steps that follow a create or a re-authorization."""

    def __init__(
        self,
        lookups: LookupWriter,
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
        """Provider lookups, push subscriptions and the first sync job: each logged, never raised."""
        about = {"provider": spec.id, "connection_id": connection.id}
        groups: list[list[Lookup]] = []
        try:
            groups.append(registry.module_for(spec.id).on_connect(spec, connection, credentials))
        except Exception:
            logger.exception("on_connect failed", extra=about)
        if credentials.access_token is not None:
            try:
                groups.append(self._subscribe(spec, connection, credentials.access_token.get_secret_value()))
            except Exception:
                # Pushes are a speed-up: scheduled sync still covers the connection without them.
                logger.exception("subscribe failed", extra=about)
        try:
            # One item per key (a transaction refuses two); the subscriptions' items win.
            merged = {item.key: item for group in groups for item in group}
            self._lookups.put_lookups(connection, list(merged.values()))
        except Exception:
            logger.exception("lookups not written", extra=about)
        self._first_sync(connection)

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
