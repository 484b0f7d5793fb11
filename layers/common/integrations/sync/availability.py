"""Availability for one owner or a team over a window (design §8, Conflict calendars and availability).

Busy = the mirror of every conflict calendar of the owner (their calendar connections that read
changes and check conflicts, each with the conflict calendars its preferences name) plus the
projected appointments. Free slots are the aligned slots of
`slot_minutes` (their local start a multiple of the slot length after local midnight), inside the
working hours when given, that meet no busy block. A conflict calendar in `error`, paused, never
synced or not synced within twice its interval makes the answer `degraded` with the reason: its busy
time may be missing, and the platform must not read that as free.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.domain.agency import personal_group
from integrations.domain.connection import Connection, PortalStatus
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.sync.appointments import ScopeReader, owner_scope
from integrations.sync.calendar import CalendarEvent
from integrations.sync.expansion import Interval, busy_intervals, merge

MAX_WINDOW = timedelta(days=62)
# A conflict calendar not synced within this many of its intervals may be missing busy time.
STALE_AFTER_INTERVALS = 2
_DAY_MINUTES = 24 * 60


class AvailabilityState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"


class DegradedCode(StrEnum):
    """Why an answer is degraded: stable codes the platform can act on."""

    CALENDAR_ERROR = "calendar_error"
    CALENDAR_STALE = "calendar_stale"
    CALENDAR_PAUSED = "calendar_paused"


@dataclass(frozen=True, slots=True)
class DegradedReason:
    code: DegradedCode
    connection_id: str
    provider: str
    message: str


@dataclass(frozen=True, slots=True)
class WorkingPeriod:
    """Working time on one weekday (0 = Monday), as local minutes after midnight: [start, end)."""

    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class Window:
    """What is asked: a bounded UTC window, the asker's zone and the slot length."""

    start: datetime
    end: datetime
    zone: tzinfo
    slot_minutes: int
    working_hours: tuple[WorkingPeriod, ...] = ()

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("the window's start and end need a UTC offset")
        if self.end <= self.start:
            raise ValueError("the window must end after it starts")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError(f"the window may span at most {MAX_WINDOW.days} days")
        if not 5 <= self.slot_minutes <= _DAY_MINUTES:
            raise ValueError("slot_minutes must be between 5 and 1440")


@dataclass(frozen=True, slots=True)
class OwnerAvailability:
    owner: AppointmentOwner
    busy: list[Interval]
    free: list[Interval]
    state: AvailabilityState
    reasons: list[DegradedReason] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Availability:
    """Per owner, and together: `busy` is anyone's busy time, `free` the slots when all are free."""

    owners: list[OwnerAvailability]
    busy: list[Interval]
    free: list[Interval]
    state: AvailabilityState
    reasons: list[DegradedReason]


def free_slots(busy: Sequence[Interval], window: Window) -> list[Interval]:
    """The aligned slots of the window that meet no busy span (`busy` merged and sorted)."""
    starts = [b.start for b in busy]
    length = timedelta(minutes=window.slot_minutes)
    slots: list[Interval] = []
    for begins in _slot_starts(window):
        ends = begins + length
        if ends > window.end or not _in_working_hours(begins, ends, window):
            continue
        # The last busy span starting before the slot ends is the only one that can overlap it.
        index = bisect.bisect_left(starts, ends) - 1
        if index >= 0 and busy[index].end > begins:
            continue
        slots.append(Interval(begins, ends))
    return slots


def _slot_starts(window: Window) -> list[datetime]:
    """Instants in the window whose local wall time is a multiple of the slot after midnight; both
    readings of an hour that DST repeats, none of an hour it skips."""
    zone, step = window.zone, window.slot_minutes
    first_day = window.start.astimezone(zone).date()
    last_day = window.end.astimezone(zone).date()
    found: set[datetime] = set()
    day = first_day
    while day <= last_day:
        for minute in range(0, _DAY_MINUTES, step):
            wall = datetime.combine(day, time()) + timedelta(minutes=minute)
            for fold in (0, 1):
                moment = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
                if moment.astimezone(zone).replace(tzinfo=None) != wall:
                    continue  # a wall time DST skips
                if window.start <= moment < window.end:
                    found.add(moment)
        day += timedelta(days=1)
    return sorted(found)


def _in_working_hours(begins: datetime, ends: datetime, window: Window) -> bool:
    if not window.working_hours:
        return True
    local_start = begins.astimezone(window.zone)
    local_end = ends.astimezone(window.zone)
    start_minute = local_start.hour * 60 + local_start.minute
    end_minute = local_end.hour * 60 + local_end.minute
    if local_end.date() != local_start.date():
        if local_end.date() != local_start.date() + timedelta(days=1) or end_minute != 0:
            return False
        end_minute = _DAY_MINUTES
    if end_minute <= start_minute:
        return False
    return any(
        p.weekday == local_start.weekday() and p.start_minute <= start_minute and end_minute <= p.end_minute
        for p in window.working_hours
    )


