"""The calendar adapter's shape and the one event model every calendar provider is read into.

Recurring events are kept as the providers send them, never expanded at sync time: a series master
(with its RRULE lines and time zone) is one item, and every exception is its own item naming the
series (`series_id`) and the instance it replaces (`original_start`). A cancelled exception hides one
instance (status `cancelled`, kept for the life of the series); any other cancelled item is a deletion.
Expansion happens where a window is known (availability), so a sync never writes unbounded series.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class EventStatus(StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class CalendarEvent(BaseModel):
    """One provider event as the mirror keeps it. Times are UTC instants, or dates for all-day events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar_id: str
    external_id: str
    status: EventStatus = EventStatus.CONFIRMED
    # Timed events: UTC instants. All-day events: dates with an exclusive end (never midnight UTC).
    start: datetime | None = None
    end: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    # The IANA zone the provider gave (recurrences expand in it).
    time_zone: str | None = None
    # Opaque (busy) unless the provider marks it transparent / free.
    busy: bool = True
    title: str = ""
    # RRULE / EXDATE / RDATE lines of a series master; empty for single events and exceptions.
    recurrence: tuple[str, ...] = ()
    # On exceptions: the master's external id and the start of the instance it replaces.
    series_id: str | None = None
    original_start: str | None = None
    # The person's own answer to an invitation (declined events do not block availability).
    declined: bool = False
    # Provider version markers, for conditional writes and echo suppression.
    etag: str | None = None
    updated: datetime | None = None
    # Our appointment id, read back from the provider's private property on events we pushed.
    appointment_id: str | None = None

    @property
    def all_day(self) -> bool:
        return self.start_date is not None

    @property
    def is_deletion(self) -> bool:
        """A cancelled item that is not an exception of a live series: the event is gone."""
        return self.status is EventStatus.CANCELLED and self.series_id is None

    def change_hash(self) -> str:
        """A digest of what matters to the platform; etag and `updated` are not in it, so a provider
        touching an event without changing it publishes nothing."""
        facts = self.model_dump(mode="json", exclude={"etag", "updated"})
        return hashlib.sha256(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class OutboundEvent(BaseModel):
    """An appointment as written to a provider calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    appointment_id: str
    title: str
    start: datetime
    end: datetime
    time_zone: str
    description: str = ""
    location: str = ""
    attendees: tuple[str, ...] = ()
    # Ask the provider for a video meeting link (Google Meet, Teams) when it can make one.
    video: bool = False


class PushedEvent(BaseModel):
    """Where an appointment was written: the mapping kept so updates and deletes hit that very event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    appointment_id: str
    connection_id: str
    calendar_id: str
    external_id: str
    etag: str | None = None
    video_url: str | None = None
    # change_hash() of the event as we wrote it: when sync reads it back unchanged, it is our echo.
    written_hash: str | None = None
    # The appointment version written: a redelivered version is already there.
    version: int | None = None


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of changes. `next_page` continues this pass; `cursor` is set on the last page only."""

    events: Sequence[CalendarEvent]
    next_page: str | None = None
    cursor: str | None = None
    # True when this pass is a full listing (no cursor was given): absent events were deleted.
    full: bool = False


@dataclass(frozen=True, slots=True)
class BusyBlock:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class FreeBusy:
    """Busy blocks per calendar, and the calendars the provider could not answer for."""

    busy: dict[str, list[BusyBlock]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class CalendarAdapter(Protocol):
    """What a calendar provider's `sync.py` offers the engine. Errors: `sync.errors.CursorExpired`,
    `http.RateLimited`, `domain.errors.ProviderUnavailable`, `domain.errors.ReauthRequired`."""

    def pull(self, calendar_id: str, cursor: str | None, page: str | None) -> ChangePage:
        """One page of changes since `cursor` (a full listing when it is None)."""
        ...

    def write(self, calendar_id: str, event: OutboundEvent, existing: PushedEvent | None) -> PushedEvent:
        """Create the event, or update `existing` (conditionally, by its etag)."""
        ...

    def delete(self, pushed: PushedEvent) -> None:
        """Delete a pushed event; one already gone counts as deleted."""
        ...

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> FreeBusy:
        """Busy blocks of the calendars in [start, end)."""
        ...

    def calendar_name(self, calendar_id: str) -> str:
        """The calendar's name as its owner sees it (for confirmations such as "Pushed 3 to Work")."""
        ...


class MirrorChange(StrEnum):
    """How one pulled event changed the mirror: what `Calendar Event Changed` says."""

    ADDED = "added"
    UPDATED = "updated"
    DELETED = "deleted"


class MirrorEntry(BaseModel):
    """What the mirror holds per external event: enough to diff and to answer availability."""

    model_config = ConfigDict(frozen=True)

    event: CalendarEvent
    change_hash: str
    seen_in_pass: str = Field(default="", description="the full-resync pass that last saw it")


def diff(before: MirrorEntry | None, after: CalendarEvent, digest: str | None = None) -> MirrorChange | None:
    """The change one pulled event makes, or None when nothing that matters changed. `digest` is
    `after.change_hash()` when the caller has it already (hashing dumps the whole event)."""
    if after.is_deletion:
        return MirrorChange.DELETED if before is not None else None
    if before is None:
        return MirrorChange.ADDED
    return None if before.change_hash == (digest or after.change_hash()) else MirrorChange.UPDATED


def is_echo(pulled: CalendarEvent, pushed: PushedEvent | None, digest: str | None = None) -> bool:
    """Our own write coming back through sync: same event, as we wrote it (by etag or content).
    `digest` is `pulled.change_hash()` when the caller has it already."""
    if pushed is None or pulled.external_id != pushed.external_id:
        return False
    if pulled.etag is not None and pulled.etag == pushed.etag:
        return True
    return pushed.written_hash is not None and pushed.written_hash == (digest or pulled.change_hash())
