"""The sandbox WSGI application: routing, request log with secrets redacted, injected faults."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from infra.local.http_server import DEFAULT_REQUEST_TIMEOUT, LocalServer
from infra.local.sandbox import (
    apis,
    calendly,
    control,
    files,
    gcal,
    ghl_agency,
    ghl_crm,
    gmail,
    graph,
    hubspot_crm,
    icloud,
    oauth,
    slack,
)
from infra.local.sandbox.config import SandboxConfig
from infra.local.sandbox.core import Reply, Route, Sandbox, html_response, is_form, json_response
from infra.local.sandbox.dialects import DIALECTS
from infra.local.sandbox.errors import rate_limited, server_failure
from infra.local.sandbox.state import FaultKind, LoggedRequest

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# Values never written to the request log.
_SECRET_FIELDS = frozenset(
    {
        "code",
        "access_token",
        "refresh_token",
        "client_secret",
        "code_verifier",
        "token",
        "id_token",
        "password",
        "assertion",
        "client_assertion",
    }
)
_REDACTED = "[redacted]"


def _redact(values: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k: (_REDACTED if k in _SECRET_FIELDS else v) for k, v in values}


class SandboxApp:
    """A WSGI callable serving every provider stand-in; `sandbox` holds its state for in-process tests."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.sandbox = Sandbox(config)
        self.routes: list[Route] = [
            Route("/", ("GET",), self._index, "index", None),
            *oauth.routes(),
            *apis.routes(),
            *ghl_crm.routes(),
            *ghl_agency.routes(),
            *hubspot_crm.routes(),
            *gcal.routes(),
            *calendly.routes(),
            *slack.routes(),
            *graph.routes(),
            *gmail.routes(),
            *icloud.routes(),
            *files.routes(),
            *control.routes(),
        ]
        self._map = Map(
            [Rule(r.path, endpoint=i, methods=list(r.methods)) for i, r in enumerate(self.routes)]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def close(self) -> None:
        """Stop the push thread (deliveries still queued are dropped) and the CalDAV server."""
        self.sandbox.pushes.close()
        icloud.close(self.sandbox)

    def _handle(self, request: Request) -> Response:
        adapter = self._map.bind_to_environ(request.environ)
        try:
            index, args = adapter.match()
        except HTTPException as exc:
            return json_response({"error": exc.name, "path": request.path}, status=exc.code or 404)
        route = self.routes[index]
        entry = self._log(route, request, args)
        try:
            response = self._run(route, request, args)
        except Reply as reply:
            response = reply.response
        entry.status = response.status_code
        return response

    def _run(self, route: Route, request: Request, args: Mapping[str, Any]) -> Response:
        if route.app is not None and route.kind in ("token", "api"):
            fault = self.sandbox.state.take_fault(route.app, route.kind, request.path)
            if fault is not None:
                if fault.kind is FaultKind.LATENCY:
                    time.sleep(fault.latency_ms / 1000)
                elif fault.kind is FaultKind.SLOW_ANSWER:
                    response = route.handler(self.sandbox, request, **args)
                    time.sleep(fault.latency_ms / 1000)
                    return response
                elif fault.kind is FaultKind.RATE_LIMIT:
                    return rate_limited(route.app, fault.retry_after, route.kind, fault.status)
                else:
                    return server_failure(route.app, fault.status, route.kind)
        return route.handler(self.sandbox, request, **args)

    def _log(self, route: Route, request: Request, args: Mapping[str, Any]) -> LoggedRequest:
        path = request.path
        if "token" in args:
            path = path.replace(str(args["token"]), _REDACTED)
        auth_header = request.headers.get("Authorization", "")
        state = self.sandbox.state
        with state.lock:
            state.log_seq += 1
            entry = LoggedRequest(
                seq=state.log_seq,
                at=self.sandbox.now(),
                app=route.app,
                kind=route.kind,
                method=request.method,
                route=route.path,
                path=path,
                query=_redact(request.args.items()),
                form=_redact(request.form.items()) if is_form(request) else {},
                auth=auth_header.split(" ", 1)[0].lower() or None,
            )
            state.log.append(entry)
        return entry

    def _index(self, sb: Sandbox, request: Request) -> Response:
        base = request.host_url.rstrip("/")
        sections = []
        for app, dialect in DIALECTS.items():
            uris = "".join(
                f"<li><code>{html.escape(u)}</code></li>" for u in self.config.registered_redirect_uris(app)
            )
            rows = "".join(_route_item(base, r, full=False) for r in self.routes if r.app == app)
            sections.append(
                f"<section><h2>{html.escape(dialect.title)} (<code>{app}</code>)</h2>"
                f"<p>Registered redirect URIs:</p><ul>{uris}</ul><ul>{rows}</ul></section>"
            )
        person_rows = "".join(
            _route_item(base, r, full=True)
            for r in self.routes
            if r.kind == "control" and r.path.startswith("/_sandbox/google/")
        )
        outlook_rows = "".join(
            _route_item(base, r, full=True)
            for r in self.routes
            if r.kind == "control"
            and r.path.startswith("/_sandbox/outlook/")
            and not r.path.startswith(_OUTLOOK_MAIL_PERSON)
        )
        outlook_mail_rows = "".join(
            _route_item(base, r, full=True)
            for r in self.routes
            if r.kind == "control" and r.path.startswith(_OUTLOOK_MAIL_PERSON)
        )
        gmail_rows = "".join(
            _route_item(base, r, full=True)
            for r in self.routes
            if r.kind == "control" and r.path.startswith(_GMAIL_PERSON)
        )
        crm_rows = "".join(
            _route_item(base, r, full=True)
            for r in self.routes
            if r.kind == "control" and r.path.startswith(_CRM_PERSON)
        )
        control_rows = "".join(
            _route_item(base, r, full=True)
            for r in self.routes
            if r.kind == "control"
            and not r.path.startswith(
                ("/_sandbox/google/", "/_sandbox/outlook/", *_CRM_PERSON, *_GMAIL_PERSON)
            )
        )
        body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Provider sandbox</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
li{{margin:.4rem 0}} .doc{{color:#444;margin:.1rem 0 0 1rem;white-space:pre-line}}</style></head>
<body><main><h1>Provider sandbox</h1>
<p>Offline stand-ins for each provider's OAuth server and the APIs the product calls.
Credentials for each app are in <code>infra.local.sandbox.APP_CREDENTIALS</code>;
catalog overrides from <code>infra.local.sandbox.catalog_overrides(base_url)</code>.</p>
{"".join(sections)}
<section><h2>Google Calendar: act as the person</h2>
<p>These change a calendar as its owner would in Google Calendar's own page: the change gets a new
etag, comes back in the next incremental sync, and pushes <code>exists</code> to every live watch
channel on the calendar. <code>calendar_id</code> is <code>primary</code> or a calendar id from
calendarList; <code>account</code> defaults to <code>alex@example.com</code>. No access token needed.</p>
<ul>{person_rows}</ul></section>
<section><h2>Outlook (Microsoft Graph): act as the person</h2>
<p>These change an Outlook calendar as its owner would in Outlook: the change gets a new changeKey and
etag, comes back in the next calendarView delta round (deletions as <code>@removed</code>), and sends a
change notification to every live Graph subscription on the calendar. <code>calendar_id</code> is
<code>default</code> or an id from <code>/me/calendars</code>; occurrences of a series have their own
ids (list them with the truth route); <code>account</code> defaults to <code>alex@example.com</code>;
addresses at outlook.com, hotmail.com, live.com and msn.com are personal accounts (no Teams meetings).
No access token needed.</p>
<ul>{outlook_rows}</ul></section>
<section><h2>Gmail: act as the person (and the people who write to them)</h2>
<p>These change a Gmail mailbox as Gmail itself would: a mail arrives, the person sends one from
Gmail's page, files or deletes one. Each act gets a new history id (ids grow, not one by one), comes
back in the next <code>history.list</code> (<code>messageAdded</code>, <code>labelAdded</code>,
<code>labelRemoved</code>, <code>messageDeleted</code>), and Pub/Sub pushes
<code>{{emailAddress, historyId}}</code> with its OIDC token to the gateway's <code>/webhooks/gmail</code>
when a live <code>users.watch</code> covers the message's labels. The API threads like Gmail:
<code>messages.send</code> puts a mail in <code>threadId</code> only when it also references a message
of that thread (In-Reply-To / References) and its subject matches; it refuses addresses it cannot
parse with 400 <code>Invalid To header</code> (Cc, Bcc alike). <code>history.list</code> and
<code>messages.list</code> page with <code>pageToken</code> (<code>maxResults</code> up to 500).
Fault switches: <code>POST /_sandbox/gmail/history/expire</code> makes every history id handed out so
far answer 404; a <code>rate_limit</code> fault with <code>"app": "google", "path":
"/google/gmail/v1/"</code> answers 429 (or 403 with <code>"status": 403</code>) with
<code>rateLimitExceeded</code> and <code>Retry-After</code>; a <code>server_error</code> fault there
answers 5xx. <code>/_sandbox/files</code> serves attachments by URL. <code>account</code> defaults to
<code>alex@example.com</code>. No access token needed.</p>
<ul>{gmail_rows}</ul></section>
<section><h2>Outlook mail (Microsoft Graph): act as the person (and the people who write to them)</h2>
<p>These change an Outlook mailbox as Outlook itself would: a mail arrives, the person sends one from
Outlook, saves a draft, files one. Each arrival in a folder comes back in that folder's next message
delta round (<code>/me/mailFolders/{{folder}}/messages/delta</code>, <code>changeType=created</code>)
and sends a <code>created</code> change notification, with its clientState, to every live Graph
subscription on the folder (<code>me/mailFolders('Inbox')/messages</code>,
<code>me/mailFolders('SentItems')/messages</code>; <code>me/messages</code> watches all). Ids are
immutable (they survive moves). The API threads like Exchange: a mail joins the conversation
(<code>conversationId</code>) of a message of the mailbox its In-Reply-To or References names.
<code>POST /me/sendMail</code> takes JSON or, with <code>Content-Type: text/plain</code>, base64 MIME
whose Message-ID, In-Reply-To and References it keeps; it answers 202 and the copy lands in Sent Items.
<code>createReply</code>, <code>PATCH</code> of a draft and <code>send</code> work too. An address Exchange
cannot resolve is 400 <code>ErrorInvalidRecipients</code>; a request over 4 MB is 413.
<code>$filter</code> knows <code>receivedDateTime ge|gt</code> and <code>internetMessageId eq '...'</code>.
Fault switches: <code>POST /_sandbox/outlook/mail/delta/expire</code> makes every delta and skip token
handed out so far answer 410 <code>syncStateNotFound</code>; a <code>rate_limit</code> fault with
<code>"app": "microsoft", "path": "/microsoft/graph/v1.0/me/sendMail"</code> (or any Graph path)
answers 429 with <code>Retry-After</code> (503 with <code>"status": 503</code>); a
<code>server_error</code> fault answers 5xx. <code>account</code> defaults to
<code>alex@example.com</code>. No access token needed.</p>
<ul>{outlook_mail_rows}</ul></section>
<section><h2>GoHighLevel and HubSpot: act as the person</h2>
<p>These change a CRM as its user would in GHL's or HubSpot's own page: the change gets a new
<code>dateUpdated</code> / <code>lastmodifieddate</code>, comes back in the next modified-since search,
and sends the provider's signed webhook (GHL <code>ContactCreate</code> / <code>ContactUpdate</code> /
<code>ContactDelete</code>; HubSpot <code>contact.creation</code>, one <code>contact.propertyChange</code>
per property, <code>contact.deletion</code>) to the gateway. GHL's <code>location_id</code> is the
connected location; HubSpot's <code>hub_id</code> the connected portal. The rate limits are real:
GHL 100 requests per 10 s per location, HubSpot 110 per 10 s per account and 5 searches per second,
answered with 429 and <code>Retry-After</code>. No access token needed. A mail logged on a contact
shows in the contacts listing: in GHL as one of the contact's <code>notes</code> (its last line names the
Message-ID), in HubSpot under <code>emails</code> (email engagements, association type 198).</p>
<ul>{crm_rows}</ul></section>
<section><h2>Control and fault switches</h2>
<p>Faults apply to the provider routes above of kind <code>api</code> or <code>token</code>
(the Google Calendar routes included); a fault added with <code>"path": "/google/calendar/v3/"</code>
hits only those.</p>
<ul>{control_rows}</ul></section>
</main></body></html>"""
        return html_response(body)


_CRM_PERSON = ("/_sandbox/ghl/", "/_sandbox/hubspot/", "/_sandbox/crm/")
_GMAIL_PERSON = ("/_sandbox/gmail/", "/_sandbox/files")
_OUTLOOK_MAIL_PERSON = "/_sandbox/outlook/mail/"


def _route_item(base: str, route: Route, *, full: bool) -> str:
    """One documented route: methods, URL, kind, and its handler's docstring (first line or whole)."""
    lines = [line.strip() for line in (route.handler.__doc__ or "").strip().splitlines()]
    doc = "\n".join(lines if full else lines[:1])
    methods = html.escape(", ".join(route.methods))
    text = f'<div class="doc">{html.escape(doc)}</div>' if doc else ""
    return f"<li><code>{methods} {html.escape(base + route.path)}</code> ({route.kind}){text}</li>"


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    """The sandbox as a WSGI application."""
    return SandboxApp(config or SandboxConfig())


def serve(
    host: str = "127.0.0.1",
    port: int = 3001,
    config: SandboxConfig | None = None,
    *,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> tuple[LocalServer, threading.Thread]:
    """Serve the sandbox from a daemon thread; port 0 picks a free port (read `server.server_port`).

    `server.app` is the `SandboxApp`.
    Stop with `server.shutdown(); server.server_close(); server.app.close()`.
    """
    app = create_app(config)
    server = LocalServer(host, port, app, request_timeout=request_timeout)
    thread = threading.Thread(target=server.serve_forever, name="provider-sandbox", daemon=True)
    thread.start()
    return server, thread
