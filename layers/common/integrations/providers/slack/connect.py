"""Slack: a bot installed in one workspace; the team routes events, a channel receives notifications.

Web API errors come back as HTTP 200 with `ok: false` (provider page §4.3), so every answer's `ok`
is checked here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.domain.connection import ExternalAccount
from integrations.domain.credentials import AppCredentials
from integrations.providers.base import Option, ProviderModule
from integrations.providers.support import IdentityUnavailable, api_url, bearer, lookup, paging_of, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup

LOOKUP_TEAM = "team"


def call(
    spec: ProviderSpec, method: str, access_token: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a Web API method (form-encoded) and return its answer; `ok: false` raises ProviderApiError."""
    return _post(api_url(spec, method), access_token, params)


def _post(url: str, access_token: str, form: dict[str, Any] | None) -> dict[str, Any]:
    found = http.api_call("POST", url, access_token=access_token, data=form or {})
    if isinstance(found, dict) and found.get("error") in _TOKEN_REFUSED:
        # Slack refuses a token with HTTP 200 and `ok: false`; it means what a 401 means elsewhere.
        raise http.AccessRefused(200, str(found["error"]))
    if not isinstance(found, dict) or found.get("ok") is not True:
        raise http.ProviderApiError(200, found)
    return found


_TOKEN_REFUSED = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)


class SlackModule(ProviderModule):
    # Bot tokens never expire (no token rotation): auth.test, Slack's cheapest call, finds a revoked
    # one (`token_revoked`, `invalid_auth`, `account_inactive` with HTTP 200) before a message would.
    checks_grant = True

    def check_grant(self, spec: ProviderSpec, credentials: Credentials) -> None:
        call(spec, "auth.test", bearer(credentials))

    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        given = token_answer.get("team")
        team: dict[str, Any] = given if isinstance(given, dict) else {}
        checked = call(spec, "auth.test", access_token)
        team_id = text(checked.get("team_id") or team.get("id"))
        if not team_id:
            raise IdentityUnavailable("Slack did not say which workspace was connected.")
        return ExternalAccount(id=team_id, label=text(checked.get("team") or team.get("name")) or team_id)

    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        return [lookup(connection, LOOKUP_TEAM, connection.account.id)]

    def revoke(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        """auth.revoke with the bot token: deactivates this installation's token."""
        assert spec.oauth is not None
        if credentials.access_token is None or not spec.oauth.revoke_url:
            return
        found = http.api_call(
            "POST", spec.oauth.revoke_url, access_token=credentials.access_token.get_secret_value(), data={}
        )
        if isinstance(found, dict) and found.get("ok") is False and found.get("error") not in _ALREADY_GONE:
            raise http.ProviderApiError(200, found)

    def send_test_message(self, spec: ProviderSpec, connection: Connection, credentials: Credentials) -> None:
        """Post a short test message in the configured channel, now (not through the outbox)."""
        from integrations.providers.slack.sync import send_trial

        send_trial(spec, connection, bearer(credentials))

    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        source = spec.config_field(field)
        if source is None or source.options_source != "channels":
            return []
        token = bearer(credentials)
        channels = http.paginate(
            paging_of(spec),
            api_url(spec, "conversations.list"),
            params={"types": "public_channel,private_channel", "exclude_archived": "true"},
            items="/channels",
            fetch=lambda url, form: _post(url, token, form),
        )
        return [
            Option(
                value=text(channel["id"]),
                label=("(private) " if channel.get("is_private") else "#") + text(channel.get("name")),
            )
            for channel in channels
            if channel.get("id")
        ]


_ALREADY_GONE = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed"})

MODULE = SlackModule()
