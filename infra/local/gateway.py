"""The HTTP API, served locally: every route of template.yaml, as API Gateway (payload v2.0) would serve it.

Per request: match a route (`{param}` matches one path segment; no route answers 404 `{"message":"Not
Found"}`; a path served only for other methods answers 405 `{"message":"Method Not Allowed"}` with
`Allow`), run the JWT authorizer on routes that have it and verify SigV4 signatures (the dev credentials,
service `execute-api`) on AWS_IAM routes (403 `{"message": ...}` as API Gateway answers: unsigned, a
JWT instead, an unknown key, a bad or expired signature), build the v2 event, invoke the function and
map its answer back (statusCode, headers, multiValueHeaders, cookies, base64 bodies; a bare JSON value
becomes a 200 application/json answer; a raising handler becomes 500 `{"message":"Internal Server
Error"}`). CORS preflights and response headers follow the API's CorsConfiguration.

Besides the API, the gateway serves what exists only locally: `GET /dev/health`, `POST /dev/token`,
`GET /dev/jwks.json`, the reference portal page under `/portal/`, and, to act as the platform
(infra.local.dev_bus), `POST /dev/platform-events` (publish a platform event on the bus: 202 with its
id; 400 `invalid_json`, 422 `invalid_request` / `unknown_event_type` / `invalid_detail`, 503
`bus_unavailable`) and `GET /dev/events?limit=&detail_type=` (the most recent events on the bus, newest
first: what this service published, and what was published through the route above; 422
`invalid_request` for a bad limit). `POST /dev/internal/availability` and `POST /dev/internal/bookings`
(infra.local.dev_internal) sign the body with the dev credentials and send it through the gateway's own
AWS_IAM route (`/internal/...`), signature verified as for any caller. Like `/dev/token`, the `/dev/*`
routes take no token: the stack listens on loopback, and anyone who can reach it could mint a token anyway.

It runs on infra.local.http_server, which refuses malformed HTTP framing (400, or 413 over API
Gateway's 10 MB) before a request gets here. The access log escapes control characters in what it prints.
"""

from __future__ import annotations

import base64
import binascii
import html.parser
import json
import logging
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from infra.local.authorizer import (
    UNAUTHORIZED_BODY,
    JwtAuthorizer,
    SignatureRefused,
    SigV4Verifier,
    Unauthorized,
)
from infra.local.dev_bus import DEFAULT_LIMIT, DevRouteError, PlatformEvents
from infra.local.dev_internal import DEV_INTERNAL_ROUTES, PlatformSigner
from infra.local.http_server import DEFAULT_REQUEST_TIMEOUT, LocalServer, printable
from infra.local.lambda_host import FunctionNotLoaded, InvocationError
from infra.local.resources import Route

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("infra.local.gateway")

NOT_FOUND_BODY = '{"message":"Not Found"}'
METHOD_NOT_ALLOWED_BODY = '{"message":"Method Not Allowed"}'
INTERNAL_ERROR_BODY = '{"message":"Internal Server Error"}'
SERVICE_UNAVAILABLE_BODY = '{"message":"Service Unavailable"}'
# Paths only the local stack serves; the template must never declare routes under them.
LOCAL_PREFIXES = ("/dev/", "/portal")
_TEXT_TYPES = ("application/json", "application/javascript", "application/xml", "application/graphql")
_TOKEN_CLAIMS = ("sub", "agency_id", "client_id", "role", "permissions")
_MAX_TOKEN_TTL = 7 * 24 * 3600
_DEV_ROUTES = {"/dev/platform-events": "POST", "/dev/events": "GET"}

Invoker = Callable[[str, Any], Any]


@dataclass(frozen=True, slots=True)
class CorsConfig:
    """The HttpApi's CorsConfiguration, resolved (names as in the template)."""

    allow_origins: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None

    @classmethod
    def from_template(cls, value: Mapping[str, Any] | None) -> CorsConfig | None:
        if not value:
            return None

        def items(name: str) -> tuple[str, ...]:
            return tuple(str(v) for v in value.get(name) or ())

        max_age = value.get("MaxAge")
        return cls(
            allow_origins=items("AllowOrigins"),
            allow_headers=tuple(h.lower() for h in items("AllowHeaders")),
            allow_methods=tuple(m.upper() for m in items("AllowMethods")),
            expose_headers=items("ExposeHeaders"),
            allow_credentials=bool(value.get("AllowCredentials", False)),
            max_age=int(max_age) if max_age is not None else None,
        )

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.allow_origins or origin in self.allow_origins)


