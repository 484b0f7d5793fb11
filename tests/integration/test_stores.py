"""The stores against moto: tenant-scoped listing, optimistic locking, cursors, and the token vault
(both backends pass the same tests: a credential stored for one tenant never opens for another)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings, TokenStorage
from integrations.container import build_vault
from integrations.domain.access import Level, Tier
from integrations.domain.authorization import Scope
from integrations.domain.credentials import Credentials
from integrations.domain.errors import BadRequest, VersionConflict
from integrations.domain.lookup import Lookup
from integrations.store.delivery_ledger import DynamoDeliveryLedger, delivery_pk
from integrations.store.vault import CredentialRef, CredentialsUnreadable, TokenVault
from tests.support import seed
from tests.support.aws import template


@pytest.fixture(params=[TokenStorage.KMS, TokenStorage.SECRETS_MANAGER], ids=["kms", "secretsmanager"])
def vault(request: pytest.FixtureRequest, aws: Any) -> TokenVault:
    settings = Settings.from_env()
    return build_vault(settings.model_copy(update={"token_storage": request.param}))


def credentials(token: str) -> Credentials:
    return Credentials.model_validate(
        {"access_token": token, "refresh_token": f"r-{token}", "secrets": {"k": "v"}}
    )


def test_vault_round_trip_keeps_every_field(vault: TokenVault) -> None:
    ref = CredentialRef("agency-1", "client-a", "conn-1")

    vault.put(ref, credentials("at-1"))
    found = vault.get(ref)

    assert found is not None
    assert found.reveal() == credentials("at-1").reveal()


def test_vault_overwrites_on_rotation(vault: TokenVault) -> None:
    ref = CredentialRef("agency-1", "client-a", "conn-1")
    vault.put(ref, credentials("at-1"))

    vault.put(ref, credentials("at-2"))

    found = vault.get(ref)
    assert found is not None and found.access_token is not None
    assert found.access_token.get_secret_value() == "at-2"


@pytest.mark.parametrize(
    "intruder",
    [CredentialRef("agency-2", "client-a", "conn-1"), CredentialRef("agency-1", "client-b", "conn-1")],
    ids=["other-agency", "other-client"],
)
def test_a_credential_never_opens_for_another_tenant(vault: TokenVault, intruder: CredentialRef) -> None:
    vault.put(CredentialRef("agency-1", "client-a", "conn-1"), credentials("at-SECRET"))

    try:
        found = vault.get(intruder)
    except CredentialsUnreadable:
        found = None

    assert found is None


def test_kms_ciphertext_copied_to_another_tenants_item_does_not_decrypt(aws: Any) -> None:
    settings = Settings.from_env()
    vault = build_vault(settings)
    vault.put(CredentialRef("agency-1", "client-a", "conn-1"), credentials("at-SECRET"))
    table = aws_table()
    item = aws_clients.dynamodb().get_item(
        TableName=table, Key={"pk": {"S": "CONN#conn-1"}, "sk": {"S": "CREDENTIALS"}}
    )["Item"]
    # The same connection id, claimed by another tenant: the encryption context no longer matches.

    aws_clients.dynamodb().put_item(TableName=table, Item={**item, "agency_id": {"S": "agency-2"}})

    with pytest.raises(CredentialsUnreadable):
        vault.get(CredentialRef("agency-2", "client-a", "conn-1"))


def aws_table() -> str:
    return Settings.from_env().table_name


def test_vault_delete_is_final_and_idempotent(vault: TokenVault) -> None:
    ref = CredentialRef("agency-1", None, "conn-9")
    vault.put(ref, credentials("at-1"))

    vault.delete(ref)
    vault.delete(ref)

    assert vault.get(ref) is None


def test_listing_is_scoped_to_owner_and_level(aws: Any) -> None:
    mine = seed.connection(provider="ghl", client_id="client-a")
    seed.connection(provider="ghl", client_id="client-b")
    seed.connection(provider="ghl", agency_id="agency-2", client_id="client-a")
    personal = seed.connection(provider="gmail", level=Level.USER, user_id="user-1")
    connections, _ = seed.repositories()

    client_level = connections.list_for_scope(Scope("agency-1", Level.CLIENT, "client-a", None))
    user_level = connections.list_for_scope(Scope("agency-1", Level.USER, "client-a", "user-1"))
    someone_else = connections.list_for_scope(Scope("agency-1", Level.USER, "client-a", "user-2"))

    assert [c.id for c in client_level] == [mine.id]
    assert [c.id for c in user_level] == [personal.id]
    assert someone_else == []


def test_the_people_of_a_client_are_listed_without_the_client_or_other_clients(aws: Any) -> None:
    seed.connection(provider="ghl", client_id="client-a")
    first = seed.connection(provider="gmail", level=Level.USER, user_id="user-1")
    second = seed.connection(provider="gmail", level=Level.USER, user_id="user-2")
    seed.connection(provider="gmail", level=Level.USER, client_id="client-b", user_id="user-3")
    seed.connection(provider="gmail", level=Level.USER, agency_id="agency-2", user_id="user-1")
    connections, _ = seed.repositories()

    people = connections.list_people_of_client("agency-1", "client-a")

    assert sorted(c.id for c in people) == sorted([first.id, second.id])


def test_concurrent_edits_conflict_instead_of_overwriting(aws: Any) -> None:
    conn = seed.connection(provider="ghl")
    connections, _ = seed.repositories()
    first = connections.get(conn.id)
    second = connections.get(conn.id)
    assert first is not None and second is not None
    first.config = {"pipeline_id": "a"}
    connections.save(first)

    second.config = {"pipeline_id": "b"}
    with pytest.raises(VersionConflict):
        connections.save(second)

    stored = connections.get(conn.id)
    assert stored is not None and stored.config == {"pipeline_id": "a"}


def test_delete_removes_lookups_and_credentials_too(aws: Any) -> None:
    conn = seed.connection(provider="hubspot", account_id="hub-42")
    connections, _ = seed.repositories()
    stored = connections.get(conn.id)
    assert stored is not None
    connections.put_lookups(
        stored, [Lookup("hubspot", "portal", "hub-42", conn.id, "agency-1", "client-a", {})]
    )

    connections.delete(stored)

    assert connections.get(conn.id) is None
    assert connections.get_lookup("hubspot", "portal", "hub-42") is None
    assert build_vault(Settings.from_env()).get(CredentialRef("agency-1", "client-a", conn.id)) is None


@pytest.mark.parametrize("cursor", ["not-base64!", "eyJrIjp7fX0", "e30"])
def test_forged_cursors_are_rejected(aws: Any, cursor: str) -> None:
    connections, _ = seed.repositories()

    with pytest.raises(BadRequest):
        connections.health_page("agency-1", cursor=cursor)


def test_agency_settings_default_until_the_platform_sets_a_tier(aws: Any) -> None:
    _, agencies = seed.repositories()

    before = agencies.get("brand-new")
    agencies.set_tier("brand-new", Tier.ENTERPRISE)
    after = agencies.get("brand-new")

    assert before.tier is Tier.STARTER and before.enabled_providers is None
    assert after.tier is Tier.ENTERPRISE


def test_published_once_claims_expire_after_seven_days_through_the_state_tables_ttl(aws: Any) -> None:
    # Given a provider step's publish-once claim written through the container's ledger
    settings = Settings.from_env()
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    # (the worker's StepContext.publish_once claims "published:<key>" on this same ledger)
    ledger = DynamoDeliveryLedger(aws_clients.dynamodb(), settings.state_table_name)
    assert ledger.claim("calendly", "published:booking-1", now, "conn-1")
    ledger.confirm("calendly", "published:booking-1")

    # Then the item carries its expiry on the attribute the state table's TTL reads
    item = aws_clients.dynamodb().get_item(
        TableName=settings.state_table_name,
        Key={"pk": {"S": delivery_pk("calendly", "published:booking-1")}},
    )["Item"]
    declared = template()["Resources"]["StateTable"]["Properties"]["TimeToLiveSpecification"]
    assert declared == {"AttributeName": "expires_at", "Enabled": True}
    assert int(item[declared["AttributeName"]]["N"]) == int((now + timedelta(days=7)).timestamp())
    ttl = aws_clients.dynamodb().describe_time_to_live(TableName=settings.state_table_name)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
