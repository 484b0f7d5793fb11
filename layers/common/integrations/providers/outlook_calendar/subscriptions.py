"""Outlook Calendar: one Graph subscription on the connection's calendar events (`graph_subscriptions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from integrations.providers.graph_subscriptions import LIFETIME, GraphSubscriptions

if TYPE_CHECKING:
    from integrations.domain.connection import Connection


def events_resource(connection: Connection) -> str:
    """The watched resource: the configured calendar's events, or the default calendar's."""
    calendar_id = connection.config.get("calendar_id")
    if isinstance(calendar_id, str) and calendar_id:
        return f"me/calendars/{quote(calendar_id, safe='')}/events"
    return "me/events"


class CalendarSubscriptions(GraphSubscriptions):
    """Created, updated and deleted events of the synced calendar."""

    def watched(self, connection: Connection) -> list[tuple[str, str]]:
        return [(events_resource(connection), "created,updated,deleted")]


MANAGER = CalendarSubscriptions

__all__ = ["LIFETIME", "MANAGER", "events_resource"]
