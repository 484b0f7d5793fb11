"""A provider that refuses a connection's token (401 / 403) turns its card to reauth_required at once."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import requests

from integrations.events import IntegrationErrored, PlatformEvent
from integrations.store.bus import EventBridgePublisher
from tests.integration.oauth.conftest import APP_OF, CLIENT_USER, OWNER, Browser
from tests.support.events import body_of, http_event
from tests.support.functions import load_handler

pytestmark = pytest.mark.usefixtures("oauth_env")

# A provider per dialect of refusal: Google 401, GHL 401, Slack `ok: false` + token_revoked.
DROPDOWNS = {"google_calendar": "calendar_id", "ghl": "pipeline_id", "slack": "channel_id"}
# Required settings, chosen among the provider's options, so the card is `connected` before the grant dies
# (each field with the field it depends on, if any).
CONFIG = {"ghl": [("pipeline_id", None), ("stage_id", "pipeline_id")], "slack": [("channel_id", None)]}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[PlatformEvent]:
    """What the functions publish to the bus (the bus adapter itself stands in)."""
    events: list[PlatformEvent] = []
    monkeypatch.setattr(EventBridgePublisher, "publish", lambda _self, *given: events.extend(given))
    return events


@pytest.fixture
def connectors(oauth_env: dict[str, str]) -> ModuleType:
    return load_handler("connectors")


def portal(
    connectors: ModuleType, context: Any, method: str, path: str, body: Any = None, **query: str
) -> dict[str, Any]:
    answer: dict[str, Any] = connectors.handler(
        http_event(method, path, claims=CLIENT_USER, query=query or None, body=body), context
    )
    return answer


def first_choices(
    connectors: ModuleType, context: Any, connection_id: str, fields: list[tuple[str, str | None]]
) -> dict[str, str]:
    """The first option the provider offers for each field, as a person would pick them in order."""
    config: dict[str, str] = {}
    for name, parent in fields:
        query = {"depends_on": config[parent]} if parent else {}
        listed = portal(connectors, context, "GET", f"/connections/{connection_id}/options/{name}", **query)
        config[name] = body_of(listed)["options"][0]["value"]
    return config


def revoke_at_provider(sandbox: str, provider: str) -> None:
    """The person removed the app at the provider: every grant of that app dies now."""
    requests.post(
        f"{sandbox}/_sandbox/faults", json={"app": APP_OF[provider], "kind": "revoke_grants"}, timeout=5
    ).raise_for_status()


@pytest.mark.parametrize("provider", sorted(DROPDOWNS))
def test_a_revoked_grant_on_a_dropdown_is_a_clear_reauth_and_an_errored_card(
    browser: Browser,
    connectors: ModuleType,
    lambda_context: Any,
    oauth_env: dict[str, str],
    published: list[PlatformEvent],
    provider: str,
) -> None:
    # Given a connected account whose grant the person then revoked at the provider
    assert browser.connect(provider).result()["result"] == "connected"
    level = OWNER[provider][1]
    cards = body_of(portal(connectors, lambda_context, "GET", "/integrations", level=level))
    [card] = [c for c in cards["integrations"] if c["provider"] == provider]
    connection_id = card["connections"][0]["id"]
    if provider in CONFIG:
        config = first_choices(connectors, lambda_context, connection_id, CONFIG[provider])
        configured = portal(
            connectors, lambda_context, "PATCH", f"/connections/{connection_id}", {"config": config}
        )
        assert configured["statusCode"] == 200, body_of(configured)
    before = body_of(portal(connectors, lambda_context, "GET", f"/connections/{connection_id}"))
    assert before["status"] == "connected"
    revoke_at_provider(oauth_env["sandbox"], provider)
    published.clear()

    # When the portal asks for the dropdown's choices
    answer = portal(
        connectors, lambda_context, "GET", f"/connections/{connection_id}/options/{DROPDOWNS[provider]}"
    )

    # Then the answer says what to do, not "something failed on our side"
    assert answer["statusCode"] == 409, body_of(answer)
    assert body_of(answer)["code"] == "reauth_required"
    # and the card shows the error at once, with the Errored event published
    after = body_of(portal(connectors, lambda_context, "GET", f"/connections/{connection_id}"))
    assert after["status"] == "error"
    assert after["error"]["code"] == "reauth_required"
    errored = [e for e in published if isinstance(e, IntegrationErrored)]
    assert [(e.connection_id, e.error_code.value) for e in errored] == [(connection_id, "reauth_required")]


def test_asking_again_publishes_no_second_errored_event(
    browser: Browser,
    connectors: ModuleType,
    lambda_context: Any,
    oauth_env: dict[str, str],
    published: list[PlatformEvent],
) -> None:
    assert browser.connect("google_calendar").result()["result"] == "connected"
    cards = body_of(portal(connectors, lambda_context, "GET", "/integrations", level="user"))
    [card] = [c for c in cards["integrations"] if c["provider"] == "google_calendar"]
    connection_id = card["connections"][0]["id"]
    revoke_at_provider(oauth_env["sandbox"], "google_calendar")
    published.clear()
    path = f"/connections/{connection_id}/options/calendar_id"

    first = portal(connectors, lambda_context, "GET", path)
    second = portal(connectors, lambda_context, "GET", path)

    assert [body_of(a)["code"] for a in (first, second)] == ["reauth_required", "reauth_required"]
    assert len([e for e in published if isinstance(e, IntegrationErrored)]) == 1


def test_connecting_again_recovers_the_same_connection(
    browser: Browser,
    connectors: ModuleType,
    lambda_context: Any,
    oauth_env: dict[str, str],
    published: list[PlatformEvent],
) -> None:
    assert browser.connect("ghl").result()["result"] == "connected"
    cards = body_of(portal(connectors, lambda_context, "GET", "/integrations", level="client"))
    [card] = [c for c in cards["integrations"] if c["provider"] == "ghl"]
    connection_id = card["connections"][0]["id"]
    revoke_at_provider(oauth_env["sandbox"], "ghl")
    portal(connectors, lambda_context, "GET", f"/connections/{connection_id}/options/pipeline_id")

    assert browser.connect("ghl").result()["result"] == "connected"

    options = portal(connectors, lambda_context, "GET", f"/connections/{connection_id}/options/pipeline_id")
    assert options["statusCode"] == 200, body_of(options)
    assert body_of(options)["options"]
