"""iCloud's CalDAV server, as far as connecting needs: Basic auth with an app-specific password and the
three discovery PROPFINDs (RFC 5397 current-user-principal, RFC 4791 calendar-home-set, a Depth 1
listing of calendars).

Like iCloud, only app-specific passwords are accepted: four groups of four lower-case letters
(`abcd-efgh-ijkl-mnop`); anything else, an account password included, is a 401.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.core import Route, Sandbox

APP_PASSWORD = re.compile(r"^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$")
BASE = "/icloud"
CALENDARS = {"home": "Home", "work": "Work", "family": "Family"}


def routes() -> list[Route]:
    methods = ("PROPFIND", "OPTIONS", "REPORT")
    return [
        Route(f"{BASE}/", methods, discovery, "api", "icloud"),
        Route(f"{BASE}/<path:rest>", methods, discovery, "api", "icloud"),
    ]


def discovery(sb: Sandbox, request: Request, rest: str = "") -> Response:
    user = _authenticated(request)
    if user is None:
        return Response("", 401, {"WWW-Authenticate": 'Basic realm="iCloud"'})
    if request.method == "OPTIONS":
        return Response("", 200, {"DAV": "1, 2, calendar-access"})
    if request.method != "PROPFIND":
        return Response("", 403)
    principal, home = _paths(user)
    path = f"{BASE}/{rest}".rstrip("/") + "/"
    if path == f"{BASE}/":
        body = _multistatus(
            _response(
                path, f"<d:current-user-principal><d:href>{principal}</d:href></d:current-user-principal>"
            )
        )
    elif path == principal:
        body = _multistatus(
            _response(
                principal,
                f"<c:calendar-home-set><d:href>{home}</d:href></c:calendar-home-set>"
                "<d:resourcetype><d:collection/><d:principal/></d:resourcetype>",
            )
        )
    elif path == home:
        listing = [_response(home, "<d:resourcetype><d:collection/></d:resourcetype>")]
        listing += [
            _response(
                f"{home}{slug}/",
                "<d:resourcetype><d:collection/><c:calendar/></d:resourcetype>"
                f"<d:displayname>{escape(name)}</d:displayname>",
            )
            for slug, name in CALENDARS.items()
        ]
        body = _multistatus(*listing)
    else:
        return Response("", 404)
    return Response(body, 207, content_type="application/xml; charset=utf-8")


def _authenticated(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:
        return None
    return user if user and APP_PASSWORD.fullmatch(password) else None


def _paths(user: str) -> tuple[str, str]:
    # iCloud principals are numeric ids, stable per Apple ID.
    dsid = str(int(hashlib.sha256(user.lower().encode()).hexdigest()[:8], 16))
    return f"{BASE}/{dsid}/principal/", f"{BASE}/{dsid}/calendars/"


def _multistatus(*responses: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        + "".join(responses)
        + "</d:multistatus>"
    )


def _response(href: str, props: str) -> str:
    return (
        f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop>{props}</d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )
