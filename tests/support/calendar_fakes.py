"""In-memory stand-ins for the calendar engine's ports: a provider calendar with sync tokens, and a mirror.

The fake calendar keeps a change log like Google's: every write bumps a sequence number, a sync token
is the sequence it was issued at, listing with a token returns what changed after it (deletions as
cancelled items), and tokens older than `expire_before` answer `CursorExpired`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from integrations.domain.connection import Connection, StatusChange
from integrations.domain.leases import LeaseOutcome
from integrations.sync.calendar import (
    CalendarEvent,
    ChangePage,
    EventStatus,
    FreeBusy,
    MirrorEntry,
    OutboundEvent,
    PushedEvent,
)
from integrations.sync.errors import CursorExpired


@dataclass
class FakeCalendar:
    """One provider calendar. `fail_on_call` raises the given error on that pull call number (1-based)."""

    calendar_id: str = "primary"
    page_size: int = 3
    events: dict[str, CalendarEvent] = field(default_factory=dict)
    changed_at: dict[str, int] = field(default_factory=dict)
    sequence: int = 0
    expire_before: int = 0
    pulls: int = 0
    fail_on_call: dict[int, Exception] = field(default_factory=dict)

    def upsert(self, event: CalendarEvent) -> None:
        self.sequence += 1
        self.events[event.external_id] = event.model_copy(update={"etag": f'"{self.sequence}"'})
        self.changed_at[event.external_id] = self.sequence

    def remove(self, external_id: str) -> None:
        """The person deletes the event in the provider's UI."""
        self.sequence += 1
        event = self.events[external_id]
        self.events[external_id] = event.model_copy(update={"status": EventStatus.CANCELLED})
        self.changed_at[external_id] = self.sequence

    def expire_tokens(self) -> None:
        self.expire_before = self.sequence + 1

    def live(self) -> dict[str, CalendarEvent]:
        """The provider's truth: what exists now."""
        return {k: v for k, v in self.events.items() if not v.is_deletion}

    # --- CalendarAdapter ---

    def pull(self, calendar_id: str, cursor: str | None, page: str | None) -> ChangePage:
        self.pulls += 1
        if self.pulls in self.fail_on_call:
            raise self.fail_on_call[self.pulls]
        since = int(cursor) if cursor else None
        if since is not None and since < self.expire_before:
            raise CursorExpired(f"calendar:{calendar_id}")
        # A page token pins the pass to the sequence it started at and the last id it returned:
        # changes made during the pass come with the next incremental pull, never as skipped rows.
        snapshot, after = (int(page.split(":", 1)[0]), page.split(":", 1)[1]) if page else (self.sequence, "")
        low = since if since is not None else -1
        ids = sorted(
            k
            for k, seq in self.changed_at.items()
            if low < seq <= snapshot and k > after and (since is not None or not self.events[k].is_deletion)
        )
        if since is None:
            ids = [k for k in self.events if k > after and not self._deleted_at(k, snapshot)]
            ids.sort()
        chunk = ids[: self.page_size]
        more = len(ids) > self.page_size
        return ChangePage(
            events=[self.events[k] for k in chunk],
            next_page=f"{snapshot}:{chunk[-1]}" if more else None,
            cursor=None if more else str(snapshot),
            full=since is None,
        )

    def _deleted_at(self, external_id: str, snapshot: int) -> bool:
        """Whether the event counts as deleted in a full listing pinned at `snapshot`."""
        return self.events[external_id].is_deletion and self.changed_at[external_id] <= snapshot

    def write(self, calendar_id: str, event: OutboundEvent, existing: PushedEvent | None) -> PushedEvent:
        raise NotImplementedError

    def delete(self, pushed: PushedEvent) -> None:
        raise NotImplementedError

    def free_busy(self, calendar_ids: Sequence[str], start: object, end: object) -> FreeBusy:
        raise NotImplementedError


@dataclass
class FakeMirror:
    entries: dict[tuple[str, str, str], MirrorEntry] = field(default_factory=dict)
    writes: int = 0

    def get_many(
        self, connection_id: str, calendar_id: str, external_ids: Sequence[str]
    ) -> dict[str, MirrorEntry]:
        found = {i: self.entries.get((connection_id, calendar_id, i)) for i in external_ids}
        return {k: v for k, v in found.items() if v is not None}

    def put_many(self, connection_id: str, entries: Sequence[MirrorEntry]) -> None:
        self.writes += len(entries)
        for entry in entries:
            self.entries[(connection_id, entry.event.calendar_id, entry.event.external_id)] = entry

    def delete_many(self, connection_id: str, calendar_id: str, external_ids: Sequence[str]) -> None:
        for i in external_ids:
            self.entries.pop((connection_id, calendar_id, i), None)

    def not_seen_in(self, connection_id: str, calendar_id: str, pass_id: str) -> Iterable[MirrorEntry]:
        return [
            e
            for (c, cal, _), e in list(self.entries.items())
            if c == connection_id and cal == calendar_id and e.seen_in_pass != pass_id
        ]

    def events(self, connection_id: str, calendar_id: str) -> dict[str, CalendarEvent]:
        return {
            i: e.event for (c, cal, i), e in self.entries.items() if c == connection_id and cal == calendar_id
        }


@dataclass
class FakePushed:
    mappings: dict[str, PushedEvent] = field(default_factory=dict)

    def by_external_ids(
        self, connection_id: str, calendar_id: str, external_ids: Sequence[str]
    ) -> dict[str, PushedEvent]:
        return {i: self.mappings[i] for i in external_ids if i in self.mappings}


@dataclass
class FakeConnections:
    """ConnectionState in memory: transitions applied in place, status changes recorded."""

    connections: dict[str, Connection] = field(default_factory=dict)
    changes: list[StatusChange] = field(default_factory=list)

    def get(self, connection_id: str) -> Connection | None:
        found = self.connections.get(connection_id)
        return found.model_copy(deep=True) if found is not None else None

    def apply(
        self, connection_id: str, transition: Callable[[Connection], StatusChange | None]
    ) -> Connection | None:
        connection = self.connections.get(connection_id)
        if connection is None:
            return None
        change = transition(connection)
        if change is not None:
            self.changes.append(change)
        return connection.model_copy(deep=True)


@dataclass
class FakeLeases:
    held: dict[str, tuple[str, float]] = field(default_factory=dict)

    def acquire(self, connection_id: str, owner: str, now: float, seconds: float) -> LeaseOutcome:
        current = self.held.get(connection_id)
        if current is not None and current[1] > now:
            return LeaseOutcome(False)
        self.held[connection_id] = (owner, now + seconds)
        return LeaseOutcome(True)

    def release(self, connection_id: str, owner: str) -> None:
        if self.held.get(connection_id, ("", 0.0))[0] == owner:
            del self.held[connection_id]
