"""Platform events that become notifications (a call completed, a booking, an error): each connection
whose provider step `notifies(connection, detail_type)` gets the event in its outbox, and one job that
delivers the outbox in order (`JobKind.NOTIFY`, run by the provider step under the connection's lease).

The outbox key is the time the event says it happened and its id: delivery follows that order, and a
redelivered event is the same item (nothing is posted twice).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.sync.jobs import JobKind, SyncJob

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.events import PlatformEvent


class ScopeReader(Protocol):
    def list_for_scope(self, scope: Scope) -> list[Connection]: ...


class OutboxWriter(Protocol):
    def add(self, connection_id: str, key: str, body: dict[str, Any], now: datetime) -> bool: ...


def outbox_key(occurred_at: datetime, event_id: str) -> str:
    """Sorts by when it happened (UTC, microseconds), then by id."""
    return f"{occurred_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{event_id}"


class Notifier:
    """Fans a platform event out to the outboxes of the connections that announce it."""

    def __init__(
        self,
        *,
        connections: ScopeReader,
        outbox: OutboxWriter,
        step_for: Callable[[Connection], object | None],
        clock: Callable[[], datetime],
    ) -> None:
        self._connections = connections
        self._outbox = outbox
        self._step_for = step_for
        self._clock = clock

    def notify(
        self,
        event: PlatformEvent,
        *,
        agency_id: str,
        client_id: str | None,
        event_id: str,
        occurred_at: datetime,
    ) -> list[SyncJob]:
        """Keep the event for every connection of the tenant that announces it; the jobs to queue."""
        scope = (
            Scope(agency_id, Level.CLIENT, client_id, None)
            if client_id
            else Scope(agency_id, Level.AGENCY, None, None)
        )
        now = self._clock()
        body = {"detail_type": event.detail_type, "detail": event.model_dump(mode="json")}
        jobs: list[SyncJob] = []
        for connection in self._connections.list_for_scope(scope):
            step = self._step_for(connection)
            notifies = getattr(step, "notifies", None)
            if notifies is None or not notifies(connection, event.detail_type):
                continue
            self._outbox.add(connection.id, outbox_key(occurred_at, event_id), body, now)
            # Queued even when the item was there already: the first delivery's job may have been lost.
            jobs.append(
                SyncJob(
                    kind=JobKind.NOTIFY,
                    connection_id=connection.id,
                    provider=connection.provider,
                    hint={"reason": event.detail_type},
                    received_at=now,
                )
            )
        return jobs
