"""Writing Outlook events, one path for the API and for the person: create (deduplicated by
`transactionId`), update and delete (conditional on `If-Match`), occurrences turned into exceptions or
cancelled, extended properties merged by id, Teams links where the mailbox has Teams, and a change
notification for every change. Callers hold the state lock."""

from __future__ import annotations

import copy
import re
import secrets
from datetime import timedelta
from typing import Any

from infra.local.sandbox import graph_time, identity
from infra.local.sandbox.core import Reply, Sandbox
from infra.local.sandbox.errors import graph_error
from infra.local.sandbox.graph_notify import notify
from infra.local.sandbox.graph_store import (
    PRIVATE,
    find,
    graph_time_text,
    new_event_id,
    online_meeting_providers,
    stamp,
    store_of,
)

WRITABLE = (
    "subject",
    "body",
    "start",
    "end",
    "location",
    "attendees",
    "isAllDay",
    "showAs",
    "categories",
    "recurrence",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "sensitivity",
)
# What only the person's own acts set (an invitation they answered, from someone else).
PERSON_ONLY = ("responseStatus", "isOrganizer")
_EXPAND = re.compile(r"singleValueExtendedProperties(?:\(\s*\$filter\s*=\s*id\s+eq\s+'([^']*)'\s*\))?", re.I)


def _bad(message: str, code: str = "ErrorInvalidRequest", status: int = 400) -> Reply:
    return Reply(graph_error(status, code, message))


def _check(event: dict[str, Any]) -> None:
    start, end = graph_time.instant(event.get("start"), "start"), graph_time.instant(event.get("end"), "end")
    if end < start:
        raise _bad("The end time must be after the start time.")
    if event.get("isAllDay"):
        for which in ("start", "end"):
            moment, _zone = graph_time.wall(event[which], which)
            if moment.time() != moment.min.time():
                raise _bad("All-day events must start and end at midnight.")
        if end - start < timedelta(days=1):
            raise _bad("An all-day event lasts at least one day.")
    if event.get("recurrence") is not None:
        graph_time.occurrences(event, start + timedelta(days=1))


def _properties(current: list[dict[str, Any]], given: Any) -> list[dict[str, Any]]:
    """Extended properties merged by id (case-insensitive), as Graph does on POST and PATCH."""
    if given is None:
        return current
    if not isinstance(given, list) or not all(
        isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("value"), str)
        for p in given
    ):
        raise _bad("singleValueExtendedProperties must be a list of {id, value} strings.")
    merged = {p["id"].lower(): p for p in current}
    merged.update({p["id"].lower(): {"id": p["id"], "value": p["value"]} for p in given})
    return list(merged.values())


def _meeting(account: str, event: dict[str, Any]) -> None:
    """A Teams link when asked for and the mailbox allows it; otherwise no online meeting."""
    wanted = event.get("isOnlineMeeting") and event.get("onlineMeetingProvider", "teamsForBusiness") in (
        online_meeting_providers(account)
    )
    if not wanted:
        event.update({"isOnlineMeeting": False, "onlineMeeting": None})
        return
    if not event.get("onlineMeeting"):
        meeting = secrets.token_hex(16)
        event["onlineMeeting"] = {
            "joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{meeting}%40thread.v2/0"
        }
    event["onlineMeetingProvider"] = "teamsForBusiness"


def _fields(body: dict[str, Any], person: bool) -> dict[str, Any]:
    allowed = WRITABLE + (PERSON_ONLY if person else ())
    return {k: copy.deepcopy(body[k]) for k in allowed if k in body}


def create(
    sb: Sandbox, account: str, calendar: str, body: dict[str, Any], *, person: bool = False
) -> dict[str, Any]:
    """A new event; a POST repeating a live event's `transactionId` answers that event instead."""
    store = store_of(sb)
    mailbox = store.mailbox(account)
    transaction = body.get("transactionId")
    if isinstance(transaction, str) and transaction:
        for earlier in mailbox.values():
            if earlier.get("transactionId") == transaction:
                return earlier
    event_id = new_event_id()
    now = graph_time_text(sb.now())
    profile = identity.microsoft_profile(account)
    person_address = {"emailAddress": {"name": profile["displayName"], "address": account}}
    event: dict[str, Any] = {
        "id": event_id,
        "createdDateTime": now,
        "subject": "",
        "bodyPreview": "",
        "body": {"contentType": "text", "content": ""},
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "showAs": "busy",
        "type": "singleInstance",
        "seriesMasterId": None,
        "originalStart": None,
        "recurrence": None,
        "transactionId": transaction if isinstance(transaction, str) and transaction else None,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper(),
        "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}",
        "organizer": person_address,
        "attendees": [],
        "location": {"displayName": ""},
        "categories": [],
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "onlineMeeting": None,
        "calendarId": calendar,
        "cancelledStarts": [],
        "singleValueExtendedProperties": [],
    }
    event.update(_fields(body, person))
    if event.get("recurrence") is not None:
        event["type"] = "seriesMaster"
    event["singleValueExtendedProperties"] = _properties([], body.get("singleValueExtendedProperties"))
    _check(event)
    _meeting(account, event)
    stamp(sb, event)
    mailbox[event_id] = event
    notify(sb, account, calendar, event_id, "created", event["@odata.etag"])
    return event


