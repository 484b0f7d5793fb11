"""Grants refused after the exchange are revoked at the provider (best effort), where it can."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from integrations.catalog import load_catalog
from tests.integration.oauth.conftest import Browser, sandbox_requests


def _result(answer: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(answer.location).query))


def _refuse_a_scope(browser: Browser, provider: str, account: str | None = None) -> dict[str, str]:
    spec = load_catalog().get(provider)
    assert spec.oauth is not None
    at_provider = browser.get(browser.start(provider).body["redirect_url"])
    back = browser.consent(at_provider.location, untick=(spec.oauth.required_scopes[-1],), account=account)
    return _result(browser.get(back))


def test_a_missing_scopes_callback_revokes_the_fresh_grant(
    browser: Browser, oauth_env: dict[str, str]
) -> None:
    result = _refuse_a_scope(browser, "calendly")
    assert result["result"] == "error" and result["code"] == "missing_scopes"
    revokes = [r for r in sandbox_requests(oauth_env["sandbox"], app="calendly") if "revoke" in r["path"]]
    assert len(revokes) == 1 and revokes[0]["method"] == "POST"


def test_an_already_connected_refusal_revokes_the_other_accounts_grant(
    browser: Browser, oauth_env: dict[str, str]
) -> None:
    assert _result(browser.connect("hubspot"))["result"] == "connected"
    at_provider = browser.get(browser.start("hubspot").body["redirect_url"])
    result = _result(browser.get(browser.consent(at_provider.location, account="13572468")))
    assert result["code"] == "already_connected"
    deletes = sandbox_requests(oauth_env["sandbox"], app="hubspot", method="DELETE")
    assert len(deletes) == 1 and "/refresh-tokens/" in deletes[0]["path"]


def test_a_provider_without_revoke_is_skipped_quietly(
    browser: Browser, oauth_env: dict[str, str], caplog: Any
) -> None:
    assert not load_catalog().get("ghl").revocable
    result = _refuse_a_scope(browser, "ghl")
    assert result["code"] == "missing_scopes"
    calls = sandbox_requests(oauth_env["sandbox"], app="ghl")
    assert [c for c in calls if "revoke" in c["path"]] == []
    assert "refused grant not revoked" not in caplog.text


def test_a_refused_grant_of_an_app_in_use_here_is_kept(browser: Browser, oauth_env: dict[str, str]) -> None:
    # Google revokes the whole account's grant: Gmail connected, a refused Calendar grant must stay.
    assert _result(browser.connect("gmail"))["result"] == "connected"
    result = _refuse_a_scope(browser, "google_calendar")
    assert result["code"] == "missing_scopes"
    assert [r for r in sandbox_requests(oauth_env["sandbox"], app="google") if "revoke" in r["path"]] == []
