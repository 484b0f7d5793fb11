"""An agency admin registers its own OAuth client per provider; the secret is write-only, and the
agency's connections use that client from then on."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from infra.local.sandbox import APP_CREDENTIALS
from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.oauth.apps import AgencyAppInput, AppCredentialStore
from integrations.store.app_secrets import SecretsManagerAppSecrets
from tests.integration.oauth.conftest import AGENCY_ADMIN, CLIENT_USER, Browser
from tests.support.events import http_event

pytestmark = pytest.mark.usefixtures("oauth_env")

OWN = {"client_id": "agency-own-google-client", "client_secret": "agency-own-secret-value"}


def put_app(browser: Browser, provider: str, body: Any, who: dict[str, Any] = AGENCY_ADMIN) -> Any:
    return browser.call(http_event("PUT", f"/agency/oauth-apps/{provider}", claims=who, body=body))


def get_app(browser: Browser, provider: str) -> Any:
    return browser.call(http_event("GET", f"/agency/oauth-apps/{provider}", claims=AGENCY_ADMIN))


def authorize_client_id(browser: Browser, provider: str) -> str:
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    return dict(parse_qsl(urlsplit(at_provider.location).query))["client_id"]


def test_register_answers_without_the_secret_and_stores_it(browser: Browser) -> None:
    answer = put_app(browser, "google_calendar", OWN)

    assert answer.status == 200
    assert answer.body == {
        "provider": "google_calendar",
        "app": "google",
        "client_id": OWN["client_id"],
        "client_secret_set": True,
        "updated_at": answer.body["updated_at"],
    }
    assert OWN["client_secret"] not in json.dumps(answer.raw)
    shown = get_app(browser, "google_calendar")
    assert shown.status == 200 and OWN["client_secret"] not in json.dumps(shown.raw)
    name = Settings.from_env().agency_app_secret_prefix + "agency-1/google"
    stored = json.loads(aws_clients.secretsmanager().get_secret_value(SecretId=name)["SecretString"])
    assert stored["client_secret"] == OWN["client_secret"]


def test_new_authorizations_use_the_agencys_client(browser: Browser) -> None:
    assert authorize_client_id(browser, "gmail") == APP_CREDENTIALS["google"]["client_id"]
    put_app(browser, "google_calendar", OWN)

    # Every provider of the same OAuth app (Gmail shares Google's) uses it from then on
    assert authorize_client_id(browser, "gmail") == OWN["client_id"]


def test_removing_it_goes_back_to_the_platform_app(browser: Browser) -> None:
    put_app(browser, "slack", {"client_id": "own-slack", "client_secret": "own-slack-secret"})

    removed = browser.call(http_event("DELETE", "/agency/oauth-apps/slack", claims=AGENCY_ADMIN))

    assert removed.status == 204
    assert get_app(browser, "slack").status == 404
    assert authorize_client_id(browser, "slack") == APP_CREDENTIALS["slack"]["client_id"]


def test_only_agency_admins_manage_oauth_apps(browser: Browser) -> None:
    answer = put_app(browser, "slack", {"client_id": "x", "client_secret": "y"}, who=CLIENT_USER)
    assert answer.status == 403
    assert answer.body["code"] == "agency_admin_only"


def test_secret_is_required_and_unknown_fields_refused(browser: Browser) -> None:
    assert put_app(browser, "slack", {"client_id": "x"}).status == 422
    assert put_app(browser, "slack", {"client_id": "x", "client_secret": "y", "extra": 1}).status == 422


def test_icloud_has_no_oauth_app(browser: Browser) -> None:
    answer = put_app(browser, "icloud_calendar", {"client_id": "x", "client_secret": "y"})
    assert answer.status == 400
    assert answer.body["code"] == "not_oauth"


def test_grants_keep_the_client_that_issued_them() -> None:
    settings = Settings.from_env()
    apps = AppCredentialStore(
        SecretsManagerAppSecrets(
            aws_clients.secretsmanager(), settings.app_secret_prefix, settings.agency_app_secret_prefix
        )
    )
    platform_id = APP_CREDENTIALS["google"]["client_id"]
    apps.put_agency_app("agency-1", "google", AgencyAppInput(**OWN))

    # A grant made with the platform app before the agency registered its own is refreshed with it
    assert apps.for_client_id("agency-1", "google", platform_id).client_id == platform_id
    assert apps.for_client_id("agency-1", "google", OWN["client_id"]).client_secret == OWN["client_secret"]
    # Unknown or missing issuer: the agency's current choice
    assert apps.for_client_id("agency-1", "google", None).client_id == OWN["client_id"]
    # Other agencies still use the platform app
    assert apps.current("agency-2", "google").client_id == platform_id
