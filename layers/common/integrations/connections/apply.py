"""`apply(connection, transition)`: the one way a stored connection's status or settings change.

Read (when given an id), run a transition method of the domain model, save with optimistic locking
(re-read and re-run on a VersionConflict), then publish the status events the change means
(events.status_events: Errored on entering error, Recovered on leaving it). The save is the fact;
an event that cannot be published after it is logged, never turned into an error for the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from integrations.domain.connection import AuthHealth, Connection, ErrorCode, StatusChange, utcnow
from integrations.domain.errors import ReauthRequired, VersionConflict
from integrations.events import PlatformEvent, status_events
from integrations.observability import get_logger

logger = get_logger()

# A domain transition: mutates the connection, answers the portal status change (None: none).
Transition = Callable[[Connection, datetime], StatusChange | None]
# Events that go out with the status events when the change is saved (Connected, Config Changed).
Announce = Callable[[Connection, StatusChange | None], Sequence[PlatformEvent]]


class ConnectionStore(Protocol):
    """Reads and conditionally writes connections (store.connections.ConnectionRepository)."""

    def get(self, connection_id: str) -> Connection | None: ...

    def save(self, connection: Connection) -> Connection: ...


class EventSink(Protocol):
    """Publishes platform events; raises when the bus refuses them (events.EventPublisher)."""

    def publish(self, *events: PlatformEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class Applied:
    """The connection as saved (or as found, when the transition changed nothing) and its change."""

    connection: Connection
    change: StatusChange | None


class ConnectionTransitions:
    """Applies domain transitions to stored connections and announces real status changes."""

    def __init__(
        self,
        store: ConnectionStore,
        events: EventSink,
        clock: Callable[[], datetime] = utcnow,
        *,
        attempts: int = 4,
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._attempts = attempts

    def apply(
        self, target: Connection | str, transition: Transition, *, announce: Announce | None = None
    ) -> Applied | None:
        """Run `transition`, save it, publish its events; None when the connection no longer exists.

        Raises VersionConflict when the connection kept changing under every attempt.
        """
        connection = target if isinstance(target, Connection) else self._store.get(target)
        for _ in range(self._attempts):
            if connection is None:
                return None
            before = connection.model_dump()
            change = transition(connection, self._clock())
            if connection.model_dump() == before:
                # Nothing changed (a success with nothing to clear): no write, nothing to announce.
                return Applied(connection, None)
            try:
                saved = self._store.save(connection)
            except VersionConflict:
                # Someone saved since this copy was read: run the transition again on theirs.
                connection = self._store.get(connection.id)
                continue
            events = list(announce(saved, change)) if announce is not None else []
            self.publish(saved, events + status_events(saved, change))
            return Applied(saved, change)
        raise VersionConflict("The connection kept changing; try again.")

    def publish(self, connection: Connection, events: Sequence[PlatformEvent]) -> None:
        """Publish events about a saved connection; a bus failure is logged, never raised."""
        if not events:
            return
        try:
            self._events.publish(*events)
        except Exception:
            logger.exception(
                "connection events not published",
                extra={
                    "connection_id": connection.id,
                    "provider": connection.provider,
                    "events": [e.detail_type for e in events],
                },
            )

    def reauth_required(self, target: Connection | str, message: str) -> Applied | None:
        """The provider refused the connection's authorization: `error` / `reauth_required` now."""

        def refused(connection: Connection, now: datetime) -> StatusChange | None:
            if connection.auth_health is AuthHealth.REAUTH_REQUIRED:
                return None  # already recorded (the token manager may have done it)
            return connection.auth_failed(ErrorCode.REAUTH_REQUIRED, message, now)

        return self.apply(target, refused)

    @contextmanager
    def reauth_on_refusal(self, connection: Connection) -> Iterator[None]:
        """Around provider calls for a connection: a ReauthRequired is recorded, then re-raised."""
        try:
            yield
        except ReauthRequired as exc:
            try:
                self.reauth_required(connection, exc.message)
            except Exception:
                # The caller still gets the clear reauth answer; the status catches up on the next call.
                logger.exception("reauth status not recorded", extra={"connection_id": connection.id})
            raise


class SyncState:
    """The sync engine's view of stored connections (sync.settle.ConnectionState): transitions that
    need no clock argument, applied through `ConnectionTransitions`."""

    def __init__(self, store: ConnectionStore, transitions: ConnectionTransitions) -> None:
        self._store = store
        self._transitions = transitions

    def get(self, connection_id: str) -> Connection | None:
        return self._store.get(connection_id)

    def apply(
        self, connection_id: str, transition: Callable[[Connection], StatusChange | None]
    ) -> Connection | None:
        applied = self._transitions.apply(connection_id, lambda connection, _now: transition(connection))
        return applied.connection if applied is not None else None
