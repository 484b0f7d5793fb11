"""Connecting through the provider sandbox's consent page, over HTTP only, as a browser would."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import MANAGE, VIEW, Api

pytestmark = pytest.mark.e2e

MANAGER_B = {
    "sub": "client-b-manager",
    "agency_id": "demo-agency",
    "client_id": "client-b",
    "role": "client_user",
    "permissions": [VIEW, MANAGE],
}


def consent(
    api: Api, redirect_url: str, *, drop_scope: str | None = None, account: str = "pat@example.com"
) -> Any:
    """Follow authorize → consent page (signed in as `account`) → Allow → callback; the callback's answer."""
    # The portal's own navigation: a forwarded link (no Fetch Metadata, no Referer) is asked to confirm.
    authorize = api.call("GET", redirect_url, headers={"Sec-Fetch-Site": "same-origin"})
    assert authorize.status_code == 302, authorize.text
    binding = authorize.headers["Set-Cookie"].split(";", 1)[0]
    page_url = authorize.headers["Location"]
    page = api.call("GET", page_url)
    assert page.status_code == 200, page.text
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    scopes = [html.unescape(s) for s in re.findall(r'name="scope" value="([^"]+)"', page.text)]
    form = [(name, html.unescape(value)) for name, value in hidden]
    form += [("scope", s) for s in scopes if s != drop_scope]
    form += [("account", account), ("decision", "allow")]
    back = api.call("POST", page_url.split("?", 1)[0], data=form)
    assert back.status_code == 302, back.text
    callback = back.headers["Location"]
    assert callback.startswith(f"{api.base}/oauth/")
    # The binding cookie is Secure: requests would not send it over http, a browser on 127.0.0.1 does.
    return api.call("GET", callback, headers={"Cookie": binding})


def card(api: Api, identity: Any, provider: str, level: str = "client") -> dict[str, Any]:
    answer = api.call("GET", "/integrations", identity=identity, params={"level": level})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = next(c for c in answer.json()["integrations"] if c["provider"] == provider)
    return found


def test_connect_configure_and_disconnect_google_calendar(api: Api) -> None:
    start = api.call(
        "POST",
        "/oauth/google_calendar/start",
        identity=MANAGER_B,
        json={"level": "client", "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text

    done = consent(api, start.json()["redirect_url"])

    assert done.status_code == 302
    assert done.headers["Location"] == f"{api.base}/portal/?integration=google_calendar&result=connected"
    connected = card(api, MANAGER_B, "google_calendar")
    assert len(connected["connections"]) == 1
    connection = connected["connections"][0]
    assert connection["account_label"] == "pat@example.com"

    configured = api.call(
        "PATCH",
        f"/connections/{connection['id']}",
        identity=MANAGER_B,
        json={"config": {"calendar_id": "pat@example.com", "conflict": True}},
    )
    assert configured.status_code == 200, configured.text
    # Its first sync runs right after the connect: the card may still say so.
    assert configured.json()["status"] in ("connected", "syncing")
    assert configured.json()["config"]["calendar_id"] == "pat@example.com"

    removed = api.call("DELETE", f"/connections/{connection['id']}", identity=MANAGER_B)
    assert removed.status_code == 204
    after = card(api, MANAGER_B, "google_calendar")
    assert after["status"] == "not_connected"
    assert after["connections"] == []


def test_unticked_scope_comes_back_as_missing_scopes_without_a_connection(api: Api) -> None:
    identity = {**MANAGER_B, "sub": "client-b-other"}
    start = api.call(
        "POST",
        "/oauth/google_calendar/start",
        identity=identity,
        json={"level": "user", "return_to": f"{api.base}/portal/"},
    )
    assert start.status_code == 200, start.text

    done = consent(
        api, start.json()["redirect_url"], drop_scope="https://www.googleapis.com/auth/calendar.events"
    )

    query = parse_qs(urlsplit(done.headers["Location"]).query)
    assert query["result"] == ["error"]
    assert query["code"] == ["missing_scopes"]
    assert card(api, identity, "google_calendar", level="user")["connections"] == []


def test_tier_gating_answers_403_with_the_reason(api: Api) -> None:
    answer = api.call(
        "POST",
        "/oauth/hubspot/start",
        identity="starter-admin",
        json={"level": "agency", "return_to": f"{api.base}/portal/"},
    )

    assert answer.status_code == 403
    assert answer.json()["code"] == "tier_too_low"
