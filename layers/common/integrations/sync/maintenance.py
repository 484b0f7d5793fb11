"""Due work that keeps a connection alive between syncs (design §8, Scheduler): grants refreshed
before they expire, and at least daily for grants nothing else uses; push subscriptions (Google
channels, Graph subscriptions) renewed a day before they expire; grants that never expire checked
at the provider once a day (nothing else would notice a revoked one before the next message)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from integrations.domain.connection import Connection

if TYPE_CHECKING:
    from integrations.sync.settle import ConnectionState

# Refresh a grant whose access token expires within this window (the scheduler runs every minute).
REFRESH_AHEAD = timedelta(minutes=10)
# Renew subscriptions expiring within this window: every connection is offered at least daily.
RENEW_AHEAD = timedelta(days=1, hours=6)
# How often a grant without expiry is checked at the provider.
CHECK_EVERY = timedelta(days=1)


class Maintenance:
    """Runs before every scheduled job of a connection; raises what the provider answered."""

    def __init__(
        self,
        *,
        refresh: Callable[[Connection], object],
        renew: Callable[[Connection, datetime], object],
        clock: Callable[[], datetime],
        check_grant: Callable[[Connection], bool] | None = None,
        connections: ConnectionState | None = None,
    ) -> None:
        self._refresh = refresh
        self._renew = renew
        self._clock = clock
        # Asks the provider whether the grant still works; False when its provider offers no check.
        self._check_grant = check_grant
        self._connections = connections

    def run(self, connection: Connection) -> None:
        if connection.waits_for_person:
            return  # a lost grant cannot be refreshed nor subscribe; reconnecting does both
        expires = connection.token_expires_at
        # An access token long expired means nothing used the grant since: refreshing it now keeps
        # the refresh token alive (Google drops refresh tokens unused for six months).
        now = self._clock()
        if expires is not None and expires <= now + REFRESH_AHEAD:
            self._refresh(connection)
        if expires is None:
            self._check_daily(connection, now)
        self._renew(connection, now + RENEW_AHEAD)

    def _check_daily(self, connection: Connection, now: datetime) -> None:
        """A grant that never expires is checked once a day from when it was connected or last checked."""
        if self._check_grant is None or self._connections is None:
            return
        last = connection.grant_checked_at or connection.created_at
        if now - last < CHECK_EVERY:
            return
        if self._check_grant(connection):  # raises what the provider answered: a revoked grant
            self._connections.apply(connection.id, lambda c: c.grant_checked(now))
