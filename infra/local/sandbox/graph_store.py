"""What the Microsoft Graph stand-in remembers: subscriptions, events per mailbox, delta rounds.

Events are stored as Outlook keeps them: single events, series masters (with `patternedRecurrence`),
and exceptions (an edited occurrence, stored under the occurrence's id). A cancelled occurrence is
remembered on its master. Occurrences are not stored: `instances()` makes them from the master for a
window, with ids and etags that are stable until the master or the occurrence changes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.local.sandbox import graph_time, identity
from infra.local.sandbox.core import Reply, Sandbox
from infra.local.sandbox.dialects import stable_alnum
from infra.local.sandbox.errors import graph_error

_CALENDARS = (("Calendar", True, True), ("Work", False, True), ("Birthdays", False, False))
# Mailboxes of these domains are personal Microsoft accounts: no Teams for business meetings.
PERSONAL_DOMAINS = frozenset({"outlook.com", "hotmail.com", "live.com", "msn.com"})
# Delta states kept per store; an older deltaLink answers 410 syncStateNotFound, as at Graph.
MAX_DELTA_STATES = 5000
# Keys of a stored event that never reach a caller as such.
PRIVATE = frozenset({"calendarId", "cancelledStarts", "singleValueExtendedProperties"})


def calendar_id(account: str, name: str) -> str:
    """The id `/me/calendars` gives the calendar called `name` (stable per account)."""
    return "AAMk" + stable_alnum(40, "ms-calendar", account, name)


def default_calendar_id(account: str) -> str:
    return calendar_id(account, _CALENDARS[0][0])


def writable_calendars(account: str) -> dict[str, bool]:
    """Calendar id -> whether the person can write to it."""
    return {calendar_id(account, name): can_edit for name, _default, can_edit in _CALENDARS}


def online_meeting_providers(account: str) -> list[str]:
    """What a calendar of this mailbox allows: Teams for work accounts, Skype for personal ones."""
    personal = account.rsplit("@", 1)[-1].lower() in PERSONAL_DOMAINS
    return ["skypeForConsumer"] if personal else ["teamsForBusiness"]


def calendar_resource(account: str, chosen: str) -> dict[str, Any]:
    """The `calendar` resource Graph answers for one of the mailbox's calendars."""
    owner = {"name": identity.microsoft_profile(account)["displayName"], "address": account}
    for name, default, can_edit in _CALENDARS:
        if calendar_id(account, name) == chosen:
            providers = online_meeting_providers(account)
            return {
                "id": chosen,
                "name": name,
                "isDefaultCalendar": default,
                "canEdit": can_edit,
                "allowedOnlineMeetingProviders": providers,
                "defaultOnlineMeetingProvider": providers[0],
                "owner": owner,
            }
    raise not_found()


