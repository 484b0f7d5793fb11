"""Due work that keeps a connection alive between syncs (design §8, Scheduler): grants refreshed
before they expire, and at least daily for grants nothing else uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from integrations.domain.connection import Connection

# Refresh a grant whose access token expires within this window (the scheduler runs every minute).
REFRESH_AHEAD = timedelta(minutes=10)


class Maintenance:
    """Runs before every scheduled job of a connection; raises what the provider answered."""

    def __init__(self, *, refresh: Callable[[Connection], object], clock: Callable[[], datetime]) -> None:
        self._refresh = refresh
        self._clock = clock

    def run(self, connection: Connection) -> None:
        expires = connection.token_expires_at
        # An access token long expired means nothing used the grant since: refreshing it now keeps
        # the refresh token alive (Google drops refresh tokens unused for six months).
        if expires is not None and expires <= self._clock() + REFRESH_AHEAD:
            self._refresh(connection)
