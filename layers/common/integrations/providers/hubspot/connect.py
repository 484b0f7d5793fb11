"""HubSpot: the portal (hub id) identifies the account and routes webhooks; properties and pipelines.

The v1 token answer does not list scopes, so they come from the token's metadata
(`GET /oauth/v1/access-tokens/{token}`), which also names the hub (provider page §2.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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

LOOKUP_PORTAL = "portal"


def token_info(spec: ProviderSpec, access_token: str) -> dict[str, Any]:
    found = http.api_call("GET", api_url(spec, f"oauth/v1/access-tokens/{quote(access_token, safe='')}"))
    if not isinstance(found, dict):
        raise IdentityUnavailable("HubSpot did not describe the token.")
    return found


class HubspotModule(ProviderModule):
    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        info = token_info(spec, access_token)
        hub_id = text(info.get("hub_id") or token_answer.get("hub_id"))
        if not hub_id:
            raise IdentityUnavailable("HubSpot did not say which portal was connected.")
        domain = text(info.get("hub_domain"))
        return ExternalAccount(id=hub_id, label=domain or f"Portal {hub_id}")

    def granted_scopes(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> list[str] | None:
        scopes = token_answer.get("scopes")
        if not isinstance(scopes, list):
            scopes = token_info(spec, access_token).get("scopes")
        return [str(s) for s in scopes] if isinstance(scopes, list) else None

    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        return [lookup(connection, LOOKUP_PORTAL, connection.account.id)]

    def revoke(self, spec: ProviderSpec, credentials: Credentials, app: AppCredentials | None) -> None:
        """DELETE /oauth/v1/refresh-tokens/{token}: ends the grant (the app stays installed)."""
        assert spec.oauth is not None
        if not spec.oauth.revoke_url or credentials.refresh_token is None:
            return
        token = quote(credentials.refresh_token.get_secret_value(), safe="")
        response = http.session().delete(spec.oauth.revoke_url.replace("{token}", token))
        http.check_rate_limit(response)
        if response.status_code >= 400 and response.status_code != 404:
            raise http.ProviderApiError(response.status_code, http.get_json(response))

    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        source = spec.config_field(field)
        kind = source.options_source if source is not None else None
        token = bearer(credentials)
        if kind == "contact_properties":
            found = http.api_call("GET", api_url(spec, "crm/v3/properties/contacts"), access_token=token)
            results = found.get("results", []) if isinstance(found, dict) else []
            writable = [
                p for p in results if not (p.get("modificationMetadata") or {}).get("readOnlyValue", False)
            ]
            return [
                Option(value=text(p.get("name")), label=text(p.get("label") or p.get("name")))
                for p in writable
            ]
        if kind in ("deal_pipelines", "deal_stages"):
            pipelines = http.paginate(
                paging_of(spec), api_url(spec, "crm/v3/pipelines/deals"), access_token=token
            )
            if kind == "deal_pipelines":
                return [Option(value=text(p.get("id")), label=text(p.get("label"))) for p in pipelines]
            # Stages depend on the chosen pipeline (config field `depends_on`).
            for pipeline in pipelines:
                if parent and text(pipeline.get("id")) == parent:
                    return [
                        Option(value=text(s.get("id")), label=text(s.get("label")))
                        for s in pipeline.get("stages", [])
                        if s.get("id") and not s.get("archived")
                    ]
        return []


MODULE = HubspotModule()
