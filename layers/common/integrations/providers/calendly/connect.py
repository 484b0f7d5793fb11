"""Calendly: the user (and organization) URIs identify the account and route booking webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.domain.connection import ExternalAccount
from integrations.providers.base import Option, ProviderModule
from integrations.providers.support import IdentityUnavailable, api_url, bearer, lookup, paging_of, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup

LOOKUP_USER = "user"
LOOKUP_ORGANIZATION = "organization"


def _me(spec: ProviderSpec, access_token: str) -> dict[str, Any]:
    found = http.api_call("GET", api_url(spec, "users/me"), access_token=access_token)
    resource = found.get("resource") if isinstance(found, dict) else None
    if not isinstance(resource, dict):
        raise IdentityUnavailable("Calendly did not return the connected user.")
    return resource


class CalendlyModule(ProviderModule):
    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        me = _me(spec, access_token)
        uri = text(me.get("uri") or token_answer.get("owner"))
        if not uri:
            raise IdentityUnavailable("Calendly did not say which user was connected.")
        return ExternalAccount(id=uri, label=text(me.get("email") or me.get("name")) or uri)

    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        lookups = [lookup(connection, LOOKUP_USER, connection.account.id)]
        organization = text((credentials.extra.get("token_answer") or {}).get("organization"))
        if organization:
            lookups.append(lookup(connection, LOOKUP_ORGANIZATION, organization))
        return lookups

    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        source = spec.config_field(field)
        if source is None or source.options_source != "event_types":
            return []
        event_types = http.paginate(
            paging_of(spec),
            api_url(spec, "event_types"),
            params={"user": connection.account.id, "active": "true"},
            access_token=bearer(credentials),
        )
        return [
            Option(value=text(item["uri"]), label=text(item.get("name")) or text(item["uri"]))
            for item in event_types
            if item.get("uri")
        ]


MODULE = CalendlyModule()
