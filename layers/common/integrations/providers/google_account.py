"""What the Google providers (Calendar two-way and one-way, Gmail) share: identity and revocation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from integrations import http
from integrations.domain.connection import ExternalAccount
from integrations.domain.credentials import AppCredentials
from integrations.providers.base import ProviderModule
from integrations.providers.support import IdentityUnavailable, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.credentials import Credentials


class GoogleModule(ProviderModule):
    """Identity from the OpenID Connect userinfo endpoint: `sub` identifies, the email labels."""

    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        info = http.api_call("GET", spec.urls["userinfo"], access_token=access_token)
        if not isinstance(info, dict):
            raise IdentityUnavailable("Google did not return the account's profile.")
        email = text(info.get("email")).lower()
        subject = text(info.get("sub")) or email
        if not subject:
            raise IdentityUnavailable("Google did not return the account's email or id.")
        return ExternalAccount(id=subject, label=email or subject)

    def revoke(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        """POST revoke?token=: a refresh token revokes the whole grant (provider page §1.1).

        Revocation removes every scope the account granted this OAuth client, so the caller must
        skip it while another connection of the same Google account and app remains.
        """
        assert spec.oauth is not None
        token = credentials.refresh_token or credentials.access_token
        if not spec.oauth.revoke_url or token is None:
            return
        url = f"{spec.oauth.revoke_url}?{urlencode({'token': token.get_secret_value()})}"
        response = http.session().post(url, headers={"Content-Type": "application/x-www-form-urlencoded"})
        http.check_rate_limit(response)
        # 400 `invalid_token`: already revoked or expired, which is what we wanted.
        if response.status_code >= 500:
            raise http.ProviderApiError(response.status_code, http.get_json(response))
