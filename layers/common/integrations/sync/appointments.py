"""The platform's appointments into the owner's linked calendars (design §8, Appointments and push).

An `Appointment Upserted` / `Deleted` event updates the projection (newer versions only) and queues one
push job per calendar connection of the owner that pushes. A push job reads the projection's newest
state, not the event, so redeliveries and reordering converge on the latest version:

- deleted → delete the pushed event (if any) and forget the mapping;
- the mapping already holds this version in the configured calendar → nothing to do;
- otherwise write (insert, or update the mapped event by etag), record the mapping with the version,
  and announce `Appointment Pushed` (with the Meet link when one was made).

When the configured calendar changed since an appointment was pushed, the next push writes it into the
new calendar first and then deletes the old copy, so an event is never missing and never doubled for
longer than that one step; "Push existing data" moves every upcoming one at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.connection import Connection
from integrations.events import AppointmentDeleted, AppointmentOwner, AppointmentUpserted
from integrations.sync.calendar import CalendarAdapter, OutboundEvent, PushedEvent
from integrations.sync.jobs import JobKind, SyncJob


class PushResult(StrEnum):
    WRITTEN = "written"
    MOVED = "moved"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    NOTHING_TO_DELETE = "nothing_to_delete"
    # The connection's preferences do not take this appointment (push off, or its type not chosen):
    # nothing is written, and a copy pushed before stays where it is.
    NOT_TAKEN = "not_taken"


class Projection(Protocol):
    """store.appointments.AppointmentProjection"""

    def upsert(self, appointment: AppointmentUpserted) -> bool: ...

    def delete(self, owner: AppointmentOwner, appointment_id: str, version: int, now: datetime) -> bool: ...

    def get(self, owner: AppointmentOwner, appointment_id: str) -> StoredAppointmentLike | None: ...


class StoredAppointmentLike(Protocol):
    @property
    def appointment(self) -> AppointmentUpserted | None: ...


class Pushes(Protocol):
    """store.mirror.DynamoMirror's mapping side."""

    def pushed_for(self, agency_id: str, appointment_id: str) -> list[PushedEvent]: ...

    def record_push(self, agency_id: str, pushed: PushedEvent) -> None: ...

    def forget_push(self, agency_id: str, pushed: PushedEvent) -> None: ...

    def forget_event(self, pushed: PushedEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where one connection writes appointments: its adapter and the configured calendar."""

    connection: Connection
    adapter: CalendarAdapter
    calendar_id: str


class ScopeReader(Protocol):
    """Lists one owner's connections at one level (store.connections.ConnectionRepository)."""

    def list_for_scope(self, scope: Scope) -> list[Connection]: ...


class PushCapability(Protocol):
    def pushes(self, connection: Connection) -> bool: ...


def owner_scope(owner: AppointmentOwner) -> Scope:
    """Where an owner's calendar connections live: a person's own (user level, in their client's
    context when they belong to one), or the client's shared calendars."""
    if owner.kind == "client":
        return Scope(owner.agency_id, Level.CLIENT, owner.client_id, None)
    client_id = owner.client_id if owner.kind != "staff" else None
    return Scope(owner.agency_id, Level.USER, client_id, owner.user_id)


def pushing_connections(
    connections: ScopeReader, calendars: PushCapability, owner: AppointmentOwner
) -> list[Connection]:
    """The owner's connections whose calendars take the platform's appointments."""
    return [c for c in connections.list_for_scope(owner_scope(owner)) if calendars.pushes(c)]


def push_jobs(
    connections: Sequence[Connection], appointment_id: str, owner: AppointmentOwner
) -> list[SyncJob]:
    """One push job per connection; the hint names the appointment and its owner (never its content)."""
    return [
        SyncJob(
            kind=JobKind.PUSH_APPOINTMENT,
            connection_id=c.id,
            provider=c.provider,
            hint={"appointment_id": appointment_id, "owner": owner.model_dump(mode="json")},
        )
        for c in connections
    ]


def outbound(appointment: AppointmentUpserted) -> OutboundEvent:
    return OutboundEvent(
        appointment_id=appointment.appointment_id,
        title=appointment.title,
        start=appointment.start,
        end=appointment.end,
        time_zone=appointment.time_zone,
        description=appointment.description,
        location=appointment.location,
        attendees=tuple(appointment.attendees),
        video=appointment.video,
    )


class AppointmentPusher:
    """Turns appointment events into push jobs, and runs those jobs."""

    def __init__(
        self,
        *,
        projection: Projection,
        pushes: Pushes,
        pushing_connections: Callable[[AppointmentOwner], list[Connection]],
        announce: Callable[[Connection, PushedEvent], None],
        clock: Callable[[], datetime],
        takes: Callable[[Connection, AppointmentUpserted], bool] = lambda connection, appointment: True,
    ) -> None:
        self._takes = takes
        self._clock = clock
        self._projection = projection
        self._pushes = pushes
        self._pushing = pushing_connections
        self._announce = announce

    def upserted(self, event: AppointmentUpserted) -> list[SyncJob]:
        """Project the appointment and name the pushes it needs (queued even for a redelivery: the
        first delivery may have crashed before its jobs were queued, and pushes are idempotent)."""
        self._projection.upsert(event)
        takers = [c for c in self._pushing(event.owner) if self._takes(c, event)]
        return push_jobs(takers, event.appointment_id, event.owner)

    def deleted(self, event: AppointmentDeleted) -> list[SyncJob]:
        """Tombstone the appointment and name every connection holding a copy, or that could."""
        self._projection.delete(event.owner, event.appointment_id, event.version, self._clock())
        holders = {
            p.connection_id for p in self._pushes.pushed_for(event.owner.agency_id, event.appointment_id)
        }
        connections = {c.id: c for c in self._pushing(event.owner)}
        jobs = push_jobs(list(connections.values()), event.appointment_id, event.owner)
        # A connection that holds a copy but no longer pushes (switched off) still gets it removed.
        orphaned = holders - connections.keys()
        jobs += [
            SyncJob(
                kind=JobKind.PUSH_APPOINTMENT,
                connection_id=connection_id,
                provider="",
                hint={"appointment_id": event.appointment_id, "owner": event.owner.model_dump(mode="json")},
            )
            for connection_id in sorted(orphaned)
        ]
        return jobs

    def push(self, target: PushTarget, owner: AppointmentOwner, appointment_id: str) -> PushResult:
        """Bring one connection's copy of one appointment to the projection's newest state."""
        connection = target.connection
        stored = self._projection.get(owner, appointment_id)
        current = stored.appointment if stored is not None else None
        mapping = next(
            (
                p
                for p in self._pushes.pushed_for(owner.agency_id, appointment_id)
                if p.connection_id == connection.id
            ),
            None,
        )
        if current is None:
            if mapping is None:
                return PushResult.NOTHING_TO_DELETE
            target.adapter.delete(mapping)
            self._pushes.forget_push(owner.agency_id, mapping)
            return PushResult.DELETED
        if not self._takes(connection, current):
            return PushResult.NOT_TAKEN
        in_place = mapping is not None and mapping.calendar_id == target.calendar_id
        if in_place and mapping is not None and mapping.version == current.version:
            return PushResult.UNCHANGED
        written = target.adapter.write(target.calendar_id, outbound(current), mapping if in_place else None)
        written = written.model_copy(update={"version": current.version})
        self._pushes.record_push(owner.agency_id, written)
        if mapping is not None and not in_place:
            # The calendar changed: the new copy exists now, so the old one goes.
            target.adapter.delete(mapping)
            self._pushes.forget_event(mapping)
        self._announce(connection, written)
        return PushResult.WRITTEN if in_place or mapping is None else PushResult.MOVED
