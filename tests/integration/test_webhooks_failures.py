"""What the receiver answers when things go wrong: an accepted event is never lost, a sender never gets a
5xx for what it sent, and a GHL workflow's call request reaches the platform bus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from integrations import aws
from integrations.domain.lookup import Lookup
from integrations.providers.ghl.webhook import issue_workflow_secret
from integrations.store.queue import SqsJobQueue
from integrations.store.signing_keys import KmsSigningKeyBox
from integrations.webhooks.routing import Attr
from tests.support import seed, signing, webhook_stack
from tests.support.events import body_of
from tests.support.webhook_stack import WebhookStack
from tests.support.webhooks import PUBLIC_API_URL, SAMPLE_IDS, Push, ghl_push, hubspot_push, slack_push


@pytest.fixture
def stack(aws: Any, lambda_context: Any) -> WebhookStack:
    stack = webhook_stack.start(aws, lambda_context)
    webhook_stack.known_accounts(stack, SAMPLE_IDS)
    return stack


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def sqs_down(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
    """The next `times` sends to the sync queue fail as SQS would when it is unavailable."""
    original = SqsJobQueue.send
    remaining = {"count": times}

    def send(self: SqsJobQueue, job: Any) -> None:
        if remaining["count"] > 0:
            remaining["count"] -= 1
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
        original(self, job)

    monkeypatch.setattr(SqsJobQueue, "send", send)


def test_a_failed_enqueue_answers_503_and_the_redelivery_is_queued(
    stack: WebhookStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    push = slack_push(now(), team_id=SAMPLE_IDS["slack_team"])
    sqs_down(monkeypatch)

    failed = stack.send(push)

    assert failed["statusCode"] == 503
    assert stack.claims() == []  # the claim was released, so the provider's retry is not a duplicate
    retried = stack.send(push)
    assert retried["statusCode"] == 200
    assert len(stack.queued()) == 1


def test_ghl_gets_429_when_the_enqueue_fails_because_it_redelivers_on_nothing_else(
    stack: WebhookStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    push = ghl_push(now(), location_id=SAMPLE_IDS["ghl_location"])
    sqs_down(monkeypatch)

    assert stack.send(push)["statusCode"] == 429
    assert stack.send(push)["statusCode"] == 200
    assert len(stack.queued()) == 1


def test_a_batch_that_fails_midway_is_completed_by_the_redelivery_without_duplicates(
    stack: WebhookStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = now()
    events = [
        {"eventId": n, "portalId": int(SAMPLE_IDS["hubspot_portal"]), "subscriptionType": "contact.creation",
         "objectId": n, "occurredAt": 1_795_000_000_000 + n}
        for n in (1, 2, 3)
    ]  # fmt: skip
    body = json.dumps(events).encode()
    url = f"{PUBLIC_API_URL}/webhooks/hubspot"
    push = Push("hubspot", body, signing.hubspot_headers("POST", url, body, hubspot_secret(), at))
    original = SqsJobQueue.send
    calls = {"n": 0}

    def second_send_fails(self: SqsJobQueue, job: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "SendMessage")
        original(self, job)

    monkeypatch.setattr(SqsJobQueue, "send", second_send_fails)

    assert stack.send(push)["statusCode"] == 503
    assert stack.send(push)["statusCode"] == 200
    assert sorted(job["hint"]["object_id"] for job in stack.queued()) == ["1", "2", "3"]


def hubspot_secret() -> str:
    from infra.local.sandbox.keys import APP_CREDENTIALS

    return APP_CREDENTIALS["hubspot"]["client_secret"]


def test_a_store_outage_before_verification_is_a_503_not_a_401(
    stack: WebhookStack, request: pytest.FixtureRequest
) -> None:
    def down(*_: Any, **__: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "GetItem"
        )

    # DynamoDB itself fails the lookup read (the store adapter turns that into the domain's error).
    events = aws.dynamodb().meta.events
    events.register("before-call.dynamodb.GetItem", down)
    request.addfinalizer(lambda: events.unregister("before-call.dynamodb.GetItem", down))

    answer = stack.send(hubspot_push(now(), portal_id=SAMPLE_IDS["hubspot_portal"]))

    assert answer["statusCode"] == 503
    assert answer["headers"]["Retry-After"] == "5"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"type":"event_callback","team_id":"T1"}', b"[]", b'{"type": 1}'],
)
def test_a_verified_but_malformed_body_is_a_400(stack: WebhookStack, body: bytes) -> None:
    from infra.local.sandbox.keys import APP_CREDENTIALS

    headers = signing.slack_headers(body, APP_CREDENTIALS["slack"]["signing_secret"], now())

    answer = stack.send(Push("slack", body, headers))

    assert answer["statusCode"] == 400
    assert stack.queued() == []


def test_slack_url_verification_is_echoed_and_not_queued(stack: WebhookStack) -> None:
    from infra.local.sandbox.keys import APP_CREDENTIALS

    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "x", "challenge": challenge, "type": "url_verification"}).encode()
    headers = signing.slack_headers(body, APP_CREDENTIALS["slack"]["signing_secret"], now())

    answer = stack.send(Push("slack", body, headers))

    assert answer["statusCode"] == 200
    assert body_of(answer) == {"challenge": challenge}
    assert stack.queued() == []


def test_a_provider_without_pushes_is_not_found(stack: WebhookStack) -> None:
    answer = stack.send(Push("icloud_calendar", b"{}", {}))

    assert answer["statusCode"] == 404


def test_a_body_that_is_not_base64_when_it_says_so_is_a_400(stack: WebhookStack) -> None:
    event = slack_push(now()).event()
    event["body"] = "%%% not base64 %%%"

    assert stack.send_event(event)["statusCode"] == 400


def test_a_signing_key_copied_to_another_tenants_lookup_does_not_open(stack: WebhookStack) -> None:
    # The ciphertext is bound to its tenant and connection: pasted into another lookup it is useless.
    calendly = stack.connections["calendly"]
    box = KmsSigningKeyBox(aws.kms(), stack.resources.kms_key_id)
    sealed = box.seal(calendly, "the-key")
    other = Lookup("calendly", "subscription", "x", "another-connection", "agency-2", None, {})

    assert box.open(other, sealed) is None
    mine = Lookup("calendly", "subscription", "x", calendly.id, calendly.agency_id, calendly.client_id, {})
    assert box.open(mine, sealed) == "the-key"


# --------------------------------------------------------------------------- GHL workflow -> Call Requested


@pytest.fixture
def bus_messages(stack: WebhookStack) -> Iterator[str]:
    """A queue subscribed to every `integrations` event on the bus (what the platform would see)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="platform-events-spy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.resources.event_bus_name
    events.put_rule(Name="spy", EventBusName=bus, EventPattern=json.dumps({"source": ["integrations"]}))
    events.put_targets(Rule="spy", EventBusName=bus, Targets=[{"Id": "spy", "Arn": arn}])
    return url


