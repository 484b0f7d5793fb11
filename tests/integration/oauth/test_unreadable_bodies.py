"""The OAuth function's JSON routes answer undecodable bodies with 4xx and a code, never 5xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.integration.oauth.conftest import AGENCY_ADMIN, Browser
from tests.support.events import http_event

pytestmark = pytest.mark.usefixtures("oauth_env")

ROUTES = [
    ("POST", "/oauth/google_calendar/start"),
    ("POST", "/integrations/icloud_calendar/connect"),
    ("PUT", "/agency/oauth-apps/google_calendar"),
]
BODIES: dict[str, tuple[dict[str, Any], int, str]] = {
    "not utf-8": ({"raw_body": b'{"level": "\xff"}'}, 400, "body_not_utf8"),
    "multipart without boundary": (
        {"body": "--x\r\n", "headers": {"content-type": "multipart/form-data"}},
        415,
        "unsupported_media_type",
    ),
    "text/plain": ({"body": "{}", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    "empty": ({"body": ""}, 422, "malformed_body"),
}


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("case", list(BODIES))
def test_unreadable_body_is_4xx_with_a_code(
    browser: Browser, method: str, path: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    request, status, code = BODIES[case]

    with caplog.at_level(logging.ERROR):
        answer = browser.call(http_event(method, path, claims=AGENCY_ADMIN, **request))

    assert answer.status == status
    assert json.loads(answer.raw["body"])["code"] == code
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
