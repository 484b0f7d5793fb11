"""Sending the platform's `Email Send Requested` as a person, at most once per request id.

From the bus (`requested`): the request is recorded and a SEND_EMAIL job queued for the mailbox
(the chosen connection, or the person's only or first connected mailbox); a person without one gets
`Email Send Failed` with `no_mailbox` at once. The event may arrive any number of times: a finished
request queues nothing, and an unfinished one is queued again (its first job may never have left).

In the worker (`run`), per job:

1. a finished record announces its outcome again (once-only, so nothing is published twice);
2. the request is claimed (leased). A claim refused because another is live defers the job briefly;
3. from the second claim on, an earlier attempt may have sent the mail and died before recording it:
   the mailbox is searched for the request's own Message-ID first, and a mail found there is recorded
   as the send instead of sending again;
4. the mail is built (reply threading, attachments downloaded by reference) and sent;
5. the send is recorded, then `Email Sent` is published (once per provider message id, the key the
   mailbox pull uses, so the pull never announces it a second time) and the job acknowledged.

A refusal for good (an invalid recipient, a mail too large, a reply target that is gone, a lost grant)
records `failed` and publishes `Email Send Failed` with its stable reason. A rate limit or an outage
releases the claim and retries through the fault table; a send still refused after `MAX_ATTEMPTS`
fails (`quota_exceeded` for rate limits, `provider_rejected` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.events import EmailSendFailed, EmailSendFailureReason, EmailSendRequested
from integrations.mail.message import parse_mail
from integrations.mail.outgoing import Attachment, build_message, our_message_id
from integrations.mail.ports import MailContacts, MailLogger, MailToLog, log_mail
from integrations.sync.faults import FaultKind, classify
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.mail import MailboxAdapter, MailRefused, MessageRef, OutgoingMail
from integrations.sync.mail_events import UNKNOWN_SENDER, counterparts, message_event, once_key
from integrations.sync.mail_records import SendRecord, SendRecords
from integrations.sync.settle import ConnectionState, Outcome, RunResult, settle_failure
from integrations.sync.steps import OnceLedger, publish_once

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.events import EmailAttachmentRef, PlatformEvent

# A claim outlives any one send (a Lambda run is at most minutes): a worker that died is overtaken.
CLAIM_SECONDS = 300.0
BUSY_DEFER_SECONDS = 5.0
# Claims after which a send that keeps meeting rate limits or outages is given up.
MAX_ATTEMPTS = 6
# The provider's limit for a whole message (Gmail: 35 MB through the API; 25 MB of attachments).
MESSAGE_LIMIT = 30 * 1024 * 1024
# The once-only ledger's namespace for send failures (a request without a mailbox has no provider).
_LEDGER_SCOPE = "mail"


class ScopeReader(Protocol):
    def list_for_scope(self, scope: Scope) -> list[Connection]: ...


class Mailboxes(Protocol):
    def is_mailbox(self, connection: Connection) -> bool: ...

    def adapter(self, connection: Connection) -> MailboxAdapter | None: ...


def send_job(connection: Connection, request: EmailSendRequested) -> SyncJob:
    """The job that sends one request from one mailbox; the hint names the request, never its content."""
    return SyncJob(
        kind=JobKind.SEND_EMAIL,
        connection_id=connection.id,
        provider=connection.provider,
        hint={"agency_id": request.agency_id, "request_id": request.request_id},
    )


class MailSender:
    """Sends requested mail; one instance per process."""

    def __init__(
        self,
        *,
        records: SendRecords,
        connections: ConnectionState,
        scopes: ScopeReader,
        mailboxes: Mailboxes,
        contacts: MailContacts,
        logger: MailLogger,
        ledger: OnceLedger,
        publish: Callable[[Sequence[PlatformEvent]], None],
        download: Callable[[list[EmailAttachmentRef]], tuple[Attachment, ...]],
        clock: Callable[[], datetime],
    ) -> None:
        self._records = records
        self._connections = connections
        self._scopes = scopes
        self._mailboxes = mailboxes
        self._contacts = contacts
        self._logger = logger
        self._ledger = ledger
        self._publish = publish
        self._download = download
        self._clock = clock

    # --- from the bus ---

    def requested(self, request: EmailSendRequested) -> list[SyncJob]:
        """Record the request and return its send job (none when finished or without a mailbox)."""
        record = self._records.get(request.agency_id, request.request_id)
        if record is not None and record.status == "failed":
            self._announce_failure(record.request, record.connection_id, record.reason, record.message)
            return []
        if record is not None and record.connection_id:
            connection = self._connections.get(record.connection_id)
            if record.status == "sent" or connection is None:
                # Sent: the job that sent it announced it (and announces again if it died first).
                return [] if record.status == "sent" else self._no_mailbox(request)
            return [send_job(connection, request)]
        mailbox = self._mailbox_for(request)
        if mailbox is None:
            return self._no_mailbox(request)
        self._records.create(request, mailbox.id, self._clock())
        return [send_job(mailbox, request)]

    def _mailbox_for(self, request: EmailSendRequested) -> Connection | None:
        scope = Scope(request.agency_id, Level.USER, request.client_id, request.user_id)
        mine = [c for c in self._scopes.list_for_scope(scope) if self._mailboxes.is_mailbox(c)]
        if request.connection_id is not None:
            # Another person's mailbox (or another tenant's) is no mailbox of this person's.
            return next((c for c in mine if c.id == request.connection_id), None)
        mine.sort(key=lambda c: (c.created_at, c.id))
        return mine[0] if mine else None

    def _no_mailbox(self, request: EmailSendRequested) -> list[SyncJob]:
        message = (
            "The chosen mailbox is not connected for this person."
            if request.connection_id
            else "This person has no connected mailbox to send from."
        )
        self._fail(request, None, "no_mailbox", message)
        return []

    # --- in the worker ---

    def run(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        """Send the job's request from `connection` and say what to do with the job."""
        agency_id, request_id = job.hint.get("agency_id"), job.hint.get("request_id")
        if not (isinstance(agency_id, str) and isinstance(request_id, str)):
            return RunResult(Outcome.FAIL, reason="The send job names no request.")
        record = self._records.get(agency_id, request_id)
        if record is None or record.connection_id != connection.id:
            return RunResult(Outcome.DONE, reason="no such request for this mailbox")
        adapter = self._mailboxes.adapter(connection)
        if record.status == "failed":
            self._announce_failure(record.request, connection.id, record.reason, record.message)
            return RunResult(Outcome.DONE, reason="failed before")
        if record.status == "sent":
            self._announce_sent(connection, adapter, record)
            return RunResult(Outcome.DONE, reason="sent before")
        if adapter is None:
            return self._failed(record, connection, "no_mailbox", "This connection is no mailbox.")
        if connection.waits_for_person:
            return self._failed(
                record,
                connection,
                "reauth_required",
                "The mailbox must be connected again before it can send.",
            )
        now = self._clock()
        claimed = self._records.claim(agency_id, request_id, now, now + timedelta(seconds=CLAIM_SECONDS))
        if claimed is None:
            return RunResult(Outcome.DEFER, BUSY_DEFER_SECONDS, reason="another worker is sending it")
        try:
            return self._send(claimed, connection, adapter)
        except MailRefused as refused:
            return self._failed(claimed, connection, refused.reason, refused.message)
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            return self._retry_or_fail(claimed, connection, error, attempts)

    def _send(self, record: SendRecord, connection: Connection, adapter: MailboxAdapter) -> RunResult:
        request = record.request
        owner = adapter.owner_addresses()
        sender = owner[0] if owner else ""
        message_id = our_message_id(request.agency_id, request.request_id, sender.rpartition("@")[2])
        if record.attempts > 1:
            # An earlier claim may have sent it and died before recording: look before sending again.
            found = adapter.find(message_id)
            if found is not None:
                return self._record_sent(record, connection, adapter, found, raw=None)
        parent = None
        if request.reply_to_message_id:
            parent = adapter.read(MessageRef(request.reply_to_message_id))
            if parent is None:
                raise MailRefused("reply_target_not_found", "The message to reply to is not in the mailbox.")
        attachments = self._download(list(request.attachments))
        try:
            raw = build_message(
                request,
                sender=sender,
                message_id=message_id,
                sent_at=self._clock(),
                parent=parent.mail if parent else None,
                attachments=attachments,
            )
        except (ValueError, TypeError):
            # The standard library refuses addresses it cannot write (and line breaks in headers).
            raise MailRefused("invalid_recipient", "A recipient address or a header is not valid.") from None
        if len(raw) > MESSAGE_LIMIT:
            raise MailRefused("message_too_large", "The mail with its attachments is too large to send.")
        sent = adapter.send(
            OutgoingMail(
                raw=raw, internet_message_id=message_id, thread_id=parent.ref.thread_id if parent else None
            )
        )
        return self._record_sent(record, connection, adapter, sent, raw=raw)

    def _record_sent(
        self,
        record: SendRecord,
        connection: Connection,
        adapter: MailboxAdapter,
        ref: MessageRef,
        raw: bytes | None,
    ) -> RunResult:
        request = record.request
        # Recorded before anything is announced or acknowledged: from here on, nothing sends it again.
        self._records.sent(
            request.agency_id, request.request_id, ref.message_id, ref.thread_id, self._clock()
        )
        done = SendRecord(
            request=request,
            status="sent",
            connection_id=connection.id,
            attempts=record.attempts,
            message_id=ref.message_id,
            thread_id=ref.thread_id,
        )
        self._announce_sent(connection, adapter, done, raw=raw)
        if connection.consecutive_failures:
            now = self._clock()
            self._connections.apply(connection.id, lambda c: c.provider_succeeded(now))
        return RunResult(Outcome.DONE, changes=1, reason="sent")

    def _announce_sent(
        self,
        connection: Connection,
        adapter: MailboxAdapter | None,
        record: SendRecord,
        raw: bytes | None = None,
    ) -> None:
        """Publish `Email Sent` for a recorded send (once), and log it on the CRM contacts."""
        if record.message_id is None:
            return
        key = once_key(connection.id, record.message_id)
        if raw is None:
            if adapter is None:
                return
            # Announced again after a crash: read what the mailbox holds (it is what was sent).
            found = adapter.read(MessageRef(record.message_id, record.thread_id))
            if found is None:
                return
            mail = found.mail
        else:
            mail = parse_mail(raw)
        owner = adapter.owner_addresses() if adapter is not None else ()
        known: dict[str, str] = {}
        if connection.client_id is not None:
            addresses = counterparts(mail, frozenset(owner))
            known = (
                self._contacts.known(connection.agency_id, connection.client_id, addresses)
                if addresses
                else {}
            )
        event = message_event(
            connection,
            mail,
            message_id=record.message_id,
            thread_id=record.thread_id,
            sent=True,
            sent_at=self._clock(),
            contact_ids=list(known.values()),
            fallback_sender=owner[0] if owner else UNKNOWN_SENDER,
            request_id=record.request.request_id,
        )
        publish_once(self._ledger, self._publish, connection, self._clock(), key, [event])
        if known and connection.client_id is not None and mail.message_id:
            log_mail(
                self._logger,
                MailToLog(
                    agency_id=connection.agency_id,
                    client_id=connection.client_id,
                    owner_addresses=frozenset(owner),
                    mail=mail,
                    via="mailbox",
                ),
            )

    def _retry_or_fail(
        self, record: SendRecord, connection: Connection, error: Exception, attempts: int
    ) -> RunResult:
        fault = classify(error)
        if fault.kind is FaultKind.REAUTH:
            settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())
            return self._failed(
                record,
                connection,
                "reauth_required",
                "The mailbox must be connected again before it can send.",
            )
        if record.attempts >= MAX_ATTEMPTS:
            reason: EmailSendFailureReason = (
                "quota_exceeded" if fault.kind is FaultKind.RATE_LIMITED else "provider_rejected"
            )
            return self._failed(record, connection, reason, fault.message)
        # The send may or may not have gone: the claim is released, and the next one looks first.
        self._records.release(record.request.agency_id, record.request.request_id)
        result = settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())
        if result.outcome is Outcome.FAIL or result.outcome is Outcome.DONE:
            return self._failed(record, connection, "provider_rejected", fault.message)
        return result

    def _failed(
        self, record: SendRecord, connection: Connection, reason: EmailSendFailureReason, message: str
    ) -> RunResult:
        self._fail(record.request, connection, reason, message)
        return RunResult(Outcome.DONE, reason=reason)

    def _fail(
        self,
        request: EmailSendRequested,
        connection: Connection | None,
        reason: EmailSendFailureReason,
        message: str,
    ) -> None:
        connection_id = connection.id if connection is not None else None
        self._records.failed(request, connection_id, reason, message, self._clock())
        self._announce_failure(request, connection_id, reason, message, connection)

    def _announce_failure(
        self,
        request: EmailSendRequested,
        connection_id: str | None,
        reason: EmailSendFailureReason | None,
        message: str,
        connection: Connection | None = None,
    ) -> None:
        event = EmailSendFailed(
            request_id=request.request_id,
            agency_id=request.agency_id,
            client_id=request.client_id,
            user_id=request.user_id,
            connection_id=connection_id,
            provider=connection.provider if connection is not None else None,
            reason=reason or "provider_rejected",
            message=message or "The mail was not sent.",
        )
        key = f"published:mail-failed:{request.agency_id}:{request.request_id}"
        if not self._ledger.claim(_LEDGER_SCOPE, key, self._clock(), connection_id or "-"):
            return
        try:
            self._publish([event])
        except Exception:
            self._ledger.release(_LEDGER_SCOPE, key)
            raise
        self._ledger.confirm(_LEDGER_SCOPE, key)
