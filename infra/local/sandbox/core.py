"""The sandbox context handlers receive, the route record, and small HTTP helpers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.config import SandboxConfig
from infra.local.sandbox.push import PushDispatcher
from infra.local.sandbox.state import SandboxState


class Reply(Exception):
    """Raised anywhere in a handler to answer at once with `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class Sandbox:
    """What every handler gets: settings, state, the push dispatcher and the sandbox clock."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState(config.max_log_entries)
        self.pushes = PushDispatcher(timeout=config.push_timeout, enabled=config.push_enabled)

    def now(self) -> float:
        return self.config.clock() + self.state.time_offset

    def access_ttl(self, app: str, default: int | None) -> int | None:
        return self.config.access_token_ttl.get(app, default)


Handler = Callable[..., Response]


@dataclass(frozen=True, slots=True)
class Route:
    """One URL rule. `kind` decides logging and which faults apply (token, api, authorize, control)."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    kind: str
    app: str | None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(data), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def html_response(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    # A consent page must not be framed (clickjacking) nor cached, as at every real provider.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """HTTP Basic client credentials; both parts are form-urlencoded first (RFC 6749 §2.3.1)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))


def read_json(request: Request) -> dict[str, Any] | None:
    """The JSON object body, or None when it is missing or not an object."""
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def is_form(request: Request) -> bool:
    return request.mimetype == "application/x-www-form-urlencoded"
