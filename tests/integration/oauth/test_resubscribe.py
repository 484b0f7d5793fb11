"""One live subscription per connection: a reconnect replaces old ones, a new calendar moves the channel."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import requests

from integrations.config import Settings
from integrations.container import Container
from tests.integration.oauth.conftest import OWNER, Browser
from tests.integration.oauth.test_reauth_on_refusal import portal
from tests.support.events import body_of
from tests.support.functions import load_handler

pytestmark = pytest.mark.usefixtures("oauth_env")


@pytest.fixture
def connectors(oauth_env: dict[str, str]) -> ModuleType:
    return load_handler("connectors")


def _sandbox(sandbox: str, path: str) -> Any:
    answer = requests.get(f"{sandbox}{path}", timeout=5)
    answer.raise_for_status()
    return answer.json()


def _live_channels(sandbox: str) -> list[dict[str, Any]]:
    return [c for c in _sandbox(sandbox, "/_sandbox/google/channels")["channels"] if not c["stopped"]]


def _connection_id(connectors: ModuleType, context: Any, provider: str) -> str:
    cards = body_of(portal(connectors, context, "GET", "/integrations", level=OWNER[provider][1]))
    [card] = [c for c in cards["integrations"] if c["provider"] == provider]
    [connection] = card["connections"]
    return str(connection["id"])


def _stored_lookup_values(connection_id: str, kind: str) -> list[str]:
    services = Container(Settings.from_env())
    connection = services.connections.get(connection_id)
    assert connection is not None
    found = []
    for key in connection.lookup_keys:
        _, _provider, found_kind, value = key.split("#", 3)
        if found_kind == kind and services.connections.get_lookup(_provider, kind, value) is not None:
            found.append(value)
    return found


def test_reconnecting_the_same_google_account_replaces_its_watch_channel(
    browser: Browser, connectors: ModuleType, lambda_context: Any, oauth_env: dict[str, str]
) -> None:
    sandbox = oauth_env["sandbox"]
    assert browser.connect("google_calendar").result()["result"] == "connected"
    [first] = _live_channels(sandbox)

    assert browser.connect("google_calendar").result()["result"] == "connected"

    [live] = _live_channels(sandbox)
    assert live["id"] != first["id"]
    connection_id = _connection_id(connectors, lambda_context, "google_calendar")
    assert _stored_lookup_values(connection_id, "channel") == [live["id"]]


def test_reconnecting_the_same_calendly_user_replaces_its_webhook_subscription(
    browser: Browser, connectors: ModuleType, lambda_context: Any, oauth_env: dict[str, str]
) -> None:
    sandbox = oauth_env["sandbox"]
    assert browser.connect("calendly").result()["result"] == "connected"
    assert browser.connect("calendly").result()["result"] == "connected"

    subscriptions = _sandbox(sandbox, "/_sandbox/calendly/subscriptions")["subscriptions"]
    assert [s["deleted"] for s in subscriptions] == [True, False]


def test_choosing_another_calendar_moves_the_watch_channel(
    browser: Browser, connectors: ModuleType, lambda_context: Any, oauth_env: dict[str, str]
) -> None:
    sandbox = oauth_env["sandbox"]
    assert browser.connect("google_calendar").result()["result"] == "connected"
    connection_id = _connection_id(connectors, lambda_context, "google_calendar")
    [on_primary] = _live_channels(sandbox)
    listed = portal(connectors, lambda_context, "GET", f"/connections/{connection_id}/options/calendar_id")
    other = next(o["value"] for o in body_of(listed)["options"] if o["value"] != on_primary["calendar"])

    moved = portal(
        connectors,
        lambda_context,
        "PATCH",
        f"/connections/{connection_id}",
        {"config": {"calendar_id": other}},
    )

    assert moved["statusCode"] == 200, body_of(moved)
    [live] = _live_channels(sandbox)
    assert live["calendar"] == other
    assert _stored_lookup_values(connection_id, "channel") == [live["id"]]
    # Saving the same calendar again opens nothing new
    again = portal(
        connectors,
        lambda_context,
        "PATCH",
        f"/connections/{connection_id}",
        {"config": {"calendar_id": other}},
    )
    assert again["statusCode"] == 200
    assert [c["id"] for c in _live_channels(sandbox)] == [live["id"]]


def test_a_reconnect_whose_new_watch_fails_keeps_the_old_channel(
    browser: Browser, connectors: ModuleType, lambda_context: Any, oauth_env: dict[str, str]
) -> None:
    sandbox = oauth_env["sandbox"]
    assert browser.connect("google_calendar").result()["result"] == "connected"
    [first] = _live_channels(sandbox)
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={
            "app": "google",
            "kind": "server_error",
            "endpoint": "api",
            "path": "/google/calendar/v3/calendars/",
        },
        timeout=5,
    ).raise_for_status()

    assert browser.connect("google_calendar").result()["result"] == "connected"

    assert [c["id"] for c in _live_channels(sandbox)] == [first["id"]]
    connection_id = _connection_id(connectors, lambda_context, "google_calendar")
    assert _stored_lookup_values(connection_id, "channel") == [first["id"]]
