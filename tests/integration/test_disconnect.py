"""Disconnect stops the connection's pushes at the provider, and revokes only when no other connection
still relies on the same grant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integrations.catalog.model import ProviderSpec
from integrations.domain.access import Level
from integrations.domain.credentials import AppCredentials, Credentials
from integrations.providers.base import ProviderModule
from integrations.providers.gmail.webhook import LOOKUP_EMAIL
from integrations.webhooks.routing import make_lookup
from tests.support import seed
from tests.support.events import claims, http_event

Call = Callable[[dict[str, Any]], dict[str, Any]]
PERSON = claims(sub="user-1", agency_id="agency-1", client_id="client-a")


class RecordingModule(ProviderModule):
    def __init__(self) -> None:
        self.revoked: list[str] = []

    def revoke(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        self.revoked.append(spec.id)


@pytest.fixture
def provider_module(monkeypatch: pytest.MonkeyPatch, connectors: Any) -> RecordingModule:
    module = RecordingModule()
    monkeypatch.setattr("integrations.oauth.revocation.module_for", lambda _provider: module)
    return module


@pytest.fixture
def provider_api(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    """(method, url, access token) of every provider API call, answered with an empty object."""
    calls: list[tuple[str, str, str | None]] = []

    def record(method: str, url: str, *, access_token: str | None = None, **_: Any) -> dict[str, Any]:
        calls.append((method, url, access_token))
        return {}

    monkeypatch.setattr("integrations.http.api_call", record)
    return calls


def test_google_grant_shared_with_another_connection_is_not_revoked(
    call: Call, provider_module: RecordingModule, provider_api: list[tuple[str, str, str | None]]
) -> None:
    gmail = seed.connection(
        provider="gmail",
        level=Level.USER,
        user_id="user-1",
        account_id="google-sub-1",
        access_token="gmail-access-token",
    )
    connections, _ = seed.repositories()
    connections.put_lookups(gmail, [make_lookup(gmail, LOOKUP_EMAIL, "person@example.com")])
    seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1", account_id="google-sub-1")

    answer = call(http_event("DELETE", f"/connections/{gmail.id}", claims=PERSON))

    assert answer["statusCode"] == 204
    assert provider_module.revoked == []
    # The mailbox watch is stopped with the connection's own token, even though the grant stays.
    assert provider_api == [
        ("POST", "https://gmail.googleapis.com/gmail/v1/users/me/stop", "gmail-access-token")
    ]
    assert connections.get_lookup("gmail", LOOKUP_EMAIL, "person@example.com") is None


def test_last_connection_on_a_grant_is_revoked(call: Call, provider_module: RecordingModule) -> None:
    gmail = seed.connection(provider="gmail", level=Level.USER, user_id="user-1", account_id="google-sub-1")
    seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1", account_id="google-sub-2")

    call(http_event("DELETE", f"/connections/{gmail.id}", claims=PERSON))

    assert provider_module.revoked == ["gmail"]


def test_a_failing_revoke_never_blocks_the_disconnect(
    call: Call, provider_module: RecordingModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = seed.connection(provider="slack")

    def explode(*_: Any) -> None:
        raise ConnectionError("provider down")

    monkeypatch.setattr(provider_module, "revoke", explode)

    answer = call(http_event("DELETE", f"/connections/{conn.id}", claims=PERSON))

    connections, _ = seed.repositories()
    assert answer["statusCode"] == 204
    assert connections.get(conn.id) is None