def conflict_health(
    connection: Connection, now: datetime, default_interval: timedelta
) -> DegradedReason | None:
    """Why this conflict calendar's busy time may be missing, or None when it is trustworthy."""

    def reason(code: DegradedCode, message: str) -> DegradedReason:
        return DegradedReason(code, connection.id, connection.provider, message)

    if connection.status is PortalStatus.ERROR:
        error = connection.error
        detail = f" ({error.code}: {error.message})" if error is not None else ""
        return reason(DegradedCode.CALENDAR_ERROR, f"The linked calendar needs attention{detail}.")
    if connection.paused:
        return reason(DegradedCode.CALENDAR_PAUSED, "The owner paused this calendar's sync.")
    interval = (
        timedelta(minutes=connection.sync_interval_minutes)
        if connection.sync_interval_minutes
        else default_interval
    )
    if connection.last_sync_at is None:
        return reason(DegradedCode.CALENDAR_STALE, "The linked calendar has not been synced yet.")
    if now - connection.last_sync_at > STALE_AFTER_INTERVALS * interval:
        return reason(
            DegradedCode.CALENDAR_STALE,
            f"The linked calendar was last synced at {connection.last_sync_at.isoformat()}.",
        )
    return None


class MirrorWindow(Protocol):
    """store.mirror.DynamoMirror's window read."""

    def events_between(
        self, connection_id: str, calendar_id: str, start: datetime, end: datetime
    ) -> list[CalendarEvent]: ...


class AppointmentsWindow(Protocol):
    """store.appointments.AppointmentProjection's window read."""

    def between(
        self, owner: AppointmentOwner, start: datetime, end: datetime
    ) -> list[AppointmentUpserted]: ...


class ConflictCalendars(Protocol):
    """sync.sources.ProviderCalendars: a connection's conflict calendars (none: it blocks nothing)."""

    def conflict_calendars(self, connection: Connection) -> Sequence[str]: ...


class AvailabilityService:
    """Answers availability from the mirror and the projection; never calls a provider."""

    def __init__(
        self,
        *,
        connections: ScopeReader,
        calendars: ConflictCalendars,
        mirror: MirrorWindow,
        appointments: AppointmentsWindow,
        clock: Callable[[], datetime],
        default_interval: timedelta,
        stopped_by_agency: Callable[[Connection], bool] = lambda connection: False,
    ) -> None:
        self._stopped_by_agency = stopped_by_agency
        self._connections = connections
        self._calendars = calendars
        self._mirror = mirror
        self._appointments = appointments
        self._clock = clock
        self._default_interval = default_interval

    def conflict_connections(self, owner: AppointmentOwner) -> list[tuple[Connection, Sequence[str]]]:
        """The owner's calendar connections that read changes, each with its conflict calendars. A
        calendar with conflicts off, or one the agency's settings switched off, blocks nothing and
        cannot make the answer degraded."""
        found = []
        # One owner's connections share the agency and the switch that covers them: ask once per group.
        stopped: dict[tuple[str, str | None], bool] = {}
        for connection in self._connections.list_for_scope(owner_scope(owner)):
            calendars = self._calendars.conflict_calendars(connection)
            if not calendars:
                continue
            group = (connection.agency_id, personal_group(connection))
            if group not in stopped:
                stopped[group] = self._stopped_by_agency(connection)
            if not stopped[group]:
                found.append((connection, calendars))
        return found

    def for_owners(self, owners: Sequence[AppointmentOwner], window: Window) -> Availability:
        """Each owner's busy time and free slots, and the team's (free when everyone is)."""
        answers = [self.for_owner(owner, window) for owner in dict.fromkeys(owners)]
        busy = merge(span for answer in answers for span in answer.busy)
        reasons = [r for answer in answers for r in answer.reasons]
        return Availability(
            owners=answers,
            busy=busy,
            free=free_slots(busy, window),
            state=AvailabilityState.DEGRADED if reasons else AvailabilityState.OK,
            reasons=reasons,
        )

    def for_owner(self, owner: AppointmentOwner, window: Window) -> OwnerAvailability:
        now = self._clock()
        spans: list[Interval] = []
        reasons: list[DegradedReason] = []
        for connection, calendars in self.conflict_connections(owner):
            problem = conflict_health(connection, now, self._default_interval)
            if problem is not None:
                reasons.append(problem)
            for calendar_id in calendars:
                events = self._mirror.events_between(connection.id, calendar_id, window.start, window.end)
                spans += busy_intervals(events, window.start, window.end, window.zone)
        spans += appointment_spans(self._appointments.between(owner, window.start, window.end), window)
        busy = merge(spans)
        return OwnerAvailability(
            owner=owner,
            busy=busy,
            free=free_slots(busy, window),
            state=AvailabilityState.DEGRADED if reasons else AvailabilityState.OK,
            reasons=reasons,
        )


def appointment_spans(appointments: Iterable[AppointmentUpserted], window: Window) -> list[Interval]:
    """Projected appointments as busy spans clipped to the window."""
    spans = []
    for appointment in appointments:
        low, high = max(appointment.start, window.start), min(appointment.end, window.end)
        if low < high:
            spans.append(Interval(low.astimezone(UTC), high.astimezone(UTC)))
    return spans


def window_of(
    start: datetime,
    end: datetime,
    time_zone: str,
    slot_minutes: int,
    working_hours: Iterable[tuple[int, int, int]] = (),
) -> Window:
    """A Window from request values (ValueError on a bad one)."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {time_zone!r}") from None
    return Window(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        zone=zone,
        slot_minutes=slot_minutes,
        working_hours=tuple(WorkingPeriod(*period) for period in working_hours),
    )
