"""Outlook inbound mail through the sync worker: jobs from the real queue (moto), the sandbox's Microsoft
Graph, the delta cursor on the connection in DynamoDB. Every test compares what was published with
the sandbox's own mailbox: the mail exchanged with the client's contacts, each once, and nothing else."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.domain.connection import PortalStatus
from integrations.providers.outlook_mail import sync as outlook_mail_sync
from integrations.sync.mail import MAIL_CURSOR
from integrations.sync.settle import Outcome
from tests.support.outlook_mail_world import ACCOUNT, OutlookMailWorld
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox

DELTA_ROUTE = "/microsoft/graph/v1.0/me/mailFolders/<folder>/messages/delta"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


@pytest.fixture
def world(
    server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OutlookMailWorld]:
    server.reset()
    yield OutlookMailWorld(server, tmp_path, monkeypatch)
    clear_cache()


def published_ids(world: OutlookMailWorld) -> list[str]:
    return [e.message_id for e in [*world.published("Email Received"), *world.published("Email Sent")]]


def assert_published_is_the_truth(world: OutlookMailWorld) -> None:
    ids = published_ids(world)
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "a message was published twice"
    assert set(ids) == world.contact_mail_ids()


def test_new_mail_is_read_page_by_page_from_the_stored_delta_links(
    world: OutlookMailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mailbox synced once (nothing in it yet), read two messages per delta page
    monkeypatch.setattr(outlook_mail_sync, "_PREFER", 'odata.maxpagesize=2, outlook.body-content-type="text"')
    assert world.run(world.job(reason="connected")).outcome is Outcome.DONE
    # When contacts write, the person answers from Outlook, and a friend writes privately
    first = world.receive(**{"from": "jordan@example.com", "from_name": "Jordan Lee", "subject": "Pricing"})
    world.receive(**{"from": "friend@example.net", "subject": "Dinner?"})
    world.receive(
        **{
            "from": "sam@example.org",
            "subject": "Contract",
            "cc": ["friend@example.net"],
            "attachments": [{"filename": "contract.pdf", "content_type": "application/pdf", "size": 64}],
        }
    )
    world.send_from_outlook(to=["jordan@example.com"], reply_to=first["id"], text="Sure.\n")
    world.receive(**{"from": "jordan@example.com", "reply_to": first["id"]})
    world.receive(**{"from": "friend@example.net", "subject": "Photos"})
    world.run(world.job(source="webhook"))

    # Then every contact mail is published once, in its direction, with its conversation and contacts
    assert_published_is_the_truth(world)
    received = {e.message_id: e for e in world.published("Email Received")}
    [sent] = world.published("Email Sent")
    assert received[first["id"]].contact_ids == ["contact-jordan"]
    assert received[first["id"]].sender.address == "jordan@example.com"
    assert received[first["id"]].sender.name == "Jordan Lee"
    assert received[first["id"]].subject == "Pricing"
    assert received[first["id"]].internet_message_id == first["internetMessageId"]
    assert received[first["id"]].thread_id == first["conversationId"]
    assert received[first["id"]].text.strip() == "Hello."
    [contract] = [e for e in received.values() if e.subject == "Contract"]
    assert [(a.filename, a.content_type, a.size) for a in contract.attachments] == [
        ("contract.pdf", "application/pdf", 64)
    ]
    assert sent.thread_id == first["conversationId"] and sent.request_id is None
    assert sent.sender.address == ACCOUNT and [p.address for p in sent.to] == ["jordan@example.com"]
    assert len(world.logger.entries) == 4 and {e.via for e in world.logger.entries} == {"mailbox"}
    # ...the Inbox and Sent Items rounds were read page after page, and the cursor is one link per folder
    calls = world.sb.requests_log(route=DELTA_ROUTE)
    assert sum(1 for c in calls if "$skiptoken" in c["query"]) >= 2
    cursor = json.loads(world.connection.cursors[MAIL_CURSOR]["cursor"])
    assert set(cursor) == {"inbox", "sentitems"} and all("$deltatoken=" in v for v in cursor.values())
    # ...and a run with nothing new publishes nothing again
    world.bus.events.clear()
    assert world.run(world.job()).outcome is Outcome.DONE
    assert published_ids(world) == []
    assert world.connection.status is PortalStatus.CONNECTED


def test_a_run_out_of_time_checkpoints_its_page_and_the_next_run_goes_on(
    world: OutlookMailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outlook_mail_sync, "_PREFER", "odata.maxpagesize=2")
    world.run(world.job(reason="connected"))
    for n in range(5):
        world.receive(**{"from": "jordan@example.com", "subject": f"Note {n}"})

    cut = world.run(world.job(), remaining_ms=5_000)

    assert cut.outcome is Outcome.CONTINUE
    assert set(world.connection.cursors[MAIL_CURSOR]) == {"cursor", "page"}
    assert len(world.published("Email Received")) == 2
    assert world.run(world.job(reason="continue")).outcome is Outcome.DONE
    assert_published_is_the_truth(world)
    assert len(world.published("Email Received")) == 5


def test_an_expired_delta_reads_the_recent_window_without_publishing_twice(world: OutlookMailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "jordan@example.com", "subject": "Before"})
    world.receive(**{"from": "friend@example.net", "subject": "Private before"})
    world.run(world.job())
    before = set(published_ids(world))
    assert len(before) == 1

    # Exchange drops the sync state, and mail arrives and leaves meanwhile; an old mail is outside the window
    world.expire_delta()
    world.receive(**{"from": "sam@example.org", "subject": "After"})
    world.send_from_outlook(to=["sam@example.org"], subject="RE: After", text="Thanks.\n")
    old = world.receive(
        **{
            "from": "sam@example.org",
            "subject": "Last month",
            "received_at": world.clock().timestamp() - 30 * 86400,
        }
    )
    result = world.run(world.job())

    # The 410 starts a listing of the last days: the new mail is published, the old one not again
    assert result.outcome is Outcome.DONE
    ids = published_ids(world)
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert set(ids) == world.contact_mail_ids() - {old["id"]}
    assert before < set(ids)
    window_calls = world.sb.requests_log(route="/microsoft/graph/v1.0/me/mailFolders/<folder>/messages")
    assert any(c["query"].get("$filter", "").startswith("receivedDateTime ge ") for c in window_calls)
    # ...and the cursor is a pair of delta links Graph accepts again: the next run publishes nothing
    assert world.connection.cursors[MAIL_CURSOR].keys() == {"cursor"}
    world.bus.events.clear()
    assert world.run(world.job()).outcome is Outcome.DONE
    assert published_ids(world) == []
    assert world.connection.status is PortalStatus.CONNECTED


def test_private_mail_drafts_and_junk_are_never_published(world: OutlookMailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "friend@example.net", "subject": "Doctor's results"})
    world.send_from_outlook(to=["friend@example.net"], subject="Thanks", cc=[ACCOUNT])
    world.save_draft(to=["jordan@example.com"], subject="Not yet")
    # A draft to a contact filed in the Inbox is still a draft; junk from a contact is junk
    world.save_draft(to=["jordan@example.com"], subject="Half written", folder="inbox")
    world.receive(**{"from": "jordan@example.com", "subject": "Win a prize", "folder": "junkemail"})
    # A contact's mail the person deleted before the run is not published either
    gone = world.receive(**{"from": "sam@example.org", "subject": "Oops"})
    world.move(gone["id"], "deleteditems")

    world.run(world.job())

    assert published_ids(world) == []
    assert world.logger.entries == []
    assert all(ACCOUNT not in asked for asked in world.contacts.asked)


def test_a_mail_filed_after_it_was_published_is_not_published_again(world: OutlookMailWorld) -> None:
    world.run(world.job(reason="connected"))
    mail = world.receive(**{"from": "jordan@example.com", "subject": "Pricing"})
    world.run(world.job())
    world.bus.events.clear()

    # Moved to the Archive and back into the Inbox: the immutable id is the one already published
    world.move(mail["id"], "archive")
    world.move(mail["id"], "inbox")
    world.run(world.job())

    assert published_ids(world) == []


def test_graph_rate_limits_defer_with_retry_after(world: OutlookMailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "jordan@example.com", "subject": "One"})

    world.fault(kind="rate_limit", count=1, retry_after=42)
    limited = world.run(world.job())
    assert limited.outcome is Outcome.DEFER and round(limited.delay_seconds) == 42

    assert world.connection.status is PortalStatus.CONNECTED
    assert world.run(world.job()).outcome is Outcome.DONE
    assert_published_is_the_truth(world)
