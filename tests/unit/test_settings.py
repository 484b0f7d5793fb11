"""Settings are validated at cold start: a missing or bad variable fails the import, naming it."""

from __future__ import annotations

import pytest

from integrations.config import Settings, SettingsError, TokenStorage
from tests.support.functions import load_handler

ENVIRONMENT = {
    "STAGE": "test",
    "TABLE_NAME": "integrations-test-main",
    "STATE_TABLE_NAME": "integrations-test-state",
    "SYNC_TABLE_NAME": "integrations-test-sync",
    "EVENT_BUS_NAME": "integrations-test",
    "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/sync",
    "KMS_KEY_ID": "alias/integrations-test",
    "PUBLIC_API_URL": "https://api.example.com/",
    "ALLOWED_RETURN_ORIGINS": "https://portal.example.com/, https://other.example.com",
}


def without(*names: str, **changes: str) -> dict[str, str]:
    return {k: v for k, v in {**ENVIRONMENT, **changes}.items() if k not in names}


def test_a_complete_environment_reads_with_defaults_from_the_stage() -> None:
    settings = Settings.from_env(ENVIRONMENT)

    assert settings.sync_queue_url == ENVIRONMENT["SYNC_QUEUE_URL"]
    assert settings.public_api_url == "https://api.example.com"
    assert settings.allowed_return_origins == ("https://portal.example.com", "https://other.example.com")
    assert settings.token_storage is TokenStorage.KMS
    assert settings.app_secret_prefix == "test/integrations/apps/"
    assert settings.agency_app_secret_prefix == "test/integrations/agency-apps/"


@pytest.mark.parametrize(
    "name",
    [
        "STAGE",
        "TABLE_NAME",
        "STATE_TABLE_NAME",
        "SYNC_TABLE_NAME",
        "EVENT_BUS_NAME",
        "SYNC_QUEUE_URL",
        "KMS_KEY_ID",
        "PUBLIC_API_URL",
    ],
)
def test_a_missing_required_variable_is_refused_by_name(name: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(without(name))

    assert name in str(refused.value)
    assert "missing" in str(refused.value)


def test_an_empty_queue_url_is_as_missing_as_an_absent_one() -> None:
    with pytest.raises(SettingsError, match="SYNC_QUEUE_URL"):
        Settings.from_env(without(SYNC_QUEUE_URL="  "))


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(without("SYNC_QUEUE_URL", "TABLE_NAME"))

    assert "SYNC_QUEUE_URL" in str(refused.value) and "TABLE_NAME" in str(refused.value)


@pytest.mark.parametrize(
    ("name", "value"), [("TOKEN_STORAGE", "floppy"), ("PUBLIC_API_URL", "api.example.com")]
)
def test_an_invalid_value_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"invalid environment variables: {name}"):
        Settings.from_env(without(**{name: value}))


@pytest.mark.parametrize(
    "function", ["webhooks", "sync_scheduler", "sync_worker", "oauth", "connectors", "internal"]
)
def test_a_function_without_its_queue_url_fails_at_import(
    function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in without("SYNC_QUEUE_URL").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SYNC_QUEUE_URL", raising=False)

    with pytest.raises(SettingsError, match="SYNC_QUEUE_URL"):
        load_handler(function)
