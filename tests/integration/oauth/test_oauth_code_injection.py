"""Code injection (RFC 9700 §4.5): a code issued for one session, sent back with another's state."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from integrations.catalog import load_catalog
from tests.integration.oauth.conftest import OAUTH_PROVIDERS, Browser


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.mark.parametrize("provider", OAUTH_PROVIDERS)
def test_a_code_from_another_session_fails_wherever_pkce_binds_it(
    provider: str, browser: Browser, oauth_function: Any, lambda_context: Any
) -> None:
    spec = load_catalog().get(provider)
    assert spec.oauth is not None
    # Victim's session A: authorized in their browser, the callback not yet back.
    at_provider_a = browser.get(browser.start(provider).body["redirect_url"])
    state_a = _query(at_provider_a.location)["state"]
    # The attacker's session B, consented at the provider: CODE_B, never exchanged by B.
    attacker = Browser(oauth_function.handler, lambda_context)
    at_provider_b = attacker.get(attacker.start(provider).body["redirect_url"])
    code_b = _query(attacker.consent(at_provider_b.location))["code"]

    callback = f"/oauth/{provider}/callback?{urlencode({'code': code_b, 'state': state_a})}"
    result = browser.get(callback).result()

    if spec.oauth.pkce:
        assert result == {"integration": provider, "result": "error", "code": "exchange_failed"}
    else:
        # No PKCE at this provider: the README's security notes say what defends instead.
        assert result["result"] == "connected"
        assert "cookie" in spec.oauth.pkce_note


def test_every_oauth_provider_documents_its_pkce_residual_risk() -> None:
    for spec in load_catalog():
        if spec.oauth is not None:
            assert len(spec.oauth.pkce_note) > 40, spec.id
            assert ("verified when sent" in spec.oauth.pkce_note) is spec.oauth.pkce, spec.id
