"""Disconnect revokes at the provider only when no other connection still relies on the same grant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integrations.catalog.model import ProviderSpec
from integrations.domain.access import Level
from integrations.domain.credentials import AppCredentials, Credentials
from integrations.providers.base import ProviderModule
from tests.support import seed
from tests.support.events import claims, http_event

Call = Callable[[dict[str, Any]], dict[str, Any]]
PERSON = claims(sub="user-1", agency_id="agency-1", client_id="client-a")


class RecordingModule(ProviderModule):
    def __init__(self) -> None:
        self.revoked: list[str] = []
        self.unsubscribed: list[str] = []

    def revoke(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        self.revoked.append(spec.id)

    def on_disconnect(self, spec: ProviderSpec, connection: Any, credentials: Credentials) -> None:
        self.unsubscribed.append(connection.id)


@pytest.fixture
def provider_module(monkeypatch: pytest.MonkeyPatch, connectors: Any) -> RecordingModule:
    module = RecordingModule()
    monkeypatch.setattr("integrations.connections.disconnect.module_for", lambda _provider: module)
    return module


def test_google_grant_shared_with_another_connection_is_not_revoked(
    call: Call, provider_module: RecordingModule
) -> None:
    gmail = seed.connection(provider="gmail", level=Level.USER, user_id="user-1", account_id="google-sub-1")
    seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1", account_id="google-sub-1")

    answer = call(http_event("DELETE", f"/connections/{gmail.id}", claims=PERSON))

    assert answer["statusCode"] == 204
    assert provider_module.revoked == []
    assert provider_module.unsubscribed == [gmail.id]


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
