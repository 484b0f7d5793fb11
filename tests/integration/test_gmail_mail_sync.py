"""Gmail inbound mail through the sync worker: jobs from the real queue (moto), the Gmail sandbox, the
cursor on the connection in DynamoDB. Every test compares what was published with the sandbox's
own mailbox: the mail exchanged with the client's contacts, each once, and nothing else."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.domain.connection import ErrorCode, PortalStatus
from integrations.providers.gmail import sync as gmail_sync
from integrations.sync.mail import MAIL_CURSOR
from integrations.sync.settle import Outcome
from tests.support.gmail_world import ACCOUNT, GmailWorld
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GmailWorld]:
    server.reset()
    yield GmailWorld(server, tmp_path, monkeypatch)
    clear_cache()


def published_ids(world: GmailWorld) -> list[str]:
    return [e.message_id for e in [*world.published("Email Received"), *world.published("Email Sent")]]


def assert_published_is_the_truth(world: GmailWorld) -> None:
    ids = published_ids(world)
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "a message was published twice"
    assert set(ids) == world.contact_mail_ids()


def test_new_mail_is_read_page_by_page_from_the_stored_history_id(
    world: GmailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mailbox synced once (nothing in it yet), read two history records per page
    monkeypatch.setattr(gmail_sync, "PAGE_SIZE", 2)
    assert world.run(world.job(reason="connected")).outcome is Outcome.DONE
    # When contacts write, the person answers from Gmail, and a friend writes privately
    first = world.receive(**{"from": "jordan@example.com", "from_name": "Jordan Lee", "subject": "Pricing"})
    world.receive(**{"from": "friend@example.net", "subject": "Dinner?"})
    world.receive(**{"from": "sam@example.org", "subject": "Contract", "cc": ["friend@example.net"]})
    world.send_from_gmail(to=["jordan@example.com"], reply_to=first["id"], text="Sure.\n")
    world.receive(**{"from": "jordan@example.com", "subject": "Re: Pricing", "reply_to": first["id"]})
    world.receive(**{"from": "friend@example.net", "subject": "Photos"})
    world.run(world.job(source="webhook", history_id="1"))

    # Then every contact mail is published once, in its direction, with its thread and contacts
    assert_published_is_the_truth(world)
    received = {e.message_id: e for e in world.published("Email Received")}
    [sent] = world.published("Email Sent")
    assert received[first["id"]].contact_ids == ["contact-jordan"]
    assert received[first["id"]].sender.address == "jordan@example.com"
    assert received[first["id"]].sender.name == "Jordan Lee"
    assert received[first["id"]].subject == "Pricing"
    assert received[first["id"]].internet_message_id == first["messageId"]
    assert sent.thread_id == first["threadId"] and sent.request_id is None
    assert sent.sender.address == ACCOUNT and [p.address for p in sent.to] == ["jordan@example.com"]
    # ...each handed to the CRM logger as mailbox mail; the private ones to nobody
    assert len(world.logger.entries) == 4
    assert {e.via for e in world.logger.entries} == {"mailbox"}
    assert all(ACCOUNT in e.owner_addresses for e in world.logger.entries)
    # ...the pages were read one after the other, and the cursor is the mailbox's history id now
    history_calls = world.sb.requests_log(route="/google/gmail/v1/users/<user_id>/history")
    assert sum(1 for c in history_calls if "pageToken" in c["query"]) >= 2
    assert world.connection.cursors[MAIL_CURSOR] == {"cursor": world.mailbox()["historyId"]}
    assert world.connection.status is PortalStatus.CONNECTED


def test_a_run_out_of_time_checkpoints_its_page_and_the_next_run_goes_on(
    world: GmailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gmail_sync, "PAGE_SIZE", 2)
    world.run(world.job(reason="connected"))
    for n in range(5):
        world.receive(**{"from": "jordan@example.com", "subject": f"Note {n}"})

    # A run with no time left stops after its first page, keeping the page token
    cut = world.run(world.job(), remaining_ms=5_000)

    assert cut.outcome is Outcome.CONTINUE
    assert set(world.connection.cursors[MAIL_CURSOR]) == {"cursor", "page"}
    assert len(world.published("Email Received")) == 2
    # The continuation goes on from that page: nothing lost, nothing twice
    assert world.run(world.job(reason="continue")).outcome is Outcome.DONE
    assert_published_is_the_truth(world)
    assert len(world.published("Email Received")) == 5


def test_an_expired_history_id_reads_the_recent_window_without_publishing_twice(world: GmailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "jordan@example.com", "subject": "Before"})
    world.receive(**{"from": "friend@example.net", "subject": "Private before"})
    world.run(world.job())
    before = set(published_ids(world))
    assert len(before) == 1

    # Gmail forgets the history (kept a week, sometimes hours), and mail arrives meanwhile
    world.expire_history()
    world.receive(**{"from": "sam@example.org", "subject": "After"})
    world.send_from_gmail(to=["sam@example.org"], subject="Re: After", text="Thanks.\n")
    result = world.run(world.job())

    # The 404 starts a listing of the last days: the new mail is published, the old one not again
    assert result.outcome is Outcome.DONE
    assert_published_is_the_truth(world)
    assert before < set(published_ids(world))
    # ...and the cursor is a history id Gmail accepts again: the next run reads history, publishes nothing
    assert world.connection.cursors[MAIL_CURSOR].keys() == {"cursor"}
    world.bus.events.clear()
    assert world.run(world.job()).outcome is Outcome.DONE
    assert published_ids(world) == []
    assert world.connection.status is PortalStatus.CONNECTED


def test_private_mail_is_never_published_nor_logged(world: GmailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "friend@example.net", "subject": "Doctor's results"})
    world.send_from_gmail(to=["friend@example.net"], subject="Thanks", cc=[ACCOUNT])

    world.run(world.job())

    assert world.bus.events == [] or all(
        e.detail_type not in ("Email Received", "Email Sent", "Email Logged") for e in world.bus.events
    )
    assert world.logger.entries == []
    # The owner's own address never makes a mail a contact's: only the others were asked about
    assert all(ACCOUNT not in asked for asked in world.contacts.asked)


def test_label_changes_and_deletions_publish_nothing_again(world: GmailWorld) -> None:
    world.run(world.job(reason="connected"))
    mail = world.receive(**{"from": "jordan@example.com", "subject": "Pricing"})
    other = world.receive(**{"from": "sam@example.org", "subject": "Contract"})
    world.run(world.job())
    assert len(world.published("Email Received")) == 2
    world.bus.events.clear()

    world.relabel(mail["id"], add=["STARRED"], remove=["UNREAD", "INBOX"])
    world.delete(other["id"])
    world.run(world.job())

    assert published_ids(world) == []


def test_drafts_and_spam_from_contacts_are_not_published(world: GmailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "jordan@example.com", "subject": "Win a prize", "labelIds": ["SPAM"]})
    world.run(world.job())

    assert published_ids(world) == []
    assert_published_is_the_truth(world)


def test_a_burst_of_pushes_is_one_pull(world: GmailWorld) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "jordan@example.com", "subject": "One"})
    pushes = [world.job(source="webhook", history_id=str(n)) for n in range(3)]
    for job in pushes:
        world.enqueue(job)

    world.drain()

    assert [r.reason for r in world.results[1:]].count("covered by a later run") == 2
    assert_published_is_the_truth(world)


def test_gmail_rate_limits_defer_with_retry_after_and_a_lost_grant_asks_to_reconnect(
    world: GmailWorld,
) -> None:
    world.run(world.job(reason="connected"))
    world.receive(**{"from": "jordan@example.com", "subject": "One"})

    world.fault(kind="rate_limit", remaining=1, retry_after=42, status=403)
    limited = world.run(world.job())

    assert limited.outcome is Outcome.DEFER and round(limited.delay_seconds) == 42
    assert world.connection.status is PortalStatus.CONNECTED
    assert world.run(world.job()).outcome is Outcome.DONE
    assert_published_is_the_truth(world)

    world.sb.http.post(
        world.sb.url("/_sandbox/faults"), json={"app": "google", "kind": "revoke_grants", "remaining": 1}
    )
    world.receive(**{"from": "sam@example.org", "subject": "Two"})
    lost = world.run(world.job())

    assert lost.outcome is Outcome.DONE
    after = world.connection
    assert after.status is PortalStatus.ERROR
    assert after.error is not None and after.error.code is ErrorCode.REAUTH_REQUIRED


class PubSubApp:
    """The pubsub app secret as the deployment holds it (only the topic matters to a watch)."""

    def fields(self, app: str) -> dict[str, str]:
        return {"topic_name": "projects/sandbox-project/topics/gmail"} if app == "pubsub" else {}


def test_the_watch_on_inbox_and_sent_is_renewed_daily_by_maintenance(world: GmailWorld) -> None:
    from integrations.providers.gmail.webhook import LOOKUP_EMAIL
    from integrations.providers.support import lookup
    from integrations.sync.jobs import JobKind
    from integrations.webhooks.routing import Attr
    from integrations.webhooks.subscriptions import SubscriptionContext

    world.container.__dict__["subscriptions"] = SubscriptionContext(
        public_api_url=GATEWAY,
        app_secrets=PubSubApp(),
        clock=world.clock,  # type: ignore[arg-type]
    )
    # Given the address lookup connect wrote, with no watch behind it (the watch failed at connect)
    world.container.connections.put_lookups(
        world.connection, [lookup(world.connection, LOOKUP_EMAIL, ACCOUNT)]
    )

    def watch_calls() -> int:
        return len(world.sb.requests_log(route="/google/gmail/v1/users/<user_id>/watch"))

    def expires_at() -> str:
        found = world.container.connections.get_lookup("gmail", LOOKUP_EMAIL, ACCOUNT)
        assert found is not None
        return found.attributes.get(Attr.EXPIRES_AT, "")

    # When maintenance runs, the mailbox is watched (INBOX and SENT) and the watch's expiry kept
    world.run(world.job(JobKind.RENEW_SUBSCRIPTION))
    watches = world.sb.http.get(world.sb.url("/_sandbox/gmail/watches"), timeout=5).json()["mailboxes"]
    [mine] = [m for m in watches if m["emailAddress"] == ACCOUNT]
    assert mine["watch"]["labelIds"] == ["INBOX", "SENT"]
    first = expires_at()
    assert first and watch_calls() == 1
    # Made an hour ago, it is not renewed; made a day and a half ago (5.5 days left of 7), it is
    world.run(world.job(JobKind.RENEW_SUBSCRIPTION))
    assert watch_calls() == 1
    older = (world.clock() + timedelta(days=5, hours=12)).isoformat()
    aged = lookup(world.connection, LOOKUP_EMAIL, ACCOUNT, **{Attr.EXPIRES_AT: older})
    world.container.connections.put_lookups(world.connection, [aged])
    renewed = world.run(world.job(JobKind.RENEW_SUBSCRIPTION))
    assert renewed.reason == "maintained", renewed
    assert watch_calls() == 2
    assert expires_at() > older
