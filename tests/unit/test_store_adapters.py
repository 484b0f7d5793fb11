"""Every store adapter turns AWS failures into the domain's DependencyUnavailable, and keeps handling
the error codes that mean something (a failed condition, a missing secret, a foreign ciphertext)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.errors import DependencyUnavailable
from integrations.domain.lookup import Lookup
from integrations.events import IntegrationConnected
from integrations.store.app_secrets import SecretsManagerAppSecrets
from integrations.store.bus import EventBridgePublisher
from integrations.store.connections import ConnectionRepository
from integrations.store.delivery_ledger import DynamoDeliveryLedger
from integrations.store.due import DynamoDueConnections
from integrations.store.leases import DynamoLeases
from integrations.store.oauth_sessions import DynamoSessionStore
from integrations.store.queue import SqsJobQueue
from integrations.store.signing_keys import KmsSigningKeyBox
from integrations.sync.jobs import JobKind, SyncJob

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/sync"
OUTAGES = ["ProvisionedThroughputExceededException", "InternalServerError", "ThrottlingException"]


@pytest.fixture
def stubbed() -> Iterator[Callable[[str], tuple[Any, Stubber]]]:
    """A real botocore client of a service whose answers the test scripts (no network)."""
    stubbers: list[Stubber] = []

    def make(service: str) -> tuple[Any, Stubber]:
        client = boto3.session.Session().client(service, region_name="us-east-1")  # type: ignore[call-overload]
        stubber = Stubber(client)
        stubber.activate()
        stubbers.append(stubber)
        return client, stubber

    yield make
    for stubber in stubbers:
        stubber.deactivate()


def connection() -> Connection:
    return Connection(
        id="conn-1",
        provider="calendly",
        level=Level.CLIENT,
        agency_id="agency-1",
        client_id="client-a",
        account=ExternalAccount(id="acct", label="Account"),
    )


def job() -> SyncJob:
    return SyncJob(kind=JobKind.SYNC, connection_id="conn-1", provider="ghl", received_at=NOW)


# --- DynamoDB adapters -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", OUTAGES)
def test_an_oauth_session_store_outage_is_dependency_unavailable(stubbed: Any, code: str) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("get_item", service_error_code=code)

    with pytest.raises(DependencyUnavailable):
        DynamoSessionStore(client, "state").get("some-state")


def test_a_consumed_session_is_still_none_not_an_outage(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("delete_item", service_error_code="ConditionalCheckFailedException")

    assert DynamoSessionStore(client, "state").consume("some-state") is None


def test_a_refresh_lease_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("put_item", service_error_code="InternalServerError")

    with pytest.raises(DependencyUnavailable):
        DynamoLeases(client, "state").acquire("conn-1", "me", NOW.timestamp(), 30)


def test_a_held_lease_is_reported_with_its_holder_not_as_an_outage(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error(
        "put_item",
        service_error_code="ConditionalCheckFailedException",
        response_meta={},
        modeled_fields={
            "Item": {"owner": {"S": "peer"}, "lease_until": {"N": "99"}, "backoff": {"BOOL": True}}
        },
    )

    outcome = DynamoLeases(client, "state").acquire("conn-1", "me", 10.0, 30)

    assert outcome.acquired is False
    assert outcome.holder is not None and (outcome.holder.owner, outcome.holder.backoff) == ("peer", True)


def test_a_delivery_ledger_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("put_item", service_error_code="ProvisionedThroughputExceededException")

    with pytest.raises(DependencyUnavailable):
        DynamoDeliveryLedger(client, "state").claim("slack", "Ev1", NOW, "conn-1")


def test_a_claimed_delivery_is_a_duplicate_not_an_outage(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("put_item", service_error_code="ConditionalCheckFailedException")

    assert DynamoDeliveryLedger(client, "state").claim("slack", "Ev1", NOW, "conn-1") is False


def test_a_due_index_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("query", service_error_code="InternalServerError")

    with pytest.raises(DependencyUnavailable):
        DynamoDueConnections(client, "main").claim_due(NOW, NOW, 100)


def test_a_lookup_read_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("get_item", service_error_code="ProvisionedThroughputExceededException")

    with pytest.raises(DependencyUnavailable):
        ConnectionRepository(client, "main").get_lookup("slack", "team", "T1")


def test_a_network_failure_is_dependency_unavailable_too(stubbed: Any) -> None:
    client, _ = stubbed("dynamodb")

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    client.meta.events.register("before-call.dynamodb.GetItem", unreachable)

    with pytest.raises(DependencyUnavailable):
        ConnectionRepository(client, "main").get_lookup("slack", "team", "T1")


# --- Secrets Manager: the one app-secret reader ----------------------------------------------------


def test_an_app_secrets_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("secretsmanager")
    stub.add_client_error("get_secret_value", service_error_code="InternalServiceError")

    with pytest.raises(DependencyUnavailable):
        SecretsManagerAppSecrets(client, "test/apps/", "test/agency-apps/").fields("slack")


def test_a_missing_app_secret_reads_as_empty_and_is_remembered(stubbed: Any) -> None:
    client, stub = stubbed("secretsmanager")
    stub.add_client_error("get_secret_value", service_error_code="ResourceNotFoundException")
    secrets = SecretsManagerAppSecrets(client, "test/apps/", "test/agency-apps/")

    assert secrets.agency_fields("agency-1", "google") == {}
    # Cached like a hit: the second read makes no call (the stubber has no second answer queued).
    assert secrets.agency_fields("agency-1", "google") == {}
    stub.assert_no_pending_responses()


def test_app_secret_fields_are_the_secret_json(stubbed: Any) -> None:
    client, stub = stubbed("secretsmanager")
    stub.add_response(
        "get_secret_value",
        {
            "Name": "test/apps/slack",
            "SecretString": '{"signing_secret": "s1", "previous_signing_secret": "s0"}',
        },
        {"SecretId": "test/apps/slack"},
    )

    fields = SecretsManagerAppSecrets(client, "test/apps/", "test/agency-apps/").fields("slack")

    assert fields == {"signing_secret": "s1", "previous_signing_secret": "s0"}


def test_an_agency_app_write_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("secretsmanager")
    stub.add_client_error("put_secret_value", service_error_code="InternalServiceError")

    with pytest.raises(DependencyUnavailable):
        SecretsManagerAppSecrets(client, "p/", "a/").put_agency_app("agency-1", "google", {"client_id": "x"})


# --- KMS signing keys ------------------------------------------------------------------------------


def test_a_kms_outage_while_opening_a_signing_key_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_client_error("decrypt", service_error_code="KMSInternalException")
    lookup = Lookup("calendly", "subscription", "sub-1", "conn-1", "agency-1", "client-a", {})

    with pytest.raises(DependencyUnavailable):
        KmsSigningKeyBox(client, "key").open(lookup, base64.b64encode(b"blob").decode())


def test_a_foreign_ciphertext_opens_to_nothing_not_an_outage(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_client_error("decrypt", service_error_code="InvalidCiphertextException")
    lookup = Lookup("calendly", "subscription", "sub-1", "conn-1", "agency-1", "client-a", {})

    assert KmsSigningKeyBox(client, "key").open(lookup, base64.b64encode(b"blob").decode()) is None


def test_a_kms_outage_while_sealing_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_client_error("encrypt", service_error_code="KMSInternalException")

    with pytest.raises(DependencyUnavailable):
        KmsSigningKeyBox(client, "key").seal(connection(), "signing-key")


def _lookup(connection_id: str = "conn-1") -> Lookup:
    return Lookup("calendly", "subscription", "sub-1", connection_id, "agency-1", "client-a", {})


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_opened_signing_key_is_reused_without_another_decrypt(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_response("decrypt", {"Plaintext": b"signing-key"})
    box = KmsSigningKeyBox(client, "key")
    ciphertext = base64.b64encode(b"blob").decode()

    opened = [box.open(_lookup(), ciphertext) for _ in range(50)]

    assert opened == ["signing-key"] * 50
    stub.assert_no_pending_responses()


def test_an_unusable_ciphertext_is_remembered_too(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_client_error("decrypt", service_error_code="InvalidCiphertextException")
    box = KmsSigningKeyBox(client, "key")
    ciphertext = base64.b64encode(b"blob").decode()

    assert [box.open(_lookup(), ciphertext) for _ in range(3)] == [None, None, None]


def test_an_opened_signing_key_is_opened_again_after_its_time(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_response("decrypt", {"Plaintext": b"old-key"})
    stub.add_response("decrypt", {"Plaintext": b"new-key"})
    clock = _Clock()
    box = KmsSigningKeyBox(client, "key", ttl_seconds=60, monotonic=clock)
    ciphertext = base64.b64encode(b"blob").decode()

    first = box.open(_lookup(), ciphertext)
    clock.now += 59
    cached = box.open(_lookup(), ciphertext)
    clock.now += 2
    reopened = box.open(_lookup(), ciphertext)

    assert (first, cached, reopened) == ("old-key", "old-key", "new-key")


def test_the_opened_key_cache_keeps_at_most_its_size(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    for name in ("a", "b", "c", "a-again"):
        stub.add_response("decrypt", {"Plaintext": name.encode()})
    box = KmsSigningKeyBox(client, "key", max_entries=2)
    ciphertext = base64.b64encode(b"blob").decode()

    opened = [box.open(_lookup(c), ciphertext) for c in ("conn-a", "conn-b", "conn-c", "conn-a")]

    # conn-a was the oldest entry when conn-c came in, so it is opened again.
    assert opened == ["a", "b", "c", "a-again"]
    stub.assert_no_pending_responses()


def test_a_kms_outage_is_not_remembered(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_client_error("decrypt", service_error_code="KMSInternalException")
    stub.add_response("decrypt", {"Plaintext": b"signing-key"})
    box = KmsSigningKeyBox(client, "key")
    ciphertext = base64.b64encode(b"blob").decode()

    with pytest.raises(DependencyUnavailable):
        box.open(_lookup(), ciphertext)
    assert box.open(_lookup(), ciphertext) == "signing-key"


def test_the_same_ciphertext_under_another_lookup_is_not_served_from_the_cache(stubbed: Any) -> None:
    client, stub = stubbed("kms")
    stub.add_response("decrypt", {"Plaintext": b"signing-key"})
    stub.add_client_error("decrypt", service_error_code="InvalidCiphertextException")
    box = KmsSigningKeyBox(client, "key")
    ciphertext = base64.b64encode(b"blob").decode()

    # A ciphertext copied into another tenant's item must still be refused by KMS's context check.
    assert box.open(_lookup("conn-1"), ciphertext) == "signing-key"
    assert box.open(_lookup("conn-other"), ciphertext) is None


# --- SQS and EventBridge ---------------------------------------------------------------------------


def test_a_queue_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("sqs")
    stub.add_client_error("send_message", service_error_code="ServiceUnavailable")

    with pytest.raises(DependencyUnavailable):
        SqsJobQueue(client, QUEUE_URL).send(job())


def test_a_failed_batch_is_returned_for_retry_and_the_next_batch_still_goes(stubbed: Any) -> None:
    client, stub = stubbed("sqs")
    stub.add_client_error("send_message_batch", service_error_code="ServiceUnavailable")
    stub.add_response("send_message_batch", {"Successful": [], "Failed": []})
    jobs = [job() for _ in range(11)]

    failed = SqsJobQueue(client, QUEUE_URL).send_many(jobs)

    assert failed == jobs[:10]
    stub.assert_no_pending_responses()


def test_a_bus_outage_is_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("events")
    stub.add_client_error("put_events", service_error_code="InternalException")

    with pytest.raises(DependencyUnavailable):
        EventBridgePublisher(client, "bus").publish(IntegrationConnected.of(connection()))


def test_events_the_bus_refused_are_dependency_unavailable(stubbed: Any) -> None:
    client, stub = stubbed("events")
    stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]})

    with pytest.raises(DependencyUnavailable, match="1 events were not accepted"):
        EventBridgePublisher(client, "bus").publish(IntegrationConnected.of(connection()))
