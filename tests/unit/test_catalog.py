"""The catalog is data validated at load; overrides stand providers in without code changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.catalog import AuthKind, load_catalog
from integrations.catalog.config_validation import validate_config
from integrations.catalog.loader import CatalogError, clear_cache
from integrations.domain.access import Level, Tier
from integrations.domain.errors import NotFound, ValidationFailed

DESIGN_PROVIDERS = {
    "ghl",
    "hubspot",
    "google_calendar",
    "google_calendar_oneway",
    "calendly",
    "slack",
    "outlook_calendar",
    "icloud_calendar",
    "gmail",
    "outlook_mail",
    "bcc_email",
}


@pytest.fixture(autouse=True)
def _fresh_catalog() -> None:
    clear_cache()


def test_all_ten_providers_of_the_design_are_in_the_catalog() -> None:
    assert set(load_catalog("").ids()) == DESIGN_PROVIDERS


def test_every_oauth_provider_has_endpoints_and_required_scopes() -> None:
    for spec in load_catalog(""):
        if spec.auth is AuthKind.OAUTH2:
            assert spec.oauth is not None
            assert spec.oauth.authorize_url.startswith("https://")
            assert spec.oauth.token_url.startswith("https://")
            assert spec.oauth.required_scopes


def test_hubspot_needs_growth_and_google_two_way_excludes_one_way() -> None:
    catalog = load_catalog("")
    assert catalog.get("hubspot").min_tier is Tier.GROWTH
    assert catalog.get("google_calendar").conflicts_with == ["google_calendar_oneway"]
    assert catalog.get("google_calendar_oneway").conflicts_with == ["google_calendar"]
    assert Level.USER in catalog.get("google_calendar").levels


def test_unknown_provider_is_not_found() -> None:
    with pytest.raises(NotFound):
        load_catalog("").get("myspace")


def test_overrides_replace_endpoints_and_keep_the_rest(tmp_path: Path) -> None:
    overrides = tmp_path / "o.json"
    overrides.write_text(
        json.dumps({"ghl": {"oauth": {"token_url": "http://127.0.0.1:3001/ghl/oauth/token"}}})
    )

    spec = load_catalog(str(overrides)).get("ghl")

    assert spec.oauth is not None
    assert spec.oauth.token_url == "http://127.0.0.1:3001/ghl/oauth/token"
    assert spec.oauth.rotates_refresh_token is True


@pytest.mark.parametrize(
    "content",
    ['{"myspace": {}}', '{"ghl": {"min_tier": "platinum"}}', "[1, 2]", "not json"],
)
def test_bad_overrides_fail_loudly_at_load(tmp_path: Path, content: str) -> None:
    overrides = tmp_path / "o.json"
    overrides.write_text(content)

    with pytest.raises(CatalogError):
        load_catalog(str(overrides))


def test_ghl_config_requires_pipeline_and_stage() -> None:
    spec = load_catalog("").get("ghl")

    with pytest.raises(ValidationFailed) as raised:
        validate_config(spec, {"pipeline_id": 7, "color": "red"})

    fields = {d["field"] for d in raised.value.details}
    assert fields == {"pipeline_id", "stage_id", "color"}


def test_hubspot_mapping_accepts_known_keys_only() -> None:
    spec = load_catalog("").get("hubspot")

    good = validate_config(spec, {"property_mapping": {"email": "email", "phone": "mobilephone"}})
    with pytest.raises(ValidationFailed) as raised:
        validate_config(spec, {"property_mapping": {"shoe_size": "x", "email": ""}})

    assert good == {"property_mapping": {"email": "email", "phone": "mobilephone"}}
    assert raised.value.details[0]["field"] == "property_mapping"


def test_config_must_be_an_object() -> None:
    with pytest.raises(ValidationFailed):
        validate_config(load_catalog("").get("slack"), ["channel"])


def test_ghl_asks_for_a_company_token_for_an_agency_and_a_location_token_for_a_client() -> None:
    oauth = load_catalog("").get("ghl").oauth
    assert oauth is not None
    assert oauth.token_params(Level.AGENCY) == {"user_type": "Company"}
    assert oauth.token_params(Level.CLIENT) == {"user_type": "Location"}


@pytest.mark.parametrize(
    "by_level",
    [
        {"user": {"user_type": "Company"}},  # GHL has no user level
        {"agency": {"grant_type": "client_credentials"}},  # the grant is the engine's
        {"agency": {"user_type": ""}},
        {"galaxy": {"user_type": "Company"}},
    ],
)
def test_level_token_params_are_checked_at_load(tmp_path: Path, by_level: dict[str, object]) -> None:
    overrides = tmp_path / "o.json"
    overrides.write_text(json.dumps({"ghl": {"oauth": {"token_params_by_level": by_level}}}))

    with pytest.raises(CatalogError):
        load_catalog(str(overrides))
