"""Small helpers the provider modules share: API URLs, bearer tokens, lookups, the paging rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from integrations.domain.errors import IntegrationError

if TYPE_CHECKING:
    from integrations.catalog.model import Paging, ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup
    from integrations.http import ProviderApiError


class IdentityUnavailable(IntegrationError):
    """The provider did not say whose account was connected."""

    status = 502
    code = "identity_failed"


def api_url(spec: ProviderSpec, path: str) -> str:
    base = (spec.api_base_url or "").rstrip("/")
    return f"{base}/{path.lstrip('/')}"


def paging_of(spec: ProviderSpec) -> Paging:
    """The provider's paging rules from the catalog (an entry that lists options in pages has them)."""
    if spec.paging is None:
        from integrations.catalog.loader import CatalogError

        raise CatalogError(f"the catalog entry {spec.id} does not say how its lists page")
    return spec.paging


def bearer(credentials: Credentials) -> str:
    from integrations.domain.errors import ReauthRequired

    if credentials.access_token is None:
        raise ReauthRequired("This connection has no access token; connect it again.")
    return credentials.access_token.get_secret_value()


def translated_call(
    method: str,
    url: str,
    *,
    access_token: str,
    translate: Callable[[ProviderApiError], Exception],
    params: dict[str, Any] | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One API call through the HTTP policy whose error answers the provider module puts in the
    engine's words (`translate`: a rate limit, an expired cursor, a vanished calendar, or the error
    itself). Raised without the HTTP chain, so no request detail travels with it."""
    from integrations import http

    try:
        return http.api_call(
            method, url, access_token=access_token, params=params, json=json, headers=headers
        )
    except http.ProviderApiError as exc:
        raise translate(exc) from None


def answer_fact(credentials: Credentials, key: str) -> Any:
    """A non-secret fact the token endpoint returned at connect (kept in credentials.extra)."""
    facts = credentials.extra.get("token_answer")
    return facts.get(key) if isinstance(facts, dict) else None


def lookup(connection: Connection, kind: str, value: str, **attributes: str) -> Lookup:
    from integrations.domain.lookup import Lookup

    return Lookup(
        provider=connection.provider,
        kind=kind,
        value=value,
        connection_id=connection.id,
        agency_id=connection.agency_id,
        client_id=connection.client_id,
        attributes=dict(attributes),
    )


def text(value: Any) -> str:
    """A provider value as text ('' for missing), for ids that may come back as numbers."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)
