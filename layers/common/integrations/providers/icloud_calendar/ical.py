"""iCalendar (RFC 5545) bodies to and from the mirror's model, for the CalDAV adapter.

Read: one CalDAV resource holds one VCALENDAR whose VEVENTs share a UID: the master (with its
RRULE / RDATE / EXDATE) and any number of overrides (`RECURRENCE-ID`). They map to the mirror as

- the master: one CalendarEvent whose external id is the resource's name (its last path segment, so a
  deletion seen only as a 404 href still names it), with the recurrence lines as text;
- each override: its own CalendarEvent `<name>#<recurrence-id>` with `series_id` = the master's id
  and `original_start` = the instance it replaces (UTC `YYYY-MM-DDTHH:MM:SSZ`, or a date);
- each EXDATE (an instance deleted in Apple Calendar and most clients) and each override with
  STATUS:CANCELLED: a cancelled exception with that same id, so it also replaces an override the
  person had edited before deleting the instance.

Times with a TZID are converted to UTC and keep the zone name (`time_zone`); floating times are read
as UTC; all-day events (`VALUE=DATE`) keep dates with an exclusive end. TRANSP:TRANSPARENT is free,
anything else busy; the person's own PARTSTAT=DECLINED is `declined`.

Write: one VEVENT with our UID, times in the appointment's zone with its VTIMEZONE, and our id in the
`X-INTEGRATIONS-APPOINTMENT-ID` property. Imported only by the CalDAV adapter (icalendar's import
cost is paid where it is used).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from integrations.sync.calendar import BusyBlock, CalendarEvent, EventStatus, OutboundEvent

APPOINTMENT_PROPERTY = "X-INTEGRATIONS-APPOINTMENT-ID"
PRODID = "-//integrations//calendar sync//EN"
_RECURRENCE = ("RRULE", "RDATE", "EXDATE")
_STATUSES = {
    "CONFIRMED": EventStatus.CONFIRMED,
    "TENTATIVE": EventStatus.TENTATIVE,
    "CANCELLED": EventStatus.CANCELLED,
}


def to_events(calendar_id: str, name: str, etag: str | None, data: str, account: str) -> list[CalendarEvent]:
    """The mirror's events for one resource (master, overrides and cancelled instances)."""
    calendar = icalendar.Calendar.from_ical(data)
    events = [c for c in calendar.walk("VEVENT")]
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    overrides = [e for e in events if "RECURRENCE-ID" in e]
    found: list[CalendarEvent] = []
    master = masters[0] if masters else None
    if master is not None:
        found.append(_event(calendar_id, name, etag, master, account))
        found.extend(_excluded(calendar_id, name, etag, master))
    for override in overrides:
        original = _instance_key(override.decoded("RECURRENCE-ID"))
        event = _event(calendar_id, f"{name}#{original[1]}", etag, override, account)
        found.append(
            event.model_copy(
                update={"series_id": name, "original_start": original[0], "recurrence": ()}
                # An override of a cancelled series instance stays a (cancelled) exception.
            )
        )
    return found


