"""iCloud connects with an Apple ID and an app-specific password, verified by CalDAV discovery first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import credential_ref
from tests.integration.oauth.conftest import CLIENT_USER, Browser, sandbox_requests
from tests.support.events import http_event

MY_CALENDARS = Scope("agency-1", Level.USER, "client-a", "user-1")


USERNAME = "alex@icloud.example"
# iCloud accepts only app-specific passwords (four groups of four letters); so does the sandbox.
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


class CalDavServer:
    """The sandbox's iCloud CalDAV stand-in, observed through its request log."""

    def __init__(self, base: str) -> None:
        self.base = base

    def requests(self) -> list[dict[str, Any]]:
        return sandbox_requests(self.base, app="icloud")

    @property
    def attempts(self) -> int:
        return len(self.requests())

    @property
    def rejected(self) -> int:
        return sum(1 for r in self.requests() if r["status"] == 401)


@pytest.fixture
def caldav(oauth_env: dict[str, str]) -> CalDavServer:
    return CalDavServer(oauth_env["sandbox"])


def connect(browser: Browser, password: str, **extra: Any) -> Any:
    body = {"apple_id": USERNAME, "app_password": password, **extra}
    return browser.call(
        http_event("POST", "/integrations/icloud_calendar/connect", claims=CLIENT_USER, body=body)
    )


def my_connections() -> list[Any]:
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    return [c for c in repo.list_for_scope(MY_CALENDARS) if c.provider == "icloud_calendar"]


def test_valid_app_password_connects_and_is_stored_encrypted(browser: Browser, caldav: CalDavServer) -> None:
    answer = connect(browser, APP_PASSWORD)

    assert answer.status == 201
    assert answer.body["provider"] == "icloud_calendar"
    assert answer.body["account_label"] == USERNAME
    assert APP_PASSWORD not in json.dumps(answer.body)
    [connection] = my_connections()
    stored = build_vault(Settings.from_env()).get(credential_ref(connection))
    assert stored is not None
    assert stored.secrets["app_password"].get_secret_value() == APP_PASSWORD
    assert [c["name"] for c in stored.extra["calendars"]] == ["Home", "Work", "Family"]
    assert APP_PASSWORD not in connection.model_dump_json()


def test_wrong_password_is_422_explaining_app_specific_passwords(
    browser: Browser, caldav: CalDavServer
) -> None:
    answer = connect(browser, "my-apple-id-password")

    assert answer.status == 422
    assert answer.body["code"] == "invalid_app_password"
    assert "app-specific password" in answer.body["message"]
    assert caldav.rejected >= 1
    assert my_connections() == []


def test_connecting_again_updates_the_same_connection(browser: Browser, caldav: CalDavServer) -> None:
    first = connect(browser, APP_PASSWORD)
    again = connect(browser, APP_PASSWORD)

    assert again.status == 200
    assert again.body["id"] == first.body["id"]
    assert len(my_connections()) == 1


def test_icloud_is_personal_only(browser: Browser, caldav: CalDavServer) -> None:
    answer = connect(browser, APP_PASSWORD, level="client")

    assert answer.status == 403
    assert answer.body["code"] == "level_not_supported"
    assert caldav.attempts == 0  # refused before anything was sent to Apple


def test_missing_fields_are_422(browser: Browser, caldav: CalDavServer) -> None:
    answer = browser.call(
        http_event(
            "POST", "/integrations/icloud_calendar/connect", claims=CLIENT_USER, body={"apple_id": "x@y.z"}
        )
    )
    assert answer.status == 422


def test_oauth_providers_have_no_password_connect(browser: Browser, caldav: CalDavServer) -> None:
    answer = browser.call(
        http_event(
            "POST",
            "/integrations/google_calendar/connect",
            claims=CLIENT_USER,
            body={"apple_id": USERNAME, "app_password": APP_PASSWORD},
        )
    )
    # The connect route serves every provider, but an OAuth provider is never sent a password.
    assert answer.status == 400
    assert answer.body["code"] == "use_oauth_start"
    assert "/oauth/google_calendar/start" in answer.body["message"]
    assert caldav.attempts == 0


def test_calendar_options_come_from_discovery(browser: Browser, caldav: CalDavServer) -> None:
    from integrations.catalog import load_catalog
    from integrations.providers.registry import module_for

    connect(browser, APP_PASSWORD)
    [connection] = my_connections()
    credentials = build_vault(Settings.from_env()).get(credential_ref(connection))
    assert credentials is not None
    spec = load_catalog().get("icloud_calendar")

    options = module_for("icloud_calendar").options(spec, connection, credentials, "calendar_url", None)

    assert [o.label for o in options] == ["Home", "Work", "Family"]
    assert all(o.value.endswith("/") and "/calendars/" in o.value for o in options)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("apple_id", "zoë@icloud.example"),
        ("apple_id", "robin\u00a0x@icloud.example"),
        ("apple_id", "雪@icloud.example"),
        ("apple_id", "robin:admin@icloud.example"),
        ("app_password", "abcd-efgh-ijkl-mnoπ"),
        ("app_password", "abcd-efgh-ijkl-mn😀"),
        ("app_password", "abcd-efgh-ijkl-\u00e9\u00e9\u00e9\u00e9"),
    ],
)
def test_non_ascii_credentials_are_422_naming_the_field(
    browser: Browser, caldav: CalDavServer, field: str, value: str
) -> None:
    body = {"apple_id": USERNAME, "app_password": APP_PASSWORD, field: value}

    answer = browser.call(
        http_event("POST", "/integrations/icloud_calendar/connect", claims=CLIENT_USER, body=body)
    )

    assert answer.status == 422
    assert answer.body["code"] == "invalid_request"
    assert field in answer.body["message"]
    assert [d["field"] for d in answer.body["details"]] == [field]
    assert value not in json.dumps(answer.body)  # a password is never echoed
    assert caldav.attempts == 0  # refused before anything was sent to Apple
    assert my_connections() == []
