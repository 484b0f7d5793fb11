"""Provider modules against the sandbox: Configure dropdowns, and revocation at disconnect."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from infra.local.sandbox import APP_CREDENTIALS
from integrations import aws as aws_clients
from integrations.catalog import load_catalog
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.credentials import AppCredentials
from integrations.oauth.revocation import GrantRevoker
from integrations.providers.registry import module_for
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import credential_ref
from tests.integration.oauth.conftest import APP_OF, OWNER, Browser

pytestmark = pytest.mark.usefixtures("oauth_env")


def connected(browser: Browser, provider: str) -> tuple[Any, Any, Any]:
    """Connect through the whole round trip; the connection, its credentials and its catalog entry."""
    assert browser.connect(provider).result()["result"] == "connected"
    who, level = OWNER[provider]
    scope = Scope(who["agency_id"], Level(level), who["client_id"], who["sub"] if level == "user" else None)
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    [connection] = [c for c in repo.list_for_scope(scope) if c.provider == provider]
    credentials = build_vault(Settings.from_env()).get(credential_ref(connection))
    return connection, credentials, load_catalog().get(provider)


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        ("google_calendar", "calendar_id"),
        ("ghl", "pipeline_id"),
        ("hubspot", "property_mapping"),
        ("hubspot", "deal_pipeline_id"),
        ("calendly", "event_type_uri"),
        ("slack", "channel_id"),
        ("outlook_calendar", "calendar_id"),
    ],
)
def test_configure_dropdowns_list_provider_options(browser: Browser, provider: str, field: str) -> None:
    connection, credentials, spec = connected(browser, provider)

    options = module_for(provider).options(spec, connection, credentials, field, None)

    assert options, f"no options for {provider}.{field}"
    assert all(o.value and o.label for o in options)
    assert len({o.value for o in options}) == len(options)


def test_ghl_stages_depend_on_the_pipeline(browser: Browser) -> None:
    connection, credentials, spec = connected(browser, "ghl")
    module = module_for("ghl")
    pipelines = module.options(spec, connection, credentials, "pipeline_id", None)

    stages = module.options(spec, connection, credentials, "stage_id", pipelines[0].value)

    assert stages
    assert module.options(spec, connection, credentials, "stage_id", "no-such-pipeline") == []


def test_google_primary_calendar_is_listed_first(browser: Browser) -> None:
    connection, credentials, spec = connected(browser, "google_calendar")
    options = module_for("google_calendar").options(spec, connection, credentials, "calendar_id", None)
    assert options[0].label.endswith("(primary)")


def app_of(provider: str) -> AppCredentials:
    values = APP_CREDENTIALS[APP_OF[provider]]
    return AppCredentials(client_id=values["client_id"], client_secret=values["client_secret"], extra={})


IDENTITY_CHECK = {
    "google_calendar": ("GET", "/google/userinfo", None),
    "calendly": ("GET", "/calendly/users/me", None),
    "slack": ("POST", "/slack/api/auth.test", "ok"),
}


@pytest.mark.parametrize("provider", ["google_calendar", "calendly", "slack"])
def test_revoke_ends_the_grant_at_the_provider(
    browser: Browser, provider: str, oauth_env: dict[str, str]
) -> None:
    _, credentials, spec = connected(browser, provider)
    method, path, ok_field = IDENTITY_CHECK[provider]
    token = credentials.access_token.get_secret_value()

    def works() -> bool:
        answer = requests.request(
            method, f"{oauth_env['sandbox']}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        if ok_field:
            return bool(answer.json().get(ok_field))
        return answer.status_code == 200

    assert works()
    GrantRevoker()(spec, credentials, app_of(provider))
    assert not works()


def test_hubspot_revoke_deletes_the_refresh_token(browser: Browser, oauth_env: dict[str, str]) -> None:
    _, credentials, spec = connected(browser, "hubspot")
    module_for("hubspot").revoke(spec, credentials, app_of("hubspot"))
    app = app_of("hubspot")
    refresh = credentials.refresh_token.get_secret_value()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    answer = requests.post(spec.oauth.token_url, data=form, timeout=5)
    assert answer.status_code == 400


def test_revoke_twice_does_not_fail(browser: Browser) -> None:
    _, credentials, spec = connected(browser, "slack")
    module_for("slack").revoke(spec, credentials, app_of("slack"))
    module_for("slack").revoke(spec, credentials, app_of("slack"))
    assert spec.revocable


def test_every_catalog_provider_has_a_module() -> None:
    from integrations.providers.base import ProviderModule

    for spec in load_catalog():
        module = module_for(spec.id)
        if spec.id != "bcc_email":
            assert type(module) is not ProviderModule, spec.id
