"""Gmail's mailbox adapter (`MAILBOX_ADAPTER`, the shape in `sync.mail`): history.list for changes,
messages.list for the recent window and for a Message-ID, messages.get, messages.send.

Protocol facts (calendar-email.md §3): history records come after `startHistoryId`, paged by
`pageToken`, the last page's `historyId` is the next start; only `messageAdded` is asked for, so label
changes and deletions never read a message again. An unknown or too old `startHistoryId` answers 404
(history is kept about a week, sometimes hours): the cursor expired. 429 and 403 `rateLimitExceeded`
are rate limits (`http.refusal`), 401 a lost grant. A reply joins its thread only with `threadId`,
`In-Reply-To` / `References` and a matching subject (§3.7).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.providers.gmail.messages import HIDDEN_LABELS, SENT_LABEL, parsed, received_at
from integrations.providers.gmail.subscriptions import mailbox_address
from integrations.providers.support import api_url, text
from integrations.sync.errors import CursorExpired
from integrations.sync.mail import MailboxMessage, MailPage, MailRefused, MessageRef, OutgoingMail
from integrations.sync.sources import bearer

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials

# history.list and messages.list take at most 500 per page.
PAGE_SIZE = 500


class GmailMailbox:
    """One connection's mailbox through the Gmail API v1."""

    def __init__(self, spec: ProviderSpec, connection: Connection, access_token: Callable[[], str]) -> None:
        self._spec = spec
        self._address = mailbox_address(connection)
        self._token = access_token

    def owner_addresses(self) -> tuple[str, ...]:
        return (self._address,) if self._address else ()

    def current_cursor(self) -> str:
        answer = self._call("GET", "users/me/profile")
        history_id = text(answer.get("historyId")) if isinstance(answer, dict) else ""
        if not history_id:
            raise http.ProviderApiError(502, {"error": "no historyId in the profile"})
        return history_id

    def changes(self, cursor: str, page: str | None) -> MailPage:
        params: dict[str, Any] = {
            "startHistoryId": cursor,
            "historyTypes": "messageAdded",
            "maxResults": PAGE_SIZE,
        }
        if page:
            params["pageToken"] = page
        try:
            answer = self._call("GET", "users/me/history", params=params)
        except http.ProviderApiError as exc:
            if exc.status == 404:
                raise CursorExpired("mailbox") from None
            raise
        found: dict[str, Any] = answer if isinstance(answer, dict) else {}
        refs: list[MessageRef] = []
        for record in found.get("history") or []:
            for added in record.get("messagesAdded") or [] if isinstance(record, dict) else []:
                ref = _ref(added.get("message") if isinstance(added, dict) else None)
                if ref is not None:
                    refs.append(ref)
        next_page = text(found.get("nextPageToken")) or None
        return MailPage(
            messages=refs,
            next_page=next_page,
            cursor=None if next_page else (text(found.get("historyId")) or cursor),
        )

    def recent(self, since: datetime, page: str | None) -> MailPage:
        # `after:` takes epoch seconds: the window is exact, whatever the mailbox's time zone.
        params: dict[str, Any] = {"q": f"after:{int(since.timestamp())}", "maxResults": PAGE_SIZE}
        if page:
            params["pageToken"] = page
        answer = self._call("GET", "users/me/messages", params=params)
        found: dict[str, Any] = answer if isinstance(answer, dict) else {}
        refs = [ref for ref in map(_ref, found.get("messages") or []) if ref is not None]
        return MailPage(messages=refs, next_page=text(found.get("nextPageToken")) or None)

    def read(self, ref: MessageRef) -> MailboxMessage | None:
        try:
            answer = self._call(
                "GET", f"users/me/messages/{quote(ref.message_id, safe='')}", params={"format": "full"}
            )
        except http.ProviderApiError as exc:
            if exc.status in (400, 404):  # gone since it was listed (or an id Gmail never gave)
                return None
            raise
        if not isinstance(answer, dict) or not text(answer.get("id")):
            return None
        labels = {text(label) for label in answer.get("labelIds") or []}
        return MailboxMessage(
            ref=MessageRef(text(answer.get("id")), text(answer.get("threadId")) or ref.thread_id),
            mail=parsed(answer),
            sent=SENT_LABEL in labels,
            hidden=bool(labels & HIDDEN_LABELS),
            received_at=received_at(answer),
        )

    def find(self, internet_message_id: str) -> MessageRef | None:
        wanted = internet_message_id.strip().strip("<>")
        answer = self._call(
            "GET",
            "users/me/messages",
            params={"q": f"rfc822msgid:{wanted}", "includeSpamTrash": "true", "maxResults": 1},
        )
        found = answer.get("messages") if isinstance(answer, dict) else None
        return _ref(found[0]) if isinstance(found, list) and found else None

    def send(self, outgoing: OutgoingMail) -> MessageRef:
        body: dict[str, Any] = {"raw": base64.urlsafe_b64encode(outgoing.raw).decode("ascii")}
        if outgoing.thread_id:
            body["threadId"] = outgoing.thread_id
        try:
            answer = self._call("POST", "users/me/messages/send", json=body)
        except http.ProviderApiError as exc:
            raise _refused(exc) from None
        ref = _ref(answer)
        if ref is None:
            raise http.ProviderApiError(502, {"error": "no message in the send answer"})
        return ref

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        return http.api_call(
            method, api_url(self._spec, path), access_token=self._token(), params=params, json=json
        )


def _ref(value: Any) -> MessageRef | None:
    if not isinstance(value, dict) or not text(value.get("id")):
        return None
    return MessageRef(text(value.get("id")), text(value.get("threadId")) or None)


def _refused(exc: http.ProviderApiError) -> Exception:
    """messages.send's 4xx answers as send failures with a stable reason."""
    summary = " ".join([exc.error, *exc.reasons]).lower()
    if exc.status == 413 or "too large" in summary or "toolarge" in summary:
        return MailRefused("message_too_large", "Gmail refused the mail as too large.")
    if exc.status == 400 and "invalidargument" in summary:
        # "Invalid To header", "Recipient address required": the one 400 reason a built mail draws.
        return MailRefused("invalid_recipient", "Gmail refused a recipient address.")
    if exc.status == 404:
        return MailRefused("reply_target_not_found", "The thread to reply in is not in the mailbox.")
    return MailRefused("provider_rejected", f"Gmail refused the mail (HTTP {exc.status}).")


def MAILBOX_ADAPTER(
    spec: ProviderSpec,
    connection: Connection,
    credentials: Callable[[], Credentials],
    clock: Callable[[], datetime],
) -> GmailMailbox:
    """The adapter for one connection, reading its OAuth access token from the credentials."""
    return GmailMailbox(spec, connection, bearer(credentials))
