"""GoHighLevel: a Location (sub-account) or Company (agency) token; pipelines and stages to pick.

Every API call needs the `Version` header (provider page §1.1); locations and opportunities use
2021-07-28. Webhooks name the location, so the location id routes them to the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.domain.connection import ExternalAccount
from integrations.providers.base import Option, ProviderModule
from integrations.providers.support import IdentityUnavailable, answer_fact, api_url, bearer, lookup, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup
    from integrations.providers.ghl.webhook import WorkflowSecret

API_VERSION = "2021-07-28"
LOOKUP_LOCATION = "location"
LOOKUP_COMPANY = "company"


def _headers() -> dict[str, str]:
    return {"Version": API_VERSION}


class GhlModule(ProviderModule):
    sub_account_lookup = LOOKUP_LOCATION
    workflow_lookup = "workflow"

    def issue_workflow_secret(self, connection: Connection, public_api_url: str) -> WorkflowSecret:
        """A location's workflow secret; its lookup replaces the previous one (now refused)."""
        from integrations.providers.ghl.webhook import issue_workflow_secret

        self._location_only(connection)
        return issue_workflow_secret(connection, public_api_url)

    def workflow_url(self, connection: Connection, public_api_url: str) -> str:
        from integrations.providers.ghl.webhook import workflow_url

        self._location_only(connection)
        return workflow_url(public_api_url, connection.account.id)

    @staticmethod
    def _location_only(connection: Connection) -> None:
        from integrations.domain.errors import Conflict

        if connection.account.id.startswith("company:"):
            raise Conflict(
                "Workflow call requests belong to a location: use the client's GoHighLevel connection.",
                code="workflow_webhook_not_supported",
            )

    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        location_id = text(token_answer.get("locationId"))
        company_id = text(token_answer.get("companyId"))
        if location_id:
            found = http.api_call(
                "GET",
                api_url(spec, f"locations/{location_id}"),
                access_token=access_token,
                headers=_headers(),
            )
            location = found.get("location", found) if isinstance(found, dict) else {}
            name = text(location.get("name")) if isinstance(location, dict) else ""
            return ExternalAccount(id=location_id, label=name or location_id)
        if company_id:
            return ExternalAccount(id=f"company:{company_id}", label=f"Agency {company_id}")
        raise IdentityUnavailable("GoHighLevel did not say which location was connected.")

    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        lookups: list[Lookup] = []
        location_id = text(answer_fact(credentials, "locationId"))
        company_id = text(answer_fact(credentials, "companyId"))
        if location_id:
            lookups.append(lookup(connection, LOOKUP_LOCATION, location_id))
        elif company_id:
            # Agency-level installs: company-wide events (uninstall) carry only the company id.
            lookups.append(lookup(connection, LOOKUP_COMPANY, company_id))
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
        if source is None or source.options_source not in ("pipelines", "stages"):
            return []
        location_id = text(answer_fact(credentials, "locationId")) or connection.account.id
        found = http.api_call(
            "GET",
            api_url(spec, "opportunities/pipelines"),
            access_token=bearer(credentials),
            headers=_headers(),
            params={"locationId": location_id},
        )
        pipelines = found.get("pipelines", []) if isinstance(found, dict) else []
        if source.options_source == "pipelines":
            return [
                Option(value=text(p.get("id")), label=text(p.get("name"))) for p in pipelines if p.get("id")
            ]
        # Stages depend on the chosen pipeline (config field `depends_on`).
        for pipeline in pipelines:
            if parent and text(pipeline.get("id")) == parent:
                return [
                    Option(value=text(s.get("id")), label=text(s.get("name")))
                    for s in pipeline.get("stages", [])
                    if s.get("id")
                ]
        return []

    def sub_accounts(self, spec: ProviderSpec, credentials: Credentials) -> list[Option]:
        """The company's locations: `GET /locations/search?companyId=` with the Company token."""
        company_id = text(answer_fact(credentials, "companyId"))
        if not company_id:
            return []
        found = http.api_call(
            "GET",
            api_url(spec, "locations/search"),
            access_token=bearer(credentials),
            headers=_headers(),
            params={"companyId": company_id, "limit": 1000},
        )
        rows = found.get("locations", []) if isinstance(found, dict) else []
        return [
            Option(value=text(row.get("id")), label=text(row.get("name")) or text(row.get("id")))
            for row in rows
            if isinstance(row, dict) and row.get("id")
        ]

    def sub_account_token(
        self, spec: ProviderSpec, credentials: Credentials, sub_account_id: str
    ) -> dict[str, Any]:
        """`POST /oauth/locationToken` (form companyId, locationId) with the Company token (provider
        page §1.3). The answer may lack a refresh token: the token manager re-mints when it expires."""
        company_id = text(answer_fact(credentials, "companyId"))
        answer = http.api_call(
            "POST",
            api_url(spec, "oauth/locationToken"),
            access_token=bearer(credentials),
            headers=_headers(),
            data={"companyId": company_id, "locationId": sub_account_id},
        )
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise IdentityUnavailable("GoHighLevel minted no location token.")
        if text(answer.get("locationId")) not in ("", sub_account_id):
            # Never keep a token for another location than the one asked for.
            raise IdentityUnavailable("GoHighLevel minted a token for another location.")
        return {**answer, "locationId": sub_account_id, "companyId": company_id}


MODULE = GhlModule()
