""" "Push existing data": replay the owner's upcoming appointments into one connection's calendar.

The window is every projected appointment that has not ended yet (past ones would only clutter the
calendar). The replay walks the projection in appointment-id order and checkpoints its progress on
the connection after every appointment (`cursors["push_existing"]`: run id, total, pushed, failed, the
last id done), so a crash or a timeout resumes where it stopped, and each push is idempotent by
version, so running it twice writes nothing twice. The card reads the same record for its progress
bar and its confirmation ("Pushed 300 appointments to Work").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

from integrations.domain.access import Level
from integrations.domain.connection import Connection, StatusChange
from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.http import ProviderApiError
from integrations.sync.appointments import AppointmentPusher, PushResult, PushTarget
from integrations.sync.errors import ConfigRequired
from integrations.sync.progress import CURSOR_KEY, PushProgress


class Upcoming(Protocol):
    def upcoming(self, owner: AppointmentOwner, now: datetime, after: str | None = None) -> Any: ...

    def count_upcoming(self, owner: AppointmentOwner, now: datetime) -> int: ...


class Checkpoints(Protocol):
    def apply(
        self, connection_id: str, transition: Callable[[Connection], StatusChange | None]
    ) -> Connection | None: ...


def owner_of(connection: Connection) -> AppointmentOwner:
    """The appointments' owner a connection pushes for (the person, or the client for client calendars)."""
    if connection.level is Level.CLIENT:
        return AppointmentOwner(kind="client", agency_id=connection.agency_id, client_id=connection.client_id)
    kind: Literal["staff", "client_user"] = "client_user" if connection.client_id else "staff"
    return AppointmentOwner(
        kind=kind, agency_id=connection.agency_id, client_id=connection.client_id, user_id=connection.user_id
    )


class PushExisting:
    """Runs one replay as far as time allows."""

    def __init__(
        self,
        *,
        projection: Upcoming,
        pusher: AppointmentPusher,
        checkpoints: Checkpoints,
        clock: Callable[[], datetime],
    ) -> None:
        self._projection = projection
        self._pusher = pusher
        self._checkpoints = checkpoints
        self._clock = clock

    def start(
        self, connection: Connection, run_id: str, calendar_id: str, calendar_label: str
    ) -> PushProgress:
        """Record a new replay (counting what it will push) before its job is queued."""
        owner = owner_of(connection)
        progress = PushProgress(
            run_id=run_id,
            total=self._projection.count_upcoming(owner, self._clock()),
            calendar_id=calendar_id,
            calendar_label=calendar_label,
            started_at=self._clock(),
        )
        self._save(connection.id, progress)
        return progress

    def run(self, target: PushTarget, run_id: str, has_time: Callable[[], bool]) -> PushProgress | None:
        """Push until done or out of time; provider faults stop the run and propagate (the worker
        defers the job by the fault table), having checkpointed everything finished so far."""
        connection = target.connection
        progress = PushProgress.of(connection)
        if progress is None or progress.run_id != run_id or progress.state == "done":
            return progress
        owner = owner_of(connection)
        appointment: AppointmentUpserted
        for appointment in self._projection.upcoming(owner, self._clock(), progress.after):
            if not has_time():
                return progress
            try:
                result = self._pusher.push(target, owner, appointment.appointment_id)
                if result is PushResult.NOT_TAKEN:
                    # Not one the calendar takes (its type is not pushed): not counted as to push.
                    progress = progress.model_copy(update={"total": max(progress.total - 1, 0)})
                else:
                    progress = progress.model_copy(update={"pushed": progress.pushed + 1})
            except (ProviderUnavailable, ReauthRequired, ConfigRequired):
                raise
            except ProviderApiError as error:
                if error.status in (401, 403):
                    raise
                progress = progress.model_copy(
                    update={
                        "failed": progress.failed + 1,
                        "message": "The calendar refused some appointments.",
                    }
                )
            except Exception as error:  # one bad appointment must not stop the others
                progress = progress.model_copy(
                    update={
                        "failed": progress.failed + 1,
                        "message": f"Some appointments failed ({type(error).__name__}).",
                    }
                )
            progress = progress.model_copy(update={"after": appointment.appointment_id})
            self._save(connection.id, progress)
        progress = progress.model_copy(
            update={
                "state": "done",
                "finished_at": self._clock(),
                "total": max(progress.total, progress.pushed + progress.failed),
            }
        )
        self._save(connection.id, progress)
        return progress

    def _save(self, connection_id: str, progress: PushProgress) -> None:
        now = self._clock()
        body = progress.model_dump(mode="json")
        self._checkpoints.apply(connection_id, lambda c: c.cursor_saved(CURSOR_KEY, body, now))
