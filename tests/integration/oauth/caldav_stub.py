"""A minimal CalDAV server for iCloud connect tests: Basic auth and the three discovery PROPFINDs.

It answers like iCloud's discovery (RFC 5397 principal, RFC 4791 calendar-home-set, a Depth 1
listing of calendars) and nothing else; sync and writes are out of scope for connecting.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

USERNAME = "alex@icloud.example"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
_PRINCIPAL = "/1234567/principal/"
_HOME = "/1234567/calendars/"
_CALENDARS = {"home": "Home", "work": "Work"}


def _multistatus(*responses: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
        'xmlns:cs="http://calendarserver.org/ns/">' + "".join(responses) + "</d:multistatus>"
    )


def _response(href: str, props: str) -> str:
    return (
        f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>{props}</d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )


class CalDavStub:
    """WSGI app; `attempts` counts requests that presented credentials (for assertions)."""

    def __init__(self) -> None:
        self.attempts = 0
        self.rejected = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._handle(request)(environ, start_response)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        self.attempts += 1
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        ok = user == USERNAME and password == APP_PASSWORD
        self.rejected += 0 if ok else 1
        return ok

    def _handle(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("", 401, {"WWW-Authenticate": 'Basic realm="stub"'})
        if request.method not in ("PROPFIND", "OPTIONS"):
            return Response("", 405)
        if request.method == "OPTIONS":
            return Response("", 200, {"DAV": "1, 2, calendar-access"})
        path = request.path if request.path.endswith("/") else request.path + "/"
        if path == "/":
            body = _multistatus(
                _response(
                    "/", f"<d:current-user-principal><d:href>{_PRINCIPAL}</d:href></d:current-user-principal>"
                )
            )
        elif path == _PRINCIPAL:
            body = _multistatus(
                _response(
                    _PRINCIPAL,
                    f"<c:calendar-home-set><d:href>{_HOME}</d:href></c:calendar-home-set>"
                    "<d:resourcetype><d:collection/><d:principal/></d:resourcetype>",
                )
            )
        elif path == _HOME:
            listing = [_response(_HOME, "<d:resourcetype><d:collection/></d:resourcetype>")]
            listing += [
                _response(
                    f"{_HOME}{slug}/",
                    f"<d:resourcetype><d:collection/><c:calendar/></d:resourcetype><d:displayname>{name}"
                    "</d:displayname>",
                )
                for slug, name in _CALENDARS.items()
            ]
            body = _multistatus(*listing)
        else:
            return Response("", 404)
        return Response(body, 207, content_type="application/xml; charset=utf-8")


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


def serve_caldav() -> tuple[BaseWSGIServer, CalDavStub]:
    stub = CalDavStub()
    server = make_server("127.0.0.1", 0, stub, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, name="caldav-stub", daemon=True).start()
    return server, stub
