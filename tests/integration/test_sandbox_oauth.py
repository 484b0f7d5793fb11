"""The sandbox's authorization servers behave like the real ones, strictly, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.sandbox import APP_CREDENTIALS, DIALECTS, SandboxConfig, catalog_overrides
from tests.support.sandbox import (
    GATEWAY,
    ConsentForm,
    Sandbox,
    callback_params,
    catalog_scopes,
    connect,
    decide,
    exchange,
    refresh,
    running_sandbox,
    start_authorization,
)

APPS = sorted(DIALECTS)
PKCE_APPS = [a for a in APPS if a != "ghl"]


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


def _identity(sb: Sandbox, app: str, token: dict[str, Any]) -> requests.Response:
    """The identity call the product makes right after connecting."""
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    if app == "google":
        return sb.http.get(sb.url("/google/userinfo"), headers=bearer, timeout=5)
    if app == "ghl":
        return sb.http.get(
            sb.url(f"/ghl/locations/{token['locationId']}"),
            headers={**bearer, "Version": "2021-07-28"},
            timeout=5,
        )
    if app == "hubspot":
        return sb.http.get(sb.url(f"/hubspot/oauth/v1/access-tokens/{token['access_token']}"), timeout=5)
    if app == "calendly":
        return sb.http.get(sb.url("/calendly/users/me"), headers=bearer, timeout=5)
    if app == "slack":
        return sb.http.post(sb.url("/slack/api/auth.test"), headers=bearer, timeout=5)
    return sb.http.get(sb.url("/microsoft/graph/v1.0/me"), headers=bearer, timeout=5)


def _identity_ok(app: str, response: requests.Response) -> bool:
    if app == "slack":
        return bool(response.json().get("ok"))
    return response.status_code == 200


@pytest.mark.parametrize("app", APPS)
def test_consent_page_has_one_checkbox_per_requested_scope(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")

    assert auth.page.status_code == 200
    form = ConsentForm(auth.page.text)
    assert form.method == "post"
    assert form.checkboxes == [(scope, True) for scope in catalog_scopes(app)]
    assert form.account
    assert ("decision", "allow") in form.buttons
    assert ("decision", "deny") in form.buttons
    assert auth.page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("app", APPS)
def test_allow_then_exchange_gives_tokens_in_the_provider_shape(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")
    back = callback_params(decide(sb, auth))
    assert back["state"] == "st-123"

    answer = exchange(sb, app, back["code"], verifier=auth.verifier)

    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["access_token"]
    scopes = catalog_scopes(app)
    if app == "google":
        assert token["scope"].split(" ") == scopes
        assert token["token_type"] == "Bearer"
        assert token["refresh_token"] and token["id_token"].count(".") == 2
    elif app == "ghl":
        assert token["userType"] == "Location"
        assert token["locationId"] == DIALECTS["ghl"].default_account
        assert token["companyId"] and token["refresh_token"]
        assert token["scope"].split(" ") == scopes
    elif app == "hubspot":
        assert "scope" not in token
        assert token["scopes"] == scopes
        assert token["hub_id"] == int(DIALECTS["hubspot"].default_account)
        assert token["expires_in"] == 1800
    elif app == "calendly":
        assert token["owner"].startswith(sb.url("/calendly/users/"))
        assert token["organization"].startswith(sb.url("/calendly/organizations/"))
        assert token["scope"].split(" ") == scopes
    elif app == "slack":
        assert token["ok"] is True
        assert token["scope"] == ",".join(scopes)
        assert token["team"]["name"] == "Acme Sandbox" and token["team"]["id"].startswith("T")
        assert token["bot_user_id"].startswith("U")
        assert "refresh_token" not in token
    else:
        assert token["scope"].split(" ") == scopes
        assert token["refresh_token"]  # offline_access was granted
    assert _identity_ok(app, _identity(sb, app, token))


@pytest.mark.parametrize("app", APPS)
def test_deny_redirects_with_access_denied_and_state(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")

    back = callback_params(decide(sb, auth, decision="deny"))

    assert back["error"] == "access_denied"
    assert back["state"] == "st-123"
    assert "code" not in back


@pytest.mark.parametrize("app", APPS)
def test_unregistered_redirect_uri_is_an_error_page_not_a_redirect(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl", uri=f"{GATEWAY}/oauth/evil/callback")

    assert auth.page.status_code == 400
    assert "Location" not in auth.page.headers
    assert ("bad_redirect_uri" if app == "slack" else "redirect_uri_mismatch") in auth.page.text


@pytest.mark.parametrize("app", APPS)
def test_unknown_client_is_an_error_page(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl", extra={"client_id": "someone-else"})

    assert auth.page.status_code == 401
    assert "Location" not in auth.page.headers


@pytest.mark.parametrize("app", PKCE_APPS)
def test_pkce_is_optional_for_web_apps_and_plain_is_refused(sb: Sandbox, app: str) -> None:
    missing = start_authorization(sb, app, pkce=False)
    plain = start_authorization(sb, app, extra={"code_challenge_method": "plain"})

    assert missing.page.status_code == 200
    assert plain.page.status_code == 400
    assert "S256" in plain.page.text


@pytest.mark.parametrize("app", PKCE_APPS)
def test_a_verifier_for_a_code_issued_without_challenge_is_refused(sb: Sandbox, app: str) -> None:
    without = start_authorization(sb, app, pkce=False)
    code = callback_params(decide(sb, without))["code"]

    answer = exchange(sb, app, code, verifier="v" * 64)

    if app == "slack":
        assert answer.json() == {"ok": False, "error": "invalid_code"}
    else:
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_grant"


def test_ghl_ignores_pkce_parameters(sb: Sandbox) -> None:
    auth = start_authorization(sb, "ghl", pkce=True)
    code = callback_params(decide(sb, auth))["code"]

    # Another verifier than the challenge's: HighLevel has no PKCE, so the code is exchanged anyway.
    answer = exchange(sb, "ghl", code, verifier="w" * 64)

    assert answer.status_code == 200
    assert "access_token" in answer.json()


@pytest.mark.parametrize("app", PKCE_APPS)
def test_wrong_or_missing_code_verifier_is_invalid_grant(sb: Sandbox, app: str) -> None:
    for verifier in ("x" * 64, None):
        auth = start_authorization(sb, app)
        code = callback_params(decide(sb, auth))["code"]

        answer = exchange(sb, app, code, verifier=verifier)

        if app == "slack":
            assert answer.status_code == 200
            assert answer.json() == {"ok": False, "error": "invalid_code"}
        else:
            assert answer.status_code == 400
            assert answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("app", APPS)
def test_wrong_client_secret_is_refused(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")
    code = callback_params(decide(sb, auth))["code"]

    answer = exchange(sb, app, code, verifier=auth.verifier, secret="not-the-secret")

    if app == "slack":
        assert answer.json() == {"ok": False, "error": "bad_client_secret"}
    else:
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("app", "wrong_method"), [("calendly", "post"), ("ghl", "basic"), ("hubspot", "basic")]
)
def test_client_authentication_method_is_the_providers(sb: Sandbox, app: str, wrong_method: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")
    code = callback_params(decide(sb, auth))["code"]

    answer = exchange(sb, app, code, verifier=auth.verifier, auth=wrong_method)

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize("app", ["google", "slack", "microsoft"])
def test_providers_that_accept_both_client_auth_methods_do(sb: Sandbox, app: str) -> None:
    other = "post" if app == "slack" else "basic"
    auth = start_authorization(sb, app)
    code = callback_params(decide(sb, auth))["code"]

    answer = exchange(sb, app, code, verifier=auth.verifier, auth=other)

    assert answer.status_code == 200
    assert answer.json()["access_token"]


@pytest.mark.parametrize("app", APPS)
def test_redirect_uri_must_match_exactly_at_the_token_endpoint(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")
    code = callback_params(decide(sb, auth))["code"]

    answer = exchange(sb, app, code, verifier=auth.verifier, uri=auth.redirect_uri + "/")

    if app == "slack":
        assert answer.json() == {"ok": False, "error": "bad_redirect_uri"}
    else:
        assert answer.status_code == 400
        assert answer.json()["error"] in ("invalid_grant", "redirect_uri_mismatch")


@pytest.mark.parametrize("app", APPS)
def test_a_code_works_once_and_its_replay_revokes_what_it_gave(sb: Sandbox, app: str) -> None:
    auth = start_authorization(sb, app, pkce=app != "ghl")
    code = callback_params(decide(sb, auth))["code"]
    first = exchange(sb, app, code, verifier=auth.verifier)
    assert first.status_code == 200

    second = exchange(sb, app, code, verifier=auth.verifier)

    if app == "slack":
        assert second.json() == {"ok": False, "error": "invalid_code"}
    else:
        assert second.status_code == 400
        assert second.json()["error"] == "invalid_grant"
    assert not _identity_ok(app, _identity(sb, app, first.json()))


def test_an_expired_code_is_invalid_grant(sb: Sandbox) -> None:
    auth = start_authorization(sb, "google")
    code = callback_params(decide(sb, auth))["code"]
    sb.advance(601)

    answer = exchange(sb, "google", code, verifier=auth.verifier)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_granular_consent_grants_only_the_ticked_scopes(sb: Sandbox) -> None:
    readonly = "https://www.googleapis.com/auth/calendar.readonly"

    token = connect(sb, "google", untick=(readonly,))

    assert readonly not in token["scope"].split(" ")
    assert "https://www.googleapis.com/auth/calendar.events" in token["scope"].split(" ")


def test_google_gives_a_refresh_token_again_only_with_prompt_consent(sb: Sandbox) -> None:
    assert "refresh_token" in connect(sb, "google")
    auth = start_authorization(sb, "google", extra={"prompt": "select_account"})
    code = callback_params(decide(sb, auth))["code"]

    again = exchange(sb, "google", code, verifier=auth.verifier).json()

    assert "refresh_token" not in again


@pytest.mark.parametrize("app", ["ghl", "calendly"])
def test_rotating_refresh_tokens_are_single_use(sb: Sandbox, app: str) -> None:
    first = connect(sb, app)

    rotated = refresh(sb, app, first["refresh_token"])
    replay = refresh(sb, app, first["refresh_token"])
    next_rotation = refresh(sb, app, rotated.json()["refresh_token"])

    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != first["refresh_token"]
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert next_rotation.status_code == 200


def test_google_refresh_keeps_the_refresh_token_and_reports_scopes(sb: Sandbox) -> None:
    first = connect(sb, "google")

    one = refresh(sb, "google", first["refresh_token"])
    two = refresh(sb, "google", first["refresh_token"])

    assert one.status_code == two.status_code == 200
    assert "refresh_token" not in one.json()
    assert one.json()["scope"] == first["scope"]


def test_hubspot_refresh_returns_the_same_refresh_token(sb: Sandbox) -> None:
    first = connect(sb, "hubspot")

    answer = refresh(sb, "hubspot", first["refresh_token"]).json()

    assert answer["refresh_token"] == first["refresh_token"]
    assert answer["access_token"] != first["access_token"]


def test_microsoft_rotates_but_old_refresh_tokens_stay_valid(sb: Sandbox) -> None:
    first = connect(sb, "microsoft")

    rotated = refresh(sb, "microsoft", first["refresh_token"]).json()
    old_again = refresh(sb, "microsoft", first["refresh_token"])

    assert rotated["refresh_token"] != first["refresh_token"]
    assert old_again.status_code == 200


def test_microsoft_errors_carry_aadsts_codes(sb: Sandbox) -> None:
    answer = refresh(sb, "microsoft", "not-a-token")

    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"].startswith("AADSTS")
    assert body["error_codes"]


def test_slack_has_no_refresh_without_token_rotation(sb: Sandbox) -> None:
    answer = refresh(sb, "slack", "xoxe-1-anything")

    assert answer.status_code == 200
    assert answer.json() == {"ok": False, "error": "invalid_refresh_token"}


def test_token_endpoint_requires_a_form_body(sb: Sandbox) -> None:
    creds = APP_CREDENTIALS["google"]
    answer = sb.http.post(
        sb.url("/google/token"),
        json={"grant_type": "refresh_token", "refresh_token": "x", **creds},
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_google_revoke_ends_every_token_of_the_grant(sb: Sandbox) -> None:
    token = connect(sb, "google")

    revoked = sb.http.post(sb.url("/google/revoke"), params={"token": token["access_token"]}, timeout=5)

    assert revoked.status_code == 200
    assert refresh(sb, "google", token["refresh_token"]).json()["error"] == "invalid_grant"
    assert _identity(sb, "google", token).status_code == 401
    assert (
        sb.http.post(sb.url("/google/revoke"), params={"token": token["access_token"]}, timeout=5).status_code
        == 400
    )


def test_hubspot_delete_refresh_token_revokes(sb: Sandbox) -> None:
    token = connect(sb, "hubspot")

    deleted = sb.http.delete(sb.url(f"/hubspot/oauth/v1/refresh-tokens/{token['refresh_token']}"), timeout=5)

    assert deleted.status_code == 204
    assert refresh(sb, "hubspot", token["refresh_token"]).json()["status"] == "BAD_REFRESH_TOKEN"
    assert _identity(sb, "hubspot", token).status_code == 401


def test_calendly_revoke_makes_api_calls_fail(sb: Sandbox) -> None:
    token = connect(sb, "calendly")
    creds = APP_CREDENTIALS["calendly"]

    revoked = sb.http.post(
        sb.url("/calendly/oauth/revoke"),
        data={"token": token["access_token"]},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=5,
    )

    assert revoked.status_code == 200
    me = _identity(sb, "calendly", token)
    assert me.status_code == 401
    assert me.json() == {"title": "Unauthenticated", "message": "The access token is revoked"}


def test_slack_auth_revoke(sb: Sandbox) -> None:
    token = connect(sb, "slack")
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    answer = sb.http.post(sb.url("/slack/api/auth.revoke"), headers=bearer, timeout=5)

    assert answer.json() == {"ok": True, "revoked": True}
    assert _identity(sb, "slack", token).json() == {"ok": False, "error": "token_revoked"}


@pytest.mark.parametrize(
    ("app", "status"),
    [("google", 401), ("ghl", 401), ("hubspot", 401), ("calendly", 401), ("microsoft", 401)],
)
def test_access_tokens_expire_with_the_providers_lifetime(sb: Sandbox, app: str, status: int) -> None:
    token = connect(sb, app)
    assert _identity(sb, app, token).status_code == 200

    sb.advance(token["expires_in"] + 1)

    assert _identity(sb, app, token).status_code == status


def test_shortened_token_lifetime_from_config() -> None:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, access_token_ttl={"hubspot": 5})) as sb:
        token = connect(sb, "hubspot")
        assert token["expires_in"] == 5
        sb.advance(6)

        info = _identity(sb, "hubspot", token)

    assert info.status_code == 401
    assert info.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_google_auth_oauthlib_flow_works_against_the_sandbox(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google_auth_oauthlib.flow import Flow

    # Loopback HTTP is the sandbox's transport; oauthlib refuses it unless told otherwise.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    creds = APP_CREDENTIALS["google"]
    redirect = f"{GATEWAY}/oauth/google_calendar/callback"
    scopes = [
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/calendar.events",
    ]
    config = {
        "web": {
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "auth_uri": sb.url("/google/o/oauth2/v2/auth"),
            "token_uri": sb.url("/google/token"),
            "redirect_uris": [redirect],
        }
    }
    flow = Flow.from_client_config(config, scopes=scopes, redirect_uri=redirect)
    url, state = flow.authorization_url(prompt="consent")
    page = sb.http.get(url, timeout=5)
    assert page.status_code == 200
    form = ConsentForm(page.text)
    fields = [*form.hidden.items(), ("account", "flow@example.com"), ("decision", "allow")]
    fields += [("scope", s) for s, _ in form.checkboxes]
    back = callback_params(sb.http.post(page.url, data=fields, allow_redirects=False, timeout=5))
    assert back["state"] == state

    second = Flow.from_client_config(
        config, scopes=scopes, redirect_uri=redirect, state=state, code_verifier=flow.code_verifier
    )
    token = second.fetch_token(code=back["code"])

    assert token["access_token"].startswith("ya29.")
    assert second.credentials.refresh_token
    assert set(second.credentials.granted_scopes or []) == set(scopes)


def test_catalog_overrides_point_every_oauth_provider_at_the_sandbox(tmp_path: Path) -> None:
    from integrations.catalog.loader import clear_cache, load_catalog

    base = "http://127.0.0.1:3001"
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(catalog_overrides(base)), encoding="utf-8")
    clear_cache()
    try:
        catalog = load_catalog(overrides_path=str(path))
    finally:
        clear_cache()

    for spec in catalog:
        if spec.oauth is None:
            continue
        for url in (spec.oauth.authorize_url, spec.oauth.token_url, spec.oauth.revoke_url, spec.api_base_url):
            assert url is None or url.startswith(base + "/"), (spec.id, url)
        assert all(u.startswith(base) for k, u in spec.urls.items() if k != "pubsub_issuer"), spec.id


def test_request_log_counts_refreshes_and_hides_secrets(sb: Sandbox) -> None:
    token = connect(sb, "ghl")
    refresh(sb, "ghl", token["refresh_token"])

    refreshes = sb.requests_log(app="ghl", kind="token", grant_type="refresh_token")

    assert len(refreshes) == 1
    dump = json.dumps(sb.requests_log())
    for secret in (token["access_token"], token["refresh_token"], APP_CREDENTIALS["ghl"]["client_secret"]):
        assert secret not in dump
