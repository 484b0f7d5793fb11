"""Outbound deliveries (Google channel notifications, signed webhooks) from one background thread.

Loopback only: the sandbox never sends a request off this machine, whatever address a caller gave.
"""

from __future__ import annotations

import ipaddress
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs whose host is literally loopback (no DNS lookups)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class Delivery:
    """One POST to make; `label` says what it was for (e.g. `google_calendar:exists`)."""

    url: str
    headers: dict[str, str]
    body: bytes
    label: str
    status: int | None = None
    error: str | None = None
    response_body: str = ""
    sent_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict[str, Any]:
        # Header values here are channel ids, tokens the receiver set, and signatures: not secrets.
        return {
            "url": self.url,
            "label": self.label,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "error": self.error,
            "sent_at": self.sent_at,
        }


class PushDispatcher:
    """A FIFO of deliveries sent by a daemon thread with a bounded timeout each."""

    def __init__(self, timeout: float, enabled: bool = True, max_kept: int = 1000) -> None:
        self._timeout = timeout
        self._enabled = enabled
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._lock = threading.Lock()
        self._history: list[Delivery] = []
        self._max_kept = max_kept
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, delivery: Delivery) -> Delivery:
        """Queue `delivery` (refused at once if not loopback or pushes are off)."""
        with self._lock:
            self._history.append(delivery)
            del self._history[: -self._max_kept]
            if not self._enabled or self._closed:
                delivery.error = "push disabled"
                delivery.done.set()
                return delivery
            if not is_loopback_url(delivery.url):
                delivery.error = "refused: not a loopback address"
                delivery.done.set()
                return delivery
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-push", daemon=True)
                self._thread.start()
        self._queue.put(delivery)
        return delivery

    def history(self) -> list[Delivery]:
        with self._lock:
            return list(self._history)

    def clear(self) -> None:
        with self._lock:
            self._history.clear()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery is done (tests use it instead of sleeping)."""
        deadline = time.monotonic() + timeout
        return all(d.done.wait(max(0.0, deadline - time.monotonic())) for d in self.history())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=self._timeout + 1)

    def _run(self) -> None:
        import requests

        session = requests.Session()
        # Never pick up proxies from the environment: deliveries go straight to loopback.
        session.trust_env = False
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            delivery.sent_at = time.time()
            try:
                response = session.post(
                    delivery.url,
                    data=delivery.body,
                    headers=delivery.headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
                delivery.status = response.status_code
                delivery.response_body = response.text[:2000]
            except requests.RequestException as exc:
                delivery.error = type(exc).__name__
            finally:
                delivery.done.set()
