"""What the Google Calendar stand-in remembers: calendars, their change logs, watch channels, and the
opaque sync and page tokens.

Every write gets the next store-wide sequence number. A calendar keeps `(seq, event id)` pairs in seq
order (its change log), so a sync token only has to carry the seq it was issued at: "what changed
since" is a bisect plus a walk forward, and a page of a full sync is a walk from a cursor. Listing costs
O(page), not O(calendar), which is what lets one calendar hold 100,000 events.

Stored event dicts are never mutated once stored: a write stores a new dict, so a page can be
serialised outside the lock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from infra.local.sandbox.core import Sandbox

# A change log is compacted once stale entries outnumber live ones by this much.
_COMPACT_SLACK = 1024


@dataclass
class Calendar:
    """One calendar of one account, with its events and change log."""

    account: str
    id: str
    summary: str
    access_role: str
    primary: bool
    watchable: bool
    time_zone: str = "America/New_York"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    # event id -> seq of its last change
    changed_at: dict[str, int] = field(default_factory=dict)
    # (seq, event id) in seq order; an entry is live while changed_at[id] == seq
    log: list[tuple[int, str]] = field(default_factory=list)
    # master id -> ids of its stored exceptions
    exceptions: dict[str, set[str]] = field(default_factory=dict)
    # Sync tokens carry the epoch they were issued in; the expiry switch bumps it.
    token_epoch: int = 0
    updated: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.account}|{self.id}"

    @property
    def writable(self) -> bool:
        return self.access_role in ("owner", "writer")

    def put(self, event: dict[str, Any], seq: int, now: float) -> None:
        """Store `event` as changed at `seq` (the caller already stamped it)."""
        event_id = event["id"]
        self.events[event_id] = event
        self.changed_at[event_id] = seq
        self.log.append((seq, event_id))
        self.updated = now
        master = event.get("recurringEventId")
        if master:
            self.exceptions.setdefault(master, set()).add(event_id)
        if len(self.log) > 2 * len(self.changed_at) + _COMPACT_SLACK:
            self.log = [(s, i) for s, i in self.log if self.changed_at.get(i) == s]

    def entries_from(self, seq: int, upto: int) -> Iterator[tuple[int, str]]:
        """Live (seq, id) pairs with `seq` <= their seq <= `upto`, oldest change first."""
        log = self.log
        start = bisect_left(log, (seq, ""))
        for index in range(start, len(log)):
            entry_seq, event_id = log[index]
            if entry_seq > upto:
                return
            if self.changed_at.get(event_id) == entry_seq:
                yield entry_seq, event_id


@dataclass
class Channel:
    """An events.watch channel on one calendar."""

    id: str
    resource_id: str
    resource_uri: str
    token: str | None
    address: str
    expiration_ms: int
    client_id: str
    account: str
    calendar_key: str
    message_number: int = 1
    stopped: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "address": self.address,
            "expiration": str(self.expiration_ms),
            "account": self.account,
            "calendar": self.calendar_key.split("|", 1)[1],
            "messageNumber": self.message_number,
            "stopped": self.stopped,
        }


@dataclass(frozen=True, slots=True)
class SyncPoint:
    """What a sync token says: the calendar, the seq it was issued at, when, and in which epoch."""

    calendar_key: str
    seq: int
    issued_at: float
    epoch: int


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: the first live entry at or after `seq`, skipping `skip` items of it
    when it is exactly `seq` (a series expanded into more instances than one page holds). Ordered
    listings (orderBy=startTime) use `offset` instead. `upto` is the seq the listing was started at:
    later changes belong to the next sync token.
    """

    calendar_key: str
    seq: int
    skip: int
    upto: int
    query: str
    offset: int = 0


class TokenCodec:
    """Opaque, tamper-evident tokens (HMAC with a key that dies with the store, so a reset kills them)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def seal(self, payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def open(self, token: str) -> dict[str, Any] | None:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        mac, raw = blob[:12], blob[12:]
        if len(mac) < 12 or not hmac.compare_digest(
            mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        ):
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def sync_token(self, point: SyncPoint) -> str:
        return self.seal(
            {"k": "s", "c": point.calendar_key, "s": point.seq, "t": point.issued_at, "e": point.epoch}
        )

    def read_sync_token(self, token: str) -> SyncPoint | None:
        data = self.open(token)
        if data is None or data.get("k") != "s":
            return None
        try:
            return SyncPoint(str(data["c"]), int(data["s"]), float(data["t"]), int(data["e"]))
        except (KeyError, TypeError, ValueError):
            return None

    def page_token(self, cursor: Cursor) -> str:
        return self.seal(
            {
                "k": "p",
                "c": cursor.calendar_key,
                "s": cursor.seq,
                "n": cursor.skip,
                "u": cursor.upto,
                "q": cursor.query,
                "o": cursor.offset,
            }
        )

    def read_page_token(self, token: str) -> Cursor | None:
        data = self.open(token)
        if data is None or data.get("k") != "p":
            return None
        try:
            return Cursor(
                str(data["c"]), int(data["s"]), int(data["n"]), int(data["u"]), str(data["q"]), int(data["o"])
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class CalendarStore:
    """Every account's calendars and channels. Callers hold the sandbox state lock."""

    calendars: dict[str, Calendar] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    tokens: TokenCodec = field(default_factory=TokenCodec)
    seq: int = 1000

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def account_calendars(self, account: str) -> list[Calendar]:
        return [c for c in self.calendars.values() if c.account == account]


def store_of(sb: Sandbox) -> CalendarStore:
    """The calendar store (callers hold the state lock)."""
    store = sb.state.extensions.get("gcal")
    if not isinstance(store, CalendarStore):
        store = CalendarStore()
        sb.state.extensions["gcal"] = store
    return store
