"""Microsoft Graph times: `dateTimeTimeZone` values, the `Prefer: outlook.timezone` header, and
`patternedRecurrence` expansion.

Graph takes IANA or Windows zone names and answers in UTC unless the request prefers a zone
(calendar-email.md §4.2, §4.4). All-day events keep their dates in every zone: their start and end are
midnights of the calendar dates, whatever zone is asked for. Series expand in their start's zone, so a
weekly 10:00 Berlin meeting stays at 10:00 Berlin across daylight-saving changes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.local.sandbox.core import Reply
from infra.local.sandbox.errors import graph_error

# The Windows names Outlook most often writes, as their IANA zones (CLDR windowsZones, territory 001).
WINDOWS_ZONES = {
    "UTC": "UTC",
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
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Endless series are expanded at most this many days from their start (Graph bounds views too).
MAX_EXPANSION_DAYS = 20 * 366
_PREFER_ZONE = re.compile(r'outlook\.timezone\s*=\s*"([^"]+)"', re.I)
_PREFER_PAGE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.I)


def _invalid(message: str) -> Reply:
    return Reply(graph_error(400, "ErrorInvalidRequest", message))


def zone(name: str) -> ZoneInfo:
    """The zone for a Windows or IANA name; 400 in Graph's words for anything else."""
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: "
            f"'{name}'."
        ) from None


def wall(value: Any, which: str) -> tuple[datetime, str]:
    """A `dateTimeTimeZone` as (naive wall time, zone name); 400 when it is not one."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise _invalid(f"Property {which} is required and must be a dateTimeTimeZone.")
    text = value["dateTime"].strip().removesuffix("Z")
    name = value.get("timeZone") or "UTC"
    if not isinstance(name, str):
        raise _invalid(f"Invalid timeZone in {which}.")
    zone(name)
    # Graph writes seven fractional digits; Python reads six.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"Invalid dateTime in {which}.") from None
    return moment.replace(tzinfo=None), name


def instant(value: Any, which: str = "start") -> datetime:
    """A `dateTimeTimeZone` as a UTC instant."""
    moment, name = wall(value, which)
    return moment.replace(tzinfo=zone(name)).astimezone(UTC)


def graph_text(moment: datetime) -> str:
    """Graph's `dateTime` text: no offset, seven fractional digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"


def render(value: dict[str, Any], all_day: bool, zone_name: str) -> dict[str, str]:
    """A stored `dateTimeTimeZone` in the zone the request prefers (all-day dates never move)."""
    moment, name = wall(value, "start")
    if all_day:
        return {"dateTime": graph_text(moment), "timeZone": zone_name}
    shifted = moment.replace(tzinfo=zone(name)).astimezone(zone(zone_name)).replace(tzinfo=None)
    return {"dateTime": graph_text(shifted), "timeZone": zone_name}


def prefer(headers: Any) -> tuple[str, int | None]:
    """The `Prefer` header's zone (UTC when absent) and page size (None when absent); 400 on a bad zone."""
    raw = ",".join(headers.getlist("Prefer")) if hasattr(headers, "getlist") else str(headers or "")
    found = _PREFER_ZONE.search(raw)
    name = found.group(1) if found else "UTC"
    zone(name)
    size = _PREFER_PAGE.search(raw)
    return name, int(size.group(1)) if size else None


def query_instant(raw: str | None, name: str) -> datetime:
    """A `startDateTime`/`endDateTime` query value (UTC when it has no offset); 400 when missing."""
    if not raw:
        raise Reply(
            graph_error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
            )
        )
    try:
        moment = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", raw.replace("z", "Z")))
    except ValueError:
        raise _invalid(f"Invalid {name}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def span(event: dict[str, Any]) -> tuple[datetime, datetime]:
    """An event's [start, end) as UTC instants (all-day: midnights of its dates in its zone)."""
    return instant(event["start"], "start"), instant(event["end"], "end")


def occurrences(master: dict[str, Any], until: datetime) -> list[datetime]:
    """The original starts (UTC) of a series master's occurrences that begin before `until`.

    Supports `daily`, `weekly` (with `daysOfWeek`, `firstDayOfWeek`) and `absoluteMonthly` patterns,
    with `endDate`, `numbered` and `noEnd` ranges.
    """
    recurrence = master.get("recurrence") or {}
    pattern, bounds = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = str(pattern.get("type") or "")
    interval = max(1, int(pattern.get("interval") or 1))
    local, name = wall(master["start"], "start")
    tz = zone(name)
    first = date.fromisoformat(str(bounds.get("startDate") or local.date().isoformat()))
    last = date.fromisoformat(str(bounds["endDate"])) if bounds.get("type") == "endDate" else None
    count = int(bounds.get("numberOfOccurrences") or 0) if bounds.get("type") == "numbered" else 0
    days = {_DAYS.index(d) for d in pattern.get("daysOfWeek") or () if d in _DAYS}
    week_start = _DAYS.index(str(pattern.get("firstDayOfWeek") or "sunday"))
    anchor = first - timedelta(days=(first.weekday() - week_start) % 7)
    found: list[datetime] = []
    for offset in range(MAX_EXPANSION_DAYS):
        day = first + timedelta(days=offset)
        if last is not None and day > last:
            break
        if kind == "daily":
            hit = offset % interval == 0
        elif kind == "weekly":
            hit = ((day - anchor).days // 7) % interval == 0 and day.weekday() in (days or {first.weekday()})
        elif kind == "absoluteMonthly":
            months = (day.year - first.year) * 12 + day.month - first.month
            hit = months % interval == 0 and day.day == int(pattern.get("dayOfMonth") or first.day)
        else:
            raise _invalid(f"Unsupported recurrence pattern type '{kind}'.")
        if not hit:
            continue
        moment = datetime.combine(day, local.time()).replace(tzinfo=tz).astimezone(UTC)
        if moment >= until:
            break
        found.append(moment)
        if count and len(found) >= count:
            break
    return found


def utc_text(moment: datetime) -> str:
    """An instant as `YYYY-MM-DDTHH:MM:SSZ` (Graph's `originalStart`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
