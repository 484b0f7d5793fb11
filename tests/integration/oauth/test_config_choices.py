"""Settings are checked against what the provider offers now, as the options route lists it."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.integration.oauth.conftest import OWNER, Browser
from tests.integration.oauth.test_reauth_on_refusal import portal
from tests.support.events import body_of
from tests.support.functions import load_handler

pytestmark = pytest.mark.usefixtures("oauth_env")


@pytest.fixture
def connectors(oauth_env: dict[str, str]) -> ModuleType:
    return load_handler("connectors")


def _connected(browser: Browser, connectors: Any, context: Any, provider: str) -> str:
    assert browser.connect(provider).result()["result"] == "connected"
    cards = body_of(portal(connectors, context, "GET", "/integrations", level=OWNER[provider][1]))
    [card] = [c for c in cards["integrations"] if c["provider"] == provider]
    return str(card["connections"][0]["id"])


def test_the_one_way_calendar_is_a_dropdown_of_the_persons_writable_calendars(
    browser: Browser, connectors: Any, lambda_context: Any
) -> None:
    connection_id = _connected(browser, connectors, lambda_context, "google_calendar_oneway")

    answer = portal(connectors, lambda_context, "GET", f"/connections/{connection_id}/options/calendar_id")

    assert answer["statusCode"] == 200, body_of(answer)
    options = body_of(answer)["options"]
    assert options and options[0]["label"].endswith("(primary)")
    chosen = portal(
        connectors,
        lambda_context,
        "PATCH",
        f"/connections/{connection_id}",
        {"config": {"calendar_id": options[-1]["value"]}},
    )
    assert chosen["statusCode"] == 200, body_of(chosen)
    assert body_of(chosen)["config"] == {"calendar_id": options[-1]["value"]}


@pytest.mark.parametrize(
    ("provider", "config", "refused"),
    [
        ("google_calendar_oneway", {"calendar_id": "made-up@example.com"}, "calendar_id"),
        ("google_calendar", {"calendar_id": "made-up@example.com"}, "calendar_id"),
        ("google_calendar", {"conflict_calendars": ["made-up@example.com"]}, "conflict_calendars"),
        ("slack", {"channel_id": "C-MADE-UP"}, "channel_id"),
        ("ghl", {"pipeline_id": "p-made-up", "stage_id": "s-1"}, "pipeline_id"),
    ],
)
def test_a_made_up_choice_is_a_422_naming_the_field(
    browser: Browser,
    connectors: Any,
    lambda_context: Any,
    provider: str,
    config: dict[str, Any],
    refused: str,
) -> None:
    connection_id = _connected(browser, connectors, lambda_context, provider)

    answer = portal(connectors, lambda_context, "PATCH", f"/connections/{connection_id}", {"config": config})

    assert answer["statusCode"] == 422, body_of(answer)
    assert body_of(answer)["code"] == "invalid_config"
    assert [d["field"] for d in body_of(answer)["details"]] == [refused]


def test_sync_preferences_are_saved_through_the_config_route_with_the_accounts_calendars(
    browser: Browser, connectors: Any, lambda_context: Any
) -> None:
    connection_id = _connected(browser, connectors, lambda_context, "google_calendar")
    listed = portal(
        connectors, lambda_context, "GET", f"/connections/{connection_id}/options/conflict_calendars"
    )
    assert listed["statusCode"] == 200, body_of(listed)
    calendars = [o["value"] for o in body_of(listed)["options"]]
    assert calendars
    config = {
        "push": False,
        "push_types": ["appointment"],
        "conflict_calendars": calendars[:2],
        "show_as": "busy",
        "window_future_days": 90,
    }

    saved = portal(connectors, lambda_context, "PATCH", f"/connections/{connection_id}", {"config": config})

    assert saved["statusCode"] == 200, body_of(saved)
    assert body_of(saved)["config"] == config


# Per CRM: the pipeline field, the single stage field, the outcome mapping and any other required setting.
_STAGE_FIELDS = {
    "ghl": ("pipeline_id", "stage_id", "stage_by_outcome", {}),
    "hubspot": (
        "deal_pipeline_id",
        "deal_stage_id",
        "deal_stage_by_outcome",
        {"property_mapping": {"email": "email"}},
    ),
}


def _options(connectors: Any, context: Any, connection_id: str, field: str, parent: str = "") -> list[str]:
    query = {"depends_on": parent} if parent else {}
    answer = portal(connectors, context, "GET", f"/connections/{connection_id}/options/{field}", **query)
    assert answer["statusCode"] == 200, body_of(answer)
    return [str(o["value"]) for o in body_of(answer)["options"]]


@pytest.mark.parametrize("provider", ["ghl", "hubspot"])
def test_an_outcome_mapped_to_a_stage_outside_the_pipeline_is_a_422_naming_it(
    browser: Browser, connectors: Any, lambda_context: Any, provider: str
) -> None:
    connection_id = _connected(browser, connectors, lambda_context, provider)
    pipeline_field, stage_field, mapping_field, rest = _STAGE_FIELDS[provider]
    first, second = _options(connectors, lambda_context, connection_id, pipeline_field)[:2]
    stages = _options(connectors, lambda_context, connection_id, stage_field, first)
    elsewhere = _options(connectors, lambda_context, connection_id, stage_field, second)[0]
    config = {
        **rest,
        pipeline_field: first,
        stage_field: stages[0],
        mapping_field: {"booked": stages[1], "No Answer": elsewhere},
    }

    answer = portal(connectors, lambda_context, "PATCH", f"/connections/{connection_id}", {"config": config})

    assert answer["statusCode"] == 422, body_of(answer)
    body = body_of(answer)
    assert body["code"] == "invalid_config"
    [problem] = body["details"]
    assert problem["field"] == mapping_field
    assert f"no answer \u2192 {elsewhere}" in problem["message"] and stages[1] not in problem["message"]


@pytest.mark.parametrize("provider", ["ghl", "hubspot"])
def test_an_outcome_mapping_is_saved_with_its_outcomes_in_lower_case(
    browser: Browser, connectors: Any, lambda_context: Any, provider: str
) -> None:
    connection_id = _connected(browser, connectors, lambda_context, provider)
    pipeline_field, stage_field, mapping_field, rest = _STAGE_FIELDS[provider]
    pipeline = _options(connectors, lambda_context, connection_id, pipeline_field)[0]
    stages = _options(connectors, lambda_context, connection_id, stage_field, pipeline)
    config = {
        **rest,
        pipeline_field: pipeline,
        stage_field: stages[0],
        mapping_field: {" Booked ": stages[1]},
    }

    saved = portal(connectors, lambda_context, "PATCH", f"/connections/{connection_id}", {"config": config})

    assert saved["statusCode"] == 200, body_of(saved)
    assert body_of(saved)["config"][mapping_field] == {"booked": stages[1]}
