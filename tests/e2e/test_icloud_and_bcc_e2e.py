"""The providers without OAuth, through the local stack: iCloud against the sandbox's CalDAV server,
and the BCC logging address."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import MANAGE, VIEW, Api

pytestmark = pytest.mark.e2e

PERSON = {
    "sub": "icloud-person",
    "agency_id": "demo-agency",
    "client_id": "client-b",
    "role": "client_user",
    "permissions": [VIEW, MANAGE],
}


def icloud_connect(api: Api, password: str) -> Any:
    return api.call(
        "POST",
        "/integrations/icloud_calendar/connect",
        identity=PERSON,
        json={"apple_id": "robin@icloud.example", "app_password": password},
    )


def test_icloud_rejects_an_account_password_with_a_clear_explanation(api: Api) -> None:
    answer = icloud_connect(api, "my-real-apple-password")

    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_app_password"
    assert "app-specific password" in body["message"]


def test_icloud_connects_lists_calendars_and_disconnects(api: Api) -> None:
    connected = icloud_connect(api, "abcd-efgh-ijkl-mnop")
    assert connected.status_code == 201, connected.text
    connection_id = connected.json()["id"]

    options = api.call("GET", f"/connections/{connection_id}/options/calendar_url", identity=PERSON)
    removed = api.call("DELETE", f"/connections/{connection_id}", identity=PERSON)

    assert options.status_code == 200, options.text
    assert [o["label"] for o in options.json()["options"]] == ["Home", "Work", "Family"]
    assert removed.status_code == 204


def test_bcc_address_is_reserved_once_and_shown_on_the_card(api: Api) -> None:
    first = api.call("POST", "/integrations/bcc_email/connect", identity=PERSON, json={"level": "client"})
    again = api.call("POST", "/integrations/bcc_email/connect", identity=PERSON, json={"level": "client"})
    cards = api.call("GET", "/integrations", identity=PERSON, params={"level": "client"}).json()[
        "integrations"
    ]

    assert first.status_code == 201, first.text
    assert again.status_code == 200
    [card] = [c for c in cards if c["provider"] == "bcc_email"]
    assert card["status"] == "connected"
    assert [c["account_label"] for c in card["connections"]] == [first.json()["account_label"]]
