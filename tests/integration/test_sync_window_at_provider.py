"""The sync window's past side (`window_past_days`) narrows what the provider is asked for, not only
what the engine keeps: Google's full pass asks `timeMin` from then, Outlook's delta round starts then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.domain.access import Level
from integrations.sync.settle import Outcome
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import WorkerWorld

# provider → (sandbox app, account, the list call's path and the parameter that starts its range)
PROVIDERS = {
    "google_calendar": ("google", "casey@example.com", "/events", "timeMin"),
    "outlook_calendar": ("microsoft", "casey@outlook.example", "calendarView/delta", "startDateTime"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World(WorkerWorld):
    def __init__(
        self,
        sb: Sandbox,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        provider: str,
        config: dict[str, Any],
    ) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        self.provider = provider
        app, account, self.list_path, self.since_param = PROVIDERS[provider]
        tokens = connect(sb, app, account=account)
        connection = seed.connection(
            provider=provider,
            level=Level.USER,
            user_id="user-1",
            account_id=f"{app}-casey",
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        )
        connection.config = config
        self.container.connections.save(connection)
        self.connection_id = connection.id
        self.app = app

    def asked_since(self) -> list[datetime]:
        """The start of the range of every list call the provider received."""
        answer = self.sb.http.get(self.sb.url("/_sandbox/requests"), params={"app": self.app}, timeout=5)
        return [
            datetime.fromisoformat(r["query"][self.since_param].replace("Z", "+00:00"))
            for r in answer.json()["requests"]
            if r["path"].endswith(self.list_path) and self.since_param in r["query"]
        ]


@pytest.fixture
def make_world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server.reset()
    yield lambda provider, config: World(server, tmp_path, monkeypatch, provider, config)
    clear_cache()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_first_pass_asks_the_provider_only_for_the_window(make_world: Any, provider: str) -> None:
    world = make_world(provider, {"window_past_days": 7})

    assert world.run(world.job(reason="connected")).outcome is Outcome.DONE

    [since] = world.asked_since()
    expected = datetime.now(UTC) - timedelta(days=7)
    assert abs(since - expected) < timedelta(minutes=5)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_without_the_preference_the_provider_is_asked_for_thirty_days(make_world: Any, provider: str) -> None:
    world = make_world(provider, {})

    assert world.run(world.job(reason="connected")).outcome is Outcome.DONE

    [since] = world.asked_since()
    assert abs(since - (datetime.now(UTC) - timedelta(days=30))) < timedelta(minutes=5)