def published(url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def workflow_push(secret: str, location_id: str, body: dict[str, Any]) -> Push:
    return Push(
        "ghl",
        json.dumps(body).encode(),
        signing.ghl_workflow_headers(secret),
        query=f"workflow=call&location={location_id}",
    )


def test_a_ghl_workflow_call_request_becomes_a_call_requested_event(
    stack: WebhookStack, bus_messages: str
) -> None:
    connection = stack.connections["ghl"]
    location = connection.model_copy(
        update={"account": connection.account.model_copy(update={"id": "loc-77"})}
    )
    issued = issue_workflow_secret(location, PUBLIC_API_URL)
    repository, _ = seed.repositories()
    repository.put_lookups(connection, [issued.lookup])
    body = {"contact_id": "c-1", "phone": "+15550100", "full_name": "Ada L", "workflow": {"id": "wf-9"}}

    answer = stack.send(workflow_push(issued.secret, "loc-77", body))
    again = stack.send(workflow_push(issued.secret, "loc-77", body))

    assert (answer["statusCode"], again["statusCode"]) == (200, 200)
    [event] = published(bus_messages)
    assert event["detail-type"] == "Call Requested"
    assert event["detail"]["connection_id"] == connection.id
    assert event["detail"]["phone"] == "+15550100"
    assert event["detail"]["workflow_id"] == "wf-9"
    assert issued.url == f"{PUBLIC_API_URL}/webhooks/ghl?workflow=call&location=loc-77"
    assert issued.lookup.attributes[Attr.TOKEN_SHA256] != issued.secret
    assert stack.queued() == []


def test_a_ghl_workflow_call_with_a_wrong_secret_is_refused(stack: WebhookStack, bus_messages: str) -> None:
    connection = stack.connections["ghl"]
    location = connection.model_copy(
        update={"account": connection.account.model_copy(update={"id": "loc-78"})}
    )
    issued = issue_workflow_secret(location, PUBLIC_API_URL)
    repository, _ = seed.repositories()
    repository.put_lookups(connection, [issued.lookup])

    answer = stack.send(workflow_push("guessed", "loc-78", {"phone": "+15550100"}))

    assert answer["statusCode"] == 401
    assert published(bus_messages) == []


def test_a_reissued_workflow_secret_keeps_the_previous_one_working(
    stack: WebhookStack, bus_messages: str
) -> None:
    connection = stack.connections["ghl"]
    location = connection.model_copy(
        update={"account": connection.account.model_copy(update={"id": "loc-79"})}
    )
    first = issue_workflow_secret(location, PUBLIC_API_URL)
    second = issue_workflow_secret(location, PUBLIC_API_URL, previous=first.lookup)
    repository, _ = seed.repositories()
    repository.put_lookups(connection, [second.lookup])

    old = stack.send(workflow_push(first.secret, "loc-79", {"phone": "+15550101", "request_id": "r1"}))
    new = stack.send(workflow_push(second.secret, "loc-79", {"phone": "+15550102", "request_id": "r2"}))

    assert (old["statusCode"], new["statusCode"]) == (200, 200)
    assert len(published(bus_messages)) == 2


def test_an_unsigned_push_never_reaches_the_queue_even_for_a_known_account(stack: WebhookStack) -> None:
    push = slack_push(now(), team_id=SAMPLE_IDS["slack_team"])
    unsigned = replace(push, headers={"Content-Type": "application/json"})

    assert stack.send(unsigned)["statusCode"] == 401
    assert stack.queued() == []


# --------------------------------------------------------------------------- the delivery ledger


def test_a_pending_claim_is_taken_over_only_after_its_lease_and_a_confirmed_one_until_it_expires(
    stack: WebhookStack,
) -> None:
    from datetime import timedelta

    from integrations.store.delivery_ledger import DynamoDeliveryLedger

    ledger = DynamoDeliveryLedger(aws.dynamodb(), stack.resources.state_table)
    t0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    assert ledger.claim("slack", "Ev1", t0, "c1") is True
    # A redelivery while the first invocation may still be queueing: a duplicate.
    assert ledger.claim("slack", "Ev1", t0 + timedelta(seconds=5), "c1") is False
    # The first invocation died before queueing: after the lease, the redelivery takes the claim over.
    assert ledger.claim("slack", "Ev1", t0 + timedelta(seconds=31), "c1") is True
    ledger.confirm("slack", "Ev1")
    assert ledger.claim("slack", "Ev1", t0 + timedelta(minutes=5), "c1") is False
    assert ledger.claim("slack", "Ev1", t0 + timedelta(days=6), "c1") is False
    # Past the retention, even before TTL has deleted the item, the id is new again.
    assert ledger.claim("slack", "Ev1", t0 + timedelta(days=8), "c1") is True


def test_very_long_event_ids_are_stored_by_digest(stack: WebhookStack) -> None:
    from integrations.store.delivery_ledger import DynamoDeliveryLedger, delivery_pk

    ledger = DynamoDeliveryLedger(aws.dynamodb(), stack.resources.state_table)
    long_id = "x" * 5000

    assert ledger.claim("hubspot", long_id, now(), "c1") is True
    assert ledger.claim("hubspot", long_id, now(), "c1") is False
    assert delivery_pk("hubspot", long_id).startswith("WEBHOOK#hubspot#sha256:")
