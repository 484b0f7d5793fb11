"""A real CalDAV server for the local stack and the tests: Radicale, in this process, on a free port.

    server = RadicaleServer()          # storage in a fresh temporary folder
    server.start()                     # 127.0.0.1, any free port: read `server.url`
    server.ensure_calendars("12345", {"home": "Home"})
    server.expire_sync_tokens()        # every sync-token given out so far answers 403 valid-sync-token
    server.wipe()                      # every account and event gone
    server.stop()

Radicale keeps sync-collection (RFC 6578) state per collection, etags per resource and answers the
CalDAV preconditions (If-Match / If-None-Match → 412), so the CalDAV adapter is tested against a
standards-compliant server rather than a stand-in. Authentication is Radicale's `none` type: whoever
fronts it (the sandbox's iCloud routes) checks the app-specific password, and Radicale's `owner_only`
rights still keep each user to `/<user>/`. It listens on loopback only.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from infra.local.http_server import LocalServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

_TIMEOUT = 10


def _mkcalendar_body(name: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
        f"<d:displayname>{escape(name)}</d:displayname>"
        "<c:supported-calendar-component-set><c:comp name='VEVENT'/></c:supported-calendar-component-set>"
        "</d:prop></d:set></c:mkcalendar>"
    )


class RadicaleServer:
    """Radicale's WSGI application under the project's HTTP server, with its storage in `folder`."""

    def __init__(self, folder: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="radicale-"))
        self._host, self._port = host, port
        self._server: LocalServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._accounts_lock = threading.Lock()
        self._known: set[tuple[str, ...]] = set()
        self.http = requests.Session()
        self.http.trust_env = False

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("Radicale is not running")
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Start serving (once); returns the base URL."""
        with self._lock:
            if self._server is None:
                server = LocalServer(self._host, self._port, self._application())
                thread = threading.Thread(target=server.serve_forever, name="radicale", daemon=True)
                thread.start()
                self._server, self._thread = server, thread
        return self.url

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                if self._thread is not None:
                    self._thread.join(timeout=5)
                self._server = self._thread = None
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _application(self) -> WSGIApplication:
        import radicale.config
        from radicale.app import Application

        # Radicale warns at start that it checks no password: here the sandbox in front of it does.
        logging.getLogger("radicale").setLevel(logging.ERROR)

        configuration = radicale.config.load()
        configuration.update(
            {
                "auth": {"type": "none"},
                "rights": {"type": "owner_only"},
                "storage": {"filesystem_folder": str(self.folder)},
                # Radicale's own request log would repeat every CalDAV call on the console.
                "logging": {"level": "warning"},
                "web": {"type": "none"},
            },
            "infra.local.radicale",
            privileged=True,
        )
        app: WSGIApplication = Application(configuration)
        return app

    # --- accounts ---

    def ensure_calendars(self, user: str, calendars: dict[str, str]) -> None:
        """Make `/<user>/` and its calendars (slug → display name) unless they exist already."""
        key = (user, *sorted(calendars))
        with self._accounts_lock:
            if key not in self._known:
                self._make_calendars(user, calendars)
                self._known.add(key)

    def _make_calendars(self, user: str, calendars: dict[str, str]) -> None:
        base = f"{self.url}/{user}/"
        auth = (user, "")
        answer = self.http.request("PROPFIND", base, auth=auth, headers={"Depth": "0"}, timeout=_TIMEOUT)
        if answer.status_code == 404:
            self.http.request("MKCOL", base, auth=auth, timeout=_TIMEOUT).raise_for_status()
        for slug, name in calendars.items():
            url = f"{base}{slug}/"
            found = self.http.request("PROPFIND", url, auth=auth, headers={"Depth": "0"}, timeout=_TIMEOUT)
            if found.status_code == 404:
                self.http.request(
                    "MKCALENDAR",
                    url,
                    auth=auth,
                    data=_mkcalendar_body(name).encode(),
                    headers={"Content-Type": "application/xml; charset=utf-8"},
                    timeout=_TIMEOUT,
                ).raise_for_status()

    # --- switches ---

    def expire_sync_tokens(self) -> int:
        """Forget the sync-token history of every collection: each token given out so far is then
        unknown to Radicale, which answers 403 with `DAV:valid-sync-token` (as on expiry). Returns
        how many tokens were forgotten."""
        forgotten = 0
        with self._lock:
            for folder in list(self.folder.rglob("sync-token")):
                if folder.is_dir():
                    forgotten += sum(1 for _ in folder.iterdir())
                    shutil.rmtree(folder, ignore_errors=True)
        return forgotten

    def wipe(self) -> None:
        """Delete every account, calendar and event."""
        with self._lock:
            for child in self.folder.iterdir():
                if child.name.startswith("collection-"):
                    shutil.rmtree(child, ignore_errors=True)
            self._known.clear()