@dataclass
class HealthState:
    """What `/dev/health` reports; `ready` flips once every part of the stack is up."""

    ready: bool = False
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- events


def _route_key(route: Route) -> str:
    return f"{route.method} {route.path}" if route.method != "ANY" else f"ANY {route.path}"


def _rule_path(path: str) -> str:
    """`/a/{id}/b/{rest+}` → werkzeug's `/a/<id>/b/<path:rest>`."""
    parts = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"<path:{segment[1:-2]}>")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"<{segment[1:-1]}>")
        else:
            parts.append(segment)
    return "/".join(parts)


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body with this content type as text (else base64)."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith("+json") or mime.endswith("+xml")


def _joined(values: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pairs to a dict, repeated names comma-joined (how payload v2 renders multi-values)."""
    joined: dict[str, str] = {}
    for name, value in values:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _request_id() -> str:
    return base64.b32encode(uuid.uuid4().bytes).decode()[:16]


def build_event(
    request: Request,
    route: Route,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, str] | None,
    *,
    account_id: str,
    api_id: str,
    iam: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload v2.0 event for `request` on `route`."""
    headers = _joined((name.lower(), value) for name, value in request.headers.items())
    cookie_header = headers.pop("cookie", None)
    source_ip = request.remote_addr or "127.0.0.1"
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", request.scheme)
    headers.setdefault("x-forwarded-port", str(request.environ.get("SERVER_PORT", "")))
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    raw_path = raw_uri.split("?", 1)[0] or request.path
    raw_query = request.environ.get("QUERY_STRING", "")
    host = headers.get("host", "127.0.0.1")
    now = datetime.now(UTC)
    route_key = _route_key(route)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": _request_id(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookie_header:
        event["cookies"] = [c.strip() for c in cookie_header.split(";") if c.strip()]
    if raw_query:
        event["queryStringParameters"] = _joined(parse_qsl(raw_query, keep_blank_values=True))
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    body = request.get_data(cache=True)
    if body:
        text: str | None = None
        if is_text(request.headers.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    if iam is not None:
        event["requestContext"]["authorizer"] = {"iam": dict(iam)}
    return event


class BadIntegrationResponse(Exception):
    """The function answered something API Gateway cannot turn into an HTTP response."""


def to_response(result: Any) -> Response:
    """Map a function's answer to HTTP as API Gateway does for payload format 2.0."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # A bare JSON value is the body of a 200 application/json answer.
        try:
            body = json.dumps(result)
        except (TypeError, ValueError) as exc:
            raise BadIntegrationResponse(f"answer is not JSON: {exc}") from None
        return Response(body, status=200, content_type="application/json")
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        raise BadIntegrationResponse("statusCode is not an integer") from None
    if not 100 <= status <= 599:
        raise BadIntegrationResponse(f"statusCode {status} is out of range")
    response = Response(_payload(result), status=status)
    # werkzeug adds a default content type; API Gateway sends only what the function set.
    del response.headers["Content-Type"]
    for name, value in (result.get("headers") or {}).items():
        response.headers.add(str(name), str(value))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            response.headers.add(str(name), str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", str(cookie))
    return response


def _payload(result: dict[str, Any]) -> bytes:
    """The answer's body as bytes: absent, text, or base64 when isBase64Encoded says so."""
    raw_body = result.get("body")
    if raw_body is None:
        return b""
    if not isinstance(raw_body, str):
        raise BadIntegrationResponse("body is not a string")
    if not result.get("isBase64Encoded"):
        return raw_body.encode("utf-8")
    try:
        return base64.b64decode(raw_body, validate=True)
    except (binascii.Error, ValueError):
        raise BadIntegrationResponse("body is not valid base64") from None


# --------------------------------------------------------------------------- portal


class _CspReader(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.policy: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "content-security-policy":
            self.policy = values.get("content")


def page_csp(index_html: Path) -> str:
    """The CSP the page declares in its meta tag, plus `frame-ancestors` (which a meta tag cannot carry)."""
    reader = _CspReader()
    reader.feed(index_html.read_text(encoding="utf-8"))
    policy = (reader.policy or "default-src 'self'").strip().rstrip(";")
    if "frame-ancestors" not in policy:
        policy += "; frame-ancestors 'none'"
    return policy


class PortalFiles:
    """Serves a static folder as is, with explicit content types and security headers."""

    _TYPES = {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".json": "application/json",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".md": "text/markdown; charset=utf-8",
    }

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        index = folder / "index.html"
        self.csp = page_csp(index) if index.exists() else "default-src 'none'"

    def headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
        }

    def serve(self, request: Request, relative: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = Response("method not allowed\n", status=405, content_type="text/plain; charset=utf-8")
            response.headers["Allow"] = "GET, HEAD"
            return response
        relative = relative or "index.html"
        target = safe_join(str(self.folder), relative)
        if (
            target is None
            or not Path(target).is_file()
            or any(p.startswith(".") for p in relative.split("/"))
        ):
            response = Response("not found\n", status=404, content_type="text/plain; charset=utf-8")
        else:
            path = Path(target)
            content_type = self._TYPES.get(path.suffix.lower()) or (
                mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            )
            response = Response(path.read_bytes(), status=200, content_type=content_type)
        response.headers.update(self.headers())
        return response


# --------------------------------------------------------------------------- the WSGI app


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body)
    response = Response(text, status=status, content_type="application/json")
    response.headers.update(dict(headers or {}))
    return response


class Gateway:
    """The local HTTP API: template routes to functions, plus the local-only routes and the portal."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoke: Invoker,
        authorizer: JwtAuthorizer,
        *,
        cors: CorsConfig | None = None,
        portal_dir: Path | None = None,
        account_id: str = "123456789012",
        api_id: str = "local",
        health: HealthState | None = None,
        log_requests: bool = False,
        platform_events: PlatformEvents | None = None,
        sigv4: SigV4Verifier | None = None,
        platform_signer: PlatformSigner | None = None,
    ) -> None:
        for route in routes:
            if route.path.startswith(LOCAL_PREFIXES):
                raise ValueError(f"route {route.path} collides with the local-only paths {LOCAL_PREFIXES}")
        self.routes = list(routes)
        self.invoke = invoke
        self.authorizer = authorizer
        self.cors = cors
        self.portal = PortalFiles(portal_dir) if portal_dir is not None else None
        self.account_id = account_id
        self.api_id = api_id
        self.health = health or HealthState()
        self.log_requests = log_requests
        # None: the platform's dev routes are not served (404), as when the stack has no bus.
        self.platform_events = platform_events
        # None: AWS_IAM routes refuse every call (no credentials are known to sign with).
        self.sigv4 = sigv4
        # None: `/dev/internal/*` is not served (404); else it signs calls to `/internal/*` with it.
        self.platform_signer = platform_signer
        rules = []
        for index, route in enumerate(self.routes):
            methods = None if route.method == "ANY" else [route.method]
            rules.append(Rule(_rule_path(route.path), endpoint=index, methods=methods))
        self._map = Map(rules, strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        response = self.handle(request)
        if self.log_requests:
            # Path only: OAuth callbacks carry codes and states in the query string. Escaped: a `%0a`
            # in the path must not start a forged line.
            log.info(
                "%s %s -> %d (%.0f ms)",
                printable(request.method),
                printable(request.path),
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path
        local = self._dev_route(request)
        if local is not None:
            return local
        if self.portal is not None:
            if path == "/" and request.method in ("GET", "HEAD"):
                return Response("", status=302, headers={"Location": "/portal/"})
            if path == "/portal":
                return Response("", status=308, headers={"Location": "/portal/"})
            if path.startswith("/portal/"):
                return self.portal.serve(request, path[len("/portal/") :])
        if not self.health.ready:
            return _json(SERVICE_UNAVAILABLE_BODY, 503)
        response = self._api(request)
        self._add_cors(request, response)
        return response

    # ------------------------------------------------------------------ local-only routes

    def _dev_route(self, request: Request) -> Response | None:
        """The `/dev/*` route's answer, or None when the path is not one (or not served here)."""
        path = request.path
        if path == "/dev/health":
            return self._health()
        if path == "/dev/token" and request.method == "POST":
            return self._token(request)
        if path == "/dev/jwks.json":
            return _json(self.authorizer.jwks())
        if path in _DEV_ROUTES and self.platform_events is not None:
            return self._platform_route(request)
        if path in DEV_INTERNAL_ROUTES and self.platform_signer is not None:
            return self._internal_as_platform(request)
        return None

    def _health(self) -> Response:
        status = 200 if self.health.ready else 503
        body = {"status": "ok" if self.health.ready else "starting", **self.health.details}
        return _json(body, status)

    def _token(self, request: Request) -> Response:
        """`{sub, agency_id, client_id?, role, permissions, email?}` → `{"token"}` (local authorizer)."""
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            return _json({"message": "body must be JSON"}, 400)
        if not isinstance(body, dict):
            return _json({"message": "body must be a JSON object"}, 400)
        problems = [
            f"{name} must be a non-empty string"
            for name in ("sub", "agency_id", "role")
            if not isinstance(body.get(name), str) or not body[name]
        ]
        client_id = body.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            problems.append("client_id must be a non-empty string when present")
        permissions = body.get("permissions", [])
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            problems.append("permissions must be a list of strings")
        expires_in = body.get("expires_in", None)
        if expires_in is not None and (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 0 < expires_in <= _MAX_TOKEN_TTL
        ):
            problems.append(f"expires_in must be an integer between 1 and {_MAX_TOKEN_TTL}")
        if problems:
            return _json({"message": "; ".join(problems)}, 400)
        email = body.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email):
            return _json({"message": "email must be an address when present"}, 400)
        claims = {name: body.get(name) for name in _TOKEN_CLAIMS}
        claims["permissions"] = permissions
        if email is not None:
            # The verified email a real identity provider puts in its tokens (optional).
            claims["email"] = email
        token = (
            self.authorizer.issue(claims, expires_in=expires_in)
            if expires_in is not None
            else self.authorizer.issue(claims)
        )
        return _json({"token": token}, 200, {"Cache-Control": "no-store"})

    def _platform_route(self, request: Request) -> Response:
        """`POST /dev/platform-events` and `GET /dev/events` (see infra.local.dev_bus)."""
        assert self.platform_events is not None
        method = _DEV_ROUTES[request.path]
        if request.method != method:
            body = {"code": "method_not_allowed", "message": f"{request.path} takes {method} only."}
            return _json(body, 405, {"Allow": method})
        headers = {"Cache-Control": "no-store"}
        try:
            if method == "POST":
                event = self.platform_events.publish(request.get_data(cache=True))
                accepted = {"id": event.id, "detail_type": event.detail_type, "source": event.source}
                return _json(accepted, 202, headers)
            limit = _limit(request.args.get("limit"), self.platform_events.log.capacity)
            events = self.platform_events.log.recent(limit, request.args.get("detail_type") or None)
            return _json({"events": [e.to_json() for e in events]}, 200, headers)
        except DevRouteError as exc:
            return _json(exc.to_body(), exc.status, headers)

    def _internal_as_platform(self, request: Request) -> Response:
        """`POST /dev/internal/*`: the same body, signed as the platform, through the AWS_IAM route."""
        from werkzeug.test import EnvironBuilder

        assert self.platform_signer is not None
        headers = {"Cache-Control": "no-store"}
        if request.method != "POST":
            body = {"code": "method_not_allowed", "message": f"{request.path} takes POST only."}
            return _json(body, 405, {"Allow": "POST", **headers})
        if not self.health.ready:
            return _json(SERVICE_UNAVAILABLE_BODY, 503)
        target = DEV_INTERNAL_ROUTES[request.path]
        base = f"{request.scheme}://{request.host}"
        payload = request.get_data(cache=True)
        # Only what the signer made goes on: the caller's own Authorization (a portal JWT) is dropped.
        signed = self.platform_signer.sign("POST", f"{base}{target}", payload, "application/json")
        environ = EnvironBuilder(
            path=target, base_url=base, method="POST", data=payload, headers=list(signed.items())
        ).get_environ()
        environ["REMOTE_ADDR"] = request.remote_addr or "127.0.0.1"
        response = self._api(Request(environ))
        response.headers.update(headers)
        return response

    # ------------------------------------------------------------------ the API

    def _api(self, request: Request) -> Response:
        if request.method == "OPTIONS" and self.cors is not None:
            # API Gateway answers CORS preflights itself when the API has a CORS configuration.
            return self._preflight(request)
        adapter = self._map.bind_to_environ(request.environ)
        try:
            index, arguments = adapter.match()
        except MethodNotAllowed as exc:
            # A path the API serves, with a method none of its routes takes (HTTP semantics: 405 + Allow).
            # werkzeug adds HEAD to every GET rule; the template's routes do not.
            allowed = sorted({m for m in exc.valid_methods or () if m != "HEAD"})
            return _json(METHOD_NOT_ALLOWED_BODY, 405, {"Allow": ", ".join(allowed)})
        except NotFound:
            return _json(NOT_FOUND_BODY, 404)
        route = self.routes[index]
        claims: dict[str, str] | None = None
        iam: dict[str, Any] | None = None
        if route.auth == "jwt":
            try:
                claims = self.authorizer.authorize(request.headers.get("Authorization")).claims
            except Unauthorized as exc:
                return _json(UNAUTHORIZED_BODY, 401, {"www-authenticate": exc.www_authenticate})
        elif route.auth == "iam":
            try:
                iam = self._signer(request)
            except SignatureRefused as exc:
                # API Gateway's AWS_IAM answer: 403 with its message, the function never runs.
                headers = {"x-amzn-errortype": "ForbiddenException", "apigw-requestid": _request_id()}
                return _json({"message": exc.message}, 403, headers)
        event = build_event(
            request, route, arguments, claims, account_id=self.account_id, api_id=self.api_id, iam=iam
        )
        request_id = event["requestContext"]["requestId"]
        try:
            result = self.invoke(route.function, event)
            response = to_response(result)
        except (InvocationError, FunctionNotLoaded, BadIntegrationResponse) as exc:
            log.error("%s %s: %s", route.function, _route_key(route), exc)
            response = _json(INTERNAL_ERROR_BODY, 500)
        response.headers["apigw-requestid"] = request_id
        return response

    def _signer(self, request: Request) -> dict[str, Any]:
        """The SigV4 signer of an AWS_IAM route's call, verified against the dev credentials."""
        if self.sigv4 is None:
            raise SignatureRefused("Forbidden")
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        return self.sigv4.verify(
            request.method,
            raw_uri.split("?", 1)[0] or request.path,
            request.environ.get("QUERY_STRING", ""),
            {name: value for name, value in request.headers.items()},
            request.get_data(cache=True),
            time.time(),
        )

    def _preflight(self, request: Request) -> Response:
        assert self.cors is not None
        response = Response("", status=204)
        del response.headers["Content-Type"]
        origin = request.headers.get("Origin")
        method = (request.headers.get("Access-Control-Request-Method") or "").upper()
        if not self.cors.origin_allowed(origin) or method not in self.cors.allow_methods:
            return response
        requested = [
            h.strip().lower()
            for h in (request.headers.get("Access-Control-Request-Headers") or "").split(",")
            if h.strip()
        ]
        if any(h not in self.cors.allow_headers and "*" not in self.cors.allow_headers for h in requested):
            return response
        response.headers["Access-Control-Allow-Origin"] = str(origin)
        response.headers["Access-Control-Allow-Methods"] = ",".join(self.cors.allow_methods)
        if self.cors.allow_headers:
            response.headers["Access-Control-Allow-Headers"] = ",".join(self.cors.allow_headers)
        if self.cors.allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        if self.cors.max_age is not None:
            response.headers["Access-Control-Max-Age"] = str(self.cors.max_age)
        return response

    def _add_cors(self, request: Request, response: Response) -> None:
        if self.cors is None:
            return
        origin = request.headers.get("Origin")
        if not self.cors.origin_allowed(origin):
            return
        # API Gateway's CORS headers replace whatever the integration set.
        response.headers["Access-Control-Allow-Origin"] = str(origin)
        if self.cors.allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        if self.cors.expose_headers:
            response.headers["Access-Control-Expose-Headers"] = ",".join(self.cors.expose_headers)
        response.headers.add("Vary", "Origin")


def _limit(value: str | None, maximum: int) -> int:
    """`?limit=`: absent means the default; otherwise an integer from 1 to `maximum`."""
    if value is None or value == "":
        return min(DEFAULT_LIMIT, maximum)
    # ASCII digits, and few of them: int() takes "²" and refuses thousands of digits.
    if not (value.isascii() and value.isdigit() and len(value) <= 6) or not 1 <= int(value) <= maximum:
        problem = {"field": "limit", "message": f"must be an integer from 1 to {maximum}"}
        raise DevRouteError(
            422, "invalid_request", f"The request is not valid: limit {problem['message']}.", [problem]
        )
    return int(value)


def bind(
    host: str, port: int, app: WSGIApplication, *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT
) -> LocalServer:
    """Bind the gateway's threaded server (port 0: any free port); serve it with `serve_in_thread`."""
    return LocalServer(host, port, app, request_timeout=request_timeout)


def serve_in_thread(server: LocalServer, name: str) -> threading.Thread:
    """Run `server.serve_forever` in a daemon thread named `name`."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread
