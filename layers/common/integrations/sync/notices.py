"""Notices the engine puts on a connection's card while something is being put right (design §5:
they never change the portal status)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from integrations.domain.connection import NoticeCode

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.sync.settle import ConnectionState


class RecreationOnCard:
    """`subscription_recreating` from when stale subscriptions are found until they are replaced
    (connections.resubscribe.RecreationNotice)."""

    def __init__(self, connections: ConnectionState, clock: Callable[[], datetime]) -> None:
        self._connections = connections
        self._clock = clock

    def recreating(self, connection: Connection) -> Connection:
        now = self._clock()
        saved = self._connections.apply(
            connection.id, lambda c: c.noticed(NoticeCode.SUBSCRIPTION_RECREATING, now)
        )
        return saved if saved is not None else connection

    def recreated(self, connection: Connection) -> None:
        now = self._clock()
        self._connections.apply(
            connection.id, lambda c: c.notice_cleared(NoticeCode.SUBSCRIPTION_RECREATING, now)
        )
