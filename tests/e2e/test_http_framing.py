"""Malformed HTTP framing against the running gateway and sandbox, over raw sockets.

What a fuzzer or an attacker sends below the application: lying or repeated Content-Length headers,
broken chunked bodies, unknown transfer codings, HTTP/2's preface. Each one is refused with a 4xx (or
the connection is closed), never a 5xx, and nothing is logged at ERROR. The access log escapes what a
path could use to forge a line.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class RawAnswer:
    """What came back on the socket: the status (None when the server closed without answering)."""

    status: int | None
    head: str
    body: bytes


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def exchange(url: str, raw: bytes, *, wait: float = 5.0) -> RawAnswer:
    """Send `raw` as is and read until the server closes the connection (or `wait` passes)."""
    received = b""
    with socket.create_connection(_address(url), timeout=wait) as connection:
        connection.sendall(raw)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            if _complete(received):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    status = int(status_line.split(" ")[1]) if status_line.startswith("HTTP/") else None
    return RawAnswer(status, head.decode("latin-1"), body)


def _complete(received: bytes) -> bool:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """Records at ERROR or above logged by any thread while the test runs."""
    caplog.set_level(logging.INFO)
    records: list[logging.LogRecord] = []
    yield records
    records.extend(r for r in caplog.records if r.levelno >= logging.ERROR)
    assert records == [], [r.getMessage() for r in records]


@pytest.fixture(params=["gateway", "sandbox"])
def server_url(request: pytest.FixtureRequest, stack: LocalStack) -> str:
    assert stack.urls is not None
    url: str = getattr(stack.urls, request.param)
    return url


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode("latin-1") + body


@pytest.mark.usefixtures("errors")
def test_two_different_content_lengths_are_a_bad_request(server_url: str) -> None:
    answer = exchange(server_url, post("/dev/token", "Content-Length: 2\r\nContent-Length: 40\r\n", b"{}"))

    assert answer.status == 400


@pytest.mark.usefixtures("errors")
@pytest.mark.parametrize("length", ["-1", "12abc", "1e3", " ", "+2"])
def test_content_length_that_is_not_a_number_is_a_bad_request(server_url: str, length: str) -> None:
    answer = exchange(server_url, post("/dev/token", f"Content-Length: {length}\r\n", b"{}"))

    assert answer.status == 400


@pytest.mark.usefixtures("errors")
def test_content_length_beyond_api_gateways_payload_limit_is_refused_as_too_large(server_url: str) -> None:
    answer = exchange(server_url, post("/dev/token", f"Content-Length: {10**30}\r\n", b"{}"))

    assert answer.status == 413


@pytest.mark.usefixtures("errors")
def test_content_length_with_thousands_of_digits_is_a_bad_request(server_url: str) -> None:
    # More digits than Python's int() accepts by default (4300).
    answer = exchange(server_url, post("/dev/token", f"Content-Length: {'9' * 5000}\r\n", b"{}"))

    assert answer.status in (400, 413)


@pytest.mark.usefixtures("errors")
@pytest.mark.parametrize(
    "chunks",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"2;\x00\r\n{}\r\n0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"],
    ids=["not-hex", "control-character", "negative", "no-chunk-end"],
)
def test_bad_chunk_framing_is_a_bad_request(server_url: str, chunks: bytes) -> None:
    answer = exchange(server_url, post("/dev/token", "Transfer-Encoding: chunked\r\n", chunks))

    assert answer.status == 400


@pytest.mark.usefixtures("errors")
def test_unknown_transfer_coding_is_a_bad_request_not_a_server_error(server_url: str) -> None:
    answer = exchange(server_url, post("/dev/token", "Transfer-Encoding: gzip\r\n", b"{}"))

    assert answer.status == 400


@pytest.mark.usefixtures("errors")
def test_http2_preface_is_a_bad_request(server_url: str) -> None:
    answer = exchange(server_url, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

    assert answer.status == 400


@pytest.mark.usefixtures("errors")
def test_framing_errors_answer_in_api_gateways_shape(stack: LocalStack) -> None:
    assert stack.urls is not None

    answer = exchange(stack.urls.gateway, post("/dev/token", "Content-Length: 1\r\nContent-Length: 2\r\n"))

    assert answer.status == 400
    assert "content-type: application/json" in answer.head.lower()
    assert answer.body == b'{"message":"Bad Request"}'


@pytest.mark.usefixtures("errors")
def test_body_shorter_than_its_content_length_is_dropped_after_the_read_timeout(
    stack: LocalStack,
) -> None:
    assert stack.urls is not None
    started = time.monotonic()

    answer = exchange(
        stack.urls.gateway,
        post("/dev/token", "Content-Type: application/json\r\nContent-Length: 100\r\n", b'{"sub":'),
        wait=stack.request_timeout + 5,
    )

    waited = time.monotonic() - started
    assert answer.status is None or 400 <= answer.status < 500
    assert waited < stack.request_timeout + 4  # closed by the server, not by this test giving up


def test_gateway_still_answers_after_malformed_requests(stack: LocalStack) -> None:
    assert stack.urls is not None
    exchange(stack.urls.gateway, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

    answer = exchange(stack.urls.gateway, b"GET /dev/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    assert answer.status == 200


def test_access_log_escapes_line_breaks_in_the_path(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.urls is not None and stack.gateway is not None
    monkeypatch.setattr(stack.gateway, "log_requests", True)
    caplog.set_level(logging.INFO, logger="infra.local.gateway")
    forged = "/dev/health%0d%0a2030-01-01%2000:00:00,000%20infra.local.gateway%20INFO%20GET%20/%20-%3E%20200"

    answer = exchange(
        stack.urls.gateway, f"GET {forged} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )

    lines = [r.getMessage() for r in caplog.records if r.name == "infra.local.gateway"]
    assert answer.status == 404
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert "\r" not in lines[0]
    escaped = r"GET /dev/health\\r\\n2030-01-01 00:00:00,000 infra.local.gateway INFO GET / -> 200"
    assert re.fullmatch(escaped + r" -> 404 \(\d+ ms\)", lines[0])
