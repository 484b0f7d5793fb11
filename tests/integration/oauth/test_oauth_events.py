"""The sample events in events/ drive the OAuth function's routes as API Gateway would send them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from integrations.domain.access import Tier
from tests.integration.oauth.conftest import Answer, Browser
from tests.support import seed

EVENTS = Path(__file__).resolve().parents[3] / "events"
SAMPLES = sorted(EVENTS.glob("oauth_*.json"))

pytestmark = pytest.mark.usefixtures("oauth_env")


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def test_there_is_a_sample_for_every_route() -> None:
    routes = {
        (e["requestContext"]["http"]["method"], e["rawPath"].split("/")[1])
        for e in map(json.loads, map(Path.read_text, SAMPLES))
    }
    assert {
        ("POST", "oauth"),
        ("GET", "oauth"),
        ("POST", "integrations"),
        ("PUT", "agency"),
        ("DELETE", "agency"),
    } <= routes


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_reaches_a_route(browser: Browser, path: Path) -> None:
    seed.agency("demo-agency", Tier.GROWTH)
    answer = Answer(browser.handler(json.loads(path.read_text()), browser.context))
    assert answer.status != 404 or answer.body.get("code") != "route_not_found"


def test_start_sample_answers_a_redirect_url(browser: Browser) -> None:
    answer = Answer(browser.handler(sample("oauth_start.json"), browser.context))
    assert answer.status == 200
    assert answer.body["redirect_url"].startswith(
        "http://127.0.0.1:3000/oauth/google_calendar/authorize?session="
    )


def test_callback_sample_with_an_unknown_state_gets_the_error_page(browser: Browser) -> None:
    answer = Answer(browser.handler(sample("oauth_callback.json"), browser.context))
    assert answer.status == 400
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "session_unknown" in answer.raw["body"]


def test_bcc_sample_reserves_an_address(browser: Browser) -> None:
    answer = Answer(browser.handler(sample("oauth_bcc_connect.json"), browser.context))

    assert answer.status == 201
    assert answer.body["provider"] == "bcc_email"
    assert answer.body["account_label"].startswith("log-")
