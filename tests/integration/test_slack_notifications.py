"""Slack call notifications end to end over moto and the sandbox: platform events into the sync
worker function, the outbox and jobs in DynamoDB and SQS (moto), chat.postMessage at the sandbox
with its per-channel rate limit, channel membership and archived channels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig, catalog_overrides
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ErrorCode, PortalStatus
from integrations.providers.registry import clear_cache as clear_parts
from integrations.sync import notifications
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.settle import Outcome, RunResult
from tests.support import seed
from tests.support.events import claims, http_event
from tests.support.functions import load_handler
from tests.support.lambda_context import LambdaContextStub
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

TEAM = "acme"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World:
    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sb = sb
        sb.reset()
        overrides = tmp_path / "overrides.json"
        overrides.write_text(json.dumps(catalog_overrides(sb.base)))
        monkeypatch.setenv("INTEGRATIONS_CATALOG_OVERRIDES", str(overrides))
        clear_cache()
        clear_parts()
        tokens = connect(sb, "slack", account=TEAM)
        self.token = str(tokens["access_token"])
        channels = sb.http.post(
            sb.url("/slack/api/conversations.list"),
            headers={"Authorization": f"Bearer {self.token}"},
            data={"types": "public_channel,private_channel"},
            timeout=5,
        ).json()["channels"]
        self.channel = {c["name"]: c["id"] for c in channels}
        self.connection_id = seed.connection(
            provider="slack",
            level=Level.CLIENT,
            client_id="client-a",
            account_id=str(tokens["team"]["id"]),
            access_token=self.token,
        ).id
        self.app: ModuleType = load_handler("sync_worker")
        self.configure(channel_id=self.channel["call-alerts"])
        self.results: list[RunResult] = []

    def configure(self, **config: Any) -> None:
        now = datetime.now(UTC)
        self.app.container.sync_state.apply(self.connection_id, lambda c: c.configured(config, now))

    @property
    def connection(self) -> Connection:
        found = self.app.container.connections.get(self.connection_id)
        assert found is not None
        return found

    def call_completed(self, number: int, **fields: Any) -> dict[str, str]:
        detail = {
            "call_id": f"call-{number}",
            "agency_id": "agency-1",
            "client_id": "client-a",
            "contact_id": f"contact-{number}",
            "contact": {"first_name": "Caller", "last_name": str(number), "phone": "+15555550123"},
            "direction": "inbound",
            "outcome": "Booked",
            "duration_seconds": 60 + number,
            "summary": f"Summary of call {number}",
            "recording_url": f"https://recordings.example.com/{number}.mp3",
            "started_at": (START + timedelta(milliseconds=20 * number)).isoformat(),
            **fields,
        }
        answer: dict[str, str] = self.app.platform_event({"detail-type": "Call Completed", "detail": detail})
        return answer

    def drain(self) -> None:
        """Run every job on the queue (delays included), as the event source mapping would."""
        sqs = aws_clients.sqs()
        url = self.app.container.settings.sync_queue_url
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return
            for message in messages:
                job = SyncJob.model_validate_json(message["Body"])
                result = self.app.worker().handle(job, remaining_ms=lambda: 600_000)
                self.results.append(result)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def messages(self, channel: str = "call-alerts") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.sb.http.get(
            self.sb.url("/_sandbox/slack/messages"), params={"channel": self.channel[channel]}, timeout=5
        ).json()["messages"]
        return found

    def control(self, path: str, **body: Any) -> dict[str, Any]:
        answer = self.sb.http.post(self.sb.url(path), json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(server, tmp_path, monkeypatch)


def test_a_completed_call_is_posted_with_a_readable_message(world: World) -> None:
    answer = world.call_completed(
        1,
        contact={"first_name": "Jordan", "last_name": "<Lee>", "phone": "+15555550123"},
        outcome="Booked",
        duration_seconds=312,
        summary="Asked about pricing.",
    )
    world.drain()

    assert answer == {"status": "applied", "push_jobs": "1"}
    [message] = world.messages()
    assert message["text"] == "Inbound call completed: Jordan <Lee> (+15555550123) — Booked, 5m 12s"
    header, fields, summary, actions = message["blocks"]
    assert header["text"]["text"] == "📞 Inbound call completed"
    assert fields["fields"][0]["text"] == "*Caller*\nJordan &lt;Lee&gt; (+15555550123)"
    assert fields["fields"][2]["text"] == "*Duration*\n5m 12s"
    assert summary["text"]["text"] == "*Summary*\nAsked about pricing."
    assert actions["elements"][0]["url"] == "https://recordings.example.com/1.mp3"


def test_fifty_calls_in_a_second_are_fifty_messages_in_order_without_a_429_failure(world: World) -> None:
    world.control("/_sandbox/slack/rate_limits", method="chat.postMessage", burst=5, per_second=20)

    for number in range(50):
        world.call_completed(number)
    world.call_completed(7)  # the bus redelivers one
    world.drain()

    texts = [m["text"] for m in world.messages()]
    assert texts == [
        f"Inbound call completed: Caller {n} (+15555550123) — Booked, 1m {n:02d}s" for n in range(50)
    ]
    limits = world.sb.http.get(world.sb.url("/_sandbox/slack/rate_limits"), timeout=5).json()
    assert limits["limited"] > 0  # Slack did refuse some, and each was waited out
    assert all(r.outcome in (Outcome.DONE, Outcome.DEFER) for r in world.results)
    assert world.connection.status is PortalStatus.CONNECTED


def test_bot_removed_from_the_channel_waits_for_the_fix_then_posts_what_waited(world: World) -> None:
    world.control(
        f"/_sandbox/slack/channels/{world.channel['call-alerts']}/membership", team=TEAM, member=False
    )

    world.call_completed(1)
    world.call_completed(2)
    world.drain()

    assert world.messages() == []
    error = world.connection.error
    assert error is not None and error.code is ErrorCode.CONFIG_REQUIRED
    assert "#call-alerts" in error.message
    world.call_completed(3)  # arrives while it waits: kept too
    world.drain()
    assert world.messages() == []

    world.control(
        f"/_sandbox/slack/channels/{world.channel['call-alerts']}/membership", team=TEAM, member=True
    )
    world.configure(channel_id=world.channel["call-alerts"])
    world.app.container.sync_controls.sync_now(world.connection)
    world.drain()

    assert [m["text"].split(":")[1].split("(")[0].strip() for m in world.messages()] == [
        "Caller 1",
        "Caller 2",
        "Caller 3",
    ]
    assert world.connection.error is None


class Counts:
    """Records what the worker counts (CloudWatch metrics in Lambda)."""

    def __init__(self) -> None:
        self.counted: list[tuple[str, int, dict[str, str]]] = []

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counted.append((name, value, dimensions))


def _card(world: World) -> dict[str, Any]:
    connectors = load_handler("connectors")
    event = http_event("GET", f"/connections/{world.connection_id}", claims=claims())
    answer: dict[str, Any] = connectors.handler(event, LambdaContextStub())
    assert answer["statusCode"] == 200, answer["body"]
    card: dict[str, Any] = json.loads(answer["body"])
    return card


def test_an_outbox_over_its_cap_drops_the_oldest_counts_them_and_the_card_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(notifications, "MAX_WAITING", 3)
    counts = Counts()
    world.app.container.__dict__.pop("notifier", None)
    world.app.container.__dict__["counter"] = counts
    membership = f"/_sandbox/slack/channels/{world.channel['call-alerts']}/membership"
    world.control(membership, team=TEAM, member=False)

    for number in range(1, 6):
        world.call_completed(number)
    world.drain()

    assert counts.counted == [
        ("OutboxMessagesDropped", 1, {"provider": "slack"}),
        ("OutboxMessagesDropped", 1, {"provider": "slack"}),
    ]
    logged = [r for r in caplog.records if r.getMessage() == "outbox full: oldest messages dropped"]
    assert [(r.__dict__["connection_id"], r.__dict__["dropped"]) for r in logged] == [
        (world.connection_id, 1),
        (world.connection_id, 1),
    ]
    assert all(world.token not in str(r.__dict__) for r in logged)
    [notice] = _card(world)["sync"]["notices"]
    assert notice["code"] == "messages_dropped" and notice["count"] == 2
    assert notice["message"].startswith("2 messages were dropped")

    world.control(membership, team=TEAM, member=True)
    world.configure(channel_id=world.channel["call-alerts"])
    world.app.container.sync_controls.sync_now(world.connection)
    world.drain()

    assert [m["text"].split(":")[1].split("(")[0].strip() for m in world.messages()] == [
        "Caller 3",
        "Caller 4",
        "Caller 5",
    ]


def test_an_archived_channel_names_the_channel(world: World) -> None:
    world.control(
        f"/_sandbox/slack/channels/{world.channel['call-alerts']}/archive", team=TEAM, archived=True
    )

    world.call_completed(1)
    world.drain()

    error = world.connection.error
    assert error is not None and error.code is ErrorCode.CONFIG_REQUIRED
    assert "#call-alerts is archived" in error.message


def test_a_revoked_token_is_reauth_required(world: World) -> None:
    revoked = world.sb.http.post(
        world.sb.url("/slack/api/auth.revoke"), headers={"Authorization": f"Bearer {world.token}"}, timeout=5
    )
    assert revoked.status_code == 200

    world.call_completed(1)
    world.drain()

    error = world.connection.error
    assert error is not None and error.code is ErrorCode.REAUTH_REQUIRED
    assert world.messages() == []


def _last_checked(world: World, when: datetime | None) -> None:
    """As Slack grants are: no expiry; checked at `when` (None: never since connecting)."""
    connections = world.app.container.connections
    connection = connections.get(world.connection_id)
    assert connection is not None
    connection.token_expires_at = None
    connection.grant_checked_at = when
    connections.save(connection)


def _scheduled_run(world: World) -> RunResult:
    job = SyncJob(kind=JobKind.SYNC, connection_id=world.connection_id, provider="slack")
    result: RunResult = world.app.worker().handle(job, remaining_ms=lambda: 600_000)
    return result


def _auth_tests(world: World) -> list[dict[str, Any]]:
    return world.sb.requests_log(app="slack", route="/slack/api/auth.test")


def test_a_revoked_grant_is_found_by_the_daily_check_before_any_message(world: World) -> None:
    _last_checked(world, datetime.now(UTC) - timedelta(days=1, minutes=1))
    world.control("/_sandbox/faults", app="slack", kind="revoke_grants")  # the app is uninstalled

    _scheduled_run(world)

    error = world.connection.error
    assert error is not None and error.code is ErrorCode.REAUTH_REQUIRED
    assert len(_auth_tests(world)) == 1
    assert world.messages() == []


def test_a_working_grant_is_checked_once_a_day(world: World) -> None:
    _last_checked(world, datetime.now(UTC) - timedelta(days=2))
    before = len(_auth_tests(world))

    _scheduled_run(world)
    _scheduled_run(world)

    assert len(_auth_tests(world)) == before + 1
    checked = world.connection.grant_checked_at
    assert checked is not None and datetime.now(UTC) - checked < timedelta(minutes=1)
    assert world.connection.status is PortalStatus.CONNECTED


def test_a_grant_checked_within_the_day_is_not_asked_again(world: World) -> None:
    _last_checked(world, None)  # connected just now (connecting called auth.test)
    before = len(_auth_tests(world))

    _scheduled_run(world)

    assert len(_auth_tests(world)) == before
    assert world.connection.grant_checked_at is None


def test_bookings_are_posted_only_when_the_config_asks(world: World) -> None:
    booking = json.loads((Path(__file__).parents[2] / "events" / "event_booking_created.json").read_text())
    detail = {**booking["detail"], "agency_id": "agency-1", "client_id": "client-a"}

    assert world.app.platform_event({"detail-type": "Booking Created", "detail": detail})["push_jobs"] == "0"
    world.configure(channel_id=world.channel["call-alerts"], notify_bookings=True)
    world.app.platform_event({"detail-type": "Booking Created", "detail": detail})
    world.drain()

    [message] = world.messages()
    assert message["text"] == "New booking: Jordan Lee booked Discovery Call for Wed 02 Dec 2026, 15:00 UTC"


def _test_message(world: World) -> dict[str, Any]:
    connectors = load_handler("connectors")
    event = http_event("POST", f"/connections/{world.connection_id}/test-message", claims=claims())
    answer: dict[str, Any] = connectors.handler(event, LambdaContextStub())
    return answer


def test_send_a_test_message_posts_in_the_channel_at_once(world: World) -> None:
    answer = _test_message(world)

    assert answer["statusCode"] == 200, answer["body"]
    [message] = world.messages()
    assert message["text"].startswith("Test message:")


def test_a_test_message_into_a_channel_without_the_app_says_which_channel(world: World) -> None:
    membership = f"/_sandbox/slack/channels/{world.channel['call-alerts']}/membership"
    world.control(membership, team=TEAM, member=False)

    answer = _test_message(world)

    assert answer["statusCode"] == 409
    body = json.loads(answer["body"])
    assert body["code"] == "config_required"
    assert "#call-alerts does not have the app as a member" in body["message"]
    assert world.messages() == []
