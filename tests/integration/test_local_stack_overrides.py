"""The local stack with the person's catalog overrides: what the functions see, and a bad file at start."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.local.stack import LocalStack, StartError

pytestmark = pytest.mark.e2e

ADMIN = {
    "sub": "demo-agency-admin",
    "agency_id": "demo-agency",
    "role": "agency_admin",
    "permissions": ["view_integrations", "manage_integrations"],
}


def test_a_file_naming_an_unknown_provider_stops_the_start_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text('{"myspace": {"name": "MySpace"}}', encoding="utf-8")
    before = dict(os.environ)
    stack = LocalStack(stage="bad-overrides", run_schedules=False, catalog_overrides=str(mine))

    with pytest.raises(StartError) as raised:
        stack.start(port=0, sandbox_port=0)

    assert str(mine) in str(raised.value)
    assert "myspace" in str(raised.value)
    assert stack._servers == []
    assert dict(os.environ) == before


@pytest.fixture(scope="module")
def stack_with_overrides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    mine = tmp_path_factory.mktemp("overrides") / "mine.json"
    mine.write_text(json.dumps({"hubspot": {"name": "HubSpot (mine)"}}), encoding="utf-8")
    stack = LocalStack(stage="overrides", run_schedules=False, catalog_overrides=str(mine))
    stack.start(port=0, sandbox_port=0)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def test_functions_see_the_persons_values_over_the_sandboxs(
    stack_with_overrides: LocalStack, http: requests.Session
) -> None:
    urls = stack_with_overrides.urls
    assert urls is not None
    headers = {"Authorization": f"Bearer {stack_with_overrides.token(**ADMIN)}"}

    cards = http.get(f"{urls.gateway}/integrations", params={"level": "agency"}, headers=headers, timeout=20)
    start = http.post(
        f"{urls.gateway}/oauth/hubspot/start",
        json={"level": "agency", "return_to": f"{urls.gateway}/portal/"},
        headers=headers,
        timeout=20,
    )
    to_provider = http.get(
        start.json()["redirect_url"],
        headers={"Sec-Fetch-Site": "same-origin"},  # the portal's own navigation
        allow_redirects=False,
        timeout=20,
    )

    assert cards.status_code == 200, cards.text
    hubspot = next(card for card in cards.json()["integrations"] if card["provider"] == "hubspot")
    assert hubspot["name"] == "HubSpot (mine)"
    assert start.status_code == 200, start.text
    assert to_provider.status_code == 302
    assert to_provider.headers["Location"].startswith(f"{urls.sandbox}/hubspot/oauth/authorize?")
