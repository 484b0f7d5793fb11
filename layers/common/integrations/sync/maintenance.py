"""Due work that keeps a connection alive between syncs (design §8, Scheduler): grants refreshed
before they expire, and at least daily for grants nothing else uses; push subscriptions (Google
channels, Graph subscriptions) renewed a day before they expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from integrations.domain.connection import Connection

# Refresh a grant whose access token expires within this window (the scheduler runs every minute).
REFRESH_AHEAD = timedelta(minutes=10)
# Renew subscriptions expiring within this window: every connection is offered at least daily.
RENEW_AHEAD = timedelta(days=1, hours=6)


class Maintenance:
    """Runs before every scheduled job of a connection; raises what the provider answered."""

    def __init__(
        self,
        *,
        refresh: Callable[[Connection], object],
        renew: Callable[[Connection, datetime], object],
        clock: Callable[[], datetime],
    ) -> None:
        self._refresh = refresh
        self._renew = renew
        self._clock = clock

    def run(self, connection: Connection) -> None:
        if connection.waits_for_person:
            return  # a lost grant cannot be refreshed nor subscribe; reconnecting does both
        expires = connection.token_expires_at
        # An access token long expired means nothing used the grant since: refreshing it now keeps
        # the refresh token alive (Google drops refresh tokens unused for six months).
        now = self._clock()
        if expires is not None and expires <= now + REFRESH_AHEAD:
            self._refresh(connection)
        self._renew(connection, now + RENEW_AHEAD)
