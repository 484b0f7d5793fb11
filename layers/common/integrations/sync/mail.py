"""The mailbox adapter's shape, and the engine that pulls a mailbox page by page (design §8, Adapters).

A mailbox provider's `sync.py` offers `MAILBOX_ADAPTER(spec, connection, credentials, clock)`, which
returns a `MailboxAdapter` for one connection. The engine never looks at a provider id: it asks the
adapter for pages of message references, reads each message, and hands the messages to `deliver`
(the privacy rule and the events live in `sync.mail_events`).

The pull, per page, in this order, so a crash loses nothing and repeats nothing visible:

1. list one page (changes since the stored cursor, or a page of the recent window);
2. read and deliver its messages (publishing is once per provider message id, so a repeat is silent);
3. checkpoint: the page token within a listing, the new cursor after its last page.

A cursor the provider no longer accepts (`CursorExpired`: Gmail history.list 404, Graph 410) starts a
listing of the recent window (`FULL_WINDOW`) instead: the provider's current cursor is taken *before*
the listing begins, so a message that arrives while it runs is read again by the next incremental
pass rather than lost, and the once-only ledger keeps it from being published twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from integrations.events import EmailSendFailureReason
from integrations.mail.message import ParsedMail
from integrations.sync.errors import CursorExpired

# How far back a full listing reads (a first sync, or after the provider expired the cursor).
# At most the once-only ledger's retention (7 days): a message older than the ledger's memory of it
# must already be out of the window, or it would be published again.
FULL_WINDOW = timedelta(days=7)
# Where the cursor lives in `Connection.cursors`.
MAIL_CURSOR = "mail"


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message as a listing names it: the provider's message id, and its thread when known."""

    message_id: str
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class MailPage:
    """One page of a listing. `next_page` continues the same listing; `cursor` is set on the last page
    of a changes listing: where the next incremental pass starts (Gmail's historyId)."""

    messages: Sequence[MessageRef]
    next_page: str | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxMessage:
    """One message as the mailbox holds it."""

    ref: MessageRef
    mail: ParsedMail
    # It left from this mailbox (Gmail's SENT label): published as Email Sent, else Email Received.
    sent: bool
    # A draft, spam or trash: never published.
    hidden: bool
    # When the provider accepted it (Gmail internalDate): more reliable than the Date header.
    received_at: datetime


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A message to send: the whole RFC 5322 message (built by `mail.outgoing`), and the provider
    thread it replies in (None: a new thread)."""

    raw: bytes
    internet_message_id: str
    thread_id: str | None = None


class MailRefused(Exception):
    """The provider refused to send, for good: retrying the same message cannot succeed."""

    def __init__(self, reason: EmailSendFailureReason, message: str) -> None:
        super().__init__(message)
        self.reason: EmailSendFailureReason = reason
        self.message = message


class MailboxAdapter(Protocol):
    """What a mailbox provider's `sync.py` offers the engine for one connection.

    Errors in the engine's words: `sync.errors.CursorExpired` (the cursor is gone), `http.RateLimited`
    (429 and Google's 403 rateLimitExceeded, with Retry-After), `domain.errors.ReauthRequired`
    (401 / invalid_grant), `domain.errors.ProviderUnavailable` (5xx, timeouts), `MailRefused` (send).
    """

    def owner_addresses(self) -> tuple[str, ...]:
        """The mailbox owner's own addresses, lower case, the one it sends from first (never a contact)."""
        ...

    def current_cursor(self) -> str:
        """The mailbox's change cursor now (Gmail: the profile's historyId)."""
        ...

    def changes(self, cursor: str, page: str | None) -> MailPage:
        """One page of messages added since `cursor` (label changes and deletions are not listed).
        Raises CursorExpired when the provider no longer knows `cursor`."""
        ...

    def recent(self, since: datetime, page: str | None) -> MailPage:
        """One page of the messages received or sent since `since` (a bounded full listing)."""
        ...

    def read(self, ref: MessageRef) -> MailboxMessage | None:
        """The message, parsed (bodies cut at the parser's limit, attachments as metadata); None when
        it is gone since it was listed."""
        ...

    def find(self, internet_message_id: str) -> MessageRef | None:
        """The message with this RFC 5322 Message-ID in the mailbox, if any (a send's recovery)."""
        ...

    def send(self, outgoing: OutgoingMail) -> MessageRef:
        """Send as the owner, in `outgoing.thread_id` when set. Raises MailRefused when refused for good."""
        ...


@dataclass(frozen=True, slots=True)
class MailCursor:
    """What is checkpointed per mailbox: the provider's cursor, or a window listing in progress."""

    cursor: str | None = None
    page: str | None = None
    # Set while the recent window is listed: its start (ISO), and the cursor taken before it began.
    window_since: str | None = None
    after_window: str | None = None

    @property
    def listing_window(self) -> bool:
        return self.window_since is not None

    def to_json(self) -> dict[str, str]:
        values = (
            ("cursor", self.cursor),
            ("page", self.page),
            ("window_since", self.window_since),
            ("after_window", self.after_window),
        )
        return {k: v for k, v in values if v}

    @classmethod
    def of(cls, stored: object) -> MailCursor:
        if not isinstance(stored, dict):
            return cls()
        return cls(**{k: v for k, v in stored.items() if k in _FIELDS and isinstance(v, str) and v})


_FIELDS = frozenset({"cursor", "page", "window_since", "after_window"})


@dataclass(frozen=True, slots=True)
class MailPullResult:
    cursor: MailCursor
    done: bool
    pages: int
    published: int


class MailboxPuller:
    """Pulls one mailbox until the provider has nothing more or time runs out."""

    def __init__(
        self,
        *,
        deliver: Callable[[MailboxAdapter, Sequence[MailboxMessage]], int],
        checkpoint: Callable[[MailCursor], None],
        clock: Callable[[], datetime],
        window: timedelta = FULL_WINDOW,
    ) -> None:
        self._deliver = deliver
        self._checkpoint = checkpoint
        self._clock = clock
        self._window = window

    def pull(
        self, adapter: MailboxAdapter, cursor: MailCursor, has_time: Callable[[], bool]
    ) -> MailPullResult:
        """Apply pages from `cursor` on; returns the cursor reached and whether the pass finished."""
        pages = published = expired = 0
        while True:
            if cursor.cursor is None and not cursor.listing_window:
                cursor = self._start_window(adapter)
            if cursor.listing_window:
                assert cursor.window_since is not None
                page = adapter.recent(datetime.fromisoformat(cursor.window_since), cursor.page)
            else:
                assert cursor.cursor is not None
                try:
                    page = adapter.changes(cursor.cursor, cursor.page)
                except CursorExpired:
                    expired += 1
                    if expired > 1:
                        raise  # a cursor just taken is refused too: let the fault table decide
                    cursor = MailCursor()
                    continue
            published += self._read_and_deliver(adapter, page.messages)
            pages += 1
            if page.next_page:
                cursor = replace(cursor, page=page.next_page)
                self._checkpoint(cursor)
                if not has_time():
                    return MailPullResult(cursor, False, pages, published)
                continue
            if cursor.listing_window:
                cursor = MailCursor(cursor=cursor.after_window)
            else:
                cursor = MailCursor(cursor=page.cursor or cursor.cursor)
            self._checkpoint(cursor)
            return MailPullResult(cursor, True, pages, published)

    def _start_window(self, adapter: MailboxAdapter) -> MailCursor:
        # The cursor first, the listing after: what arrives meanwhile is in both, never in neither.
        start = adapter.current_cursor()
        since = self._clock() - self._window
        cursor = MailCursor(window_since=since.isoformat(), after_window=start)
        self._checkpoint(cursor)
        return cursor

    def _read_and_deliver(self, adapter: MailboxAdapter, refs: Sequence[MessageRef]) -> int:
        seen: set[str] = set()
        messages: list[MailboxMessage] = []
        for ref in refs:
            # History names a message once per record: read it once per page.
            if ref.message_id in seen:
                continue
            seen.add(ref.message_id)
            message = adapter.read(ref)
            if message is not None and not message.hidden:
                messages.append(message)
        return self._deliver(adapter, messages) if messages else 0
