"""The owner's sync controls on one connection: "Sync now", pause / resume, the polling interval and
"Push existing data". Each queues a job or changes the connection; none calls the provider for data."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from integrations.domain.connection import Connection, StatusChange
from integrations.domain.errors import Conflict, ValidationFailed
from integrations.sync.intervals import MAX_INTERVAL_MINUTES, MIN_INTERVAL_MINUTES
from integrations.sync.jobs import JobKind, JobSink, SyncJob
from integrations.sync.progress import PushProgress
from integrations.sync.settle import ConnectionState, first_change

if TYPE_CHECKING:
    from integrations.sync.push_existing import PushExisting

# A replay that has not moved for this long is taken as dead, and a new one may start.
STALLED_REPLAY = timedelta(minutes=30)


class Calendars(Protocol):
    """sync.sources.ProviderCalendars"""

    def pushes(self, connection: Connection) -> bool: ...

    def takes_pushes(self, connection: Connection) -> bool: ...

    def push_calendar(self, connection: Connection) -> str | None: ...

    def calendar_label(self, connection: Connection, calendar_id: str) -> str: ...


class SyncControls:
    def __init__(
        self,
        *,
        jobs: JobSink,
        state: ConnectionState,
        replay: PushExisting,
        calendars: Calendars,
        clock: Callable[[], datetime],
    ) -> None:
        self._jobs = jobs
        self._state = state
        self._replay = replay
        self._calendars = calendars
        self._clock = clock

    def sync_now(self, connection: Connection) -> SyncJob:
        """Queue a sync at once; runs that are already queued coalesce with it."""
        _ready(connection)
        job = SyncJob(
            kind=JobKind.SYNC,
            connection_id=connection.id,
            provider=connection.provider,
            hint={"reason": "sync_now"},
            received_at=self._clock(),
        )
        self._jobs.send(job)
        return job

    def change(
        self,
        connection: Connection,
        *,
        paused: bool | None,
        interval_minutes: int | None,
        reset_interval: bool,
    ) -> Connection:
        """Pause, resume and set the interval (None keeps it; `reset_interval` returns to the default)."""
        if (
            interval_minutes is not None
            and not MIN_INTERVAL_MINUTES <= interval_minutes <= MAX_INTERVAL_MINUTES
        ):
            raise ValidationFailed(
                f"Choose an interval from {MIN_INTERVAL_MINUTES} minutes to "
                f"{MAX_INTERVAL_MINUTES // 60} hours.",
                code="interval_out_of_range",
                details=[
                    {
                        "field": "interval_minutes",
                        "message": f"between {MIN_INTERVAL_MINUTES} and {MAX_INTERVAL_MINUTES}",
                    }
                ],
            )
        now = self._clock()

        def change(c: Connection) -> StatusChange | None:
            changes = []
            if interval_minutes is not None or reset_interval:
                changes.append(c.interval_set(interval_minutes, now))
            if paused is True and not c.paused:
                changes.append(c.paused_by_owner(now))
            elif paused is False and c.paused:
                changes.append(c.resumed(now))
            return first_change(*changes)

        saved = self._state.apply(connection.id, change)
        if saved is None:
            raise Conflict("The connection was removed meanwhile.", code="connection_not_found")
        if paused is False and connection.paused:
            # Resuming catches up at once rather than at the next scheduled run.
            self.sync_now(saved)
        return saved

    def push_existing(self, connection: Connection) -> PushProgress:
        """Start replaying the owner's upcoming appointments into the chosen calendar (or answer the
        replay that is still running: pressing the button twice starts nothing new)."""
        _ready(connection)
        if not self._calendars.takes_pushes(connection):
            raise Conflict(
                "This connection does not take the platform's appointments.", code="push_not_supported"
            )
        if not self._calendars.pushes(connection):
            raise Conflict(
                "Pushing appointments is off for this calendar; turn it on in its advanced settings.",
                code="push_turned_off",
            )
        current = PushProgress.of(connection)
        if current is not None and current.state == "pushing" and not self._stalled(current, connection):
            return current
        calendar_id = self._calendars.push_calendar(connection) or ""
        label = self._calendars.calendar_label(connection, calendar_id)
        run_id = uuid.uuid4().hex
        progress = self._replay.start(connection, run_id, calendar_id, label)
        self._jobs.send(
            SyncJob(
                kind=JobKind.PUSH_EXISTING,
                connection_id=connection.id,
                provider=connection.provider,
                hint={"run_id": run_id},
                received_at=self._clock(),
            )
        )
        return progress

    def _stalled(self, progress: PushProgress, connection: Connection) -> bool:
        last_move = (
            connection.updated_at
            if progress.started_at is None
            else max(progress.started_at, connection.updated_at)
        )
        return self._clock() - last_move > STALLED_REPLAY


def _ready(connection: Connection) -> None:
    if connection.paused:
        raise Conflict("Sync is paused for this connection; resume it first.", code="connection_paused")
    if connection.waits_for_person:
        raise Conflict(
            "This connection needs attention first (see its status).", code="connection_needs_attention"
        )
