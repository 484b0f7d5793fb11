"""The OAuth function's JSON routes answer undecodable bodies with 4xx and a code, never 5xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.integration.oauth.conftest import AGENCY_ADMIN, CLIENT_USER, RETURN_TO, Browser
from tests.support.events import claims, http_event

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
    "multipart with a boundary": (
        {
            "body": '--b\r\nContent-Disposition: form-data; name="level"\r\n\r\nclient\r\n--b--\r\n',
            "headers": {"content-type": "multipart/form-data; boundary=b"},
        },
        415,
        "unsupported_media_type",
    ),
    "a form": (
        {"body": "level=client", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
        "unsupported_media_type",
    ),
    "not JSON": ({"body": "{level"}, 422, "malformed_body"),
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


@pytest.mark.parametrize("case", [*BODIES, "invalid field"])
def test_only_agency_admins_hear_about_an_agency_app_body(browser: Browser, case: str) -> None:
    request = BODIES[case][0] if case in BODIES else {"body": json.dumps({"client_id": ""})}

    answer = browser.call(
        http_event("PUT", "/agency/oauth-apps/google_calendar", claims=CLIENT_USER, **request)
    )

    assert answer.status == 403
    assert json.loads(answer.raw["body"])["code"] == "agency_admin_only"


def test_an_agency_app_body_is_read_after_the_provider_is_checked(browser: Browser) -> None:
    answer = browser.call(
        http_event("PUT", "/agency/oauth-apps/no_such_provider", claims=AGENCY_ADMIN, raw_body=b"\xff")
    )

    assert answer.status == 404


# `start` and `connect` authorize what their body names (the level, the client): the body comes first.
VIEWER = claims(
    sub="viewer-1",
    agency_id="agency-1",
    client_id="client-a",
    role="client_user",
    permissions="[view_integrations]",
)
BODY_FIRST_ROUTES = [
    ("/oauth/ghl/start", {"level": "client", "return_to": RETURN_TO}),
    ("/integrations/bcc_email/connect", {"level": "client"}),
]


@pytest.mark.parametrize(("path", "body"), BODY_FIRST_ROUTES)
def test_start_and_connect_read_the_body_before_the_caller_is_checked(
    browser: Browser, path: str, body: dict[str, Any]
) -> None:
    unreadable = browser.call(http_event("POST", path, claims=VIEWER, raw_body=b'{"level": "\xff"}'))
    readable = browser.call(http_event("POST", path, claims=VIEWER, body=body))

    assert (unreadable.status, json.loads(unreadable.raw["body"])["code"]) == (400, "body_not_utf8")
    assert (readable.status, json.loads(readable.raw["body"])["code"]) == (403, "missing_manage_permission")
