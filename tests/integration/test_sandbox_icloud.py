"""The sandbox's iCloud: Radicale behind iCloud's app-specific password rule and discovery shape, the
person-acts routes, reset and the sync-token switch, and the adapter reaching it like iCloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from infra.local.sandbox import SandboxConfig, catalog_overrides
from infra.local.sandbox.icloud import account_id
from integrations.catalog import load_catalog
from integrations.domain.credentials import Credentials
from integrations.domain.errors import ReauthRequired
from integrations.providers.icloud_calendar.sync import DEFAULT_CALENDAR, CalDavCalendarAdapter
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox

APPLE_ID = "robin@icloud.example"
APP_PASSWORD = "wxyz-wxyz-wxyz-wxyz"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY)) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


def _adapter(sb: Sandbox, tmp_path: Path, password: str = APP_PASSWORD) -> CalDavCalendarAdapter:
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(catalog_overrides(sb.base)))
    spec = load_catalog(str(overrides)).get("icloud_calendar")
    credentials = Credentials(secrets={"app_password": SecretStr(password)}, extra={"username": APPLE_ID})
    return CalDavCalendarAdapter(spec, "conn-1", lambda: credentials)


def _create(sb: Sandbox, summary: str, calendar: str = "home") -> str:
    answer = sb.http.post(
        sb.url(f"/_sandbox/icloud/calendars/{calendar}/events"),
        json={
            "account": APPLE_ID,
            "summary": summary,
            "start": "2031-03-03T09:00:00+01:00",
            "end": "2031-03-03T10:00:00+01:00",
            "time_zone": "Europe/Paris",
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_the_default_calendar_is_the_first_one_discovered(sb: Sandbox, tmp_path: Path) -> None:
    made = _create(sb, "Haircut")
    adapter = _adapter(sb, tmp_path)

    page = adapter.pull(DEFAULT_CALENDAR, None, None)

    assert [(e.external_id, e.title, e.time_zone) for e in page.events] == [(made, "Haircut", "Europe/Paris")]
    assert page.events[0].start == datetime(2031, 3, 3, 8, tzinfo=UTC)
    assert adapter.calendar_name(DEFAULT_CALENDAR) == "Home"
    assert adapter.calendar_name(f"{sb.base}/icloud/{account_id(APPLE_ID)}/calendars/work/") == "Work"


def test_an_account_password_is_refused_like_icloud(sb: Sandbox, tmp_path: Path) -> None:
    adapter = _adapter(sb, tmp_path, password="my-apple-id-password")
    with pytest.raises(ReauthRequired):
        adapter.pull(DEFAULT_CALENDAR, None, None)
    answer = sb.http.request("PROPFIND", sb.url("/icloud/"), auth=(APPLE_ID, "not-an-app-password"))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_the_person_edits_and_deletes_and_reset_forgets_everything(sb: Sandbox) -> None:
    made = _create(sb, "Yoga")
    events = sb.url("/_sandbox/icloud/calendars/home/events")
    edited = sb.http.put(
        f"{events}/{made}",
        json={"account": APPLE_ID, "summary": "Yoga (later)", "start": "2031-03-04", "end": "2031-03-05"},
        timeout=10,
    )
    assert edited.status_code == 200
    listed = sb.http.get(events, params={"account": APPLE_ID}, timeout=10).json()["events"]
    assert [(e["id"], e["summary"]) for e in listed] == [(made, "Yoga (later)")]

    assert sb.http.delete(f"{events}/{made}", params={"account": APPLE_ID}, timeout=10).status_code == 204
    assert sb.http.get(events, params={"account": APPLE_ID}, timeout=10).json()["events"] == []

    _create(sb, "Kept until reset")
    sb.reset()
    assert sb.http.get(events, params={"account": APPLE_ID}, timeout=10).json()["events"] == []


def test_the_index_page_documents_the_icloud_routes(sb: Sandbox) -> None:
    page = sb.http.get(sb.url("/"), timeout=10).text
    for path in (
        "/icloud/",
        "/_sandbox/icloud/calendars/&lt;calendar&gt;/events",
        "/_sandbox/icloud/sync-tokens/expire",
    ):
        assert path in page
    overview = sb.http.get(sb.url("/_sandbox/icloud"), timeout=10).json()
    assert overview["caldav_url"] == sb.url("/icloud/")
    assert overview["radicale_url"].startswith("http://127.0.0.1:")
