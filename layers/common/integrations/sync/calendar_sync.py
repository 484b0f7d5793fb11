"""One calendar's pull, page by page, into the mirror: provider-agnostic (design §8, Mirror).

Per page, in this order, so that every step is at least once and a crash loses nothing:

1. diff the page against the mirror (one batch read) and drop our own writes coming back (echoes);
2. publish `Calendar Event Changed` for the real changes (a crash after this republishes: the
   event id is stable, so consumers deduplicate);
3. write the mirror (one batch write);
4. checkpoint the cursor (the page token within a pass, or the new sync token on the last page).

A full pass (first sync, or after the provider expired the cursor) stamps every entry it sees with
the pass id; on its last page the entries the pass did not see vanished while we were away: they are
deleted and published as deleted, since a full listing carries no tombstones.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from typing import Protocol

from integrations.sync.calendar import (
    CalendarAdapter,
    CalendarEvent,
    ChangePage,
    EventStatus,
    MirrorChange,
    MirrorEntry,
    PushedEvent,
    diff,
    is_echo,
)
from integrations.sync.errors import CursorExpired


@dataclass(frozen=True, slots=True)
class CalendarCursor:
    """What is checkpointed per calendar: the provider's sync token, and a pass in progress."""

    token: str | None = None
    page: str | None = None
    # Set while a full pass runs; cleared with the pass's last page.
    pass_id: str | None = None

    @property
    def needs_full_pass(self) -> bool:
        return self.token is None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("token", self.token), ("page", self.page), ("pass_id", self.pass_id)) if v}

    @classmethod
    def of(cls, stored: object) -> CalendarCursor:
        if not isinstance(stored, dict):
            return cls()
        return cls(
            token=_text(stored.get("token")),
            page=_text(stored.get("page")),
            pass_id=_text(stored.get("pass_id")),
        )


@dataclass(frozen=True, slots=True)
class EventChange:
    """One real change to publish; `change_id` is stable across redeliveries of the same change."""

    change: MirrorChange
    event: CalendarEvent
    change_id: str


class Mirror(Protocol):
    """The mirror's store (store.mirror): entries per connection and calendar."""

    def get_many(
        self, connection_id: str, calendar_id: str, external_ids: Sequence[str]
    ) -> dict[str, MirrorEntry]:
        """The stored entries among `external_ids`, by external id."""
        ...

    def put_many(self, connection_id: str, entries: Sequence[MirrorEntry]) -> None:
        """Write entries (batched)."""
        ...

    def delete_many(self, connection_id: str, calendar_id: str, external_ids: Sequence[str]) -> None:
        """Delete entries (batched); absent ones are fine."""
        ...

    def not_seen_in(self, connection_id: str, calendar_id: str, pass_id: str) -> Iterable[MirrorEntry]:
        """Entries of the calendar that the full pass `pass_id` did not stamp (streamed, paged)."""
        ...


class PushedEvents(Protocol):
    """The appointment → provider event mapping, read by external id (store.pushed_events)."""

    def by_external_ids(
        self, connection_id: str, calendar_id: str, external_ids: Sequence[str]
    ) -> dict[str, PushedEvent]:
        """Mappings of events we wrote, by external id."""
        ...


@dataclass(frozen=True, slots=True)
class CalendarPullResult:
    cursor: CalendarCursor
    done: bool
    pages: int
    changes: int
    echoes: int