def _precondition(current: dict[str, Any], if_match: str | None) -> None:
    if if_match and if_match.strip() not in ("*", current["@odata.etag"]):
        raise _bad(
            "The change key passed in the request does not match the current change key of the item.",
            "ErrorIrresolvableConflict",
            412,
        )


def update(
    sb: Sandbox,
    account: str,
    event_id: str,
    body: dict[str, Any],
    if_match: str | None,
    *,
    person: bool = False,
) -> dict[str, Any]:
    """PATCH semantics; an occurrence becomes an exception of its series."""
    store = store_of(sb)
    current = find(store, account, event_id)
    _precondition(current, if_match)
    fields = _fields(body, person)
    if current["type"] in ("occurrence", "exception") and "recurrence" in fields:
        raise _bad("An occurrence of a series cannot have its own recurrence.")
    updated = {**copy.deepcopy(current), **fields}
    if current["type"] == "occurrence":
        updated["type"] = "exception"
    if current["type"] == "singleInstance" and updated.get("recurrence") is not None:
        updated["type"] = "seriesMaster"
    updated["singleValueExtendedProperties"] = _properties(
        current.get("singleValueExtendedProperties") or [], body.get("singleValueExtendedProperties")
    )
    _check(updated)
    _meeting(account, updated)
    stamp(sb, updated)
    store.mailbox(account)[event_id] = updated
    notify(sb, account, updated["calendarId"], event_id, "updated", updated["@odata.etag"])
    return updated


def delete(sb: Sandbox, account: str, event_id: str, if_match: str | None) -> dict[str, Any]:
    """Delete an event; for an occurrence or exception, cancel that one instance of its series."""
    store = store_of(sb)
    mailbox = store.mailbox(account)
    current = find(store, account, event_id)
    _precondition(current, if_match)
    if current["type"] in ("occurrence", "exception"):
        master = mailbox[current["seriesMasterId"]]
        master["cancelledStarts"] = [*master.get("cancelledStarts", ()), current["originalStart"]]
        mailbox.pop(event_id, None)
    else:
        del mailbox[event_id]
        if current["type"] == "seriesMaster":
            for exception in [e for e in mailbox.values() if e.get("seriesMasterId") == event_id]:
                del mailbox[exception["id"]]
    notify(sb, account, current["calendarId"], event_id, "deleted", current["@odata.etag"])
    return current


def expanded_ids(expand: str | None) -> tuple[bool, str | None]:
    """Whether `$expand` asks for extended properties, and the one id its `$filter` names."""
    if not expand:
        return False, None
    found = _EXPAND.search(expand)
    if found is None:
        raise _bad(
            f"Could not find a property named '{expand}' on type 'microsoft.graph.event'.", "BadRequest"
        )
    return True, found.group(1)


def present(event: dict[str, Any], zone_name: str, expand: str | None = None) -> dict[str, Any]:
    """An event as the API answers it: times in the preferred zone, extended properties only when
    expanded (and then only the filtered one)."""
    wanted, only = expanded_ids(expand)
    shown = {k: v for k, v in event.items() if k not in PRIVATE}
    all_day = bool(event.get("isAllDay"))
    shown["start"] = graph_time.render(event["start"], all_day, zone_name)
    shown["end"] = graph_time.render(event["end"], all_day, zone_name)
    shown["originalStartTimeZone"] = event["start"].get("timeZone") or "UTC"
    shown["originalEndTimeZone"] = event["end"].get("timeZone") or "UTC"
    if wanted:
        props = event.get("singleValueExtendedProperties") or []
        shown["singleValueExtendedProperties"] = [
            p for p in props if only is None or p["id"].lower() == only.lower()
        ]
    return shown
