"""The worker's calendar sync run for one connection: lease, pull every synced calendar, settle.

Provider-agnostic: the adapter comes from the provider's folder (`providers/<id>/sync.py`), the
calendars to sync from the adapter, every failure goes through the fault table (`sync.faults`), and
every status change through the connection's transitions, saved and announced by one port.

Pushes coalesce: a job that arrived before the last completed run started is already covered by
it and is acknowledged without calling the provider; a job that meets a running sync is deferred
briefly, and by the time it returns that run has covered it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from integrations.domain.connection import Connection
from integrations.sync.calendar import CalendarAdapter
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, EventChange, Mirror, PushedEvents
from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES
from integrations.sync.jobs import SyncJob
from integrations.sync.preferences import preferences_of
from integrations.sync.settle import (
    ConnectionState,
    Leases,
    Outcome,
    RunResult,
    first_change,
    settle_failure,
)

# How often a connection is polled when nothing pushes (pushes are hints, and can be dropped).
DEFAULT_INTERVAL = timedelta(minutes=DEFAULT_INTERVAL_MINUTES)
# A job that meets a running sync waits this long before it looks again.
BUSY_DEFER_SECONDS = 20.0
# Leave this much of the invocation for settling the run after the last page.
SAFETY_MARGIN_MS = 10_000


def cursor_key(calendar_id: str) -> str:
    """Where a calendar's cursor lives in `Connection.cursors`."""
    return f"calendar:{calendar_id}"


class CalendarSource(Protocol):
    """What the runner needs of a provider's sync module for one connection."""

    def adapter(self, connection: Connection) -> CalendarAdapter | None: ...

    def calendars(self, connection: Connection) -> Sequence[str]: ...

    def publishes(self, connection: Connection, calendar_id: str) -> bool: ...


def _unannounced(changes: Sequence[EventChange]) -> None:
    """Where a calendar's changes go when nobody is to hear of them."""


def _covered(connection: Connection, job: SyncJob) -> bool:
    """Whether a run that began after the job arrived has completed: it read everything the job hints
    at. A run that died (or stopped early) covers nothing; its redelivered job runs again."""
    started, finished = connection.sync_started_at, connection.last_sync_at
    return (
        job.hint.get("reason") != "continue"
        and started is not None
        and finished is not None
        and job.received_at < started <= finished
    )


class SyncRunner:
    """Runs calendar sync jobs; one instance per process."""

    def __init__(
        self,
        *,
        connections: ConnectionState,
        leases: Leases,
        mirror: Mirror,
        pushed: PushedEvents,
        publish: Callable[[Connection, Sequence[EventChange]], None],
        source: CalendarSource,
        clock: Callable[[], datetime],
        interval: timedelta = DEFAULT_INTERVAL,
    ) -> None:
        self._connections = connections
        self._leases = leases
        self._mirror = mirror
        self._pushed = pushed
        self._publish = publish
        self._source = source
        self._clock = clock
        self._interval = interval

    def run(self, job: SyncJob, *, receive_count: int, remaining_ms: Callable[[], int]) -> RunResult:
        """Sync the job's connection as far as time allows and say what to do with the job."""
        connection = self._connections.get(job.connection_id)
        if connection is None:
            return RunResult(Outcome.DONE, reason="connection removed")
        if _covered(connection, job):
            return RunResult(Outcome.DONE, reason="covered by a later run")
        if connection.waits_for_person:
            return RunResult(Outcome.DONE, reason="waiting for the owner")
        adapter = self._source.adapter(connection)
        if adapter is None:
            return RunResult(Outcome.DONE, reason="nothing to read")
        owner = uuid.uuid4().hex
        seconds = max(30.0, remaining_ms() / 1000 + 30)
        if not self._leases.acquire(connection.id, owner, self._clock().timestamp(), seconds).acquired:
            return RunResult(Outcome.DEFER, BUSY_DEFER_SECONDS, reason="another run holds the connection")
        try:
            return self._run_leased(connection, adapter, receive_count, remaining_ms)
        finally:
            self._leases.release(connection.id, owner)

    def _run_leased(
        self,
        connection: Connection,
        adapter: CalendarAdapter,
        receive_count: int,
        remaining_ms: Callable[[], int],
    ) -> RunResult:
        now = self._clock()
        self._connections.apply(connection.id, lambda c: c.sync_started(now, now + self._interval_of(c)))
        window = preferences_of(connection).window(now)
        changes = 0
        try:
            for calendar_id in self._source.calendars(connection):
                # A conflict calendar is read for its busy time only: its changes are not announced.
                publishes = self._source.publishes(connection, calendar_id)
                puller = CalendarPuller(
                    mirror=self._mirror,
                    pushed=self._pushed,
                    publish=(lambda found: self._publish(connection, found)) if publishes else _unannounced,
                    checkpoint=lambda calendar, cursor: self._checkpoint(connection.id, calendar, cursor),
                    window=window,
                )
                cursor = CalendarCursor.of(connection.cursors.get(cursor_key(calendar_id)))
                result = puller.pull(
                    connection.id, calendar_id, adapter, cursor, lambda: remaining_ms() > SAFETY_MARGIN_MS
                )
                changes += result.changes
                if not result.done:
                    self._settle_paused(connection.id)
                    return RunResult(Outcome.CONTINUE, changes=changes, reason="out of time")
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            return settle_failure(
                self._connections,
                connection,
                error,
                attempts=receive_count,
                now=self._clock(),
                changes=changes,
            )
        finished = self._clock()
        self._connections.apply(
            connection.id,
            lambda c: first_change(
                c.provider_succeeded(finished),
                c.sync_succeeded(finished, {}, finished + self._interval_of(c)),
            ),
        )
        return RunResult(Outcome.DONE, changes=changes)

    def _interval_of(self, connection: Connection) -> timedelta:
        minutes = connection.sync_interval_minutes
        return timedelta(minutes=minutes) if minutes else self._interval

    def _checkpoint(self, connection_id: str, calendar_id: str, cursor: CalendarCursor) -> None:
        key = cursor_key(calendar_id)
        self._connections.apply(connection_id, lambda c: c.cursor_saved(key, cursor.to_json(), self._clock()))

    def _settle_paused(self, connection_id: str) -> None:
        now = self._clock()
        self._connections.apply(connection_id, lambda c: c.sync_paused(now))
