"""Availability against a brute-force oracle: random single, all-day and recurring events (with
EXDATEs, cancelled and moved instances), windows across DST changes, zones and working hours.

The oracle never expands an RRULE with a library: it steps wall-clock days itself, marks every
15-minute cell a blocking instance covers, and tries every cell as a slot start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.sync.availability import Window, WorkingPeriod, free_slots
from integrations.sync.calendar import CalendarEvent, EventStatus
from integrations.sync.expansion import Interval, busy_intervals, merge

CELL = timedelta(minutes=15)
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]
# Starts near the 2026 DST changes (8 and 29 March, 25 October, 1 November).
BASES = [datetime(2026, 3, 6), datetime(2026, 3, 27), datetime(2026, 10, 23), datetime(2026, 10, 30)]


def _place(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


@dataclass
class Case:
    """The generated events and, beside them, the instances the oracle says they make."""

    events: list[CalendarEvent] = field(default_factory=list)
    blocking: list[tuple[datetime, datetime]] = field(default_factory=list)
    # All-day dates blocking in the asker's zone (resolved once the zone is known).
    blocking_days: list[tuple[date, date]] = field(default_factory=list)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Case, Window]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    base = draw(st.sampled_from(BASES)) + draw(st.integers(0, 4 * 24 * 3)) * CELL
    window_start = _place(base, zone)
    window_end = window_start + draw(st.integers(1, 4 * 24 * 4)) * CELL
    slot = draw(st.sampled_from([15, 30, 45, 60, 90]))
    hours: tuple[WorkingPeriod, ...] = ()
    if draw(st.booleans()):
        hours = tuple(
            WorkingPeriod(day, first * 15, first * 15 + span * 15)
            for day, first, span in draw(
                st.lists(st.tuples(st.integers(0, 6), st.integers(0, 80), st.integers(1, 16)), max_size=6)
            )
        )
    window = Window(window_start, window_end, zone, slot, hours)
    case = Case()
    flags = st.tuples(st.booleans(), st.booleans(), st.booleans())  # busy, declined, cancelled

    for n in range(draw(st.integers(0, 6))):  # timed single events
        begins = window_start + draw(st.integers(-4 * 24 * 3, 4 * 24 * 6)) * CELL
        ends = begins + draw(st.integers(1, 4 * 24 * 3)) * CELL
        busy, declined, cancelled = draw(flags)
        case.events.append(
            CalendarEvent(
                calendar_id="c",
                external_id=f"single{n}",
                start=begins,
                end=ends,
                busy=busy,
                declined=declined,
                status=EventStatus.CANCELLED if cancelled else EventStatus.CONFIRMED,
            )
        )
        if busy and not declined and not cancelled:
            case.blocking.append((begins, ends))

    for n in range(draw(st.integers(0, 3))):  # all-day events, in the asker's zone
        first = (base + timedelta(days=draw(st.integers(-3, 6)))).date()
        last = first + timedelta(days=draw(st.integers(1, 3)))
        busy = draw(st.booleans())
        case.events.append(
            CalendarEvent(calendar_id="c", external_id=f"day{n}", start_date=first, end_date=last, busy=busy)
        )
        if busy:
            case.blocking_days.append((first, last))

    for n in range(draw(st.integers(0, 3))):  # timed series in their own zone
        _timed_series(draw, case, f"series{n}", base)

    for n in range(draw(st.integers(0, 2))):  # all-day series
        _day_series(draw, case, f"days{n}", base)
    return case, window


def _timed_series(draw: st.DrawFn, case: Case, name: str, base: datetime) -> None:
    series_zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    wall = base - timedelta(days=draw(st.integers(0, 6))) + draw(st.integers(0, 95)) * CELL
    # A wall time DST skips is not a start a provider would send.
    wall = _place(wall, series_zone).astimezone(series_zone).replace(tzinfo=None)
    length = draw(st.integers(1, 12)) * CELL
    step = draw(st.sampled_from([1, 2, 3, 7]))
    count = draw(st.integers(1, 12))
    instances = [wall + timedelta(days=step * i) for i in range(count)]
    freq = "WEEKLY" if step == 7 else "DAILY"
    lines = [f"RRULE:FREQ={freq};INTERVAL={1 if step == 7 else step};COUNT={count}"]
    gone: set[int] = set()
    if count > 1 and draw(st.booleans()):
        excluded = draw(st.integers(0, count - 1))
        gone.add(excluded)
        lines.append(f"EXDATE;TZID={series_zone.key}:{instances[excluded]:%Y%m%dT%H%M%S}")
    busy = draw(st.booleans())
    case.events.append(
        CalendarEvent(
            calendar_id="c",
            external_id=name,
            start=_place(wall, series_zone),
            end=_place(wall, series_zone) + length,
            time_zone=series_zone.key,
            busy=busy,
            recurrence=tuple(lines),
        )
    )
    if count > 1 and draw(st.booleans()):  # a cancelled instance, as Google sends it (no times)
        cancelled = draw(st.integers(0, count - 1))
        gone.add(cancelled)
        case.events.append(
            CalendarEvent(
                calendar_id="c",
                external_id=f"{name}_x{cancelled}",
                status=EventStatus.CANCELLED,
                series_id=name,
                original_start=_place(instances[cancelled], series_zone).astimezone(series_zone).isoformat(),
            )
        )
    if draw(st.booleans()):  # a moved instance
        moved = draw(st.integers(0, count - 1))
        if moved not in gone:
            gone.add(moved)
            begins = _place(instances[moved], series_zone) + draw(st.integers(-96, 96)) * CELL
            case.events.append(
                CalendarEvent(
                    calendar_id="c",
                    external_id=f"{name}_m{moved}",
                    start=begins,
                    end=begins + length,
                    series_id=name,
                    original_start=_place(instances[moved], series_zone).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
            )
            case.blocking.append((begins, begins + length))
    if busy:
        for i, instance in enumerate(instances):
            if i not in gone:
                placed = _place(instance, series_zone)
                case.blocking.append((placed, placed + length))


def _day_series(draw: st.DrawFn, case: Case, name: str, base: datetime) -> None:
    first = (base - timedelta(days=draw(st.integers(0, 4)))).date()
    days = draw(st.integers(1, 2))
    count = draw(st.integers(1, 8))
    instances = [first + timedelta(days=i) for i in range(count)]
    busy = draw(st.booleans())
    case.events.append(
        CalendarEvent(
            calendar_id="c",
            external_id=name,
            start_date=first,
            end_date=first + timedelta(days=days),
            busy=busy,
            recurrence=(f"RRULE:FREQ=DAILY;COUNT={count}",),
        )
    )
    gone = set()
    if draw(st.booleans()):
        cancelled = draw(st.integers(0, count - 1))
        gone.add(cancelled)
        case.events.append(
            CalendarEvent(
                calendar_id="c",
                external_id=f"{name}_x",
                status=EventStatus.CANCELLED,
                series_id=name,
                original_start=instances[cancelled].isoformat(),
            )
        )
    if busy:
        case.blocking_days += [
            (day, day + timedelta(days=days)) for i, day in enumerate(instances) if i not in gone
        ]


def _cells(window: Window) -> list[datetime]:
    count = (window.end - window.start) // CELL
    return [window.start + i * CELL for i in range(count)]


def _oracle_busy(case: Case, window: Window) -> set[datetime]:
    spans = list(case.blocking) + [
        (
            datetime.combine(first, time(), tzinfo=window.zone).astimezone(UTC),
            datetime.combine(last, time(), tzinfo=window.zone).astimezone(UTC),
        )
        for first, last in case.blocking_days
    ]
    return {cell for cell in _cells(window) if any(b <= cell < e for b, e in spans)}


def _runs(cells: list[datetime], busy: set[datetime]) -> list[Interval]:
    runs: list[Interval] = []
    for cell in cells:
        if cell not in busy:
            continue
        if runs and runs[-1].end == cell:
            runs[-1] = Interval(runs[-1].start, cell + CELL)
        else:
            runs.append(Interval(cell, cell + CELL))
    return runs


def _oracle_slots(window: Window, busy: set[datetime]) -> list[Interval]:
    length = timedelta(minutes=window.slot_minutes)
    slots = []
    for cell in _cells(window):
        local = cell.astimezone(window.zone)
        minute = local.hour * 60 + local.minute
        if minute % window.slot_minutes or cell + length > window.end:
            continue
        inside = [cell + i * CELL for i in range(length // CELL)]
        if any(c in busy for c in inside):
            continue
        if window.working_hours:
            end_local = (cell + length).astimezone(window.zone)
            end_minute = end_local.hour * 60 + end_local.minute
            if end_local.date() != local.date():
                end_minute = 1440 if (end_local.date() - local.date()).days == 1 and end_minute == 0 else -1
            if not any(
                p.weekday == local.weekday() and p.start_minute <= minute < end_minute <= p.end_minute
                for p in window.working_hours
            ):
                continue
        slots.append(Interval(cell, cell + length))
    return slots


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_busy_blocks_and_free_slots_match_the_brute_force_oracle(generated: tuple[Case, Window]) -> None:
    case, window = generated
    busy = merge(busy_intervals(case.events, window.start, window.end, window.zone))
    oracle_busy = _oracle_busy(case, window)
    assert busy == _runs(_cells(window), oracle_busy)
    assert free_slots(busy, window) == _oracle_slots(window, oracle_busy)
