"""iCloud's calendar adapter, for any CalDAV server (RFC 4791) at the catalog's `urls.caldav`.

Pull (calendar-email.md §5.3): a `sync-collection` REPORT (RFC 6578) with the sync-token as the
cursor; it lists changed hrefs with their etags and removed hrefs as 404s, and the bodies of the
changed ones follow in `calendar-multiget` REPORTs of at most PAGE_SIZE hrefs per page. A page token
names the token the pass reads from, the last href done (hrefs are taken in sorted order, so a page
never skips one) and the token to store at the end (the first REPORT's: changes made while paging come
again next time, never lost). A 507 on the collection (truncated answer) continues with the token it
gave. An unknown or expired token (403 / 409 with `DAV:valid-sync-token`) is CursorExpired: the
engine runs a full pass, which lists every member and deletes what it no longer sees.

Servers without sync-collection: the cursor is `ctag:<marker>`, the collection's `CS:getctag` (or,
without one, a digest of every href and etag). An unchanged marker costs one PROPFIND and yields
nothing; a changed one is CursorExpired, so the full pass lists every event and the mirror's diff (by
content hash, and by etag for our own writes) publishes only what really changed.

How events map (recurring series, exceptions, all-day, TRANSP, time zones): see `ical.py`.

Write: PUT `<calendar>/<uid>.ics` with a UID derived from the connection and the appointment, and our
id in `X-INTEGRATIONS-APPOINTMENT-ID`. Create sends `If-None-Match: *` (a redelivered create finds
its own event: 412, then it updates it); update and delete send `If-Match: <etag>`, and on 412 (the
person edited it meanwhile) read the current etag and write again with it: the platform owns the
appointment. Free/busy: a `calendar-query` with a time range, recurrences expanded here (iCloud has no
free-busy-query). Authentication: HTTP Basic with the Apple ID and app-specific password; a 401 means
the password was revoked (reauth).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from integrations import http
from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.sync.calendar import (
    CalendarEvent,
    ChangePage,
    EventStatus,
    FreeBusy,
    OutboundEvent,
    PushedEvent,
)
from integrations.sync.errors import ConfigRequired, CursorExpired

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials

# The calendar a connection reads and writes until the person picks one: the first one discovered.
DEFAULT_CALENDAR = "default"
PAGE_SIZE = 200
TIMEOUT_SECONDS = 20
_CTAG = "ctag:"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_XML = "application/xml; charset=utf-8"
# Characters an href path keeps as they are when quoted again (RFC 3986 pchar and "/").
_HREF_SAFE = "/:@!$&'()*+,;=-._~"
_DAV, _CALDAV, _CS = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}"


def uid_for(connection_id: str, appointment_id: str) -> str:
    """The iCalendar UID (and resource name stem) the same appointment always gets on a connection."""
    digest = hashlib.sha256(f"{connection_id}\0{appointment_id}".encode()).hexdigest()[:32]
    return f"integrations-{digest}"


@dataclass(frozen=True, slots=True)
class _Page:
    """Where a pass is: the token REPORTed from, the last href done, the cursor to store at the end."""

    source: str
    after: str = ""
    keep: str = ""

    def dump(self) -> str:
        return json.dumps(
            {"from": self.source, "after": self.after, "keep": self.keep}, separators=(",", ":")
        )

    @classmethod
    def load(cls, text: str) -> _Page:
        stored = json.loads(text)
        return cls(str(stored.get("from", "")), str(stored.get("after", "")), str(stored.get("keep", "")))


@dataclass(frozen=True, slots=True)
class _Listing:
    """Members of a collection: href → etag (None: removed), the new token, and whether it was cut."""

    members: dict[str, str | None]
    token: str
    truncated: bool = False


class CalDavCalendarAdapter:
    """One connection's CalDAV calendars (calendar ids are the calendars' URLs)."""

    def __init__(
        self,
        spec: ProviderSpec,
        connection_id: str,
        credentials: Callable[[], Credentials],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lookback: timedelta | None = None,
    ) -> None:
        # `lookback` (the sync window's past side) is taken for the factory's shape only: a
        # sync-collection REPORT has no time range, so the engine's window filter does the narrowing.
        del lookback
        self._spec = spec
        self._connection_id = connection_id
        self._credentials = credentials
        self._clock = clock
        self._client: Any = None
        self._account = ""
        self._default: str | None = None
        self._no_sync_collection: set[str] = set()
        # The listing the pass in progress pages through, by (calendar URL, token it was read from).
        self._pass: tuple[tuple[str, str], _Listing] | None = None

    # --- pull ---

    def pull(self, calendar_id: str, cursor: str | None, page: str | None) -> ChangePage:
        """One page of changes since `cursor`; a full listing when it is None."""
        url = self._calendar_url(calendar_id)
        state = _Page.load(page) if page else _Page(source=cursor or "")
        if state.source.startswith(_CTAG):
            return self._check_marker(calendar_id, url, state.source)
        listing = self._pass_listing(calendar_id, url, state.source)
        keep = state.keep or listing.token
        pending = sorted(h for h in listing.members if h > state.after)
        chunk = pending[:PAGE_SIZE]
        events = self._changed(calendar_id, url, {h: listing.members[h] for h in chunk})
        if len(pending) > len(chunk):
            return ChangePage(events, next_page=_Page(state.source, chunk[-1], keep).dump(), full=not cursor)
        self._pass = None
        if listing.truncated:
            # The server cut its answer: read on from the token it gave; store the last one's token.
            return ChangePage(events, next_page=_Page(listing.token).dump(), full=not cursor)
        return ChangePage(events, cursor=keep, full=not cursor)

    def _pass_listing(self, calendar_id: str, url: str, token: str) -> _Listing:
        """The listing from `token`, REPORTed on a pass's first page and kept for its next pages: a
        sync-collection answer lists every change at once, and asking again per page made a pass over
        N changes cost N / PAGE_SIZE listings of all N (tests/bench/caldav_sync.py). A pass resumed in
        a new process asks once again; the page token's `after` href keeps it from repeating a page."""
        if self._pass is not None and self._pass[0] == (url, token):
            return self._pass[1]
        listing = self._listing(calendar_id, url, token)
        self._pass = ((url, token), listing)
        return listing

    def _listing(self, calendar_id: str, url: str, token: str) -> _Listing:
        if url not in self._no_sync_collection:
            answer = self._request(url, "REPORT", _sync_collection(token), {"Depth": "0"})
            if answer.status == 207:
                listing = self._sync_listing(url, answer)
                # A multistatus without a sync-token: the server ignored the REPORT it does not know.
                if listing.token:
                    return listing
            status, body = int(answer.status), str(answer.raw or "")
            if status in (403, 409) and "valid-sync-token" in body:
                raise CursorExpired(f"calendar:{calendar_id}")
            if status in (401, 404, 429) or (status >= 500 and status != 501):
                self._raise_for(answer, calendar_id)
            # Anything else (207 without a token, 400, 403, 405, 501...): no sync-collection here.
            if token:
                # A server that takes no sync-collection never issued this token.
                raise CursorExpired(f"calendar:{calendar_id}")
            self._no_sync_collection.add(url)
        members = self._etags(calendar_id, url)
        return _Listing(members=dict(members), token=_CTAG + self._marker(calendar_id, url, members))

    def _sync_listing(self, url: str, answer: Any) -> _Listing:
        objects = answer.find_objects_and_props()
        members: dict[str, str | None] = {}
        truncated = False
        for href, props in objects.items():
            status = answer.statuses.get(href) or ""
            if _same_path(href, url):
                truncated = truncated or " 507 " in status
                continue
            if " 404 " in status:
                members[href] = None
            else:
                etag = props.get(f"{_DAV}getetag")
                members[href] = etag.text if etag is not None and etag.text else ""
        return _Listing(members, str(getattr(answer, "sync_token", "") or ""), truncated)

    def _check_marker(self, calendar_id: str, url: str, cursor: str) -> ChangePage:
        marker = self._marker(calendar_id, url, None)
        if _CTAG + marker == cursor:
            return ChangePage([], cursor=cursor)
        raise CursorExpired(f"calendar:{calendar_id}", "The calendar changed; reading it again in full.")

    def _marker(self, calendar_id: str, url: str, members: dict[str, str | None] | None) -> str:
        """The collection's ctag, else a digest of its hrefs and etags."""
        answer = self._request(url, "PROPFIND", _propfind("<cs:getctag/>"), {"Depth": "0"})
        self._raise_for(answer, calendar_id)
        for props in answer.find_objects_and_props().values():
            ctag = props.get(f"{_CS}getctag")
            if ctag is not None and ctag.text:
                return str(ctag.text)
        listing = members if members is not None else self._etags(calendar_id, url)
        return hashlib.sha256(json.dumps(sorted(listing.items())).encode()).hexdigest()

    def _etags(self, calendar_id: str, url: str) -> dict[str, str | None]:
        answer = self._request(url, "REPORT", _calendar_query(None, None, data=False), {"Depth": "1"})
        self._raise_for(answer, calendar_id)
        found: dict[str, str | None] = {}
        for href, props in answer.find_objects_and_props().items():
            etag = props.get(f"{_DAV}getetag")
            if not _same_path(href, url):
                found[href] = etag.text if etag is not None and etag.text else ""
        return found

    def _changed(self, calendar_id: str, url: str, members: dict[str, str | None]) -> list[CalendarEvent]:
        """Tombstones for removed hrefs and the events of changed ones (their bodies multigot)."""
        events = [_tombstone(calendar_id, h) for h, etag in members.items() if etag is None]
        wanted = [h for h, etag in members.items() if etag is not None]
        if not wanted:
            return events
        answer = self._request(url, "REPORT", _multiget(wanted), {"Depth": "1"})
        self._raise_for(answer, calendar_id)
        from integrations.providers.icloud_calendar.ical import to_events

        found = {_path(h): props for h, props in answer.find_objects_and_props().items()}
        for href in wanted:
            props = found.get(_path(urljoin(url, href))) or {}
            data = props.get(f"{_CALDAV}calendar-data")
            if data is None or not data.text:
                events.append(_tombstone(calendar_id, href))  # gone between the two REPORTs
                continue
            etag = props.get(f"{_DAV}getetag")
            tag = etag.text if etag is not None and etag.text else members[href]
            events.extend(to_events(calendar_id, _name(href), tag, data.text, self._account_name()))
        return events

    # --- writes ---

    def write(self, calendar_id: str, event: OutboundEvent, existing: PushedEvent | None) -> PushedEvent:
        """Create with If-None-Match: * (idempotent), or update `existing` with If-Match its etag."""
        from integrations.providers.icloud_calendar.ical import to_events, to_ical

        url = self._calendar_url(calendar_id)
        if existing is not None and existing.calendar_id == calendar_id:
            name = existing.external_id
            uid = _uid_of(name)
        else:
            uid = uid_for(self._connection_id, event.appointment_id)
            name = f"{uid}.ics"
        href = urljoin(url, quote(name))
        body = to_ical(uid, event, self._clock()).decode()
        etag = existing.etag if existing is not None and existing.calendar_id == calendar_id else None
        etag = self._put(calendar_id, href, body, etag)
        written = to_events(calendar_id, name, etag, body, self._account_name())
        return PushedEvent(
            appointment_id=event.appointment_id,
            connection_id=self._connection_id,
            calendar_id=calendar_id,
            external_id=name,
            etag=etag,
            written_hash=written[0].change_hash() if written else None,
        )

    def _put(self, calendar_id: str, href: str, body: str, etag: str | None) -> str | None:
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        condition = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        answer = self._request(href, "PUT", body, {**headers, **condition})
        if answer.status == 412:
            # Created by an earlier delivery, or edited by the person since our write: the platform's
            # version wins, still conditionally (on the etag just read), so no third write is lost.
            current = self._current_etag(calendar_id, href)
            condition = {"If-Match": current} if current else {"If-None-Match": "*"}
            answer = self._request(href, "PUT", body, {**headers, **condition})
        self._raise_for(answer, calendar_id, scope=False)
        return _etag_header(answer) or self._current_etag(calendar_id, href)

    def delete(self, pushed: PushedEvent) -> None:
        """DELETE with If-Match; on 412 delete the current version; an event already gone is fine."""
        href = urljoin(self._calendar_url(pushed.calendar_id), quote(pushed.external_id))
        etag = pushed.etag or self._current_etag(pushed.calendar_id, href)
        if etag is None:
            return
        answer = self._request(href, "DELETE", "", {"If-Match": etag})
        if answer.status == 412:
            current = self._current_etag(pushed.calendar_id, href)
            if current is None:
                return
            answer = self._request(href, "DELETE", "", {"If-Match": current})
        if answer.status in (404, 410):
            return
        self._raise_for(answer, pushed.calendar_id, scope=False)

    def _current_etag(self, calendar_id: str, href: str) -> str | None:
        answer = self._request(href, "GET", "", {})
        if answer.status in (404, 410):
            return None
        self._raise_for(answer, calendar_id, scope=False)
        return _etag_header(answer)

    # --- free/busy and names ---

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> FreeBusy:
        """Busy blocks per calendar from a time-range calendar-query, recurrences expanded."""
        from integrations.providers.icloud_calendar.ical import busy_blocks

        result = FreeBusy()
        for calendar_id in calendar_ids:
            try:
                url = self._calendar_url(calendar_id)
                answer = self._request(url, "REPORT", _calendar_query(start, end, data=True), {"Depth": "1"})
                self._raise_for(answer, calendar_id)
                bodies = [
                    str(props[f"{_CALDAV}calendar-data"].text)
                    for props in answer.find_objects_and_props().values()
                    if props.get(f"{_CALDAV}calendar-data") is not None
                ]
                result.busy[calendar_id] = busy_blocks(
                    bodies, start.astimezone(UTC), end.astimezone(UTC), self._account_name()
                )
            except (ProviderUnavailable, ConfigRequired, http.ProviderApiError) as exc:
                result.errors[calendar_id] = getattr(exc, "code", None) or "provider_error"
        return result

    def calendar_name(self, calendar_id: str) -> str:
        url = self._calendar_url(calendar_id)
        answer = self._request(url, "PROPFIND", _propfind("<d:displayname/>"), {"Depth": "0"})
        self._raise_for(answer, calendar_id)
        for props in answer.find_objects_and_props().values():
            name = props.get(f"{_DAV}displayname")
            if name is not None and name.text:
                return str(name.text)
        return calendar_id

    # --- transport ---

    def _calendar_url(self, calendar_id: str) -> str:
        if calendar_id != DEFAULT_CALENDAR:
            _check_url(calendar_id)
            return calendar_id if calendar_id.endswith("/") else calendar_id + "/"
        if self._default is None:
            self._default = self._first_calendar()
        return self._default

    def _first_calendar(self) -> str:
        client = self._dav()
        try:
            found = client.principal().calendars()
        except Exception as exc:
            raise _transport_error(exc) from None
        if not found:
            raise ConfigRequired("The CalDAV account has no calendar to sync.")
        return str(found[0].url)

    def _account_name(self) -> str:
        if not self._account:
            self._account = str(self._credentials().extra.get("username") or "")
        return self._account

    def _dav(self) -> Any:
        if self._client is None:
            from caldav.davclient import DAVClient
            from requests.auth import HTTPBasicAuth

            credentials = self._credentials()
            password = credentials.secrets.get("app_password")
            username = str(credentials.extra.get("username") or "")
            if password is None or not username:
                raise ReauthRequired("This connection has no app-specific password; connect it again.")
            base = self._spec.urls["caldav"]
            _check_url(base)
            self._client = DAVClient(
                url=base,
                auth=HTTPBasicAuth(username, password.get_secret_value()),
                timeout=TIMEOUT_SECONDS,
            )
        return self._client

    def _request(self, url: str, method: str, body: str, headers: dict[str, str]) -> Any:
        """One call through the caldav client's session; the answer parsed by caldav's DAVResponse.
        Not `DAVClient.request`: caldav 1.x turns every 403 into an AuthorizationError and drops the
        body, which is where a server says `valid-sync-token`."""
        from caldav.davclient import DAVResponse

        client = self._dav()
        sent = {**client.headers, **headers}
        if body and "Content-Type" not in headers:
            sent["Content-Type"] = _XML
        try:
            answer = client.session.request(
                method,
                url,
                data=body.encode("utf-8") if body else None,
                headers=sent,
                auth=client.auth,
                timeout=client.timeout,
                verify=client.ssl_verify_cert,
            )
            return DAVResponse(answer, client)
        except Exception as exc:
            raise _transport_error(exc) from None

    def _raise_for(self, answer: Any, calendar_id: str, *, scope: bool = True) -> None:
        """The engine's exception for a failed answer; nothing for a success."""
        status = int(answer.status)
        if status < 300:
            return
        if status == 401:
            raise ReauthRequired("The CalDAV server no longer accepts this app-specific password.")
        if status == 429:
            retry = _retry_after(answer)
            raise http.RateLimited("The CalDAV server is rate limiting requests.", retry_after=retry)
        if status >= 500:
            raise ProviderUnavailable(f"The CalDAV server failed (HTTP {status}).")
        if status == 404 and scope:
            raise ConfigRequired("The chosen calendar no longer exists on the CalDAV server.")
        raise http.ProviderApiError(status, {"error": f"caldav_{status}"})