def not_found() -> Reply:
    return Reply(graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store."))


@dataclass
class DeltaState:
    """What a deltaLink remembers: the window, and the version of every instance it has handed out."""

    account: str
    calendar: str
    start: datetime
    end: datetime
    epoch: int
    seen: dict[str, str]


@dataclass
class DeltaRound:
    """A round being paged through: its items, and the state its deltaLink will name."""

    items: list[dict[str, Any]]
    state: str
    epoch: int
    account: str


@dataclass
class GraphStore:
    subscriptions: dict[str, Any] = field(default_factory=dict)
    # account -> event id -> stored event (singles, masters, exceptions)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    handshakes: list[Any] = field(default_factory=list)
    # account -> epoch; the expiry switch bumps it and every older delta or skip token answers 410
    delta_epochs: dict[str, int] = field(default_factory=dict)
    delta_states: dict[str, DeltaState] = field(default_factory=dict)
    rounds: dict[str, DeltaRound] = field(default_factory=dict)

    def mailbox(self, account: str) -> dict[str, dict[str, Any]]:
        return self.events.setdefault(account, {})

    def epoch(self, account: str) -> int:
        return self.delta_epochs.get(account, 0)

    def keep_state(self, state: DeltaState) -> str:
        token = secrets.token_urlsafe(24)
        self.delta_states[token] = state
        while len(self.delta_states) > MAX_DELTA_STATES:
            del self.delta_states[next(iter(self.delta_states))]
        return token


def store_of(sb: Sandbox) -> GraphStore:
    """The Graph store (callers hold the state lock)."""
    store = sb.state.extensions.get("graph")
    if not isinstance(store, GraphStore):
        store = GraphStore()
        sb.state.extensions["graph"] = store
    return store


def graph_time_text(ts: float) -> str:
    """Graph's UTC timestamps: seven fractional digits and a `Z`."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def stamp(sb: Sandbox, event: dict[str, Any]) -> None:
    """A new version: fresh changeKey and etag, lastModifiedDateTime now."""
    change_key = secrets.token_urlsafe(12)
    event["changeKey"] = change_key
    event["@odata.etag"] = f'W/"{change_key}"'
    event["lastModifiedDateTime"] = graph_time_text(sb.now())


def new_event_id() -> str:
    return "AAMkAG" + secrets.token_urlsafe(33).replace("-", "A").replace("_", "B") + "="


def occurrence_id(master_id: str, original: datetime) -> str:
    """The id of one occurrence of a series (stable; Graph's are opaque too)."""
    return "AAMkAGO" + stable_alnum(44, "ms-occurrence", master_id, graph_time.utc_text(original)) + "="


def _occurrence(master: dict[str, Any], original: datetime) -> dict[str, Any]:
    start, end = graph_time.span(master)
    length = end - start
    zone_name = master["start"].get("timeZone") or "UTC"
    tz = graph_time.zone(zone_name)
    local = original.astimezone(tz).replace(tzinfo=None)
    local_end = (original + length).astimezone(tz).replace(tzinfo=None)
    version = hashlib.sha256(f"{master['changeKey']}|{original.isoformat()}".encode()).hexdigest()[:16]
    return {
        **master,
        "id": occurrence_id(master["id"], original),
        "type": "occurrence",
        "seriesMasterId": master["id"],
        "originalStart": graph_time.utc_text(original),
        "recurrence": None,
        "start": {"dateTime": graph_time.graph_text(local), "timeZone": zone_name},
        "end": {"dateTime": graph_time.graph_text(local_end), "timeZone": zone_name},
        "changeKey": version,
        "@odata.etag": f'W/"{version}"',
        "iCalUId": master["iCalUId"] + version[:8].upper(),
    }


def _overlaps(event: dict[str, Any], start: datetime, end: datetime) -> bool:
    first, last = graph_time.span(event)
    return first < end and (last > start or (first == last and first >= start))


def instances(
    store: GraphStore, account: str, calendar: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """What a calendar view of [start, end) shows: singles, occurrences and exceptions, by start."""
    mailbox = store.mailbox(account)
    found: list[dict[str, Any]] = []
    for event in mailbox.values():
        if event["calendarId"] != calendar or event["type"] == "exception":
            continue
        if event["type"] == "singleInstance":
            if _overlaps(event, start, end):
                found.append(event)
            continue
        cancelled = set(event.get("cancelledStarts") or ())
        for original in graph_time.occurrences(event, end):
            key = graph_time.utc_text(original)
            if key in cancelled:
                continue
            exception = mailbox.get(occurrence_id(event["id"], original))
            item = exception if exception is not None else _occurrence(event, original)
            if _overlaps(item, start, end):
                found.append(item)
    found.sort(key=lambda e: (graph_time.span(e)[0], e["id"]))
    return found


def find(store: GraphStore, account: str, event_id: str) -> dict[str, Any]:
    """A stored event, or an occurrence made from its master (404 when neither)."""
    mailbox = store.mailbox(account)
    stored = mailbox.get(event_id)
    if stored is not None:
        return stored
    if event_id.startswith("AAMkAGO"):
        for master in mailbox.values():
            if master["type"] != "seriesMaster":
                continue
            for original in graph_time.occurrences(master, datetime.max.replace(tzinfo=UTC)):
                if occurrence_id(master["id"], original) == event_id:
                    if graph_time.utc_text(original) in (master.get("cancelledStarts") or ()):
                        raise not_found()
                    return _occurrence(master, original)
    raise not_found()
