"""The shape every provider module has. Defaults do nothing, so a provider implements only what it has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection, ExternalAccount
    from integrations.domain.credentials import AppCredentials, Credentials
    from integrations.domain.lookup import Lookup


@dataclass(frozen=True, slots=True)
class Option:
    """One choice in a configuration dropdown."""

    value: str
    label: str


class WorkflowSecretLike(Protocol):
    """providers/<id>/webhook.py's issued secret: the secret (shown once), its URL, its lookup item."""

    @property
    def secret(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def lookup(self) -> Lookup: ...


class ProviderModule:
    """Hooks around a connection's life. `token` is a fresh access token from the token manager."""

    # Inbound-address providers: the lookup kind on_connect writes for the address's local part.
    inbound_lookup_kind: str | None = None
    # The lookup kind `on_connect` writes for a sub-account (GHL: "location"); None without sub-accounts.
    sub_account_lookup: str | None = None
    # Whether `check_grant` asks the provider anything. Grants whose tokens never expire are never
    # refreshed, so only such a check finds a revoked one before the next real call does.
    checks_grant: bool = False

    def check_grant(self, spec: ProviderSpec, credentials: Credentials) -> None:
        """The provider's cheapest call that proves the stored grant still works (an identity call);
        raises http.AccessRefused (reauth_required) when the provider no longer accepts it."""

    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        """Read the external account (id + label) right after the code exchange."""
        raise NotImplementedError

    def granted_scopes(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> list[str] | None:
        """Granted scopes when the token answer does not carry them (None: use the token answer)."""
        return None

    def password_credentials(self, spec: ProviderSpec, username: str, password: str) -> Credentials:
        """Password auth kinds: verify the account name and password at the provider; what to store."""
        raise NotImplementedError

    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        """Choices for a config field whose `options_source` this provider serves."""
        return []

    def revoke(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        """Revoke the grant at the provider (best effort; callers log and go on)."""

    def send_test_message(self, spec: ProviderSpec, connection: Connection, credentials: Credentials) -> None:
        """ "Send a test message" from the configure step (chat providers); raises what went wrong."""
        from integrations.domain.errors import Conflict

        raise Conflict("This integration does not send messages.", code="test_message_not_supported")

    # The lookup kind holding a workflow's call-request secret (GHL: "workflow"); None without workflows.
    workflow_lookup: str | None = None

    def issue_workflow_secret(self, connection: Connection, public_api_url: str) -> WorkflowSecretLike:
        """A new random secret for the URL a CRM workflow posts call requests to (shown once)."""
        from integrations.domain.errors import Conflict

        raise Conflict("This integration has no workflows.", code="workflow_webhook_not_supported")

    def workflow_url(self, connection: Connection, public_api_url: str) -> str:
        """The URL a CRM workflow posts call requests to."""
        from integrations.domain.errors import Conflict

        raise Conflict("This integration has no workflows.", code="workflow_webhook_not_supported")

    def sub_accounts(self, spec: ProviderSpec, credentials: Credentials) -> list[Option]:
        """The sub-accounts an agency-level grant covers (GHL: the company's locations); none by default."""
        return []

    def sub_account_token(
        self, spec: ProviderSpec, credentials: Credentials, sub_account_id: str
    ) -> dict[str, Any]:
        """A token answer for one sub-account, minted with the agency-level grant's credentials."""
        from integrations.domain.errors import Conflict

        raise Conflict("This integration has no sub-accounts.", code="sub_accounts_not_supported")

    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        """Provider-side set-up after connect (subscriptions, channels); returns lookup items to write."""
        return []
