"""Booking during a call (design §8b): one slot for one owner, written to one of their calendars.

1. The idempotency key is taken (per agency): the same key answers the same booking; the same key
   with another request is refused; a key whose booking is still running answers 409.
2. The slot is claimed on the chosen calendar with a conditional put: of concurrent requests for one
   slot, exactly one gets past this line.
3. The owner's booking lock is taken (a conditional put with a short expiry, waited for): bookings of
   one person for different but overlapping slots check and write one after the other, so the second
   sees the first.
4. The slot is re-checked where the truth is, right before writing: every conflict calendar's
   free/busy at its provider, and the owner's projected appointments. Taken → 409 `slot_taken` with the
   conflicting block, and the claim is given back.
5. The event is written through the appointment push path (the projection, then the calendar adapter:
   Meet / Teams link on request, our id stamped, the mapping recorded for updates, deletes and echo
   suppression); the owner's other pushing calendars get it by push jobs.
6. The answer is kept under the key, then `Booking Created` is published and the key marked
   announced. Its `event_id` derives from the booking, so the event is the same whoever publishes it:
   a retry of a key whose booking was announced publishes nothing; a retry of one whose answer was
   kept but whose announcement failed (the bus was down, the function died) publishes it then.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from integrations.domain.connection import Connection
from integrations.domain.errors import (
    Conflict,
    IntegrationError,
    NotFound,
    ValidationFailed,
)
from integrations.events import AppointmentOwner, AppointmentUpserted, BookingCreated, BookingInvitee
from integrations.sync.appointments import AppointmentPusher, Pushes, PushTarget, ScopeReader, owner_scope
from integrations.sync.calendar import CalendarAdapter, PushedEvent
from integrations.sync.jobs import SyncJob

# A claimed slot stays claimed this long after the booking, until the provider's free/busy shows it.
CLAIM_HOLD = timedelta(minutes=10)
# The owner's lock outlives any check-and-write (a dead holder's lock runs out); a waiter gives up
# after LOCK_WAIT with a retryable 503.
LOCK_HOLD = timedelta(seconds=30)
LOCK_WAIT = timedelta(seconds=10)
_LOCK_POLL_SECONDS = 0.05
MAX_LENGTH = timedelta(hours=24)
# How far around the slot free/busy is asked, to report a conflicting block whole.
CONTEXT = timedelta(hours=12)


class BookingRequest(BaseModel):
    """What the platform asks for: one slot for one owner (tenant ids explicit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency_id: str = Field(min_length=1, max_length=128)
    owner: AppointmentOwner
    start: AwareDatetime
    end: AwareDatetime
    title: str = Field(min_length=1, max_length=1024)
    time_zone: str
    description: str = Field(default="", max_length=8192)
    attendees: list[str] = Field(default_factory=list, max_length=100)
    # The owner's calendar connection to write to; absent: the owner's first calendar that takes pushes.
    calendar_connection_id: str | None = Field(default=None, max_length=128)
    video: bool = False
    idempotency_key: str = Field(min_length=8, max_length=256)

    @model_validator(mode="after")
    def _a_slot_of_this_agency(self) -> BookingRequest:
        if self.owner.agency_id != self.agency_id:
            raise ValueError("owner.agency_id must be the request's agency_id")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_LENGTH:
            raise ValueError("a booking may last at most 24 hours")
        _known_zone(self.time_zone)
        return self

    def fingerprint(self) -> str:
        """What the key stands for: the request without the key (a retry must send the same)."""
        facts = self.model_dump_json(exclude={"idempotency_key"})
        return hashlib.sha256(facts.encode()).hexdigest()


class Booking(BaseModel):
    """The answer: the appointment made and where its event is."""

    booking_id: str
    appointment_id: str
    connection_id: str
    calendar_id: str
    event_id: str
    video_url: str | None = None
    start: datetime
    end: datetime
    # The calendar's provider (catalog id); empty in answers kept before it was recorded.
    provider: str = ""


class SlotTaken(Conflict):
    code = "slot_taken"


class BookingInProgress(Conflict):
    code = "booking_in_progress"


class NoCalendar(Conflict):
    code = "no_calendar"


class CalendarUnavailable(IntegrationError):
    """A calendar that must be checked (or written) cannot answer now: retry later."""

    status = 503
    code = "calendar_unavailable"


class BookingLedger(Protocol):
    """store.bookings.DynamoBookingLedger"""

    def begin(self, agency_id: str, idempotency_key: str, fingerprint: str, now: datetime) -> Any: ...

    def finish(self, agency_id: str, idempotency_key: str, answer: dict[str, Any], now: datetime) -> None: ...

    def abandon(self, agency_id: str, idempotency_key: str) -> None: ...

    def announced(self, agency_id: str, idempotency_key: str) -> None: ...

    def claim_slot(self, slot: str, holder: str, now: datetime, until: datetime) -> bool: ...

    def release_slot(self, slot: str, holder: str) -> None: ...


class BookingCalendars(Protocol):
    """sync.sources.ProviderCalendars"""

    def pushes(self, connection: Connection) -> bool: ...

    def push_calendar(self, connection: Connection) -> str | None: ...

    def conflict_calendars(self, connection: Connection) -> Sequence[str]: ...

    def writer(self, connection: Connection) -> CalendarAdapter | None: ...


class AppointmentsBetween(Protocol):
    def between(
        self, owner: AppointmentOwner, start: datetime, end: datetime
    ) -> list[AppointmentUpserted]: ...


@dataclass(frozen=True, slots=True)
class _Target:
    connection: Connection
    adapter: CalendarAdapter
    calendar_id: str


class BookingService:
    def __init__(
        self,
        *,
        connections: ScopeReader,
        calendars: BookingCalendars,
        ledger: BookingLedger,
        pusher: AppointmentPusher,
        pushes: Pushes,
        appointments: AppointmentsBetween,
        enqueue: Callable[[list[SyncJob]], object],
        slot_key: Callable[[str, str, str, datetime, datetime], str],
        lock_key: Callable[[AppointmentOwner], str],
        clock: Callable[[], datetime],
        publish: Callable[[BookingCreated], object],
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._connections = connections
        self._calendars = calendars
        self._ledger = ledger
        self._pusher = pusher
        self._pushes = pushes
        self._appointments = appointments
        self._enqueue = enqueue
        self._slot_key = slot_key
        self._lock_key = lock_key
        self._clock = clock
        self._publish = publish
        self._sleep = sleep

    def book(self, request: BookingRequest) -> tuple[Booking, bool]:
        """Book the slot once per idempotency key (see the module's steps); True when booked now,
        False when the key's earlier booking is answered again."""
        now = self._clock()
        fingerprint = request.fingerprint()
        stored = self._ledger.begin(request.agency_id, request.idempotency_key, fingerprint, now)
        if stored is not None:
            booking = self._replay(stored, fingerprint)
            if not stored.announced:
                self._announce(request, booking)
            return booking, False
        try:
            booking = self._book(request, now)
        except BaseException:
            self._ledger.abandon(request.agency_id, request.idempotency_key)
            raise
        self._ledger.finish(
            request.agency_id, request.idempotency_key, booking.model_dump(mode="json"), self._clock()
        )
        self._announce(request, booking)
        return booking, True

    def _announce(self, request: BookingRequest, booking: Booking) -> None:
        """Publish `Booking Created`, then mark the key announced. Kept answer first: if the bus fails
        here, the caller's retry finds the booking made and announces it then (step 6)."""
        self._publish(booking_created(request, booking))
        self._ledger.announced(request.agency_id, request.idempotency_key)

    def _replay(self, stored: Any, fingerprint: str) -> Booking:
        if stored.fingerprint != fingerprint:
            raise ValidationFailed(
                "This idempotency key was used for another booking; use a new key for a new booking.",
                code="idempotency_key_reused",
            )
        if stored.answer is None:
            raise BookingInProgress("A booking with this idempotency key is still being made; retry shortly.")
        return Booking.model_validate(stored.answer)

    def _book(self, request: BookingRequest, now: datetime) -> Booking:
        owner = request.owner
        connections = self._connections.list_for_scope(owner_scope(owner))
        target = self._target(connections, request.calendar_connection_id)
        booking_id = _booking_id(request.agency_id, request.idempotency_key)
        slot = self._slot_key(
            request.agency_id, target.connection.id, target.calendar_id, request.start, request.end
        )
        if not self._ledger.claim_slot(slot, booking_id, now, max(request.end, now) + CLAIM_HOLD):
            raise _taken(request.start, request.end, "another booking is taking this slot")
        try:
            with self._owner_locked(owner, booking_id):
                jobs = self._check_and_write(request, connections, target, booking_id)
        except BaseException:
            self._ledger.release_slot(slot, booking_id)
            raise
        pushed = self._pushed(request.agency_id, booking_id, target.connection.id)
        # The owner's other calendars that take pushes get the booking the way appointments reach them.
        self._enqueue([j for j in jobs if j.connection_id != target.connection.id])
        return Booking(
            booking_id=booking_id,
            appointment_id=booking_id,
            connection_id=target.connection.id,
            calendar_id=target.calendar_id,
            event_id=pushed.external_id,
            video_url=pushed.video_url,
            start=request.start,
            end=request.end,
            provider=target.connection.provider,
        )

    def _check_and_write(
        self, request: BookingRequest, connections: Sequence[Connection], target: _Target, booking_id: str
    ) -> list[SyncJob]:
        """Re-check the slot, then project and write the booking; the push jobs for other calendars."""
        self._recheck(request, connections, target)
        appointment = AppointmentUpserted(
            appointment_id=booking_id,
            owner=request.owner,
            title=request.title,
            description=request.description,
            start=request.start,
            end=request.end,
            time_zone=request.time_zone,
            attendees=request.attendees,
            video=request.video,
            version=0,
        )
        jobs = self._pusher.upserted(appointment)
        push = PushTarget(target.connection, target.adapter, target.calendar_id)
        _at_provider(target.connection, lambda: self._pusher.push(push, request.owner, booking_id))
        return jobs

    @contextmanager
    def _owner_locked(self, owner: AppointmentOwner, holder: str) -> Iterator[None]:
        lock = self._lock_key(owner)
        deadline = self._clock() + LOCK_WAIT
        while not self._ledger.claim_slot(lock, holder, self._clock(), self._clock() + LOCK_HOLD):
            if self._clock() >= deadline:
                raise CalendarUnavailable("Another booking for this person is being made; retry shortly.")
            self._sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            self._ledger.release_slot(lock, holder)

    def _target(self, connections: Sequence[Connection], chosen: str | None) -> _Target:
        pushing = [c for c in connections if self._calendars.pushes(c)]
        if chosen is not None:
            found = next((c for c in pushing if c.id == chosen), None)
            if found is None:
                raise NotFound(
                    "The owner has no calendar connection with this id that takes bookings.",
                    code="calendar_not_found",
                )
        elif pushing:
            found = min(pushing, key=lambda c: (c.created_at, c.id))
        else:
            raise NoCalendar("The owner has no linked calendar that takes bookings.")
        adapter = self._calendars.writer(found)
        calendar_id = self._calendars.push_calendar(found)
        if adapter is None or calendar_id is None:
            raise NoCalendar("The owner's calendar connection cannot write events.")
        return _Target(found, adapter, calendar_id)

    def _recheck(self, request: BookingRequest, connections: Sequence[Connection], target: _Target) -> None:
        """Every conflict calendar's free/busy at its provider, the target calendar's included, and the
        owner's projected appointments: any block meeting the slot means it is taken."""
        start, end = request.start, request.end
        for connection in connections:
            calendars = list(self._calendars.conflict_calendars(connection))
            is_target = connection.id == target.connection.id
            if is_target and target.calendar_id not in calendars:
                calendars.append(target.calendar_id)
            adapter = target.adapter if is_target else self._calendars.writer(connection)
            if calendars and adapter is not None:
                self._check_provider(connection, adapter, calendars, start, end)
        booking_id = _booking_id(request.agency_id, request.idempotency_key)
        for appointment in self._appointments.between(request.owner, start, end):
            meets = appointment.start < end and start < appointment.end
            if meets and appointment.appointment_id != booking_id:
                raise _taken(appointment.start, appointment.end, "the owner has an appointment then")

    @staticmethod
    def _check_provider(
        connection: Connection, adapter: CalendarAdapter, calendars: list[str], start: datetime, end: datetime
    ) -> None:
        # Free/busy clips blocks to the range asked: ask wider, so the answer names the whole block.
        wide_start, wide_end = start - CONTEXT, end + CONTEXT
        answer = _at_provider(connection, lambda: adapter.free_busy(calendars, wide_start, wide_end))
        if answer.errors:
            raise CalendarUnavailable(
                "A linked calendar could not say whether the slot is free; try again shortly.",
                details={"connection_id": connection.id, "calendars": sorted(answer.errors)},
            )
        for blocks in answer.busy.values():
            for block in blocks:
                if block.start < end and start < block.end:
                    raise _taken(block.start, block.end, "the owner's calendar is busy then")

    def _pushed(self, agency_id: str, booking_id: str, connection_id: str) -> PushedEvent:
        for pushed in self._pushes.pushed_for(agency_id, booking_id):
            if pushed.connection_id == connection_id:
                return pushed
        raise CalendarUnavailable("The event was written but its record is not readable yet; retry.")


def booking_created(request: BookingRequest, booking: Booking) -> BookingCreated:
    """The booking as the platform hears of it. `event_id` is fixed by the booking (a republished
    announcement is the same event to consumers); the invitee is the first attendee, if any."""
    owner = request.owner
    invitee = BookingInvitee(email=request.attendees[0] if request.attendees else "")
    return BookingCreated(
        event_id=hashlib.sha256(f"booking-created\n{booking.booking_id}".encode()).hexdigest(),
        booking_id=booking.booking_id,
        connection_id=booking.connection_id,
        provider=booking.provider,
        agency_id=owner.agency_id,
        client_id=owner.client_id,
        user_id=owner.user_id,
        invitee=invitee,
        event_type_name=request.title,
        scheduled_event_id=booking.event_id,
        start=booking.start,
        end=booking.end,
        time_zone=request.time_zone,
        join_url=booking.video_url,
    )


def _booking_id(agency_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{agency_id}\n{idempotency_key}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"bk_{digest[:32]}"


def _taken(start: datetime, end: datetime, why: str) -> SlotTaken:
    return SlotTaken(
        f"The slot is taken: {why}.",
        details={"conflict": {"start": start.isoformat(), "end": end.isoformat()}},
    )


def _at_provider(connection: Connection, call: Callable[[], Any]) -> Any:
    """A provider call whose unexpected failure is the caller's 503, naming the connection only."""
    try:
        return call()
    except IntegrationError:
        raise
    except Exception as exc:
        raise CalendarUnavailable(
            "A linked calendar did not answer; try again shortly.",
            details={"connection_id": connection.id, "provider": connection.provider},
        ) from exc


def _known_zone(value: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
