"""CalDAV discovery refuses credentials that HTTP Basic auth cannot carry, before any request."""

from __future__ import annotations

import pytest

from integrations.domain.errors import ValidationFailed
from integrations.providers.icloud_calendar.connect import discover


@pytest.mark.parametrize(("username", "password"), [("雪@icloud.example", "abcd"), ("a@b.c", "пароль")])
def test_non_ascii_credentials_are_refused_without_a_request(username: str, password: str) -> None:
    # Sockets are disabled in unit tests: reaching the network would fail differently.
    with pytest.raises(ValidationFailed) as refused:
        discover("https://caldav.icloud.com", username, password)

    assert refused.value.status == 422
    assert refused.value.code == "invalid_request"
