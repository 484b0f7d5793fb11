"""Microsoft Graph's event resource read into the mirror's model, and the tags our writes carry.

How Graph's shapes map (calendar-email.md §4.4): times are `dateTimeTimeZone` values, UTC under our
`Prefer: outlook.timezone="UTC"` header (zone names may be IANA or Windows); `isAllDay` events keep
their dates with an exclusive end; `showAs` free or workingElsewhere is not busy; a declined invitation
says so in `responseStatus`; occurrences and exceptions name their series (`seriesMasterId`) and the
instance they stand for (`originalStart`); `@removed` entries are deletions; series masters are skipped
(calendarView expands them). Our appointment id is read from our extended property when the answer
carries it, else from the `transactionId` of our create (delta cannot `$expand`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.providers.support import text
from integrations.sync.calendar import CalendarEvent, EventStatus

# Our id as a single-value extended property: a String property in our own property set (a fixed
# GUID), so no other app's property can collide with it.
PROPERTY_SET = "{5c8d4f3e-9a1b-4e6f-8d2c-7b3a1f0e9c64}"
APPOINTMENT_PROPERTY = f"String {PROPERTY_SET} Name integrations_appointment_id"
# The transactionId of our creates: this prefix, a digest of the calendar, `:`, the appointment id.
TRANSACTION_PREFIX = "integrations-appointment:"
_NOT_BUSY = frozenset({"free", "workingElsewhere"})
# The Windows zone names Outlook most often reports, as IANA zones (CLDR windowsZones, territory 001).
_WINDOWS_ZONES = {
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


def transaction_id(calendar_id: str, appointment_id: str) -> str:
    """The transactionId of an appointment's create on one calendar: a retry sends the same one, and
    a copy made on another calendar (the person chose a new one) is not mistaken for the old event."""
    calendar = hashlib.sha256(calendar_id.encode()).hexdigest()[:12]
    return f"{TRANSACTION_PREFIX}{calendar}:{appointment_id}"


def to_event(calendar_id: str, item: Any) -> CalendarEvent | None:
    """Graph's event resource (or an `@removed` entry) as the mirror's model; None for an item to
    skip (no id, or a series master)."""
    if not isinstance(item, dict) or not text(item.get("id")):
        return None
    if "@removed" in item:
        return CalendarEvent(
            calendar_id=calendar_id, external_id=text(item["id"]), status=EventStatus.CANCELLED
        )
    kind = text(item.get("type")) or "singleInstance"
    if kind == "seriesMaster":
        return None
    all_day = bool(item.get("isAllDay"))
    start, end = item.get("start") or {}, item.get("end") or {}
    in_series = kind in ("occurrence", "exception")
    response = item.get("responseStatus") if isinstance(item.get("responseStatus"), dict) else {}
    return CalendarEvent(
        calendar_id=calendar_id,
        external_id=text(item.get("id")),
        status=EventStatus.CANCELLED if item.get("isCancelled") else EventStatus.CONFIRMED,
        start=None if all_day else instant(start),
        end=None if all_day else instant(end),
        start_date=_day(start) if all_day else None,
        end_date=_day(end) if all_day else None,
        time_zone=iana(text(item.get("originalStartTimeZone"))),
        busy=text(item.get("showAs")) not in _NOT_BUSY,
        title=text(item.get("subject")),
        series_id=(text(item.get("seriesMasterId")) or None) if in_series else None,
        original_start=_original(item.get("originalStart")) if in_series else None,
        declined=text((response or {}).get("response")) == "declined",
        etag=text(item.get("@odata.etag")) or None,
        updated=instant({"dateTime": item["lastModifiedDateTime"]})
        if item.get("lastModifiedDateTime")
        else None,
        appointment_id=_appointment_of(item),
    )


def _appointment_of(item: dict[str, Any]) -> str | None:
    """Our id: from the extended property when the answer carries it, else from our transactionId."""
    for prop in item.get("singleValueExtendedProperties") or ():
        if isinstance(prop, dict) and text(prop.get("id")).lower() == APPOINTMENT_PROPERTY.lower():
            return text(prop.get("value")) or None
    transaction = text(item.get("transactionId"))
    if not transaction.startswith(TRANSACTION_PREFIX):
        return None
    _calendar, _, appointment_id = transaction.removeprefix(TRANSACTION_PREFIX).partition(":")
    return appointment_id or None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def instant(value: dict[str, Any]) -> datetime:
    """A `dateTimeTimeZone` (UTC by our Prefer header, unless it names a zone) as a UTC instant."""
    raw = _FRACTION.sub(r"\1", text(value.get("dateTime")).removesuffix("Z"))
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(text(value.get("timeZone")) or "UTC"))
    return moment.astimezone(UTC)


def _day(value: dict[str, Any]) -> date:
    return datetime.fromisoformat(_FRACTION.sub(r"\1", text(value.get("dateTime")))).date()


def zone(name: str) -> ZoneInfo:
    """The zone for a Graph zone name; UTC when it is unknown."""
    return ZoneInfo(iana(name) or "UTC")


def iana(name: str) -> str | None:
    """The IANA zone for a Graph zone name (IANA or a common Windows name); None when unknown."""
    candidate = _WINDOWS_ZONES.get(name, name)
    if not candidate:
        return None
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def _original(value: Any) -> str | None:
    if not value:
        return None
    moment = datetime.fromisoformat(_FRACTION.sub(r"\1", str(value)).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
