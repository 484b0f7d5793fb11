"""The generic OAuth2 engine does what each catalog entry says, and nothing provider-specific."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from integrations.catalog import load_catalog
from integrations.catalog.model import OAuthSpec
from integrations.catalog.scopes import granted_scopes, missing_scopes, normalize_scope
from integrations.domain.access import Level
from integrations.domain.credentials import AppCredentials
from integrations.domain.errors import ProviderUnavailable
from integrations.http import RateLimited
from integrations.oauth.engine import OAuth2Engine
from integrations.oauth.errors import TokenAnswerLost, TokenEndpointError
from integrations.oauth.pkce import new_verifier, s256_challenge

APP = AppCredentials(client_id="client-1", client_secret="secret-1", extra={})
REDIRECT = "https://api.example.test/oauth/x/callback"


def spec(provider: str) -> OAuthSpec:
    found = load_catalog(overrides_path="").get(provider).oauth
    assert found is not None
    return found


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def form_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


# --- authorize URL ---


def test_authorize_url_carries_state_scopes_and_an_s256_challenge() -> None:
    verifier = new_verifier()
    url = OAuth2Engine().authorization_url(
        spec("calendly"), APP, redirect_uri=REDIRECT, state="st-1", verifier=verifier
    )
    q = query_of(url)
    assert url.startswith("https://auth.calendly.com/oauth/authorize?")
    assert q["response_type"] == ["code"]
    assert q["client_id"] == ["client-1"]
    assert q["redirect_uri"] == [REDIRECT]
    assert q["state"] == ["st-1"]
    assert q["code_challenge"] == [s256_challenge(verifier)]
    assert q["code_challenge_method"] == ["S256"]
    assert q["scope"][0].split(" ") == spec("calendly").scopes


def test_slack_scopes_are_comma_separated() -> None:
    url = OAuth2Engine().authorization_url(
        spec("slack"), APP, redirect_uri=REDIRECT, state="s", verifier="v" * 43
    )
    assert query_of(url)["scope"] == ["chat:write,channels:read,groups:read"]


def test_no_pkce_where_the_catalog_says_the_provider_lacks_it() -> None:
    url = OAuth2Engine().authorization_url(spec("ghl"), APP, redirect_uri=REDIRECT, state="s", verifier=None)
    assert "code_challenge" not in query_of(url)


def test_extra_authorize_params_come_from_the_catalog() -> None:
    url = OAuth2Engine().authorization_url(
        spec("outlook_calendar"), APP, redirect_uri=REDIRECT, state="s", verifier="v" * 43
    )
    assert query_of(url)["response_mode"] == ["query"]
    assert query_of(url)["prompt"] == ["select_account"]


# --- token requests ---


@responses.activate
def test_client_secret_post_sends_credentials_in_the_body_with_the_verifier() -> None:
    oauth = spec("hubspot")
    responses.post(oauth.token_url, json={"access_token": "at", "refresh_token": "rt", "expires_in": 1800})

    answer = OAuth2Engine().exchange_code(oauth, APP, code="c-1", redirect_uri=REDIRECT, verifier="ver-1")

    assert answer["access_token"] == "at"
    sent = form_of(responses.calls[0])
    assert sent["client_id"] == ["client-1"] and sent["client_secret"] == ["secret-1"]
    assert sent["code_verifier"] == ["ver-1"]
    assert sent["redirect_uri"] == [REDIRECT]
    assert sent["grant_type"] == ["authorization_code"]
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_client_secret_basic_uses_the_authorization_header_only() -> None:
    oauth = spec("calendly")
    responses.post(oauth.token_url, json={"access_token": "at", "refresh_token": "rt2"})

    OAuth2Engine().refresh(oauth, APP, "rt1")

    header = responses.calls[0].request.headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "client-1:secret-1"
    sent = form_of(responses.calls[0])
    assert "client_secret" not in sent
    assert sent["grant_type"] == ["refresh_token"] and sent["refresh_token"] == ["rt1"]


@responses.activate
@pytest.mark.parametrize(("level", "user_type"), [(Level.AGENCY, "Company"), (Level.CLIENT, "Location")])
def test_token_params_follow_the_connections_level(level: Level, user_type: str) -> None:
    # GoHighLevel: an agency gets a Company token, a client a Location token, with either grant.
    oauth = spec("ghl")
    responses.post(oauth.token_url, json={"access_token": "at"})
    OAuth2Engine().exchange_code(oauth, APP, code="c", redirect_uri=REDIRECT, verifier=None, level=level)
    OAuth2Engine().refresh(oauth, APP, "rt", level=level)
    assert [form_of(c)["user_type"] for c in responses.calls] == [[user_type], [user_type]]


@responses.activate
def test_level_params_win_over_fixed_extras_and_never_over_the_grant() -> None:
    oauth = OAuthSpec(
        app="x",
        authorize_url="https://auth.example.test/a",
        token_url="https://auth.example.test/t",
        scopes=["s"],
        required_scopes=["s"],
        extra_token_params={"audience": "all", "mode": "fixed"},
        token_params_by_level={Level.AGENCY: {"mode": "agency"}},
    )
    responses.post(oauth.token_url, json={"access_token": "at"})
    OAuth2Engine().refresh(oauth, APP, "rt", level=Level.AGENCY)
    OAuth2Engine().refresh(oauth, APP, "rt", level=Level.USER)
    sent = [form_of(c) for c in responses.calls]
    assert [(f["audience"], f["mode"]) for f in sent] == [(["all"], ["agency"]), (["all"], ["fixed"])]
    assert all(f["grant_type"] == ["refresh_token"] for f in sent)


@responses.activate
def test_slack_ok_false_is_an_error_even_with_http_200() -> None:
    oauth = spec("slack")
    responses.post(oauth.token_url, json={"ok": False, "error": "invalid_code"})

    with pytest.raises(TokenEndpointError) as raised:
        OAuth2Engine().exchange_code(oauth, APP, code="c", redirect_uri=REDIRECT, verifier="v" * 43)

    assert raised.value.error == "invalid_code"
    assert raised.value.definitive


@responses.activate
def test_invalid_grant_is_definitive() -> None:
    oauth = spec("google_calendar")
    responses.post(
        oauth.token_url, status=400, json={"error": "invalid_grant", "error_description": "revoked"}
    )
    with pytest.raises(TokenEndpointError) as raised:
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert raised.value.definitive and raised.value.http_status == 400


@responses.activate
def test_hubspot_legacy_bad_refresh_token_is_definitive() -> None:
    oauth = spec("hubspot")
    responses.post(oauth.token_url, status=400, json={"status": "BAD_REFRESH_TOKEN", "message": "missing"})
    with pytest.raises(TokenEndpointError) as raised:
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert raised.value.definitive


@responses.activate
def test_invalid_client_is_not_the_users_fault() -> None:
    oauth = spec("google_calendar")
    responses.post(oauth.token_url, status=401, json={"error": "invalid_client"})
    with pytest.raises(TokenEndpointError) as raised:
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert not raised.value.definitive


@responses.activate
def test_5xx_is_a_provider_outage() -> None:
    oauth = spec("ghl")
    responses.post(oauth.token_url, status=502, body="bad gateway")
    with pytest.raises(ProviderUnavailable):
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert len(responses.calls) == 1  # a POST is never repeated


@responses.activate
def test_429_carries_retry_after() -> None:
    oauth = spec("ghl")
    responses.post(oauth.token_url, status=429, headers={"Retry-After": "12"}, json={})
    with pytest.raises(RateLimited) as raised:
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert raised.value.retry_after == 12.0


@responses.activate
def test_a_lost_answer_is_reported_as_such_and_not_retried() -> None:
    oauth = spec("ghl")
    responses.post(oauth.token_url, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TokenAnswerLost):
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert len(responses.calls) == 1


@responses.activate
def test_an_answer_without_access_token_is_refused() -> None:
    oauth = spec("ghl")
    responses.post(oauth.token_url, json={"token_type": "Bearer"})
    with pytest.raises(TokenEndpointError) as raised:
        OAuth2Engine().refresh(oauth, APP, "rt")
    assert raised.value.error == "missing_access_token"


@responses.activate
def test_rfc7009_revoke_uses_the_specs_client_auth() -> None:
    oauth = spec("calendly")
    assert oauth.revoke_url is not None
    responses.post(oauth.revoke_url, status=200, body="")
    OAuth2Engine().revoke(oauth, APP, "rt", "refresh_token")
    sent = form_of(responses.calls[0])
    assert sent == {"token": ["rt"], "token_type_hint": ["refresh_token"]}
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


# --- granted scopes ---


def test_granted_scopes_from_a_space_string_a_comma_string_and_a_list() -> None:
    assert granted_scopes(spec("google_calendar"), {"scope": "a b"}) == ["a", "b"]
    assert granted_scopes(spec("slack"), {"scope": "chat:write,channels:read"}) == [
        "chat:write",
        "channels:read",
    ]
    assert granted_scopes(spec("hubspot"), {"scopes": ["oauth", "crm.objects.contacts.read"]}) == [
        "oauth",
        "crm.objects.contacts.read",
    ]
    assert granted_scopes(spec("ghl"), {}) is None


def test_microsoft_resource_prefix_and_case_are_normalized() -> None:
    required = ["User.Read", "Calendars.ReadWrite"]
    granted = [
        "https://graph.microsoft.com/calendars.readwrite",
        "https://graph.microsoft.com/User.Read",
        "openid",
    ]
    assert missing_scopes(spec("outlook_calendar"), granted, required) == []
    assert (
        normalize_scope(spec("outlook_calendar"), "https://graph.microsoft.com/Calendars.ReadWrite")
        == "calendars.readwrite"
    )


def test_google_canonical_scope_names_match_their_aliases() -> None:
    assert (
        missing_scopes(spec("google_calendar"), ["email"], ["https://www.googleapis.com/auth/userinfo.email"])
        == []
    )


def test_missing_scopes_are_named_in_catalog_order() -> None:
    required = spec("hubspot").required_scopes
    assert missing_scopes(spec("hubspot"), ["crm.objects.contacts.read"]) == required[1:]


def test_scope_spellings_are_the_providers_own() -> None:
    # Microsoft's resource prefix means nothing to Google, and Google's aliases nothing to Microsoft.
    assert missing_scopes(spec("google_calendar"), ["https://graph.microsoft.com/x"], ["x"]) == ["x"]
    assert missing_scopes(
        spec("outlook_calendar"), ["email"], ["https://www.googleapis.com/auth/userinfo.email"]
    ) == ["https://www.googleapis.com/auth/userinfo.email"]
