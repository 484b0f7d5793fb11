"""The worker's push steps: one appointment to one connection's calendar, and "Push existing data".

Both hold the connection's push lease (two deliveries of one appointment never write at once, so a
delete racing an update cannot leave a copy behind), write through the provider's calendar adapter,
and settle failures through the same fault table as a sync run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from integrations.domain.connection import Connection
from integrations.events import AppointmentOwner
from integrations.sync.appointments import AppointmentPusher, PushTarget
from integrations.sync.calendar import CalendarAdapter
from integrations.sync.jobs import SyncJob
from integrations.sync.push_existing import PushExisting
from integrations.sync.settle import ConnectionState, Leases, Outcome, RunResult, settle_failure

# A push that meets another push of the same connection looks again this soon.
BUSY_PUSH_DEFER_SECONDS = 5.0
# Leave this much of the invocation for checkpointing after the last appointment of a replay.
SAFETY_MARGIN_MS = 10_000


class PushCalendars(Protocol):
    """Where a connection writes (sync.sources.ProviderCalendars)."""

    def writer(self, connection: Connection) -> CalendarAdapter | None: ...

    def push_calendar(self, connection: Connection) -> str | None: ...


class PushSteps:
    """Runs PUSH_APPOINTMENT and PUSH_EXISTING jobs; one instance per process."""

    def __init__(
        self,
        *,
        connections: ConnectionState,
        leases: Leases,
        calendars: PushCalendars,
        pusher: AppointmentPusher,
        replay: PushExisting,
        clock: Callable[[], datetime],
    ) -> None:
        self._connections = connections
        self._leases = leases
        self._calendars = calendars
        self._pusher = pusher
        self._replay = replay
        self._clock = clock

    def push_appointment(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        """Bring the connection's copy of the job's appointment to the projection's newest state."""
        try:
            owner = AppointmentOwner.model_validate(job.hint.get("owner"))
        except ValidationError:
            return RunResult(Outcome.FAIL, reason="The push job names no valid appointment owner.")
        appointment_id = job.hint.get("appointment_id")
        if not isinstance(appointment_id, str) or not appointment_id:
            return RunResult(Outcome.FAIL, reason="The push job names no appointment.")
        return self._leased(
            job,
            connection,
            attempts,
            lambda target: self._pushed(target, owner, appointment_id),
        )

    def push_existing(
        self, job: SyncJob, connection: Connection, attempts: int, remaining_ms: Callable[[], int]
    ) -> RunResult:
        """Replay the owner's upcoming appointments as far as time allows; CONTINUE when time ran out."""
        run_id = job.hint.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            return RunResult(Outcome.FAIL, reason="The replay job names no run.")

        def replay(target: PushTarget) -> RunResult:
            progress = self._replay.run(target, run_id, lambda: remaining_ms() > SAFETY_MARGIN_MS)
            if progress is not None and progress.run_id == run_id and progress.state == "pushing":
                return RunResult(Outcome.CONTINUE, changes=progress.pushed, reason="out of time")
            return RunResult(Outcome.DONE, changes=progress.pushed if progress else 0)

        return self._leased(job, connection, attempts, replay)

    def _pushed(self, target: PushTarget, owner: AppointmentOwner, appointment_id: str) -> RunResult:
        result = self._pusher.push(target, owner, appointment_id)
        return RunResult(Outcome.DONE, changes=1, reason=result.value)

    def _leased(
        self,
        job: SyncJob,
        connection: Connection,
        attempts: int,
        step: Callable[[PushTarget], RunResult],
    ) -> RunResult:
        adapter = self._calendars.writer(connection)
        calendar_id = self._calendars.push_calendar(connection)
        if adapter is None or calendar_id is None:
            return RunResult(Outcome.DONE, reason="the provider takes no appointments")
        holder = uuid.uuid4().hex
        if not self._leases.acquire(connection.id, holder, self._clock().timestamp(), 120).acquired:
            return RunResult(
                Outcome.DEFER, BUSY_PUSH_DEFER_SECONDS, reason="another push holds the connection"
            )
        try:
            result = step(PushTarget(connection, adapter, calendar_id))
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            return settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())
        finally:
            self._leases.release(connection.id, holder)
        if connection.consecutive_failures:
            now = self._clock()
            self._connections.apply(connection.id, lambda c: c.provider_succeeded(now))
        return result
