"""The HTTP server under the local gateway and the provider sandbox: waitress, strict about framing.

Not werkzeug's development server: it answers malformed framing with 500 or 505 and waits forever for
a body shorter than its Content-Length. waitress parses strictly (one Content-Length, digits only;
chunk sizes in hex; bodies read fully before the application runs); on top of it this server

- refuses every framing error with a 4xx in API Gateway's shape (`{"message":"Bad Request"}`):
  an unknown transfer coding and a protocol other than HTTP/1.x (HTTP/2's preface) included,
  which waitress would answer 501 or serve as HTTP/1.0;
- refuses bodies over API Gateway's payload limit (10 MB) with 413, as API Gateway does;
- closes a connection whose request has not fully arrived within `request_timeout` seconds;
- never lets an application error reach waitress's own log line (it names the raw path), and
  escapes control characters in waitress's log lines, so a path cannot forge a line.

The object keeps the shape the stack and the tests already use (`server_port`, `serve_forever`,
`shutdown`, `server_close`, `app`), so it stands where werkzeug's server stood.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError, TransferEncodingNotImplemented
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("infra.local.http")

# API Gateway's HTTP API refuses larger payloads with 413.
MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT = 10.0
_IDLE_TIMEOUT = 60
_SUPPORTED_VERSIONS = ("1.0", "1.1")
_INTERNAL_ERROR_BODY = b'{"message":"Internal Server Error"}'


def printable(text: str) -> str:
    """`text` with control characters (CR, LF, ESC...) and backslashes escaped: one log line, never two."""
    return "".join(
        ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


class _EscapeControlCharacters(logging.Filter):
    """Rewrites a record's message with `printable`; waitress puts raw request paths in some lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = printable(record.getMessage())
        record.args = None
        return True


logging.getLogger("waitress").addFilter(_EscapeControlCharacters())


class _StrictParser(HTTPRequestParser):
    """waitress's parser, with every framing problem it tolerates or answers 5xx turned into a 400."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        # The parser is made when a request's first bytes arrive: the request timeout counts from here.
        self.started = time.time()

    def parse_header(self, header_plus: bytes) -> None:
        try:
            super().parse_header(header_plus)
        except TransferEncodingNotImplemented as exc:
            # RFC 9112 suggests 501, but a coding nobody asked for is the client's error here.
            raise ParsingError(str(exc)) from None
        except ValueError:
            # int() refuses numbers of more than 4300 digits.
            raise ParsingError("Content-Length is invalid") from None
        if self.version not in _SUPPORTED_VERSIONS:
            raise ParsingError("only HTTP/1.0 and HTTP/1.1 are served")


class _JsonErrorTask(ErrorTask):
    """Framing errors answered as API Gateway answers them (JSON with the reason); the connection closes."""

    def execute(self) -> None:
        error: Any = cast(Any, self.request).error
        body = b'{"message":"%s"}' % str(error.reason).encode("ascii")
        log.info("refused a request: %d %s (%s)", error.code, error.reason, printable(str(error.body)))
        self.status = f"{error.code} {error.reason}"
        cast("list[tuple[str, str]]", self.response_headers).append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    parser_class = _StrictParser
    error_task_class = _JsonErrorTask


def _guarded(app: WSGIApplication) -> WSGIApplication:
    """`app`, answering 500 itself when it raises, so the error is logged once with an escaped path."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception:
            log.exception(
                "%s %s failed",
                printable(str(environ.get("REQUEST_METHOD", ""))),
                printable(str(environ.get("PATH_INFO", ""))),
            )
            start_response(
                "500 Internal Server Error", [("Content-Type", "application/json")], sys.exc_info()
            )
            return [_INTERNAL_ERROR_BODY]

    return guarded


class LocalServer(TcpWSGIServer):
    """A threaded waitress server on one address; `serve_forever` in a thread, `shutdown` from another."""

    channel_class = _Channel

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        threads: int = 16,
    ) -> None:
        adjustments = Adjustments(
            host=host,
            port=port,
            # The gateway runs the functions in its request threads, and they call the sandbox, which
            # may call the gateway back: a few threads more than waitress's 4 keep that from stalling.
            threads=threads,
            max_request_body_size=MAX_BODY_BYTES,
            channel_timeout=_IDLE_TIMEOUT,
            cleanup_interval=1,
            # The local stack is reached directly, never through a proxy whose headers it should trust.
            clear_untrusted_proxy_headers=False,
        )
        self._sockets: dict[int, Any] = {}
        super().__init__(_guarded(app), map=self._sockets, adj=adjustments)
        self.app = app
        self.request_timeout = request_timeout
        self._serving = threading.Event()
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_port(self) -> int:
        """The bound port (useful after binding port 0)."""
        return int(self.getsockname()[1])

    def maintenance(self, now: float) -> None:
        """Close idle connections (waitress) and connections whose request is taking too long to arrive."""
        super().maintenance(now)  # type: ignore[arg-type]  # the stub says int; waitress passes time.time()
        cutoff = now - self.request_timeout
        channels = cast("dict[int, HTTPChannel]", self.active_channels)
        for channel in list(channels.values()):
            pending = channel.request
            if isinstance(pending, _StrictParser) and not channel.requests and pending.started < cutoff:
                log.info("closed a connection whose request did not arrive in %.0f s", self.request_timeout)
                channel.will_close = True

    def serve_forever(self) -> None:
        """Serve until `shutdown`; the sockets are closed on this thread when it returns."""
        self._serving.set()
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=0.5, map=self._sockets, use_poll=True, count=1)
        finally:
            wasyncore.close_all(self._sockets)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` and wait for it (returns at once if it never ran)."""
        self._stopping.set()
        if not self._serving.is_set():
            return
        # The loop may already be closing its sockets (the trigger among them) after seeing
        # `_stopping` at its last timeout: then there is nothing left to wake.
        with contextlib.suppress(OSError):
            self.pull_trigger()
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        """Close the sockets (if `serve_forever` did not) and stop the request threads."""
        wasyncore.close_all(self._sockets)
        self.task_dispatcher.shutdown()
