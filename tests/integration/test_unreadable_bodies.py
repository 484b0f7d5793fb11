"""Bodies that cannot be read answer 4xx with a code, after the caller is checked, and log no ERROR."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import seed
from tests.support.events import body_of, claims, http_event

Call = Callable[[dict[str, Any]], dict[str, Any]]
MANAGER = claims(sub="user-1", agency_id="agency-1", client_id="client-a")
VIEWER = claims(sub="viewer-1", agency_id="agency-1", client_id="client-a", permissions="[view_integrations]")
OTHER_CLIENT = claims(sub="user-2", agency_id="agency-1", client_id="client-b")

UNREADABLE: dict[str, dict[str, Any]] = {
    "not utf-8": {"raw_body": b'{"config": {"x": "\xff\xfe"}}'},
    "multipart without boundary": {"body": "--x\r\n", "headers": {"content-type": "multipart/form-data"}},
    "text/plain": {"body": '{"config": {}}', "headers": {"content-type": "text/plain"}},
    "a form": {"body": "config=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    "not JSON": {"body": "{config"},
    "empty": {"body": ""},
    "absent": {},
}
EXPECTED = {
    "not utf-8": (400, "body_not_utf8"),
    "multipart without boundary": (415, "unsupported_media_type"),
    "text/plain": (415, "unsupported_media_type"),
    "a form": (415, "unsupported_media_type"),
    "not JSON": (422, "malformed_body"),
    "empty": (422, "malformed_body"),
    "absent": (422, "malformed_body"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_config_body_is_4xx_with_a_code(
    call: Call, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = seed.connection(provider="ghl")

    with caplog.at_level(logging.ERROR):
        answer = call(http_event("PATCH", f"/connections/{conn.id}", claims=MANAGER, **UNREADABLE[case]))

    assert (answer["statusCode"], body_of(answer)["code"]) == EXPECTED[case]
    assert body_of(answer)["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_a_viewer_hears_forbidden_before_the_body_is_read(call: Call, case: str) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("PATCH", f"/connections/{conn.id}", claims=VIEWER, **UNREADABLE[case]))

    assert answer["statusCode"] == 403
    assert body_of(answer)["code"] == "missing_manage_permission"


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_another_clients_connection_is_not_found_before_the_body_is_read(call: Call, case: str) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("PATCH", f"/connections/{conn.id}", claims=OTHER_CLIENT, **UNREADABLE[case]))

    assert answer["statusCode"] == 404
    assert body_of(answer)["code"] == "connection_not_found"


def test_without_a_token_the_answer_is_401_whatever_the_body(call: Call) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("PATCH", f"/connections/{conn.id}", raw_body=b"\xff"))

    assert answer["statusCode"] == 401


ADMIN = claims(sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin")
STAFF = claims(sub="staff-1", agency_id="agency-1", client_id=None, role="agency_staff")


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_settings_body_is_4xx_with_a_code(
    call: Call, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = call(http_event("PUT", "/agency/settings", claims=ADMIN, **UNREADABLE[case]))

    assert (answer["statusCode"], body_of(answer)["code"]) == EXPECTED[case]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("who", [STAFF, MANAGER], ids=["agency staff", "client user"])
@pytest.mark.parametrize("case", [*UNREADABLE, "invalid field"])
def test_only_agency_admins_hear_about_a_settings_body(call: Call, case: str, who: dict[str, Any]) -> None:
    request = UNREADABLE.get(case, {"body": '{"staff_personal_connections": 0}'})

    answer = call(http_event("PUT", "/agency/settings", claims=who, **request))

    assert answer["statusCode"] == 403
    assert body_of(answer)["code"] == "agency_admin_only"


def test_a_readable_settings_body_is_still_checked_field_by_field(call: Call) -> None:
    answer = call(
        http_event("PUT", "/agency/settings", claims=ADMIN, body={"staff_personal_connections": "yes"})
    )

    assert answer["statusCode"] == 422
    assert body_of(answer)["code"] == "invalid_request"
    assert body_of(answer)["details"][0]["field"] == "staff_personal_connections"