def change_id(
    connection_id: str, change: MirrorChange, event: CalendarEvent, digest: str | None = None
) -> str:
    """The same change of the same event always gets the same id (consumers deduplicate on it).
    `digest` is `event.change_hash()` when the caller has it already."""
    content = digest or event.change_hash()
    key = f"{connection_id}\0{event.calendar_id}\0{event.external_id}\0{change}\0{content}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class CalendarPuller:
    """Pulls one calendar of one connection into the mirror, until done or out of time."""

    def __init__(
        self,
        *,
        mirror: Mirror,
        pushed: PushedEvents,
        publish: Callable[[Sequence[EventChange]], None],
        checkpoint: Callable[[str, CalendarCursor], None],
        new_pass_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        window: tuple[datetime, datetime] | None = None,
    ) -> None:
        self._window = window
        self._mirror = mirror
        self._pushed = pushed
        self._publish = publish
        self._checkpoint = checkpoint
        self._new_pass_id = new_pass_id

    def pull(
        self,
        connection_id: str,
        calendar_id: str,
        adapter: CalendarAdapter,
        cursor: CalendarCursor,
        has_time: Callable[[], bool],
    ) -> CalendarPullResult:
        """Apply pages from `cursor` on. Returns when the provider has no more pages or time runs out."""
        pages = changes = echoes = 0
        while True:
            if cursor.needs_full_pass and cursor.pass_id is None:
                cursor = replace(cursor, pass_id=self._new_pass_id(), page=None)
            try:
                page = adapter.pull(calendar_id, cursor.token, cursor.page)
            except CursorExpired:
                # Google 410 and friends: start a full pass; what vanished meanwhile is found at its end.
                cursor = CalendarCursor(pass_id=self._new_pass_id())
                self._checkpoint(calendar_id, cursor)
                continue
            published, echoed = self._apply(connection_id, calendar_id, page, cursor.pass_id)
            pages, changes, echoes = pages + 1, changes + published, echoes + echoed
            next_page, token = page.next_page, page.cursor
            # Let the page go before the next one is fetched: memory is one page, whatever the calendar.
            del page
            if next_page:
                cursor = replace(cursor, page=next_page)
                self._checkpoint(calendar_id, cursor)
                if not has_time():
                    return CalendarPullResult(cursor, False, pages, changes, echoes)
                continue
            if cursor.pass_id is not None:
                changes += self._remove_unseen(connection_id, calendar_id, cursor.pass_id)
            cursor = CalendarCursor(token=token)
            self._checkpoint(calendar_id, cursor)
            return CalendarPullResult(cursor, True, pages, changes, echoes)

    def _apply(
        self, connection_id: str, calendar_id: str, page: ChangePage, pass_id: str | None
    ) -> tuple[int, int]:
        events = _last_per_id(page.events)
        ids = [e.external_id for e in events]
        stored = self._mirror.get_many(connection_id, calendar_id, ids) if ids else {}
        # Outside the sync window and never mirrored: not ours to keep or announce. One we hold
        # already is followed as usual, so a move out of the window is still seen.
        events = [e for e in events if e.external_id in stored or self._in_window(e)]
        ours = [e.external_id for e in events if e.appointment_id]
        pushed = self._pushed.by_external_ids(connection_id, calendar_id, ours) if ours else {}
        to_publish: list[EventChange] = []
        to_put: list[MirrorEntry] = []
        to_delete: list[str] = []
        echoes = 0
        for event in events:
            # Hashed once: the diff, the mirror entry, the echo check and the change id all use it.
            digest = event.change_hash()
            before = stored.get(event.external_id)
            change = diff(before, event, digest)
            if event.is_deletion:
                if before is not None:
                    to_delete.append(event.external_id)
            elif change is not None or pass_id is not None:
                # A full pass stamps even unchanged entries, so the orphans are the unstamped ones.
                to_put.append(MirrorEntry(event=event, change_hash=digest, seen_in_pass=pass_id or ""))
            if change is None:
                continue
            if is_echo(event, pushed.get(event.external_id), digest):
                echoes += 1
                continue
            to_publish.append(EventChange(change, event, change_id(connection_id, change, event, digest)))
        if to_publish:
            self._publish(to_publish)
        if to_put:
            self._mirror.put_many(connection_id, to_put)
        if to_delete:
            self._mirror.delete_many(connection_id, calendar_id, to_delete)
        return len(to_publish), echoes

    def _in_window(self, event: CalendarEvent) -> bool:
        if self._window is None or event.is_deletion:
            return True
        low, high = self._window
        span = event_span(event)
        if span is None:
            return True
        starts, ends = span
        if starts >= high:
            return False
        # A series master may recur into the window long after its first instance ended.
        return bool(event.recurrence) or ends > low

    def _remove_unseen(self, connection_id: str, calendar_id: str, pass_id: str) -> int:
        removed = 0
        batch: list[MirrorEntry] = []
        for entry in self._mirror.not_seen_in(connection_id, calendar_id, pass_id):
            batch.append(entry)
            if len(batch) >= 100:
                removed += self._remove(connection_id, calendar_id, batch)
                batch = []
        if batch:
            removed += self._remove(connection_id, calendar_id, batch)
        return removed

    def _remove(self, connection_id: str, calendar_id: str, entries: list[MirrorEntry]) -> int:
        gone = [as_deletion(e.event) for e in entries]
        self._publish(
            [
                EventChange(MirrorChange.DELETED, e, change_id(connection_id, MirrorChange.DELETED, e))
                for e in gone
            ]
        )
        self._mirror.delete_many(connection_id, calendar_id, [e.external_id for e in gone])
        return len(gone)


def event_span(event: CalendarEvent) -> tuple[datetime, datetime] | None:
    """The event's own start and end as UTC instants (all-day dates from midnight UTC), if it has them."""
    if event.start is not None and event.end is not None:
        return event.start, event.end
    if event.start_date is not None and event.end_date is not None:
        return (
            datetime.combine(event.start_date, time(), tzinfo=UTC),
            datetime.combine(event.end_date, time(), tzinfo=UTC),
        )
    return None


def as_deletion(event: CalendarEvent) -> CalendarEvent:
    """The event as a deletion (what a tombstone would have said)."""
    return event.model_copy(update={"status": EventStatus.CANCELLED, "series_id": None})


def _last_per_id(events: Sequence[CalendarEvent]) -> list[CalendarEvent]:
    # A page may name an event twice (changed twice meanwhile): the later entry is the truth.
    latest: dict[str, CalendarEvent] = {}
    for event in events:
        latest[event.external_id] = event
    return list(latest.values())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
