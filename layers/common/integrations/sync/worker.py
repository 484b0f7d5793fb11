"""The worker's side of a job: load the connection, then run the step the job asks for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from integrations.sync.jobs import JobKind, SyncJob

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials


class ConnectionReader(Protocol):
    """Reads one connection (store.connections.ConnectionRepository)."""

    def get(self, connection_id: str) -> Connection | None: ...


class SyncWorker:
    def __init__(
        self,
        connections: ConnectionReader,
        fresh_credentials: Callable[[Connection], Credentials],
        logger: Logger,
    ) -> None:
        self._connections = connections
        self._fresh_credentials = fresh_credentials
        self._log = logger

    def handle(self, job: SyncJob) -> None:
        """Run one job. Raising makes SQS redeliver it (and, past maxReceiveCount, dead-letter it)."""
        connection = self._connections.get(job.connection_id)
        if connection is None:
            # Disconnected since the job was queued: nothing to do, and nothing to retry.
            self._log.info("job for a removed connection dropped", extra={"connection_id": job.connection_id})
            return
        if job.kind is JobKind.REFRESH_TOKEN:
            self._fresh_credentials(connection)
            return
        # Provider sync steps plug in here; until a provider has one, a sync job is acknowledged.
        self._log.info(
            "no sync step for provider yet",
            extra={"connection_id": connection.id, "provider": connection.provider, "kind": job.kind.value},
        )
