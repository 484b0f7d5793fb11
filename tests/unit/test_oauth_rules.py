"""Pure pieces of the connect flow: PKCE, return_to validation, result URLs, token-answer facts,
and the HTTP policy's Retry-After parsing."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.connections.connect import public_facts
from integrations.domain.errors import BadRequest
from integrations.http import new_session, parse_retry_after
from integrations.oauth.pkce import new_verifier, s256_challenge
from integrations.oauth.service import result_url, validate_return_to

ALLOWED = ("https://portal.example.com", "http://127.0.0.1:3000")


def test_pkce_matches_the_rfc_7636_example() -> None:
    # RFC 7636 Appendix B.
    assert (
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_verifiers_are_long_random_and_unreserved() -> None:
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    unreserved = set(string.ascii_letters + string.digits + "-._~")
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert set(verifier) <= unreserved


@pytest.mark.parametrize(
    "value",
    [
        "https://portal.example.com/integrations",
        "https://PORTAL.example.com/integrations?tab=crm",
        "http://127.0.0.1:3000/portal/",
        "https://portal.example.com",
    ],
)
def test_allowed_origins_are_accepted(value: str) -> None:
    assert validate_return_to(value, ALLOWED).lower().startswith(value.lower().split("?")[0][:20])


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example.com/",
        "https://portal.example.com.evil.example/",
        "https://portal.example.com@evil.example/",
        "https://user:pw@portal.example.com/",
        "http://portal.example.com/",  # scheme is part of the origin
        "https://portal.example.com:8443/",
        "//portal.example.com/",
        "/relative/path",
        "javascript:alert(1)",
        "https://portal.example.com\\@evil.example/",
        "https://portal.example.com/\r\nLocation: https://evil.example/",
        "https://portal.example.com:99999/",
        "",
    ],
)
def test_everything_else_is_a_400(value: str) -> None:
    with pytest.raises(BadRequest) as raised:
        validate_return_to(value, ALLOWED)
    assert raised.value.code == "invalid_return_to"


@given(st.text(max_size=200))
def test_validated_return_to_always_stays_on_an_allowed_origin(tail: str) -> None:
    for candidate in (tail, "https://portal.example.com" + tail, "http://127.0.0.1:3000" + tail):
        try:
            accepted = validate_return_to(candidate, ALLOWED)
        except BadRequest:
            continue
        assert any(accepted.startswith(origin + "/") for origin in ALLOWED), accepted


def test_fragment_is_dropped() -> None:
    assert validate_return_to("https://portal.example.com/a#frag", ALLOWED) == "https://portal.example.com/a"


def test_result_url_replaces_earlier_results_and_keeps_the_rest() -> None:
    url = result_url(
        "https://portal.example.com/p?tab=crm&result=connected&code=old",
        "slack",
        "error",
        code="missing_scopes",
    )
    assert url == "https://portal.example.com/p?tab=crm&integration=slack&result=error&code=missing_scopes"


def test_missing_scopes_are_space_separated_in_the_url() -> None:
    url = result_url("https://portal.example.com/", "gmail", "error", code="missing_scopes", missing="a b")
    assert url.endswith("&missing=a+b")


def test_public_facts_keep_ids_and_drop_every_token() -> None:
    answer = {
        "access_token": "xoxb-1",
        "refresh_token": "r-1",
        "id_token": "eyJ",
        "team": {"id": "T1", "name": "Acme"},
        "authed_user": {"id": "U1", "access_token": "xoxp-1", "refresh_token": "r-2"},
        "bot_user_id": "B1",
        "locationId": "L1",
        "expires_in": 3600,
    }
    facts = public_facts(answer)
    assert facts == {
        "team": {"id": "T1", "name": "Acme"},
        "authed_user": {"id": "U1"},
        "bot_user_id": "B1",
        "locationId": "L1",
        "expires_in": 3600,
    }


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Sat, 21 Nov 2026 10:00:45 GMT", now) == 45.0
    assert parse_retry_after("Sat, 21 Nov 2026 09:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_http_policy_never_retries_a_post_and_sets_timeouts() -> None:
    session = new_session()
    retry = session.get_adapter("https://x").max_retries  # type: ignore[attr-defined]
    assert "POST" not in retry.allowed_methods
    assert retry.read == 0
    assert session.headers["User-Agent"].startswith("integrations-service/")
