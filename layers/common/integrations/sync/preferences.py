"""A linked calendar's sync preferences ("Advanced settings"), read from its validated config.

Every preference is optional in the config, and its default is what the engine did before there were
preferences: push everything, fetch, check conflicts on the synced calendar, show details, and sync
30 days back to 365 ahead. The catalog's config schema names the same defaults for the portal;
`tests/unit/test_sync_preferences.py` keeps the two in step. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from integrations.domain.connection import Connection

# The platform's kinds of appointment (`Appointment Upserted`'s `type`).
APPOINTMENT_TYPES: frozenset[str] = frozenset({"appointment", "task", "blocked_time"})
DEFAULT_PAST_DAYS = 30
DEFAULT_FUTURE_DAYS = 365
ShowAs = Literal["details", "busy"]
# What a fetched event's title becomes when the calendar shows busy only.
BUSY_TITLE = "Busy"


@dataclass(frozen=True, slots=True)
class SyncPreferences:
    push: bool = True
    fetch: bool = True
    conflict: bool = True
    # None: the synced calendar is the only conflict calendar.
    conflict_calendars: tuple[str, ...] | None = None
    push_types: frozenset[str] = APPOINTMENT_TYPES
    show_as: ShowAs = "details"
    past_days: int = DEFAULT_PAST_DAYS
    future_days: int = DEFAULT_FUTURE_DAYS

    def pushes_type(self, kind: str) -> bool:
        """Whether an appointment of this kind goes to the calendar."""
        return self.push and kind in self.push_types

    def conflict_set(self, synced: str) -> list[str]:
        """The calendars whose busy time blocks availability (none when conflicts are off)."""
        if not self.conflict:
            return []
        return list(self.conflict_calendars) if self.conflict_calendars is not None else [synced]

    def read_set(self, synced: str) -> list[str]:
        """The calendars sync reads: the synced one when fetching, and every conflict calendar."""
        wanted = ([synced] if self.fetch else []) + self.conflict_set(synced)
        return list(dict.fromkeys(wanted))

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The sync window around `now`: events wholly outside it are not synced."""
        return now - timedelta(days=self.past_days), now + timedelta(days=self.future_days)


def preferences_of(connection: Connection) -> SyncPreferences:
    """The connection's preferences; a value the config does not hold (or holds malformed) keeps its
    default, so a config saved before a preference existed behaves as before."""
    config = connection.config
    defaults = SyncPreferences()
    return SyncPreferences(
        push=_flag(config, "push", defaults.push),
        fetch=_flag(config, "fetch", defaults.fetch),
        conflict=_flag(config, "conflict", defaults.conflict),
        conflict_calendars=_texts(config.get("conflict_calendars")),
        push_types=frozenset(t for t in (_texts(config.get("push_types")) or ()) if t in APPOINTMENT_TYPES)
        if isinstance(config.get("push_types"), list)
        else defaults.push_types,
        show_as="busy" if config.get("show_as") == "busy" else "details",
        past_days=_days(config.get("window_past_days"), defaults.past_days, 0, DEFAULT_PAST_DAYS),
        future_days=_days(config.get("window_future_days"), defaults.future_days, 1, DEFAULT_FUTURE_DAYS),
    )


def _flag(config: dict[str, Any], name: str, default: bool) -> bool:
    value = config.get(name)
    return value if isinstance(value, bool) else default


def _texts(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and v))


def _days(value: Any, default: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return min(max(value, low), high)
