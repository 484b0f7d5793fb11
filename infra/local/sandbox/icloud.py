"""iCloud's CalDAV server: Basic auth with an app-specific password in front of a real CalDAV server.

Like iCloud, only app-specific passwords are accepted: four groups of four lower-case letters
(`abcd-efgh-ijkl-mnop`); anything else, an account password included, is a 401. Behind that check
every CalDAV request (discovery PROPFINDs, REPORTs with sync-collection, multiget and calendar-query,
PUT / GET / DELETE with etags) is relayed to Radicale (infra.local.radicale), started on a free
loopback port the first time an iCloud route is called. Each Apple ID is a numeric account (its
"dsid", as iCloud's principals are) that comes with the calendars Home, Work and Family, at
`/icloud/<dsid>/calendars/<name>/` (Radicale's `/<dsid>/<name>/`: paths and hrefs are mapped both ways).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import weakref
from urllib.parse import quote

import requests
from werkzeug.wrappers import Request, Response

from infra.local.radicale import RadicaleServer
from infra.local.sandbox.core import Route, Sandbox

APP_PASSWORD = re.compile(r"^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$")
BASE = "/icloud"
# Slug → display name, in the order the account lists them (as the person arranged them in iCloud).
CALENDARS = {"home": "Home", "work": "Work", "family": "Family"}
METHODS = ("PROPFIND", "PROPPATCH", "OPTIONS", "REPORT", "GET", "HEAD", "PUT", "DELETE", "MKCALENDAR")
_FORWARDED_REQUEST = ("Depth", "If-Match", "If-None-Match", "Content-Type", "Prefer", "Brief")
_FORWARDED_ANSWER = ("Content-Type", "ETag", "DAV", "Allow", "Last-Modified")
_SAFE = "/:@!$&'()*+,;=-._~"
_RESPONSE = re.compile(r"<response>.*?</response>", re.DOTALL)
_HREF = re.compile(r"<href>([^<]*)</href>")

_servers: weakref.WeakKeyDictionary[Sandbox, RadicaleServer] = weakref.WeakKeyDictionary()
_servers_lock = threading.Lock()


def routes() -> list[Route]:
    """The CalDAV endpoint, and the person-acts and control routes (icloud_person)."""
    from infra.local.sandbox import icloud_person

    return [
        Route(f"{BASE}/", METHODS, caldav, "api", "icloud"),
        Route(f"{BASE}/<path:rest>", METHODS, caldav, "api", "icloud"),
        *icloud_person.routes(),
    ]


def server_for(sb: Sandbox) -> RadicaleServer:
    """This sandbox's CalDAV server, started on first use."""
    with _servers_lock:
        server = _servers.get(sb)
        if server is None:
            server = _servers[sb] = RadicaleServer()
    server.start()
    return server


def close(sb: Sandbox) -> None:
    """Stop this sandbox's CalDAV server and delete its storage."""
    with _servers_lock:
        server = _servers.pop(sb, None)
    if server is not None:
        server.stop()


def reset(sb: Sandbox) -> None:
    """Forget every iCloud account and event."""
    with _servers_lock:
        server = _servers.get(sb)
    if server is not None and server.running:
        server.wipe()


def account_id(apple_id: str) -> str:
    """The numeric account id (iCloud's dsid) behind an Apple ID, stable per Apple ID."""
    return str(int(hashlib.sha256(apple_id.lower().encode()).hexdigest()[:8], 16))


def account_server(sb: Sandbox, apple_id: str) -> tuple[RadicaleServer, str]:
    """The CalDAV server and the account id of an Apple ID, its default calendars made."""
    server = server_for(sb)
    dsid = account_id(apple_id)
    server.ensure_calendars(dsid, CALENDARS)
    return server, dsid


def caldav(sb: Sandbox, request: Request, rest: str = "") -> Response:
    """iCloud's CalDAV endpoint (caldav.icloud.com): Basic auth with the Apple ID and an app-specific
    password, then plain CalDAV (RFC 4791, sync-collection RFC 6578). Start discovery with
    PROPFIND on this URL (current-user-principal)."""
    user = _authenticated(request)
    if user is None:
        return Response("", 401, {"WWW-Authenticate": 'Basic realm="iCloud"'})
    server, dsid = account_server(sb, user)
    path = _radicale_path(request.path, dsid)
    if path is None:
        return Response("", 404)
    headers = {name: request.headers[name] for name in _FORWARDED_REQUEST if name in request.headers}
    # Radicale writes hrefs under the prefix it is told it is mounted at.
    headers["X-Script-Name"] = BASE
    ours, theirs = f"{BASE}/{dsid}/calendars/".encode(), f"{BASE}/{dsid}/".encode()
    try:
        answer = server.http.request(
            request.method,
            server.url + quote(path, safe=_SAFE),
            data=request.get_data().replace(ours, theirs),
            headers=headers,
            auth=(dsid, ""),
            timeout=30,
        )
    except requests.RequestException:
        return Response("", 503)
    content = answer.content.replace(b">" + theirs, b">" + ours)
    if request.method == "PROPFIND" and answer.status_code == 207:
        content = _in_calendar_order(content, dsid)
    response = Response(content, answer.status_code)
    for name in _FORWARDED_ANSWER:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    return response


def _radicale_path(path: str, dsid: str) -> str | None:
    """`/icloud/<dsid>/calendars/<rest>` (iCloud's shape) as Radicale's `/<dsid>/<rest>`."""
    rest = path[len(BASE) :]
    if rest in ("", "/"):
        return "/"
    home = f"/{dsid}/calendars"
    if rest == home or rest.startswith(home + "/"):
        return f"/{dsid}/" + rest[len(home) + 1 :]
    return None


def _in_calendar_order(body: bytes, dsid: str) -> bytes:
    """A listing of the account's calendars in the account's order (Radicale lists them in the
    file system's order, iCloud in the person's)."""
    text = body.decode("utf-8")
    found = list(_RESPONSE.finditer(text))
    if len(found) < 2:
        return body
    order = {f"{BASE}/{dsid}/calendars/{slug}/": n for n, slug in enumerate(CALENDARS)}

    def rank(match: re.Match[str]) -> int:
        href = _HREF.search(match.group(0))
        return order.get(href.group(1) if href else "", -1 if href and href.group(1).count("/") <= 4 else 99)

    ranked = sorted(found, key=rank)
    head, tail = text[: found[0].start()], text[found[-1].end() :]
    return (head + "".join(m.group(0) for m in ranked) + tail).encode("utf-8")


def _authenticated(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:
        return None
    return user if user and APP_PASSWORD.fullmatch(password) else None
