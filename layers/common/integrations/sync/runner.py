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
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from integrations.domain.connection import Connection, ErrorCode, StatusChange
from integrations.sync.calendar import CalendarAdapter
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, EventChange, Mirror, PushedEvents
from integrations.sync.faults import SUSTAINED_FAILURES, ActionKind, classify, decide
from integrations.sync.jobs import SyncJob

# How often a connection is polled when nothing pushes (pushes are hints, and can be dropped).
DEFAULT_INTERVAL = timedelta(minutes=15)
# A job that meets a running sync waits this long before it looks again.
BUSY_DEFER_SECONDS = 20.0
# Leave this much of the invocation for settling the run after the last page.
SAFETY_MARGIN_MS = 10_000


def cursor_key(calendar_id: str) -> str:
    """Where a calendar's cursor lives in `Connection.cursors`."""
    return f"calendar:{calendar_id}"


class Outcome(StrEnum):
    # Acknowledge the job.
    DONE = "done"
    # Make the job visible again after `delay_seconds` (Retry-After, backoff, a busy connection).
    DEFER = "defer"
    # Out of time with pages left: queue a continuation (the checkpoint says where to go on).
    CONTINUE = "continue"
    # Poison: let the queue's redrive policy dead-letter it.
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: Outcome
    delay_seconds: float = 0.0
    changes: int = 0
    reason: str = ""


class ConnectionState(Protocol):
    """Reads a connection, and changes it through a transition: saved with version retry, then the
    status events published (the connections package's `apply`)."""

    def get(self, connection_id: str) -> Connection | None: ...

    def apply(
        self, connection_id: str, transition: Callable[[Connection], StatusChange | None]
    ) -> Connection | None: ...


class Leases(Protocol):
    """Mutual exclusion per connection with expiry (a crashed holder's lease runs out)."""

    def acquire(self, connection_id: str, owner: str, now: float, seconds: float) -> bool: ...

    def release(self, connection_id: str, owner: str) -> None: ...


class CalendarSource(Protocol):
    """What the runner needs of a provider's sync module for one connection."""

    def adapter(self, connection: Connection) -> CalendarAdapter | None: ...

    def calendars(self, connection: Connection) -> Sequence[str]: ...


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
        started = connection.sync_started_at
        if started is not None and job.received_at < started and job.hint.get("reason") != "continue":
            return RunResult(Outcome.DONE, reason="covered by a later run")
        if connection.waits_for_person:
            return RunResult(Outcome.DONE, reason="waiting for the owner")
        adapter = self._source.adapter(connection)
        if adapter is None:
            return RunResult(Outcome.DONE, reason="nothing to read")
        owner = uuid.uuid4().hex
        seconds = max(30.0, remaining_ms() / 1000 + 30)
        if not self._leases.acquire(connection.id, owner, self._clock().timestamp(), seconds):
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
        self._connections.apply(connection.id, lambda c: c.sync_started(now))
        puller = CalendarPuller(
            mirror=self._mirror,
            pushed=self._pushed,
            publish=lambda changes: self._publish(connection, changes),
            checkpoint=lambda calendar_id, cursor: self._checkpoint(connection.id, calendar_id, cursor),
        )
        changes = 0
        try:
            for calendar_id in self._source.calendars(connection):
                cursor = CalendarCursor.of(connection.cursors.get(cursor_key(calendar_id)))
                result = puller.pull(
                    connection.id, calendar_id, adapter, cursor, lambda: remaining_ms() > SAFETY_MARGIN_MS
                )
                changes += result.changes
                if not result.done:
                    self._settle_paused(connection.id)
                    return RunResult(Outcome.CONTINUE, changes=changes, reason="out of time")
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            return self._failed(connection, error, receive_count, changes)
        finished = self._clock()
        self._connections.apply(
            connection.id,
            lambda c: _first_change(
                c.provider_succeeded(finished), c.sync_succeeded(finished, {}, finished + self._interval)
            ),
        )
        return RunResult(Outcome.DONE, changes=changes)

    def _checkpoint(self, connection_id: str, calendar_id: str, cursor: CalendarCursor) -> None:
        key = cursor_key(calendar_id)
        self._connections.apply(connection_id, lambda c: c.cursor_saved(key, cursor.to_json(), self._clock()))

    def _settle_paused(self, connection_id: str) -> None:
        now = self._clock()
        self._connections.apply(connection_id, lambda c: c.sync_paused(now))

    def _failed(
        self, connection: Connection, error: Exception, receive_count: int, changes: int
    ) -> RunResult:
        fault = classify(error)
        failures = connection.consecutive_failures + 1
        action = decide(fault, failures=failures, receive_count=receive_count)
        now = self._clock()
        if action.kind is ActionKind.DEFER:
            self._settle_paused(connection.id)
            return RunResult(Outcome.DEFER, action.delay_seconds, changes, fault.message)
        if action.kind is ActionKind.BACKOFF:
            self._connections.apply(
                connection.id,
                lambda c: _first_change(
                    c.sync_paused(now), c.provider_failed(fault.message, now, SUSTAINED_FAILURES)
                ),
            )
            return RunResult(Outcome.DEFER, action.delay_seconds, changes, fault.message)
        if action.kind is ActionKind.REAUTH:
            self._connections.apply(
                connection.id,
                lambda c: _first_change(
                    c.sync_paused(now), c.auth_failed(ErrorCode.REAUTH_REQUIRED, fault.message, now)
                ),
            )
            return RunResult(Outcome.DONE, changes=changes, reason=fault.message)
        if action.kind is ActionKind.CONFIG_REQUIRED:
            self._connections.apply(connection.id, lambda c: c.config_needed(fault.message, now))
            return RunResult(Outcome.DONE, changes=changes, reason=fault.message)
        self._connections.apply(connection.id, lambda c: c.sync_failed(fault.message, now))
        return RunResult(Outcome.FAIL, changes=changes, reason=fault.message)


def _first_change(*changes: StatusChange | None) -> StatusChange | None:
    """Several transitions in one save: the portal status moved from the first `before` to the last
    `after` (None when it ends where it began)."""
    real = [c for c in changes if c is not None]
    if not real:
        return None
    before, after = real[0].before, real[-1].after
    return None if before is after else StatusChange(before=before, after=after)
