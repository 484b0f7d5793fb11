"""Google Calendar times: EventDateTime parsing, RFC 3339 query bounds, and recurrence expansion.

All-day dates are read in the calendar's time zone (never midnight UTC), recurrences are expanded in
`start.timeZone` (calendar-email.md §2.4, §2.11). Instance ids are `<master id>_<UTC start>` for timed
series (`…_20300105T150000Z`) and `<master id>_<date>` for all-day ones (`…_20300105`), as Google
writes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.local.sandbox.core import Reply
from infra.local.sandbox.errors import google_error

# Unbounded series are expanded this far past the later of "now" and the first instance, and never
# beyond this many instances: Google limits expansion of endless series too.
EXPANSION_HORIZON = timedelta(days=2 * 365)
MAX_INSTANCES = 1000


def rfc3339(ts: float) -> str:
    """A sandbox-clock timestamp as Google writes `updated`/`created` (`…T12:00:00.000Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def utc_text(moment: datetime) -> str:
    """An instant as `YYYY-MM-DDTHH:MM:SSZ` (freeBusy answers in UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone_of(name: str, which: str = "start") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Reply(
            google_error(400, "timeZoneInvalid", f"Invalid time zone definition for {which} time.")
        ) from None


def query_instant(raw: str | None, name: str) -> datetime | None:
    """A timeMin/timeMax/updatedMin query value: RFC 3339 with a mandatory offset, else 400."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise Reply(google_error(400, "badRequest", f"Bad Request: invalid {name}")) from None
    if moment.tzinfo is None:
        raise Reply(google_error(400, "badRequest", f"Bad Request: {name} needs a time zone offset"))
    return moment


def is_all_day(value: Any) -> bool:
    return isinstance(value, dict) and "date" in value and "dateTime" not in value


def instant(value: Any, which: str, calendar_zone: str) -> datetime:
    """An EventDateTime as an aware datetime; an all-day date starts at midnight in the calendar's zone."""
    if not isinstance(value, dict) or not ("dateTime" in value or "date" in value):
        raise Reply(google_error(400, "required", f"Missing {which} time."))
    try:
        if is_all_day(value):
            day = date.fromisoformat(str(value["date"]))
            return datetime(day.year, day.month, day.day, tzinfo=zone_of(calendar_zone, which))
        moment = datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise Reply(google_error(400, "invalid", f"Invalid {which} time.")) from None
    if moment.tzinfo is None:
        zone = value.get("timeZone")
        if not zone:
            raise Reply(google_error(400, "invalid", f"Missing time zone definition for {which} time."))
        moment = moment.replace(tzinfo=zone_of(str(zone), which))
    return moment


def span(event: dict[str, Any], calendar_zone: str) -> tuple[datetime, datetime]:
    """The event's [start, end) as aware datetimes."""
    return instant(event.get("start"), "start", calendar_zone), instant(
        event.get("end"), "end", calendar_zone
    )


def check_times(event: dict[str, Any], calendar_zone: str) -> None:
    """400 unless start and end are both dates or both date-times, and end is not before start."""
    start, end = event.get("start"), event.get("end")
    begins, finishes = span(event, calendar_zone)
    if is_all_day(start) != is_all_day(end):
        raise Reply(
            google_error(400, "invalid", "Start and end times must either both be date or both be dateTime.")
        )
    if finishes < begins:
        raise Reply(google_error(400, "timeRangeEmpty", "The specified time range is empty.", "calendar"))
    if event.get("recurrence") and not is_all_day(start) and not (start or {}).get("timeZone"):
        # Google expands a series in start.timeZone and refuses a timed series without one.
        raise Reply(google_error(400, "invalid", "Missing time zone definition for start time."))


def _ruleset(master: dict[str, Any], first: datetime) -> Any:
    from dateutil.rrule import rrulestr

    lines = [str(line) for line in master.get("recurrence") or []]
    try:
        return rrulestr("\n".join(lines), dtstart=first, forceset=True)
    except (ValueError, TypeError):
        raise Reply(google_error(400, "invalid", "Invalid recurrence rule.")) from None


def check_recurrence(master: dict[str, Any], calendar_zone: str) -> None:
    """400 for recurrence lines that are not RRULE/EXRULE/RDATE/EXDATE Google would accept."""
    for line in master.get("recurrence") or []:
        if not isinstance(line, str) or line.split(":", 1)[0].split(";", 1)[0] not in (
            "RRULE",
            "EXRULE",
            "RDATE",
            "EXDATE",
        ):
            raise Reply(google_error(400, "invalid", "Invalid recurrence rule."))
    _ruleset(master, _first_start(master, calendar_zone))


def _first_start(master: dict[str, Any], calendar_zone: str) -> datetime:
    """dtstart for expansion: naive midnight for all-day series, wall-clock in start.timeZone otherwise."""
    start = master["start"]
    if is_all_day(start):
        day = date.fromisoformat(str(start["date"]))
        return datetime(day.year, day.month, day.day)
    moment = instant(start, "start", calendar_zone)
    return moment.astimezone(zone_of(str(start.get("timeZone") or calendar_zone)))


def original_starts(
    master: dict[str, Any], calendar_zone: str, now: datetime, until: datetime | None = None
) -> Iterator[datetime]:
    """Original start of each instance of a series, in order (naive midnight for all-day series)."""
    first = _first_start(master, calendar_zone)
    horizon = max(now, instant(master["start"], "start", calendar_zone)) + EXPANSION_HORIZON
    if until is not None:
        horizon = min(horizon, until)
    all_day = is_all_day(master["start"])
    for count, moment in enumerate(_ruleset(master, first)):
        aware = moment.replace(tzinfo=zone_of(calendar_zone)) if all_day else moment
        if count >= MAX_INSTANCES or aware >= horizon:
            return
        yield moment


def stamp(original: datetime, all_day: bool) -> str:
    """The suffix that names one instance."""
    if all_day:
        return original.strftime("%Y%m%d")
    return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_instance_id(event_id: str) -> tuple[str, str] | None:
    """(master id, stamp) for an instance id, None when the id names no instance."""
    master_id, sep, suffix = event_id.rpartition("_")
    if not sep or not master_id or not (len(suffix) == 8 or (len(suffix) == 16 and suffix.endswith("Z"))):
        return None
    return master_id, suffix


def _edt(moment: datetime, all_day: bool, zone: str | None) -> dict[str, Any]:
    if all_day:
        return {"date": moment.strftime("%Y-%m-%d")}
    out: dict[str, Any] = {"dateTime": moment.isoformat(timespec="seconds")}
    if zone:
        out["timeZone"] = zone
    return out


def instance(master: dict[str, Any], original: datetime, calendar_zone: str) -> dict[str, Any]:
    """The instance of `master` that starts at `original`, as events.instances returns it."""
    all_day = is_all_day(master["start"])
    zone = None if all_day else str(master["start"].get("timeZone") or calendar_zone)
    begins, finishes = span(master, calendar_zone)
    duration = finishes - begins
    if all_day:
        end = original + timedelta(days=duration.days)
    else:
        # Add the duration in UTC so a DST change inside an instance keeps its length.
        end = (original.astimezone(UTC) + duration).astimezone(original.tzinfo)
    out = {k: v for k, v in master.items() if k != "recurrence"}
    out["id"] = f"{master['id']}_{stamp(original, all_day)}"
    out["recurringEventId"] = master["id"]
    out["originalStartTime"] = _edt(original, all_day, zone)
    out["start"] = _edt(original, all_day, zone)
    out["end"] = _edt(end, all_day, zone)
    return out


def find_original(master: dict[str, Any], suffix: str, calendar_zone: str, now: datetime) -> datetime | None:
    """The original start named by an instance-id suffix, if the series has an instance there."""
    all_day = is_all_day(master["start"])
    for original in original_starts(master, calendar_zone, now):
        text = stamp(original, all_day)
        if text == suffix:
            return original
        if text > suffix:
            return None
    return None


def instance_spans(
    master: dict[str, Any], calendar_zone: str, now: datetime, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime, datetime]]:
    """(original start, aware start, aware end) of each instance of a series, in order."""
    begins, finishes = span(master, calendar_zone)
    duration = finishes - begins
    all_day = is_all_day(master["start"])
    zone = zone_of(calendar_zone)
    for original in original_starts(master, calendar_zone, now, until):
        if all_day:
            start = original.replace(tzinfo=zone)
            end = (original + timedelta(days=duration.days)).replace(tzinfo=zone)
        else:
            start = original
            end = (original.astimezone(UTC) + duration).astimezone(original.tzinfo)
        yield original, start, end
