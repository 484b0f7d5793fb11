"""Google Calendar writes as Google applies them: ids, etags, patch and replace, deletion, exceptions of
recurring series, Meet links, and the push notification each change sends to the calendar's channels.

Shared by the API handlers (gcal.py) and the routes that act as the person in Google's UI
(gcal_person.py). Callers hold the sandbox state lock.
"""

from __future__ import annotations

import copy
import re
import secrets
from datetime import UTC, datetime
from email.utils import formatdate
from functools import cache
from typing import Any

from infra.local.sandbox import gcal_time
from infra.local.sandbox.core import Reply, Sandbox
from infra.local.sandbox.dialects import display_name, stable_alnum
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.gcal_store import Calendar, CalendarStore, Channel
from infra.local.sandbox.push import Delivery

EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
# Fields a client may set; everything else is Google's.
WRITABLE = (
    "summary",
    "description",
    "location",
    "start",
    "end",
    "status",
    "transparency",
    "visibility",
    "attendees",
    "recurrence",
    "extendedProperties",
    "reminders",
    "colorId",
    "guestsCanModify",
    "guestsCanInviteOthers",
    "guestsCanSeeOtherGuests",
    "source",
)
_STATUSES = ("confirmed", "tentative", "cancelled")
_REMINDERS = {"useDefault": True}


def ensure_account(sb: Sandbox, store: CalendarStore, account: str) -> None:
    """Give a new account its primary, a shared team calendar, a read-only holiday calendar, two events."""
    if any(c.account == account for c in store.calendars.values()):
        return
    team_id = f"c_{stable_alnum(26, 'gcal-team', account).lower()}@group.calendar.google.com"
    for cal in (
        Calendar(account, account, account, "owner", primary=True, watchable=True),
        Calendar(account, team_id, "Team bookings", "writer", primary=False, watchable=True),
        Calendar(
            account,
            "en.usa#holiday@group.v.calendar.google.com",
            "Holidays in United States",
            "reader",
            primary=False,
            watchable=False,
        ),
    ):
        store.calendars[cal.key] = cal
    primary = store.calendars[f"{account}|{account}"]
    day = datetime.fromtimestamp(sb.now(), UTC).strftime("%Y-%m-%d")
    for summary, start, end in (("Team standup", "15:00:00", "15:15:00"), ("Lunch", "17:00:00", "18:00:00")):
        create(
            sb,
            store,
            primary,
            {
                "summary": summary,
                "start": {"dateTime": f"{day}T{start}Z"},
                "end": {"dateTime": f"{day}T{end}Z"},
            },
            notify=False,
        )


def calendar(sb: Sandbox, store: CalendarStore, account: str, calendar_id: str) -> Calendar:
    """The account's calendar (`primary` = the account's own), or Google's 404."""
    ensure_account(sb, store, account)
    cid = account if calendar_id == "primary" else calendar_id
    cal = store.calendars.get(f"{account}|{cid}")
    if cal is None:
        raise Reply(google_error(404, "notFound", "Not Found"))
    return cal


def _people(cal: Calendar) -> tuple[dict[str, Any], dict[str, Any]]:
    return _people_of(cal.account, cal.id, cal.summary, cal.primary)


