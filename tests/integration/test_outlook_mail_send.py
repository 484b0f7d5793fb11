"""The platform's `Email Send Requested` sent from an Outlook mailbox (MIME through `sendMail`): threading
checked on the MIME the sandbox's Graph received and on its conversation, at most once per request id
however often it is delivered or however the worker dies, and the failures named by their reasons."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.events import EmailParty
from integrations.sync.settle import Outcome
from tests.support.outlook_mail_world import ACCOUNT, OutlookMailWorld, raw_of
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox
from tests.support.sync_world import WorkerDied, queue_empty

SEND_ROUTE = "/microsoft/graph/v1.0/me/sendMail"


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


def ours(world: OutlookMailWorld) -> list[dict[str, Any]]:
    return [m for m in world.sent() if m["internetMessageId"].startswith("<integrations.")]


def test_a_reply_is_sent_as_mime_in_the_conversation_with_our_message_id(world: OutlookMailWorld) -> None:
    # Given a conversation: Jordan wrote, the person answered from Outlook, Jordan wrote again
    first = world.receive(**{"from": "jordan@example.com", "subject": "Pricing for next quarter"})
    world.send_from_outlook(to=["jordan@example.com"], reply_to=first["id"], text="Let me check.\n")
    last = world.receive(**{"from": "jordan@example.com", "reply_to": first["id"], "text": "Any news?\n"})
    world.run(world.job(reason="connected"))
    [parent] = [e for e in world.published("Email Received") if e.message_id == last["id"]]

    # When the platform replies to that mail
    world.platform_sends(
        world.send_request("req-reply", subject="Following up", reply_to_message_id=parent.message_id)
    )
    world.drain()

    # Then Graph received MIME naming the parent, kept our Message-ID, and put it in the conversation
    [call] = world.sb.requests_log(route=SEND_ROUTE)
    assert call["status"] == 202
    [mine] = ours(world)
    assert mine["conversationId"] == first["conversationId"]
    sent = email.message_from_bytes(raw_of(mine), policy=policy.default)
    assert str(sent["In-Reply-To"]).strip() == last["internetMessageId"]  # a long id may be folded
    references = str(sent["References"]).split()
    assert references[-1] == last["internetMessageId"] and first["internetMessageId"] in references
    assert str(sent["Subject"]).lower().endswith("pricing for next quarter")
    assert [str(a.addr_spec) for a in sent["To"].addresses] == ["jordan@example.com"]
    assert ACCOUNT in str(sent["From"])
    # ...and Email Sent names the request, Graph's ids and the contact
    [announced] = [e for e in world.published("Email Sent") if e.request_id == "req-reply"]
    assert (announced.message_id, announced.thread_id) == (mine["id"], first["conversationId"])
    assert announced.contact_ids == ["contact-jordan"]
    # The mailbox pull that sees it in Sent Items later announces nothing again
    world.bus.events.clear()
    world.run(world.job())
    assert world.published("Email Sent") == []


def test_a_request_delivered_three_times_sends_one_mail(world: OutlookMailWorld) -> None:
    request = world.send_request("req-thrice")

    for _ in range(3):
        world.platform_sends(request)
    world.drain()

    assert len(world.sent()) == 1
    assert len(world.sb.requests_log(route=SEND_ROUTE)) == 1
    [announced] = world.published("Email Sent")
    assert announced.request_id == "req-thrice" and announced.message_id == world.sent()[0]["id"]
    assert world.platform_sends(request) == []
    assert queue_empty(world.queue_url)


def test_a_worker_that_dies_after_sending_does_not_send_again(
    world: OutlookMailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = world.send_request("req-crash")
    [job] = world.platform_sends(request)
    records = world.container.mail_sends
    real_sent = records.sent

    def dies(*args: Any, **kwargs: Any) -> None:
        raise WorkerDied

    # The mail reaches Outlook, then the worker dies before it records the send
    monkeypatch.setattr(records, "sent", dies)
    with pytest.raises(WorkerDied):
        world.run(job)
    assert len(world.sent()) == 1
    assert world.published("Email Sent") == []

    # While its claim lasts, a redelivery waits; after it, the mail is found by its Message-ID
    monkeypatch.setattr(records, "sent", real_sent)
    assert world.run(job).outcome is Outcome.DEFER
    world.clock.advance(600)
    result = world.run(job)

    assert result.outcome is Outcome.DONE
    assert len(world.sent()) == 1 and len(world.sb.requests_log(route=SEND_ROUTE)) == 1
    [announced] = world.published("Email Sent")
    assert announced.request_id == "req-crash" and announced.message_id == world.sent()[0]["id"]
    searches = world.sb.requests_log(route="/microsoft/graph/v1.0/me/messages")
    assert any(
        c["query"].get("$filter", "").startswith("internetMessageId eq '<integrations.") for c in searches
    )
    assert world.run(job).outcome is Outcome.DONE
    assert len(world.published("Email Sent")) == 1 and len(world.sent()) == 1


def test_an_invalid_recipient_fails_the_request_with_invalid_recipient(world: OutlookMailWorld) -> None:
    world.platform_sends(world.send_request("req-bad", to=[EmailParty(address="jordan@example..com")]))
    world.drain()

    assert world.sent() == []
    [call] = world.sb.requests_log(route=SEND_ROUTE)
    assert call["status"] == 400
    [failed] = world.published("Email Send Failed")
    assert (failed.request_id, failed.reason, failed.provider) == (
        "req-bad",
        "invalid_recipient",
        "outlook_mail",
    )


@pytest.mark.parametrize("status", [429, 503])
def test_a_send_meeting_throttling_waits_retry_after_and_then_sends_once(
    world: OutlookMailWorld, status: int
) -> None:
    [job] = world.platform_sends(world.send_request(f"req-limited-{status}"))
    world.fault(kind="rate_limit", count=1, retry_after=30, status=status, path=SEND_ROUTE)

    limited = world.run(job)

    assert limited.outcome is Outcome.DEFER and round(limited.delay_seconds) == 30
    assert world.sent() == []
    assert world.run(job).outcome is Outcome.DONE
    assert len(world.sent()) == 1 and len(world.published("Email Sent")) == 1
