"""`make dev`: the person's INTEGRATIONS_CATALOG_OVERRIDES file merged over the sandbox's overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.local.sandbox import catalog_overrides
from infra.local.stack import StartError, merged_catalog_overrides
from integrations.catalog.loader import clear_cache, load_catalog

SANDBOX = "http://127.0.0.1:3001"


def write(tmp_path: Path, content: str) -> str:
    path = tmp_path / "mine.json"
    path.write_text(content, encoding="utf-8")
    return str(path)


def test_without_a_file_the_sandbox_overrides_are_used_as_they_are() -> None:
    sandbox = catalog_overrides(SANDBOX)

    assert merged_catalog_overrides(sandbox, None) == sandbox
    assert merged_catalog_overrides(sandbox, "") == sandbox


def test_the_persons_values_win_and_the_sandboxs_other_values_stay(tmp_path: Path) -> None:
    sandbox = catalog_overrides(SANDBOX)
    mine = {
        "hubspot": {"name": "HubSpot (mine)", "oauth": {"token_url": "http://127.0.0.1:9999/token"}},
        "slack": {"description": "Calls in a channel"},
    }

    merged = merged_catalog_overrides(sandbox, write(tmp_path, json.dumps(mine)))

    assert merged["hubspot"]["name"] == "HubSpot (mine)"
    assert merged["hubspot"]["oauth"]["token_url"] == "http://127.0.0.1:9999/token"
    assert merged["hubspot"]["oauth"]["authorize_url"] == sandbox["hubspot"]["oauth"]["authorize_url"]
    assert merged["hubspot"]["api_base_url"] == sandbox["hubspot"]["api_base_url"]
    assert merged["slack"]["description"] == "Calls in a channel"
    assert merged["slack"]["oauth"] == sandbox["slack"]["oauth"]
    assert {k: v for k, v in merged.items() if k not in mine} == {
        k: v for k, v in sandbox.items() if k not in mine
    }


def test_a_list_in_the_persons_file_replaces_the_sandboxs(tmp_path: Path) -> None:
    sandbox = {"google_calendar": {"oauth": {"scopes": ["a", "b"], "token_url": "t"}}}

    merged = merged_catalog_overrides(
        sandbox, write(tmp_path, '{"google_calendar": {"oauth": {"scopes": ["c"]}}}')
    )

    assert merged == {"google_calendar": {"oauth": {"scopes": ["c"], "token_url": "t"}}}


def test_the_sandbox_overrides_given_are_not_changed(tmp_path: Path) -> None:
    sandbox = catalog_overrides(SANDBOX)
    before = json.dumps(sandbox, sort_keys=True)

    merged_catalog_overrides(sandbox, write(tmp_path, '{"hubspot": {"oauth": {"token_url": "x"}}}'))

    assert json.dumps(sandbox, sort_keys=True) == before


@pytest.mark.parametrize(
    "content", ["{not json", "[]", '"hubspot"', ""], ids=["not-json", "a-list", "a-string", "empty"]
)
def test_an_unusable_file_stops_the_start_with_a_message_naming_it(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, content)

    with pytest.raises(StartError) as raised:
        merged_catalog_overrides(catalog_overrides(SANDBOX), path)

    assert path in str(raised.value)
    assert "INTEGRATIONS_CATALOG_OVERRIDES" in str(raised.value)


def test_a_missing_file_stops_the_start_with_a_message_naming_it(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere.json")

    with pytest.raises(StartError, match=r"nowhere\.json"):
        merged_catalog_overrides(catalog_overrides(SANDBOX), path)


def test_the_catalog_loaded_from_the_merged_file_has_both(tmp_path: Path) -> None:
    merged = merged_catalog_overrides(
        catalog_overrides(SANDBOX), write(tmp_path, '{"hubspot": {"name": "HubSpot (mine)"}}')
    )
    merged_path = tmp_path / "merged.json"
    merged_path.write_text(json.dumps(merged), encoding="utf-8")
    clear_cache()

    hubspot = load_catalog(str(merged_path)).get("hubspot")

    clear_cache()
    assert hubspot.name == "HubSpot (mine)"
    assert hubspot.oauth is not None
    assert str(hubspot.oauth.authorize_url).startswith(SANDBOX)
