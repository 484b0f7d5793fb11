"""A refresh whose answer was lost: the stored tokens are read again before the refresh counts as failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from integrations.domain.credentials import AppCredentials, Credentials
from integrations.domain.errors import ProviderUnavailable
from integrations.oauth.errors import TokenAnswerLost
from integrations.store.vault import credential_ref
from tests.unit.test_token_refresh_metrics import NOW, Connections, TokenEndpoint, Vault, manager


class LostWhileAPeerSaves(TokenEndpoint):
    """The request left, no answer came back; meanwhile (maybe) another instance stored new tokens."""

    def __init__(self, peer_stores: Credentials | None) -> None:
        super().__init__(error=TokenAnswerLost("The token endpoint's answer was lost."))
        self.peer_stores = peer_stores
        self.save: Any = None

    def refresh(
        self, spec: Any, app: AppCredentials, refresh_token: str, level: Any = None
    ) -> dict[str, Any]:
        if self.peer_stores is not None:
            self.save(self.peer_stores)
        return super().refresh(spec, app, refresh_token, level)


def _wire(endpoint: LostWhileAPeerSaves) -> tuple[Any, Any, Vault, Connections]:
    tokens, connection, _ = manager(endpoint, expires_at=NOW - timedelta(minutes=1))
    vault: Vault = tokens.vault  # type: ignore[assignment]
    endpoint.save = lambda credentials: vault.put(credential_ref(connection), credentials)
    return tokens, connection, vault, tokens.connections  # type: ignore[return-value]


def test_tokens_a_peer_stored_while_the_answer_was_lost_are_used() -> None:
    peers = Credentials(
        access_token=SecretStr("peer-access"),
        refresh_token=SecretStr("peer-rotated-refresh"),
        expires_at=NOW + timedelta(hours=1),
    )
    endpoint = LostWhileAPeerSaves(peer_stores=peers)
    tokens, connection, _vault, connections = _wire(endpoint)

    fresh = tokens.credentials(connection)

    assert fresh.access_token is not None and fresh.access_token.get_secret_value() == "peer-access"
    assert endpoint.calls == 1
    assert connections.stored.consecutive_failures == 0


def test_a_lost_answer_with_nothing_newer_stored_fails_retryably_and_keeps_the_grant() -> None:
    endpoint = LostWhileAPeerSaves(peer_stores=None)
    tokens, connection, vault, connections = _wire(endpoint)

    with pytest.raises(ProviderUnavailable) as raised:
        tokens.credentials(connection)

    assert raised.value.code == "token_answer_lost"
    stored = vault.get(credential_ref(connection))
    assert stored is not None and stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() == "refresh"
    assert connections.stored.consecutive_failures == 1