def _transport_error(exc: Exception) -> Exception:
    from caldav.lib import error as caldav_error

    if isinstance(exc, caldav_error.AuthorizationError):
        return ReauthRequired("The CalDAV server no longer accepts this app-specific password.")
    if isinstance(exc, ReauthRequired | ConfigRequired | ProviderUnavailable):
        return exc
    # Network failures surface as the HTTP library's own exceptions; only their class is kept.
    return ProviderUnavailable(f"The CalDAV server did not answer ({type(exc).__name__}).")


def _retry_after(answer: Any) -> float | None:
    try:
        return float(answer.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    # The password goes only over TLS, except to a loopback server in development and tests.
    if parts.scheme != "https" and (parts.hostname or "") not in _LOOPBACK:
        raise ConfigRequired("The CalDAV calendar must be reached over HTTPS.")


def _etag_header(answer: Any) -> str | None:
    value = answer.headers.get("ETag")
    return str(value) if value else None


def _path(href: str) -> str:
    return unquote(urlsplit(href).path)


def _same_path(href: str, url: str) -> bool:
    return _path(href).rstrip("/") == _path(url).rstrip("/")


def _name(href: str) -> str:
    """A resource's name: its last path segment, unquoted."""
    return _path(href).rstrip("/").rsplit("/", 1)[-1]


def _uid_of(name: str) -> str:
    return name.removesuffix(".ics")


def _tombstone(calendar_id: str, href: str) -> CalendarEvent:
    return CalendarEvent(calendar_id=calendar_id, external_id=_name(href), status=EventStatus.CANCELLED)


def _sync_collection(token: str) -> str:
    tag = f"<d:sync-token>{escape(token)}</d:sync-token>" if token else "<d:sync-token/>"
    return (
        '<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
        f"{tag}<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def _propfind(props: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
        f"<d:prop>{props}</d:prop></d:propfind>"
    )


def _calendar_query(start: datetime | None, end: datetime | None, *, data: bool) -> str:
    # A VEVENT comp-filter always: iCloud rejects a calendar-query without one.
    window = ""
    if start is not None and end is not None:
        first, last = start.astimezone(UTC), end.astimezone(UTC)
        window = f'<c:time-range start="{first:%Y%m%dT%H%M%SZ}" end="{last:%Y%m%dT%H%M%SZ}"/>'
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop><d:getetag/>{'<c:calendar-data/>' if data else ''}</d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f"{window}</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )


def _multiget(hrefs: Sequence[str]) -> str:
    listed = "".join(f"<d:href>{escape(quote(_path(h), safe=_HREF_SAFE))}</d:href>" for h in hrefs)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{listed}</c:calendar-multiget>"
    )


def calendars(connection: Connection) -> list[str]:
    """The calendar a connection reads: the chosen one, or the first one discovered."""
    return [push_calendar(connection)]


def push_calendar(connection: Connection) -> str:
    """Where appointments are written: the chosen calendar's URL, or the first one discovered."""
    chosen = connection.config.get("calendar_url")
    return chosen if isinstance(chosen, str) and chosen else DEFAULT_CALENDAR


ADAPTER = CalDavCalendarAdapter
