"""The local stack, started once for the e2e package on free ports, and a small HTTP client for it.

Package scope: the stack sets the process environment the functions read (AWS endpoint, table
names...), and stopping it after the last e2e test puts the environment back before other packages run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.local.stack import LocalStack

VIEW, MANAGE = "view_integrations", "manage_integrations"

# The portal's demo identities (infra/portal/app.js), as claims for POST /dev/token.
IDENTITIES: dict[str, dict[str, Any]] = {
    "agency-admin": {
        "sub": "demo-agency-admin",
        "agency_id": "demo-agency",
        "role": "agency_admin",
        "permissions": [VIEW, MANAGE],
    },
    "client-manager": {
        "sub": "client-a-manager",
        "agency_id": "demo-agency",
        "client_id": "client-a",
        "role": "client_user",
        "permissions": [VIEW, MANAGE],
    },
    "client-viewer": {
        "sub": "client-a-viewer",
        "agency_id": "demo-agency",
        "client_id": "client-a",
        "role": "client_user",
        "permissions": [VIEW],
    },
    "starter-admin": {
        "sub": "starter-agency-admin",
        "agency_id": "starter-agency",
        "role": "agency_admin",
        "permissions": [VIEW, MANAGE],
    },
}


class Api:
    """requests against the gateway; never through a proxy, never following redirects unless asked."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False

    def token(self, identity: str | dict[str, Any]) -> str:
        claims = IDENTITIES[identity] if isinstance(identity, str) else identity
        answer = self.http.post(f"{self.base}/dev/token", json=claims, timeout=10)
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token

    def call(
        self, method: str, path: str, *, identity: str | dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if identity is not None:
            headers["Authorization"] = f"Bearer {self.token(identity)}"
        url = path if path.startswith("http") else f"{self.base}{path}"
        kwargs.setdefault("allow_redirects", False)
        return self.http.request(method, url, headers=headers, timeout=20, **kwargs)


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(stage="e2e", batching_window=0.1, run_schedules=False, request_timeout=2.0)
    local.start(port=0, sandbox_port=0)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="package")
def api(stack: LocalStack) -> Api:
    assert stack.urls is not None
    return Api(stack.urls.gateway)
