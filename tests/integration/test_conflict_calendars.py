"""Every calendar in `conflict_calendars` is read, with a cursor of its own, and blocks availability:
for each linked-calendar provider, an event the person adds to a second calendar of the account makes
that time busy once sync has run, and is never announced (it is read for busy time only)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from infra.local.sandbox import SandboxConfig
from infra.local.sandbox.graph_store import calendar_id as graph_calendar_id
from infra.local.sandbox.icloud import account_id
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import Credentials
from integrations.events import AppointmentOwner
from integrations.store.vault import credential_ref
from integrations.sync.availability import AvailabilityState, Window
from integrations.sync.runner import cursor_key
from integrations.sync.settle import Outcome
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import WorkerWorld

OWNER = AppointmentOwner(kind="client_user", agency_id="agency-1", client_id="client-a", user_id="user-1")
GOOGLE = "casey@example.com"
MICROSOFT = "casey@outlook.example"
APPLE_ID = "casey@icloud.example"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


@dataclass(frozen=True)
class Account:
    """One provider's account in the sandbox: its synced calendar, a second one, and how the person
    adds an event to the second."""

    provider: str
    synced: str
    second: str
    adds_to_second: Callable[[Sandbox, str, datetime], None]


def _google(sb: Sandbox) -> tuple[Connection, Account]:
    tokens = connect(sb, "google", account=GOOGLE)
    connection = seed.connection(
        provider="google_calendar",
        level=Level.USER,
        user_id=OWNER.user_id,
        account_id="g-casey",
        access_token=str(tokens["access_token"]),
        refresh_token=str(tokens["refresh_token"]),
    )
    listed = sb.http.get(
        sb.url("/google/calendar/v3/users/me/calendarList"),
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    ).json()["items"]
    [team] = [c["id"] for c in listed if c.get("accessRole") == "writer"]

    def adds(sb: Sandbox, summary: str, start: datetime) -> None:
        body = {
            "account": GOOGLE,
            "summary": summary,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        answer = sb.http.post(sb.url(f"/_sandbox/google/calendars/{team}/events"), json=body, timeout=5)
        assert answer.status_code == 201, answer.text

    return connection, Account("google_calendar", "primary", team, adds)


def _outlook(sb: Sandbox) -> tuple[Connection, Account]:
    tokens = connect(sb, "microsoft", account=MICROSOFT)
    connection = seed.connection(
        provider="outlook_calendar",
        level=Level.USER,
        user_id=OWNER.user_id,
        account_id="ms-casey",
        access_token=str(tokens["access_token"]),
        refresh_token=str(tokens["refresh_token"]),
    )
    work = graph_calendar_id(MICROSOFT, "Work")

    def adds(sb: Sandbox, summary: str, start: datetime) -> None:
        body = {
            "account": MICROSOFT,
            "subject": summary,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        answer = sb.http.post(sb.url(f"/_sandbox/outlook/calendars/{work}/events"), json=body, timeout=5)
        assert answer.status_code == 201, answer.text

    return connection, Account("outlook_calendar", "default", work, adds)


def _icloud(sb: Sandbox) -> tuple[Connection, Account]:
    base = f"{sb.base}/icloud/{account_id(APPLE_ID)}/calendars"
    home, work = f"{base}/home/", f"{base}/work/"
    connection = Connection(
        id=uuid.uuid4().hex,
        provider="icloud_calendar",
        level=Level.USER,
        agency_id=OWNER.agency_id,
        client_id=OWNER.client_id,
        user_id=OWNER.user_id,
        account=ExternalAccount(id=APPLE_ID, label=APPLE_ID),
        config={"calendar_url": home},
    )
    credentials = Credentials(secrets={"app_password": SecretStr(APP_PASSWORD)}, extra={"username": APPLE_ID})
    build_vault(Settings.from_env()).put(credential_ref(connection), credentials)

    def adds(sb: Sandbox, summary: str, start: datetime) -> None:
        body = {
            "account": APPLE_ID,
            "summary": summary,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
        }
        answer = sb.http.post(sb.url("/_sandbox/icloud/calendars/work/events"), json=body, timeout=10)
        assert answer.status_code == 201, answer.text

    return connection, Account("icloud_calendar", home, work, adds)


ACCOUNTS = {"google_calendar": _google, "outlook_calendar": _outlook, "icloud_calendar": _icloud}


class World(WorkerWorld):
    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        self.provider = provider
        connection, self.account = ACCOUNTS[provider](sb)
        connection.config = {
            **connection.config,
            "conflict_calendars": [self.account.synced, self.account.second],
        }
        if self.container.connections.get(connection.id) is None:
            self.container.connections.create(connection)
        else:
            self.container.connections.save(connection)
        self.connection_id = connection.id


@pytest.fixture(params=sorted(ACCOUNTS))
def world(
    request: pytest.FixtureRequest, server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    server.reset()
    yield World(server, tmp_path, monkeypatch, str(request.param))
    clear_cache()


def tomorrow(hour: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def test_an_event_on_a_second_conflict_calendar_blocks_availability(world: World) -> None:
    # Given the person's meeting on their second calendar (not the one the connection syncs)
    world.account.adds_to_second(world.sb, "Work offsite", tomorrow(14))

    # When sync runs
    assert world.run(world.job(reason="connected")).outcome is Outcome.DONE

    # Then that calendar was read with a cursor of its own and its event mirrored there
    connection = world.connection
    assert cursor_key(world.account.second) in connection.cursors
    assert cursor_key(world.account.synced) in connection.cursors
    mirrored = world.container.mirror.events(world.connection_id, world.account.second)
    assert [e.start for e in mirrored if e.start == tomorrow(14)] == [tomorrow(14)]
    # and availability counts it: 14:00-14:30 is busy, the answer is whole
    window = Window(tomorrow(13), tomorrow(16), ZoneInfo("UTC"), 30)
    answer = world.container.availability.for_owners([OWNER], window)
    assert answer.state is AvailabilityState.OK
    assert [(b.start, b.end) for b in answer.busy] == [(tomorrow(14), tomorrow(14) + timedelta(minutes=30))]
    assert tomorrow(14) not in [slot.start for slot in answer.free]
    # and, read for busy time only, it is not announced
    assert [e for e in world.bus.of("Calendar Event Changed") if e.calendar_id == world.account.second] == []


def test_a_later_change_on_the_second_calendar_is_picked_up_from_its_cursor(world: World) -> None:
    assert world.run(world.job(reason="connected")).outcome is Outcome.DONE
    before = world.connection.cursors[cursor_key(world.account.second)]

    world.account.adds_to_second(world.sb, "Added later", tomorrow(15))
    assert world.run().outcome is Outcome.DONE

    window = Window(tomorrow(13), tomorrow(16), ZoneInfo("UTC"), 30)
    busy = world.container.availability.for_owners([OWNER], window).busy
    assert (tomorrow(15), tomorrow(15) + timedelta(minutes=30)) in [(b.start, b.end) for b in busy]
    assert world.connection.cursors[cursor_key(world.account.second)] != before
