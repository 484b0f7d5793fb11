"""Every OAuth provider connects over HTTP against the sandbox, which checks what the real one checks
(exact redirect URI, client credentials, PKCE verifier, single-use codes); every failure redirects
to the portal with a stable code and creates nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.connection import ErrorCode, PortalStatus
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import credential_ref
from tests.integration.oauth.conftest import (
    AGENCY_ADMIN,
    GATEWAY,
    OAUTH_PROVIDERS,
    OWNER,
    RETURN_TO,
    Browser,
    sandbox_requests,
)

pytestmark = pytest.mark.usefixtures("oauth_env")


def repo() -> ConnectionRepository:
    return ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)


def owner_scope(provider: str) -> Scope:
    who, level = OWNER[provider]
    user = who["sub"] if level == "user" else None
    return Scope(who["agency_id"], Level(level), who.get("client_id"), user)


def connections_of(provider: str) -> list[Any]:
    return [c for c in repo().list_for_scope(owner_scope(provider)) if c.provider == provider]


def queued_jobs() -> list[dict[str, Any]]:
    sqs = aws_clients.sqs()
    url = Settings.from_env().sync_queue_url
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


# --- success --------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_provider_connects_and_returns_to_the_portal(browser: Browser, provider: str) -> None:
    # Given a client user, when they run the whole round trip and allow everything
    done = browser.connect(provider)

    # Then the portal gets `connected`, one connection exists with the account's identity
    assert done.status == 302
    assert done.result() == {"integration": provider, "result": "connected"}
    assert done.headers["Referrer-Policy"] == "no-referrer"
    assert done.headers["Cache-Control"] == "no-store"
    [connection] = connections_of(provider)
    assert connection.account.id and connection.account.label
    assert connection.status in (PortalStatus.CONNECTED, PortalStatus.ERROR)
    if connection.status is PortalStatus.ERROR:
        # Providers with required settings start out asking for them.
        assert connection.error is not None and connection.error.code == "config_required"
    # and the tokens are in the vault, never on the connection
    stored = build_vault(Settings.from_env()).get(credential_ref(connection))
    assert stored is not None and stored.access_token is not None
    assert stored.access_token.get_secret_value() not in connection.model_dump_json()
    # and an initial sync job is queued
    assert {"kind": "sync", "connection_id": connection.id, "provider": provider}.items() <= queued_jobs()[
        0
    ].items()
    # and the binding cookie is cleared
    assert browser.jar == {}


def test_google_account_identity_is_the_email(browser: Browser) -> None:
    browser.connect("google_calendar")
    [connection] = connections_of("google_calendar")
    assert connection.account.label == "alex@example.com"
    assert sorted(connection.oauth_scopes) == sorted(
        [
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/calendar.events",
            "https://www.googleapis.com/auth/calendar.readonly",
        ]
    )


def test_pkce_verifier_and_exact_redirect_uri_reach_the_token_endpoint(
    browser: Browser, oauth_env: dict[str, str]
) -> None:
    browser.connect("calendly")
    [exchange] = sandbox_requests(oauth_env["sandbox"], app="calendly", grant_type="authorization_code")
    assert exchange["status"] == 200
    # The sandbox only answers 200 after checking S256(verifier) == challenge and the redirect URI.
    authorize = browser_authorize_params(oauth_env["sandbox"], "calendly")
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["redirect_uri"] == f"{GATEWAY}/oauth/calendly/callback"


def browser_authorize_params(base: str, app: str) -> dict[str, str]:
    entries = [e for e in sandbox_requests(base, app=app) if e.get("kind") == "authorize"]
    assert entries, "the browser never reached the provider's authorize page"
    query = entries[0].get("query") or entries[0].get("params") or {}
    return dict(query)


def test_ghl_location_becomes_the_webhook_lookup(browser: Browser) -> None:
    browser.connect("ghl")
    [connection] = connections_of("ghl")
    found = repo().get_lookup("ghl", "location", connection.account.id)
    assert found is not None and found.connection_id == connection.id


@pytest.mark.parametrize(
    ("provider", "kind"),
    [("hubspot", "portal"), ("slack", "team"), ("calendly", "user")],
)
def test_account_ids_route_webhooks(browser: Browser, provider: str, kind: str) -> None:
    browser.connect(provider)
    [connection] = connections_of(provider)
    found = repo().get_lookup(provider, kind, connection.account.id)
    assert found is not None and found.connection_id == connection.id


def test_gmail_address_routes_pushes(browser: Browser) -> None:
    browser.connect("gmail")
    [connection] = connections_of("gmail")
    assert repo().get_lookup("gmail", "email", "alex@example.com") is not None
    assert connection.account.label == "alex@example.com"


# --- failures: each ends on return_to with a code, and nothing is created -------------------------


def error_of(answer: Any) -> dict[str, str]:
    result = answer.result()
    assert result["integration"] and result["result"] == "error", result
    return result


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_user_denies(browser: Browser, provider: str) -> None:
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    back = browser.get(browser.consent(at_provider.location, decision="deny"))
    assert error_of(back)["code"] == "access_denied"
    assert connections_of(provider) == []


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_missing_scope_is_named_and_creates_nothing(browser: Browser, provider: str, oauth_env: Any) -> None:
    from integrations.catalog import load_catalog

    spec = load_catalog().get(provider)
    assert spec.oauth is not None
    dropped = spec.oauth.required_scopes[-1]
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    back = browser.get(browser.consent(at_provider.location, untick=(dropped,)))
    result = error_of(back)
    assert result["code"] == "missing_scopes"
    assert result["missing"].split(" ") == [dropped]
    assert connections_of(provider) == []


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_reused_session_is_refused(browser: Browser, provider: str) -> None:
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    callback = browser.consent(at_provider.location)
    cookies = dict(browser.jar)
    assert browser.get(callback).result()["result"] == "connected"
    # The same callback again (a replay, or a double click), with the cookie it had
    browser.jar.update(cookies)
    replay = browser.get(callback)
    assert error_of(replay)["code"] == "session_used"
    assert len(connections_of(provider)) == 1


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_expired_session_is_refused(
    browser: Browser, provider: str, oauth_function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    callback = browser.consent(at_provider.location)
    # Eleven minutes pass before the browser comes back (sessions live ten).
    later = datetime.now(UTC) + timedelta(minutes=11)
    service = oauth_function_service(oauth_function)
    monkeypatch.setattr(service, "_clock", lambda: later)
    assert error_of(browser.get(callback))["code"] == "session_expired"
    assert connections_of(provider) == []


def oauth_function_service(module: Any) -> Any:
    from oauth_routes import context  # the function's own package, loaded with it

    return context.oauth()


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_callback_without_the_cookie_is_refused(browser: Browser, provider: str) -> None:
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    callback = browser.consent(at_provider.location)
    # Another browser (no cookie) delivers the code: a login-CSRF or a stolen link
    assert error_of(browser.get(callback, cookies=False))["code"] == "cookie_mismatch"
    assert connections_of(provider) == []


def test_callback_with_a_wrong_cookie_is_refused(browser: Browser) -> None:
    started = browser.start("ghl")
    at_provider = browser.get(started.body["redirect_url"])
    callback = browser.consent(at_provider.location)
    browser.jar["oauth_session_ghl"] = "not-the-value-we-set"
    assert error_of(browser.get(callback))["code"] == "cookie_mismatch"
    assert connections_of("ghl") == []


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_callback_on_another_providers_path_is_refused(browser: Browser, provider: str) -> None:
    other = "slack" if provider != "slack" else "ghl"
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    callback = urlsplit(browser.consent(at_provider.location))
    # Mix-up: the code and state arrive on another provider's callback path
    swapped = f"{GATEWAY}/oauth/{other}/callback?{callback.query}"
    result = error_of(browser.get(swapped))
    assert result["code"] == "provider_mismatch"
    assert result["integration"] == provider
    assert connections_of(provider) == []
    assert connections_of(other) == []


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_return_to_on_another_origin_is_a_400_not_a_redirect(browser: Browser, provider: str) -> None:
    for target in (
        "https://evil.example/portal/",
        "http://127.0.0.1:3001/portal/",
        "//evil.example/x",
        "javascript:alert(1)",
        "http://127.0.0.1:3000@evil.example/",
    ):
        answer = browser.start(provider, return_to=target)
        assert answer.status == 400, target
        assert answer.body["code"] == "invalid_return_to"
        assert "Location" not in answer.headers


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_exchange_failure_is_reported(browser: Browser, provider: str) -> None:
    started = browser.start(provider)
    at_provider = browser.get(started.body["redirect_url"])
    callback = urlsplit(browser.consent(at_provider.location))
    query = dict(parse_qsl(callback.query))
    query["code"] = "forged-" + query["code"][:8]
    forged = (
        f"{GATEWAY}{callback.path}?{'&'.join(f'{k}={requests.utils.quote(v)}' for k, v in query.items())}"
    )
    assert error_of(browser.get(forged))["code"] == "exchange_failed"
    assert connections_of(provider) == []


def test_provider_outage_during_exchange_is_reported(browser: Browser, oauth_env: dict[str, str]) -> None:
    started = browser.start("hubspot")
    at_provider = browser.get(started.body["redirect_url"])
    callback = browser.consent(at_provider.location)
    requests.post(
        f"{oauth_env['sandbox']}/_sandbox/faults",
        json={"app": "hubspot", "kind": "server_error", "endpoint": "token", "status": 503},
        timeout=5,
    ).raise_for_status()
    assert error_of(browser.get(callback))["code"] == "exchange_failed"
    assert connections_of("hubspot") == []


def test_unknown_state_gets_a_no_store_error_page(browser: Browser) -> None:
    answer = browser.get(f"{GATEWAY}/oauth/ghl/callback?state=never-issued&code=x")
    assert answer.status == 400
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "text/html" in answer.headers["Content-Type"]
    assert "Location" not in answer.headers


def test_authorize_link_binds_only_the_first_browser(
    browser: Browser, oauth_function: Any, lambda_context: Any
) -> None:
    started = browser.start("ghl")
    first = browser.get(started.body["redirect_url"])
    assert first.status == 302 and first.location.startswith("http://127.0.0.1:")
    # A second browser opening the same link (a leaked URL) does not get bound to it
    other = Browser(oauth_function.handler, lambda_context)
    second = other.get(started.body["redirect_url"])
    assert second.result() == {"integration": "ghl", "result": "error", "code": "session_used"}
    assert other.jar == {}


def test_authorize_cookie_is_http_only_lax_and_scoped(browser: Browser) -> None:
    started = browser.start("slack")
    answer = browser.get(started.body["redirect_url"])
    [cookie] = answer.cookies
    assert cookie.startswith("oauth_session_slack=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/oauth/" in cookie
    # Over http://127.0.0.1 in development a Secure cookie would never come back.
    assert "Secure" not in cookie


# --- re-authorization and several accounts -------------------------------------------------------


def test_same_account_again_reauthorizes_in_place(browser: Browser) -> None:
    browser.connect("hubspot")
    [first] = connections_of("hubspot")
    # The owner configured it and it later broke
    saved = repo().get(first.id)
    assert saved is not None
    saved.configured({"property_mapping": {"email": "email"}}, datetime.now(UTC))
    saved.auth_failed(ErrorCode.REAUTH_REQUIRED, "gone", datetime.now(UTC))
    repo().save(saved)

    browser.connect("hubspot")

    [again] = connections_of("hubspot")
    assert again.id == first.id
    assert again.config == {"property_mapping": {"email": "email"}}
    assert again.status is PortalStatus.CONNECTED


def test_two_google_accounts_are_two_connections(browser: Browser) -> None:
    started = browser.start("google_calendar")
    at_provider = browser.get(started.body["redirect_url"])
    assert (
        browser.get(browser.consent(at_provider.location, account="alex@example.com")).result()["result"]
        == "connected"
    )
    started = browser.start("google_calendar")
    at_provider = browser.get(started.body["redirect_url"])
    assert (
        browser.get(browser.consent(at_provider.location, account="sam@example.com")).result()["result"]
        == "connected"
    )
    labels = sorted(c.account.label for c in connections_of("google_calendar"))
    assert labels == ["alex@example.com", "sam@example.com"]


def test_conflicting_provider_is_409_at_start(browser: Browser) -> None:
    browser.connect("google_calendar")
    answer = browser.start("google_calendar_oneway")
    assert answer.status == 409
    assert answer.body["code"] == "conflicts_with"
    assert answer.body["details"]["provider"] == "google_calendar"


def test_unavailable_provider_is_403_without_the_agencys_plan_for_a_client(browser: Browser) -> None:
    from integrations.domain.access import Tier
    from tests.support import seed

    seed.agency("agency-1", Tier.STARTER)
    answer = browser.start("hubspot")
    assert answer.status == 403
    assert answer.body["code"] == "not_available"
    assert "plan" not in answer.body["message"].lower()
    assert "growth" not in json.dumps(answer.body).lower()


def test_unavailable_provider_is_403_with_the_plan_for_an_agency_admin(browser: Browser) -> None:
    from integrations.domain.access import Tier
    from tests.support import seed

    seed.agency("agency-1", Tier.STARTER)
    answer = browser.start("hubspot", level="client", who=AGENCY_ADMIN, client_id="client-a")
    assert answer.status == 403
    assert answer.body["code"] == "tier_too_low"
    assert "growth" in answer.body["message"]


def test_viewer_cannot_start(browser: Browser) -> None:
    from tests.support.events import claims

    viewer = claims(sub="user-2", client_id="client-a", role="client_user", permissions=["view_integrations"])
    answer = browser.start("slack", who=viewer)
    assert answer.status == 403
    assert answer.body["code"] == "missing_manage_permission"


def test_agency_admin_names_the_client(browser: Browser) -> None:
    from tests.integration.oauth.conftest import AGENCY_ADMIN

    answer = browser.start("slack", who=AGENCY_ADMIN, level="client", client_id="client-b")
    assert answer.status == 200
    redirect = urlsplit(answer.body["redirect_url"])
    assert f"{redirect.scheme}://{redirect.netloc}" == GATEWAY
    assert redirect.path == "/oauth/slack/authorize"
    assert set(dict(parse_qsl(redirect.query))) == {"session"}


def test_start_needs_a_signed_in_user(browser: Browser) -> None:
    from tests.support.events import http_event

    answer = browser.call(
        http_event("POST", "/oauth/slack/start", body={"level": "client", "return_to": RETURN_TO})
    )
    assert answer.status == 401


def test_app_credentials_come_from_the_platform_secret(browser: Browser, oauth_env: dict[str, str]) -> None:
    from infra.local.sandbox import APP_CREDENTIALS

    started = browser.start("slack")
    at_provider = browser.get(started.body["redirect_url"])
    assert (
        dict(parse_qsl(urlsplit(at_provider.location).query))["client_id"]
        == APP_CREDENTIALS["slack"]["client_id"]
    )
