"""Outlook Calendar: one Graph subscription per watched calendar's events (`graph_subscriptions`).

The watched calendars are the synced one and every conflict calendar the sync preferences read, so a
change on a second calendar wakes a sync as promptly as one on the synced calendar. Graph allows 1,000
Outlook subscriptions per mailbox across all apps (calendar-email.md §4.5); a connection takes at most
`MAX_WATCHED` of them, and calendars beyond that are read on the scheduled syncs only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from integrations.providers.graph_subscriptions import LIFETIME, GraphSubscriptions
from integrations.providers.outlook_calendar.sync import DEFAULT_CALENDAR
from integrations.sync.preferences import preferences_of

if TYPE_CHECKING:
    from integrations.domain.connection import Connection

MAX_WATCHED = 25
CHANGES = "created,updated,deleted"


def _synced(connection: Connection) -> str:
    chosen = connection.config.get("calendar_id")
    return chosen if isinstance(chosen, str) and chosen else DEFAULT_CALENDAR


def watched_calendars(connection: Connection) -> list[str]:
    """The synced calendar first, then the conflict calendars (those read for their busy time)."""
    synced = _synced(connection)
    ids = [synced, *preferences_of(connection).conflict_set(synced)]
    return list(dict.fromkeys(ids))[:MAX_WATCHED]


def calendar_events_resource(calendar_id: str) -> str:
    """The watched resource of one calendar: `me/events` for the default calendar."""
    if calendar_id == DEFAULT_CALENDAR:
        return "me/events"
    return f"me/calendars/{quote(calendar_id, safe='')}/events"


def events_resource(connection: Connection) -> str:
    """The synced calendar's watched resource."""
    return calendar_events_resource(_synced(connection))


class CalendarSubscriptions(GraphSubscriptions):
    """Created, updated and deleted events of each watched calendar."""

    # What moves the watched calendars: a config change subscribes anew and retires the replaced ones.
    config_fields: frozenset[str] = frozenset({"calendar_id", "conflict", "conflict_calendars"})

    def watched(self, connection: Connection) -> list[tuple[str, str]]:
        return [(calendar_events_resource(c), CHANGES) for c in watched_calendars(connection)]


MANAGER = CalendarSubscriptions

__all__ = ["LIFETIME", "MANAGER", "MAX_WATCHED", "events_resource", "watched_calendars"]
