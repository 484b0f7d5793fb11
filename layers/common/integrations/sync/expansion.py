"""Mirrored events into the busy intervals they make in a window, recurring series expanded here.

The mirror keeps series as the providers send them (sync/calendar.py): a master with RRULE / RDATE /
EXDATE lines and its zone, and every exception as its own item naming the master (`series_id`) and the
instance it replaces (`original_start`). An instance with an exception is replaced by it (a cancelled
exception hides it). Items naming a series whose master is not in the mirror (Graph's expanded
occurrences) are plain events. Recurrences run in wall time in the master's zone (RFC 5545 §3.3.10),
so a 09:00 weekly meeting stays at 09:00 across a DST change.

The mirror's window read (store/mirror.py) returns every master and every cancelled instance, and the
events starting near the window: an instance moved from inside the window to far outside it is not
read, so its original time stays busy (an error towards busy, never towards free).

What blocks: a live (not cancelled), opaque (busy), not declined event; all-day events only when busy,
from local midnight to local midnight in the event's zone, or the asker's zone when it has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rruleset, rrulestr

from integrations.sync.calendar import CalendarEvent, EventStatus


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A half-open span [start, end) of UTC instants."""

    start: datetime
    end: datetime


def blocks(event: CalendarEvent) -> bool:
    """Whether the event makes its owner busy."""
    return event.status is not EventStatus.CANCELLED and event.busy and not event.declined


def busy_intervals(
    events: Iterable[CalendarEvent], start: datetime, end: datetime, zone: tzinfo
) -> list[Interval]:
    """Every blocking span that meets [start, end), clipped to it (not merged)."""
    items = list(events)
    masters = {e.external_id: e for e in items if e.recurrence and not e.is_deletion}
    replaced: dict[str, set[date | datetime]] = {}
    spans: list[Interval] = []
    for event in items:
        if event.recurrence:
            continue
        if event.series_id in masters and event.original_start:
            replaced.setdefault(event.series_id, set()).add(_instance_key(event.original_start))
        if blocks(event):
            spans.extend(_own_span(event, zone))
    for master in masters.values():
        if blocks(master):
            spans.extend(_instances(master, start, end, zone, replaced.get(master.external_id, set())))
    return [clipped for span in spans if (clipped := _clip(span, start, end)) is not None]


def merge(spans: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching spans joined, in order."""
    merged: list[Interval] = []
    for span in sorted(spans):
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


def zone_named(name: str | None, fallback: tzinfo) -> tzinfo:
    """The IANA zone called `name`, or `fallback` when there is no such zone."""
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local date, in UTC (a midnight lost to DST is the day's first hour)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _own_span(event: CalendarEvent, zone: tzinfo) -> Iterator[Interval]:
    if event.start_date is not None:
        day_zone = zone_named(event.time_zone, zone)
        last = event.end_date or event.start_date + timedelta(days=1)
        yield Interval(local_midnight(event.start_date, day_zone), local_midnight(last, day_zone))
    elif event.start is not None:
        yield Interval(event.start, event.end or event.start)


def _instances(
    master: CalendarEvent, start: datetime, end: datetime, zone: tzinfo, replaced: set[date | datetime]
) -> Iterator[Interval]:
    if master.start_date is not None:
        last = master.end_date or master.start_date + timedelta(days=1)
        days = last - master.start_date
        day_zone = zone_named(master.time_zone, zone)
        first = datetime.combine(master.start_date, time())
        rules = _rules(master.recurrence, first, None)
        # Local dates can sit a day either side of the UTC window.
        low = datetime.combine((start - days).date() - timedelta(days=1), time())
        high = datetime.combine(end.date() + timedelta(days=1), time())
        for wall in rules.between(low, high, inc=True):
            if wall.date() in replaced:
                continue
            day = wall.date()
            yield Interval(local_midnight(day, day_zone), local_midnight(day + days, day_zone))
        return
    if master.start is None:
        return
    series_zone = zone_named(master.time_zone, UTC)
    length = (master.end or master.start) - master.start
    first_wall = master.start.astimezone(series_zone).replace(tzinfo=None)
    rules = _rules(master.recurrence, first_wall, series_zone)
    # Wall times differ from UTC by at most a day; filter exactly once placed in time.
    low = (start - length).astimezone(series_zone).replace(tzinfo=None) - timedelta(days=1)
    high = end.astimezone(series_zone).replace(tzinfo=None) + timedelta(days=1)
    for wall in rules.between(low, high, inc=True):
        begins = wall.replace(tzinfo=series_zone).astimezone(UTC)
        if begins in replaced:
            continue
        yield Interval(begins, begins + length)


def _rules(lines: Sequence[str], first: datetime, zone: tzinfo | None) -> rruleset:
    """RRULE / RDATE / EXDATE lines as a set over naive wall times (in `zone`, or dates when None)."""
    rules = rruleset()
    has_rule = False
    for line in lines:
        head, _, value = line.partition(":")
        name, *params = head.split(";")
        options = dict(p.split("=", 1) for p in params if "=" in p)
        name = name.strip().upper()
        if name == "RRULE":
            rule = rrulestr(_rule_in_wall_time(value, zone), dtstart=first)
            if isinstance(rule, rrule):
                rules.rrule(rule)
            has_rule = True
        elif name in ("RDATE", "EXDATE"):
            for moment in _moments(value, options, zone):
                (rules.rdate if name == "RDATE" else rules.exdate)(moment)
    if not has_rule:
        # A master with only RDATEs still has its first instance.
        rules.rdate(first)
    return rules


def _rule_in_wall_time(rule: str, zone: tzinfo | None) -> str:
    """An RRULE whose UNTIL is a wall time (naive), as dateutil wants with a naive DTSTART."""
    parts = []
    for part in rule.split(";"):
        key, equals, value = part.partition("=")
        if key.upper() == "UNTIL":
            value = _wall(value, {}, zone).strftime("%Y%m%dT%H%M%S")
        parts.append(f"{key}{equals}{value}")
    return ";".join(parts)


def _moments(value: str, options: dict[str, str], zone: tzinfo | None) -> Iterator[datetime]:
    for entry in value.split(","):
        text = entry.split("/", 1)[0].strip()  # a PERIOD's start
        if text:
            yield _wall(text, options, zone)


def _wall(text: str, options: dict[str, str], zone: tzinfo | None) -> datetime:
    """An iCalendar DATE or DATE-TIME as a naive wall time in `zone` (dates: midnight)."""
    text = text.strip()
    if len(text) == 8:
        return datetime.strptime(text, "%Y%m%d")
    moment = datetime.strptime(text.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if text[-1:] in "Zz":
        moment = moment.replace(tzinfo=UTC)
    elif options.get("TZID"):
        moment = moment.replace(tzinfo=zone_named(options["TZID"], zone or UTC))
    if moment.tzinfo is None or zone is None:
        return moment.replace(tzinfo=None)
    return moment.astimezone(zone).replace(tzinfo=None)


def _instance_key(original: str) -> date | datetime:
    """`original_start` as a comparable key: a date, or a UTC instant."""
    text = original.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _clip(span: Interval, start: datetime, end: datetime) -> Interval | None:
    low, high = max(span.start, start), min(span.end, end)
    return Interval(low, high) if low < high else None
