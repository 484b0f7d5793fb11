"""The local stack's HTTP server on its own: application errors, log lines, stopping."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pytest
import requests

from infra.local.http_server import LocalServer, printable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def failing_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("the application is broken")


def echo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [environ["SERVER_PROTOCOL"].encode() + b" " + body]


def serving(app: WSGIApplication) -> Iterator[str]:
    server = LocalServer("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def failing_server() -> Iterator[str]:
    yield from serving(failing_app)


@pytest.fixture
def echo_server() -> Iterator[str]:
    yield from serving(echo_app)


def raw_exchange(url: str, raw: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw)
        while chunk := connection.recv(65536):
            received += chunk
    return received


def test_a_well_formed_chunked_body_reaches_the_application_whole(echo_server: str) -> None:
    answer = raw_exchange(
        echo_server,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"\r\n\r\nHTTP/1.1 hello world")


def test_http_1_0_is_still_served(echo_server: str) -> None:
    answer = raw_exchange(echo_server, b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")

    assert answer.startswith(b"HTTP/1.0 200 ")
    assert answer.endswith(b"\r\n\r\nHTTP/1.0 hi")


def test_printable_escapes_line_breaks_control_characters_and_backslashes() -> None:
    assert printable("/a\r\nb\x1b[31m\u2028\\n") == "/a\\r\\nb\\x1b[31m\\u2028\\\\n"
    assert printable("/caf\u00e9 ok") == "/caf\u00e9 ok"


def test_application_error_is_a_json_500_logged_once_with_an_escaped_path(
    failing_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    http = requests.Session()
    http.trust_env = False

    answer = http.get(f"{failing_server}/x%0aforged", timeout=5)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert answer.status_code == 500
    assert answer.json() == {"message": "Internal Server Error"}
    assert len(errors) == 1
    assert errors[0].getMessage() == "GET /x\\nforged failed"
    assert not [r for r in caplog.records if r.name.startswith("waitress") and "\n" in r.getMessage()]


def test_waitress_log_lines_cannot_carry_a_line_break(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="waitress")

    logging.getLogger("waitress").info("Client disconnected while serving /x\nforged")

    assert [r.getMessage() for r in caplog.records] == ["Client disconnected while serving /x\\nforged"]


def test_shutdown_stops_serving_and_frees_the_port() -> None:
    server = LocalServer("127.0.0.1", 0, failing_app)
    port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

    assert not thread.is_alive()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_shutdown_of_a_server_that_never_served_returns_at_once() -> None:
    server = LocalServer("127.0.0.1", 0, failing_app)
    port = server.server_port

    server.shutdown()
    server.server_close()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_shutdown_after_the_loop_already_stopped_is_quiet() -> None:
    server = LocalServer("127.0.0.1", 0, echo_app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server._serving.wait(timeout=5)
    # The loop sees the stop flag on its own and closes its sockets, the wake-up trigger among them.
    server._stopping.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    server.shutdown()
    server.server_close()