@cache
def _people_of(
    account: str, calendar_id: str, summary: str, primary: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    # One pair of dicts shared by every event of a calendar (stored events are never mutated): a
    # 100,000-event calendar stays small.
    person = {"email": account, "displayName": display_name(account), "self": True}
    organizer = person if primary else {"email": calendar_id, "displayName": summary, "self": True}
    return person, organizer


def _stamp(sb: Sandbox, store: CalendarStore, cal: Calendar, event: dict[str, Any]) -> dict[str, Any]:
    """Give `event` a new etag and `updated`, and store it as the calendar's latest change."""
    seq = store.next_seq()
    event["etag"] = f'"{seq}"'
    event["updated"] = gcal_time.rfc3339(sb.now())
    cal.put(event, seq, sb.now())
    return event


def _validate(event: dict[str, Any], zone: str) -> None:
    if event.get("status") not in _STATUSES:
        raise Reply(google_error(400, "invalid", "Invalid value for: status"))
    if event.get("transparency", "opaque") not in ("opaque", "transparent"):
        raise Reply(google_error(400, "invalid", "Invalid value for: transparency"))
    props = event.get("extendedProperties")
    if props is not None:
        ok = isinstance(props, dict) and all(
            scope in ("private", "shared")
            and isinstance(values, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
            for scope, values in props.items()
        )
        if not ok:
            raise Reply(google_error(400, "invalid", "Invalid value for: extendedProperties"))
    gcal_time.check_times(event, zone)
    if event.get("recurrence") is not None:
        if not isinstance(event["recurrence"], list):
            raise Reply(google_error(400, "invalid", "Invalid recurrence rule."))
        gcal_time.check_recurrence(event, zone)


def _conference(event: dict[str, Any], body: dict[str, Any], version: str | None) -> None:
    """Meet links: honoured only with conferenceDataVersion=1; a reused requestId is ignored, as at Google."""
    data = body.get("conferenceData")
    request = data.get("createRequest") if isinstance(data, dict) else None
    if version != "1" or not isinstance(request, dict):
        return
    previous = (event.get("conferenceData") or {}).get("createRequest") or {}
    if previous.get("requestId") is not None and previous.get("requestId") == request.get("requestId"):
        return
    seed = str(request.get("requestId") or secrets.token_hex(4))
    letters = "".join(c for c in stable_alnum(40, "meet", event["id"], seed).lower() if c.isalpha())
    code = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
    uri = f"https://meet.google.com/{code}"
    event["conferenceData"] = {
        "createRequest": {**copy.deepcopy(request), "status": {"statusCode": "success"}},
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": uri.removeprefix("https://")}],
        "conferenceSolution": {
            "key": {"type": "hangoutsMeet"},
            "name": "Google Meet",
            "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
        },
        "conferenceId": code,
    }
    event["hangoutLink"] = uri


def create(
    sb: Sandbox,
    store: CalendarStore,
    cal: Calendar,
    body: dict[str, Any],
    *,
    notify: bool = True,
    conference_version: str | None = None,
) -> dict[str, Any]:
    """events.insert: a client-chosen id (base32hex, 5-1024 chars) or a generated one; 409 on reuse."""
    event_id = body.get("id")
    if event_id is not None:
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise Reply(google_error(400, "invalid", "Invalid resource id value."))
        if event_id in cal.events:
            raise Reply(google_error(409, "duplicate", "The requested identifier already exists."))
    else:
        event_id = secrets.token_hex(13).translate(str.maketrans("abcdef", "ghijkl"))
    now = gcal_time.rfc3339(sb.now())
    creator, organizer = _people(cal)
    event: dict[str, Any] = {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": now,
        "creator": creator,
        "organizer": organizer,
        "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
        "sequence": 0,
        "reminders": _REMINDERS,
        "eventType": body.get("eventType", "default"),
    }
    event.update({k: copy.deepcopy(body[k]) for k in WRITABLE if k in body})
    _validate(event, cal.time_zone)
    _conference(event, body, conference_version)
    _stamp(sb, store, cal, event)
    if notify:
        notify_channels(sb, store, cal)
    return event


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge key by key, arrays and scalars replace."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _series_master(sb: Sandbox, cal: Calendar, event_id: str) -> tuple[dict[str, Any], datetime] | None:
    parsed = gcal_time.parse_instance_id(event_id)
    if parsed is None:
        return None
    master = cal.events.get(parsed[0])
    if master is None or master["status"] == "cancelled" or not master.get("recurrence"):
        return None
    now = datetime.fromtimestamp(sb.now(), UTC)
    original = gcal_time.find_original(master, parsed[1], cal.time_zone, now)
    return None if original is None else (master, original)


def find(sb: Sandbox, cal: Calendar, event_id: str) -> dict[str, Any] | None:
    """A stored event, or an instance of a live series that has no exception yet (not stored)."""
    event = cal.events.get(event_id)
    if event is not None:
        return event
    found = _series_master(sb, cal, event_id)
    if found is None:
        return None
    master, original = found
    return gcal_time.instance(master, original, cal.time_zone)


def _existing(sb: Sandbox, cal: Calendar, event_id: str, if_match: str | None) -> dict[str, Any]:
    event = find(sb, cal, event_id)
    if event is None:
        raise Reply(google_error(404, "notFound", "Not Found"))
    if if_match and if_match != "*" and if_match != event["etag"]:
        raise Reply(google_error(412, "conditionNotMet", "Precondition Failed", location="If-Match"))
    return event


def modify(
    sb: Sandbox,
    store: CalendarStore,
    cal: Calendar,
    event_id: str,
    body: dict[str, Any],
    *,
    replace: bool,
    if_match: str | None,
    conference_version: str | None = None,
) -> dict[str, Any]:
    """events.patch (merge) or events.update (replace); on an instance id it stores an exception."""
    event = _existing(sb, cal, event_id, if_match)
    changes = {k: body[k] for k in WRITABLE if k in body}
    if event.get("recurringEventId"):
        # An instance cannot carry its own recurrence.
        changes.pop("recurrence", None)
    if replace:
        updated = {k: v for k, v in event.items() if k not in WRITABLE} | {
            "status": "confirmed",
            "reminders": _REMINDERS,
        }
        updated.update(copy.deepcopy(changes))
    else:
        updated = _merge(event, changes)
    _validate(updated, cal.time_zone)
    if updated.get("start") != event.get("start") or updated.get("end") != event.get("end"):
        updated["sequence"] = int(event.get("sequence", 0)) + 1
    _conference(updated, body, conference_version)
    _stamp(sb, store, cal, updated)
    if updated["status"] == "cancelled" and updated.get("recurrence"):
        _cancel_exceptions(sb, store, cal, updated["id"])
    notify_channels(sb, store, cal)
    return updated


def _cancel_exceptions(sb: Sandbox, store: CalendarStore, cal: Calendar, master_id: str) -> None:
    for exception_id in sorted(cal.exceptions.get(master_id, ())):
        exception = cal.events.get(exception_id)
        if exception is not None and exception["status"] != "cancelled":
            _stamp(sb, store, cal, {**exception, "status": "cancelled"})


def delete(sb: Sandbox, store: CalendarStore, cal: Calendar, event_id: str, if_match: str | None) -> None:
    """events.delete: the event becomes `cancelled` (sync clients see it); a second delete is 410.

    Deleting an instance stores a cancelled exception; deleting a series cancels its exceptions too.
    """
    event = _existing(sb, cal, event_id, if_match)
    if event["status"] == "cancelled":
        raise Reply(google_error(410, "deleted", "Resource has been deleted"))
    _stamp(sb, store, cal, {**event, "status": "cancelled"})
    if event.get("recurrence"):
        _cancel_exceptions(sb, store, cal, event_id)
    notify_channels(sb, store, cal)


# --- Push notifications ----------------------------------------------------------------------------


def deliver(sb: Sandbox, channel: Channel, state: str) -> None:
    """POST one headers-only notification to the channel's address."""
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
        "X-Goog-Message-Number": str(channel.message_number),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": channel.resource_uri,
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    }
    if channel.token is not None:
        headers["X-Goog-Channel-Token"] = channel.token
    sb.pushes.submit(
        Delivery(url=channel.address, headers=headers, body=b"", label=f"google_calendar:{state}")
    )


def notify_channels(sb: Sandbox, store: CalendarStore, cal: Calendar) -> None:
    """Tell every live channel on `cal` that something changed (`exists`); expired channels stay quiet."""
    now_ms = int(sb.now() * 1000)
    for channel in store.channels.values():
        if channel.calendar_key == cal.key and not channel.stopped and channel.expiration_ms > now_ms:
            # Message numbers grow but not one by one (Google documents them as non-sequential).
            channel.message_number += 1 + secrets.randbelow(3)
            deliver(sb, channel, "exists")
