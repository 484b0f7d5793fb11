"""The platform's `Email Send Requested` sent from a Gmail mailbox: threading checked on the raw
message the sandbox received, at most once per request id however often it is delivered or however
the worker dies, and the failures named by their stable reasons."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from integrations.catalog.loader import clear_cache
from integrations.events import EmailAttachmentRef, EmailParty
from integrations.sync.jobs import JobKind
from integrations.sync.mail_send import send_job
from integrations.sync.settle import Outcome
from tests.support.functions import load_handler
from tests.support.gmail_world import ACCOUNT, GmailWorld, raw_of
from tests.support.sandbox import GATEWAY, Sandbox, running_sandbox
from tests.support.sync_world import WorkerDied, queue_empty

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GmailWorld]:
    server.reset()
    yield GmailWorld(server, tmp_path, monkeypatch)
    clear_cache()


def test_a_reply_is_sent_in_the_thread_with_the_headers_gmail_threads_by(world: GmailWorld) -> None:
    # Given a conversation: Jordan wrote, the person answered from Gmail, Jordan wrote again
    first = world.receive(**{"from": "jordan@example.com", "subject": "Pricing for next quarter"})
    world.send_from_gmail(to=["jordan@example.com"], reply_to=first["id"], text="Let me check.\n")
    last = world.receive(**{"from": "jordan@example.com", "reply_to": first["id"], "text": "Any news?\n"})
    world.run(world.job(reason="connected"))
    [parent] = [e for e in world.published("Email Received") if e.message_id == last["id"]]

    # When the platform replies to that mail (with a subject of its own)
    world.platform_sends(
        world.send_request("req-reply", subject="Following up", reply_to_message_id=parent.message_id)
    )
    world.drain()

    # Then Gmail holds it in the same thread, and its raw message names the parent as Gmail needs
    [ours] = [m for m in world.sent() if m["messageId"].startswith("<integrations.")]
    assert ours["threadId"] == first["threadId"]
    sent = email.message_from_bytes(raw_of(ours), policy=policy.default)
    assert sent["Subject"] == "Re: Pricing for next quarter"
    assert str(sent["In-Reply-To"]).strip() == last["messageId"]  # a long id may be folded
    references = str(sent["References"]).split()
    assert references[-1] == last["messageId"] and first["messageId"] in references
    assert str(sent["Message-ID"]).startswith("<integrations.")
    assert str(sent["From"]) == ACCOUNT
    assert [str(a.addr_spec) for a in sent["To"].addresses] == ["jordan@example.com"]
    # ...and Email Sent names the request, Gmail's ids and the contact
    [announced] = [e for e in world.published("Email Sent") if e.request_id == "req-reply"]
    assert (announced.message_id, announced.thread_id) == (ours["id"], first["threadId"])
    assert announced.contact_ids == ["contact-jordan"]
    # The mailbox pull that sees it later announces nothing again
    world.bus.events.clear()
    world.run(world.job())
    assert world.published("Email Sent") == []


def test_a_request_delivered_three_times_sends_one_mail(world: GmailWorld) -> None:
    request = world.send_request("req-thrice")

    for _ in range(3):
        world.platform_sends(request)
    world.drain()

    assert len(world.sent()) == 1
    [announced] = world.published("Email Sent")
    assert announced.request_id == "req-thrice" and announced.message_id == world.sent()[0]["id"]
    # A fourth delivery after it was sent queues nothing at all
    assert world.platform_sends(request) == []
    assert queue_empty(world.queue_url)


def test_a_worker_that_dies_after_sending_does_not_send_again(
    world: GmailWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = world.send_request("req-crash")
    [job] = world.platform_sends(request)
    records = world.container.mail_sends
    real_sent = records.sent

    def dies(*args: Any, **kwargs: Any) -> None:
        raise WorkerDied

    # The mail reaches Gmail, then the worker dies before it records the send
    monkeypatch.setattr(records, "sent", dies)
    with pytest.raises(WorkerDied):
        world.run(job)
    assert len(world.sent()) == 1
    assert world.published("Email Sent") == []

    # While its claim lasts, a redelivery waits instead of sending
    monkeypatch.setattr(records, "sent", real_sent)
    assert world.run(job).outcome is Outcome.DEFER
    # After it, the redelivery finds the mail by its Message-ID at Gmail and records it
    world.clock.advance(600)
    result = world.run(job)

    assert result.outcome is Outcome.DONE
    assert len(world.sent()) == 1
    [announced] = world.published("Email Sent")
    assert announced.request_id == "req-crash" and announced.message_id == world.sent()[0]["id"]
    searches = world.sb.requests_log(route="/google/gmail/v1/users/<user_id>/messages")
    assert any(c["query"].get("q", "").startswith("rfc822msgid:integrations.") for c in searches)
    assert world.run(job).outcome is Outcome.DONE
    assert len(world.published("Email Sent")) == 1 and len(world.sent()) == 1


def test_an_invalid_recipient_fails_the_request_with_invalid_recipient(world: GmailWorld) -> None:
    world.platform_sends(world.send_request("req-bad", to=[EmailParty(address="jordan@example..com")]))
    world.drain()

    assert world.sent() == []
    # Gmail itself refused it (400 Invalid To header)
    [call] = world.sb.requests_log(route="/google/gmail/v1/users/<user_id>/messages/send")
    assert call["status"] == 400
    [failed] = world.published("Email Send Failed")
    assert (failed.request_id, failed.reason, failed.provider) == ("req-bad", "invalid_recipient", "gmail")
    assert world.published("Email Sent") == []
    # Delivered again, it is failed already: nothing is sent, nothing announced twice
    assert (
        world.platform_sends(world.send_request("req-bad", to=[EmailParty(address="jordan@example..com")]))
        == []
    )
    assert len(world.published("Email Send Failed")) == 1


def test_a_person_without_a_mailbox_gets_no_mailbox(world: GmailWorld) -> None:
    jobs = world.platform_sends(world.send_request("req-nobody", user_id="user-without-mail"))

    assert jobs == []
    [failed] = world.published("Email Send Failed")
    assert (failed.reason, failed.connection_id) == ("no_mailbox", None)


def test_attachments_are_downloaded_by_reference_and_a_missing_one_fails_the_send(world: GmailWorld) -> None:
    quote = world.file(text="%PDF-1.4 quote", content_type="application/pdf")
    ref = EmailAttachmentRef(url=quote, filename="quote.pdf", content_type="application/pdf")
    world.platform_sends(world.send_request("req-attached", attachments=[ref]))
    gone = EmailAttachmentRef(url=world.file(text="x", status=404), filename="gone.pdf")
    world.platform_sends(world.send_request("req-missing", attachments=[gone]))
    world.drain()

    [sent] = world.sent()
    parts = email.message_from_bytes(raw_of(sent), policy=policy.default)
    [attached] = list(parts.iter_attachments())
    assert attached.get_filename() == "quote.pdf"
    assert attached.get_content() == b"%PDF-1.4 quote"
    [announced] = world.published("Email Sent")
    assert [(a.filename, a.size) for a in announced.attachments] == [("quote.pdf", 14)]
    [failed] = world.published("Email Send Failed")
    assert (failed.request_id, failed.reason) == ("req-missing", "attachment_unavailable")


def test_a_send_meeting_a_rate_limit_waits_and_then_sends_once(world: GmailWorld) -> None:
    [job] = world.platform_sends(world.send_request("req-limited"))
    world.fault(
        kind="rate_limit", remaining=1, retry_after=30, path="/google/gmail/v1/users/me/messages/send"
    )

    limited = world.run(job)

    assert limited.outcome is Outcome.DEFER and round(limited.delay_seconds) == 30
    assert world.sent() == []
    assert world.run(job).outcome is Outcome.DONE
    assert len(world.sent()) == 1 and len(world.published("Email Sent")) == 1


def test_the_bus_handler_routes_email_send_requested_to_the_mailbox(
    world: GmailWorld, lambda_context: Any
) -> None:
    event = json.loads((EVENTS / "event_email_send_requested.json").read_text())
    event["detail"].update({"agency_id": "agency-1", "client_id": "client-a", "user_id": "user-1"})
    event["detail"]["attachments"] = []
    worker = load_handler("sync_worker")

    answer = worker.handler(event, lambda_context)

    assert answer == {"status": "applied", "push_jobs": "1"}
    record = world.container.mail_sends.get("agency-1", event["detail"]["request_id"])
    assert record is not None and record.status == "requested" and record.connection_id == world.connection_id
    job = send_job(world.connection, record.request)
    assert job.kind is JobKind.SEND_EMAIL
