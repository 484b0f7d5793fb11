"""The address directory and the mail log against moto: the CRM store keeps the directory as it learns
and loses emails; one client's directory never answers for another; the log claims once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.events import ContactFields, ContactUpserted
from integrations.mail.ledger import LogState
from integrations.store.crm import DynamoCrmStore
from integrations.store.mail_contacts import DynamoMailContacts
from integrations.store.mail_log import DynamoMailLog
from integrations.sync.crm import MirroredContact

AGENCY = "agency-1"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def stores(aws: Any) -> tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog]:
    table = Settings.from_env().sync_table_name
    db = aws_clients.dynamodb()
    return DynamoCrmStore(db, table), DynamoMailContacts(db, table), DynamoMailLog(db, table)


def _upserted(contact_id: str, email: str, version: int, client_id: str = "client-a") -> ContactUpserted:
    return ContactUpserted(
        contact_id=contact_id,
        agency_id=AGENCY,
        client_id=client_id,
        fields=ContactFields(first_name="Sam", email=email),
        version=version,
    )


def _mirrored(external_id: str, email: str) -> MirroredContact:
    return MirroredContact(external_id, "hash-" + email, ContactFields(email=email))


def test_a_platform_contact_is_found_by_its_address_until_its_email_changes_or_it_is_deleted(
    stores: tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog],
) -> None:
    crm, contacts, _ = stores
    crm.upsert_contact(_upserted("ct-1", "Sam@Example.com", 1))

    assert contacts.known(AGENCY, "client-a", ["sam@example.com", "nobody@example.com"]) == {
        "sam@example.com": "ct-1"
    }

    crm.upsert_contact(_upserted("ct-1", "samuel@example.com", 2))
    assert contacts.known(AGENCY, "client-a", ["sam@example.com", "samuel@example.com"]) == {
        "samuel@example.com": "ct-1"
    }

    crm.delete_contact(AGENCY, "client-a", "ct-1", 3, NOW)
    assert contacts.known(AGENCY, "client-a", ["samuel@example.com"]) == {}


def test_an_older_version_arriving_late_does_not_move_the_address(
    stores: tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog],
) -> None:
    crm, contacts, _ = stores
    crm.upsert_contact(_upserted("ct-1", "new@example.com", 5))
    crm.upsert_contact(_upserted("ct-1", "old@example.com", 4))

    assert contacts.known(AGENCY, "client-a", ["new@example.com", "old@example.com"]) == {
        "new@example.com": "ct-1"
    }


def test_crm_mirror_writes_give_each_connection_its_id_for_the_address(
    stores: tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog],
) -> None:
    crm, contacts, _ = stores
    owner = {"agency_id": AGENCY, "client_id": "client-a"}
    crm.put_mirrored("conn-ghl", [_mirrored("g-1", "jo@example.com")], **owner)
    crm.put_mirrored("conn-hub", [_mirrored("h-9", "jo@example.com")], **owner)
    crm.upsert_contact(_upserted("ct-7", "jo@example.com", 1))

    (entry,) = contacts.entries(AGENCY, "client-a", ["JO@example.com"]).values()
    assert (entry.contact_id, entry.external_ids) == ("ct-7", {"conn-ghl": "g-1", "conn-hub": "h-9"})

    # The person changes the email in GHL: the old address keeps only HubSpot's copy.
    crm.put_mirrored("conn-ghl", [_mirrored("g-1", "joanna@example.com")], **owner)
    found = contacts.entries(AGENCY, "client-a", ["jo@example.com", "joanna@example.com"])
    assert found["jo@example.com"].external_ids == {"conn-hub": "h-9"}
    assert found["joanna@example.com"].external_ids == {"conn-ghl": "g-1"}
    assert contacts.known(AGENCY, "client-a", ["joanna@example.com"]) == {
        "joanna@example.com": "crm:conn-ghl:g-1"
    }

    crm.delete_mirrored("conn-ghl", ["g-1"], **owner)
    assert contacts.known(AGENCY, "client-a", ["joanna@example.com"]) == {}


def test_one_clients_directory_never_answers_for_another(
    stores: tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog],
) -> None:
    crm, contacts, _ = stores
    crm.upsert_contact(_upserted("ct-1", "sam@example.com", 1, client_id="client-a"))
    crm.put_mirrored("conn-a", [_mirrored("g-1", "sam@example.com")], agency_id=AGENCY, client_id="client-a")

    assert contacts.known(AGENCY, "client-b", ["sam@example.com"]) == {}
    assert contacts.known("agency-2", "client-a", ["sam@example.com"]) == {}


def test_a_mail_is_claimed_once_and_a_dead_writers_claim_is_taken_over(
    stores: tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog],
) -> None:
    _, _, log = stores
    lease = timedelta(seconds=60)
    first = log.claim("conn-1", "<m1@x>", "ext-1", NOW, lease)
    second = log.claim("conn-1", "<m1@x>", "ext-1", NOW + timedelta(seconds=1), lease)
    later = log.claim("conn-1", "<m1@x>", "ext-1", NOW + timedelta(seconds=61), lease)
    log.confirm("conn-1", "<m1@x>", "ext-1", "note-1", NOW + timedelta(seconds=62))
    done = log.claim("conn-1", "<m1@x>", "ext-1", NOW + timedelta(days=400), lease)

    assert [first.state, second.state, later.state] == [LogState.CLAIMED, LogState.BUSY, LogState.TAKEN_OVER]
    assert (done.state, done.record_id, done.announced) == (LogState.DONE, "note-1", False)
    assert done.done_at == NOW + timedelta(seconds=62)
    assert log.claim("conn-2", "<m1@x>", "ext-1", NOW, lease).state is LogState.CLAIMED


def test_the_creation_lease_has_one_holder_until_released_or_run_out(
    stores: tuple[DynamoCrmStore, DynamoMailContacts, DynamoMailLog],
) -> None:
    _, contacts, _ = stores
    assert contacts.claim_creation(AGENCY, "client-a", "new@example.com", "h1", NOW, 30)
    assert not contacts.claim_creation(AGENCY, "client-a", "new@example.com", "h2", NOW, 30)
    assert contacts.claim_creation(AGENCY, "client-b", "new@example.com", "h2", NOW, 30)
    later = NOW + timedelta(seconds=31)
    assert contacts.claim_creation(AGENCY, "client-a", "new@example.com", "h3", later, 30)
    contacts.release_creation(AGENCY, "client-a", "new@example.com", "h3")
    assert contacts.claim_creation(AGENCY, "client-a", "new@example.com", "h4", NOW, 30)
