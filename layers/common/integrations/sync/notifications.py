"""Platform events that become notifications (a call completed, a booking, an error): each connection
whose provider step `notifies(connection, detail_type)` gets the event in its outbox, and one job that
delivers the outbox in order (`JobKind.NOTIFY`, run by the provider step under the connection's lease).

The outbox key is the time the event says it happened and its id: delivery follows that order, and a
redelivered event is the same item (nothing is posted twice). An outbox keeps at most MAX_WAITING
messages: past that the oldest are dropped, counted (metric, log line) and the card says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.connection import NoticeCode
from integrations.metrics import OUTBOX_DROPPED, Counter, NoCounter
from integrations.observability import get_logger
from integrations.sync.jobs import JobKind, SyncJob

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.events import PlatformEvent
    from integrations.sync.settle import ConnectionState

# Messages that may wait per connection; beyond it the oldest are dropped.
MAX_WAITING = 500
# How long the card says messages were dropped after the last drop.
DROPPED_NOTICE = timedelta(days=7)

logger = get_logger()


class ScopeReader(Protocol):
    def list_for_scope(self, scope: Scope) -> list[Connection]: ...


class OutboxWriter(Protocol):
    def add(self, connection_id: str, key: str, body: dict[str, Any], now: datetime) -> bool: ...

    def trim(self, connection_id: str, keep: int, now: datetime) -> int: ...


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
        notices: ConnectionState | None = None,
        counter: Counter | None = None,
        max_waiting: int | None = None,
    ) -> None:
        self._connections = connections
        self._outbox = outbox
        self._step_for = step_for
        self._clock = clock
        self._notices = notices
        self._counter = counter or NoCounter()
        self._max_waiting = max_waiting or MAX_WAITING

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
            if self._outbox.add(connection.id, outbox_key(occurred_at, event_id), body, now):
                self._cap(connection, now)
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

    def _cap(self, connection: Connection, now: datetime) -> None:
        """Drop what waits beyond the cap, oldest first, and say so (never the messages themselves)."""
        dropped = self._outbox.trim(connection.id, self._max_waiting, now)
        if not dropped:
            return
        self._counter.count(OUTBOX_DROPPED, dropped, provider=connection.provider)
        logger.warning(
            "outbox full: oldest messages dropped",
            extra={
                "provider": connection.provider,
                "connection_id": connection.id,
                "dropped": dropped,
                "max_waiting": self._max_waiting,
            },
        )
        if self._notices is not None:
            until = now + DROPPED_NOTICE
            self._notices.apply(
                connection.id,
                lambda c: c.noticed(NoticeCode.MESSAGES_DROPPED, now, count=dropped, until=until),
            )
