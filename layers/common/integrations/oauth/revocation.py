"""Revoke a grant at its provider: RFC 7009 where the catalog says so, else the provider's own hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.providers.registry import module_for

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.credentials import AppCredentials, Credentials
    from integrations.oauth.engine import OAuth2Engine


class GrantRevoker:
    """Best effort is the caller's: this raises what the provider answered."""

    def __init__(self, engine: OAuth2Engine | None = None) -> None:
        self._engine = engine

    def __call__(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        """Revoke the grant `credentials` hold (the refresh token when there is one: it ends the grant)."""
        if spec.oauth is not None and spec.oauth.revocation == "rfc7009":
            token, hint = credentials.refresh_token, "refresh_token"
            if token is None:
                token, hint = credentials.access_token, "access_token"
            if token is None:
                return
            self._oauth_engine().revoke(spec.oauth, app, token.get_secret_value(), hint)
            return
        module_for(spec.id).revoke(spec, credentials, app)

    def _oauth_engine(self) -> OAuth2Engine:
        if self._engine is None:
            from integrations.oauth.engine import OAuth2Engine

            self._engine = OAuth2Engine()
        return self._engine