def _event(calendar_id: str, external_id: str, etag: str | None, vevent: Any, account: str) -> CalendarEvent:
    start_value = vevent.decoded("DTSTART")
    end_value = _end(vevent, start_value)
    status_text = str(vevent.get("STATUS", "CONFIRMED")).upper()
    timed = isinstance(start_value, datetime)
    private = vevent.get(APPOINTMENT_PROPERTY)
    return CalendarEvent(
        calendar_id=calendar_id,
        external_id=external_id,
        status=EventStatus.CANCELLED
        if status_text == "CANCELLED"
        else _STATUSES.get(status_text, EventStatus.CONFIRMED),
        start=_utc(start_value) if timed else None,
        end=_utc(end_value) if timed else None,
        start_date=None if timed else start_value,
        end_date=None if timed else end_value,
        time_zone=_zone_name(vevent["DTSTART"], start_value),
        busy=str(vevent.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT",
        title=str(vevent.get("SUMMARY", "")),
        recurrence=tuple(_recurrence_lines(vevent)),
        declined=_declined(vevent, account),
        etag=etag,
        updated=_utc(vevent.decoded("LAST-MODIFIED")) if "LAST-MODIFIED" in vevent else None,
        appointment_id=str(private) if private else None,
    )


def _excluded(calendar_id: str, name: str, etag: str | None, master: Any) -> list[CalendarEvent]:
    """EXDATEs as cancelled exceptions of the series."""
    start_value = master.decoded("DTSTART")
    length = _end(master, start_value) - start_value
    out: list[CalendarEvent] = []
    for moment in _exdates(master):
        key, compact = _instance_key(moment)
        span: dict[str, Any] = (
            {"start": _utc(moment), "end": _utc(moment + length)}
            if isinstance(moment, datetime)
            else {"start_date": moment, "end_date": moment + length}
        )
        out.append(
            CalendarEvent(
                calendar_id=calendar_id,
                external_id=f"{name}#{compact}",
                status=EventStatus.CANCELLED,
                series_id=name,
                original_start=key,
                etag=etag,
                **span,
            )
        )
    return out


def _exdates(master: Any) -> Iterable[date | datetime]:
    values = master.get("EXDATE")
    entries = [] if values is None else values if isinstance(values, list) else [values]
    for entry in entries:
        for item in entry.dts:
            yield item.dt


def _end(vevent: Any, start: date | datetime) -> Any:
    if "DTEND" in vevent:
        return vevent.decoded("DTEND")
    if "DURATION" in vevent:
        return start + vevent.decoded("DURATION")
    # RFC 5545 §3.6.1: no end means a one-day event for a date, a zero-length one for a time.
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _utc(value: datetime) -> datetime:
    # Floating times (no zone) are read as UTC: the account's zone is not known here.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _zone_name(prop: Any, value: date | datetime) -> str | None:
    tzid = prop.params.get("TZID")
    if tzid and _is_iana(str(tzid)):
        return str(tzid)
    key = getattr(getattr(value, "tzinfo", None), "key", None)
    return str(key) if key else None


def _is_iana(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return True


def _instance_key(value: date | datetime) -> tuple[str, str]:
    """An instance's start as `original_start` and as the compact id suffix."""
    if isinstance(value, datetime):
        moment = _utc(value)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y%m%dT%H%M%SZ")
    return value.isoformat(), value.strftime("%Y%m%d")


def _recurrence_lines(vevent: Any) -> list[str]:
    lines: list[str] = []
    for name in _RECURRENCE:
        values = vevent.get(name)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            params = "".join(f";{k}={v}" for k, v in value.params.items())
            lines.append(f"{name}{params}:{value.to_ical().decode()}")
    return lines


def _declined(vevent: Any, account: str) -> bool:
    attendees = vevent.get("ATTENDEE")
    if attendees is None or not account:
        return False
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        address = str(attendee).removeprefix("mailto:").removeprefix("MAILTO:")
        if address.lower() == account.lower() and str(attendee.params.get("PARTSTAT", "")).upper() == (
            "DECLINED"
        ):
            return True
    return False


# --- write ---


def to_ical(uid: str, event: OutboundEvent, now: datetime) -> bytes:
    """One VCALENDAR with the appointment as a VEVENT, in its own zone with the VTIMEZONE."""
    zone = ZoneInfo(event.time_zone)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    vevent = icalendar.Event()
    vevent.add("UID", uid)
    vevent.add("DTSTAMP", now.astimezone(UTC))
    vevent.add("DTSTART", event.start.astimezone(zone))
    vevent.add("DTEND", event.end.astimezone(zone))
    vevent.add("SUMMARY", event.title)
    if event.description:
        vevent.add("DESCRIPTION", event.description)
    if event.location:
        vevent.add("LOCATION", event.location)
    for address in event.attendees:
        vevent.add("ATTENDEE", f"mailto:{address}")
    vevent.add(APPOINTMENT_PROPERTY, event.appointment_id)
    calendar.add_component(vevent)
    calendar.add_missing_timezones()
    data: bytes = calendar.to_ical()
    return data


# --- free/busy ---


def busy_blocks(bodies: Sequence[str], start: datetime, end: datetime, account: str) -> list[BusyBlock]:
    """The busy instances of these resources within [start, end), recurrences expanded."""
    import recurring_ical_events  # type: ignore[import-untyped]

    blocks: list[BusyBlock] = []
    for body in bodies:
        calendar = icalendar.Calendar.from_ical(body)
        for instance in recurring_ical_events.of(calendar).between(start, end):
            if str(instance.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
                continue
            if str(instance.get("STATUS", "")).upper() == "CANCELLED" or _declined(instance, account):
                continue
            first = instance.decoded("DTSTART")
            last = _end(instance, first)
            begin, finish = _as_instant(first), _as_instant(last)
            if finish > start and begin < end:
                blocks.append(BusyBlock(start=max(begin, start), end=min(finish, end)))
    return sorted(blocks, key=lambda b: (b.start, b.end))


def _as_instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    # An all-day event blocks the day in UTC here; availability applies the owner's zone.
    return datetime(value.year, value.month, value.day, tzinfo=UTC)
