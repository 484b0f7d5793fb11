"""`POST /integrations/{provider}/connect`: one route, dispatched on the catalog entry's auth kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.store.connections import ConnectionRepository
from integrations.sync.jobs import JobKind, SyncJob
from tests.integration.oauth.conftest import CLIENT_USER, Answer, Browser, sandbox_requests
from tests.support.events import http_event

pytestmark = pytest.mark.usefixtures("oauth_env")

EVENTS = Path(__file__).resolve().parents[3] / "events"
APPLE_ID = "alex@icloud.example"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


def connect(browser: Browser, provider: str, **body: Any) -> Answer:
    return browser.call(
        http_event("POST", f"/integrations/{provider}/connect", claims=CLIENT_USER, body=body)
    )


def connections(level: Level) -> list[Any]:
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    user = "user-1" if level is Level.USER else None
    return repo.list_for_scope(Scope("agency-1", level, "client-a", user))


def queued_jobs() -> list[SyncJob]:
    sqs = aws_clients.sqs()
    messages = sqs.receive_message(QueueUrl=Settings.from_env().sync_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    )
    return [SyncJob.model_validate_json(m["Body"]) for m in messages]


def test_a_password_provider_connects_and_queues_a_typed_first_sync(browser: Browser) -> None:
    answer = connect(browser, "icloud_calendar", apple_id=APPLE_ID, app_password=APP_PASSWORD)

    assert answer.status == 201, answer.body
    assert answer.body["level"] == "user"  # iCloud's only level is the default
    [connection] = connections(Level.USER)
    [job] = queued_jobs()
    assert (job.kind, job.connection_id, job.provider) == (JobKind.SYNC, connection.id, "icloud_calendar")
    assert job.hint == {"reason": "connected"}


def test_a_password_provider_reconnects_in_place(browser: Browser) -> None:
    first = connect(browser, "icloud_calendar", apple_id=APPLE_ID, app_password=APP_PASSWORD)

    again = connect(browser, "icloud_calendar", apple_id=APPLE_ID.upper(), app_password=APP_PASSWORD)

    assert again.status == 200
    assert again.body["id"] == first.body["id"]
    assert [c.id for c in connections(Level.USER)] == [first.body["id"]]


def test_a_password_provider_names_each_missing_field(browser: Browser, oauth_env: dict[str, str]) -> None:
    answer = connect(browser, "icloud_calendar", apple_id=APPLE_ID)

    assert answer.status == 422
    assert answer.body["code"] == "invalid_request"
    assert answer.body["details"] == [{"field": "app_password", "message": "is required"}]
    assert sandbox_requests(oauth_env["sandbox"], app="icloud") == []


def test_an_inbound_address_provider_defaults_to_the_client_and_takes_no_password(browser: Browser) -> None:
    reserved = connect(browser, "bcc_email")
    refused = connect(browser, "bcc_email", app_password=APP_PASSWORD)

    assert reserved.status == 201
    assert reserved.body["level"] == "client"
    assert refused.status == 422
    assert refused.body["details"] == [{"field": "app_password", "message": "is not an accepted field"}]


@pytest.mark.parametrize("provider", ["google_calendar", "ghl", "slack"])
def test_an_oauth_provider_is_sent_to_the_oauth_start(browser: Browser, provider: str) -> None:
    answer = connect(browser, provider, level="client")

    assert answer.status == 400
    assert answer.body["code"] == "use_oauth_start"
    assert f"/oauth/{provider}/start" in answer.body["message"]
    assert connections(Level.CLIENT) == []


def test_the_oauth_provider_sample_answers_use_oauth_start(browser: Browser) -> None:
    event = json.loads((EVENTS / "oauth_connect_oauth_provider.json").read_text())
    event["requestContext"]["authorizer"]["jwt"]["claims"] = CLIENT_USER

    answer = browser.call(event)

    assert answer.status == 400
    assert answer.body["code"] == "use_oauth_start"


def test_an_unknown_provider_is_404(browser: Browser) -> None:
    answer = connect(browser, "myspace")

    assert answer.status == 404
    assert answer.body["code"] == "unknown_provider"
