"""A provider's 4xx answer becomes the error its meaning calls for."""

from __future__ import annotations

import json

import pytest

from integrations.domain.errors import ReauthRequired
from integrations.http import AccessRefused, ProviderApiError, RateLimited, refusal


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_a_reauth(status: int) -> None:
    error = refusal(status, {"error": "invalid_token"})

    assert isinstance(error, ReauthRequired)
    assert isinstance(error, AccessRefused) and error.provider_status == status
    assert error.code == "reauth_required" and error.status == 409


def test_googles_403_usage_limit_is_a_rate_limit_not_a_reauth() -> None:
    body = {"error": {"code": 403, "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded"}]}}

    assert isinstance(refusal(403, body), RateLimited)


def test_other_refusals_keep_their_status() -> None:
    error = refusal(404, {"error": "not_found"})

    assert isinstance(error, ProviderApiError) and error.status == 404
    assert not isinstance(error, ReauthRequired)


def test_the_refusal_carries_no_token_and_no_long_text() -> None:
    error = refusal(401, {"error": "x" * 500, "token": "secret-access-token"})

    assert isinstance(error, ReauthRequired)
    answer = json.dumps(error.to_body())
    assert "secret-access-token" not in answer
    assert "x" * 100 not in answer
