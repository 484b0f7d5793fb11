"""Outlook Mail's mailbox adapter (`MAILBOX_ADAPTER`, the shape in `sync.mail`), on Microsoft Graph v1.0.

Reading (calendar-email.md §4; Graph's message delta and mail pages):

- Changes come from message delta, a per-folder operation, on the Inbox and Sent Items. The cursor is
  one deltaLink per folder, kept whole as JSON (`{"inbox": ..., "sentitems": ...}`); a pass reads the
  Inbox's round then Sent Items', each page following `@odata.nextLink` verbatim (only ever on the
  catalog's Graph base URL: a stored link never sends the token elsewhere) until `@odata.deltaLink`.
  Rounds ask for `changeType=created` only, so moves, reads and deletions never name a message again.
- Delta has no "from now on" token: `current_cursor` starts a round filtered on `receivedDateTime`
  from a few minutes ago and pages it to its deltaLink (the filter lives on in the tokens; new mail is
  always newer). 410 Gone (`syncStateNotFound`, `resyncRequired`) expires the cursor: the engine lists
  the recent window (`recent`: each folder's messages with `$filter=receivedDateTime ge ...`).
- `Prefer: IdType="ImmutableId"` keeps a message's id when it is moved (archived, filed), so the
  once-only ledger keyed by it holds; `outlook.body-content-type="text"` asks for the text body.
- Drafts (`isDraft`) and mail in Junk Email or Deleted Items are never published; a message of the
  Sent Items folder is mail sent (Email Sent).

Sending: `POST /me/sendMail` with the whole MIME message (base64, `Content-Type: text/plain`), not
`createReply` + PATCH + `send`. The MIME way keeps the Message-ID we generated (createReply drafts get
one of Exchange's own, which cannot be set), and the engine's at-most-once recovery finds a mail that
was sent by a worker that died before recording it by exactly that Message-ID. The message already
carries the reply's In-Reply-To and References (built by `mail.outgoing`), by which Exchange puts it in
the parent's conversation. sendMail answers 202 without the message, so the Sent Items copy is then
found by `$filter=internetMessageId eq '...'`; if it is not visible yet the send counts as unfinished
and the engine's next claim finds it before sending anything. A request body is at most 4 MB.

Errors: 429 (and 503 with Retry-After) wait (`http`), 401/403 ask for reauthorization,
ErrorInvalidRecipients → `invalid_recipient`, ErrorQuotaExceeded / ErrorSubmissionQuotaExceeded →
`quota_exceeded`, 413 / ErrorMessageSizeExceeded → `message_too_large`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.domain.errors import ProviderUnavailable
from integrations.providers.outlook_mail.messages import SELECT, attachment_infos, instant, parsed
from integrations.providers.support import api_url, text
from integrations.sync.errors import CursorExpired
from integrations.sync.mail import MailboxMessage, MailPage, MailRefused, MessageRef, OutgoingMail
from integrations.sync.sources import bearer

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials

# The folders read, by their well-known names, in the order a pass reads them.
FOLDERS = ("inbox", "sentitems")
HIDDEN_FOLDERS = ("junkemail", "deleteditems")
PAGE_SIZE = 50
# How far back the round that makes a fresh cursor starts (clocks differ; the ledger drops repeats).
CURSOR_MARGIN = timedelta(minutes=10)
# A round that makes a fresh cursor reads at most this many pages before giving up for this run.
MAX_CURSOR_PAGES = 200
# Graph takes at most 4 MB in one request; bigger mail needs an upload session on a draft.
SEND_LIMIT = 4 * 1024 * 1024
# Pauses before each look for the Sent Items copy of a mail just sent (seconds).
SENT_COPY_WAITS = (0.0, 0.5, 1.5)
_SCOPE = "mailbox"
_PREFER = f'odata.maxpagesize={PAGE_SIZE}, outlook.body-content-type="text", IdType="ImmutableId"'
_GONE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
_INVALID_RECIPIENT = frozenset({"errorinvalidrecipients", "errorinvalidrecipientsaddress"})
_QUOTA = frozenset({"errorquotaexceeded", "errorsubmissionquotaexceeded", "errorexceededmessagelimit"})


class OutlookMailbox:
    """One connection's mailbox through Microsoft Graph v1.0."""

    def __init__(
        self,
        spec: ProviderSpec,
        connection: Connection,
        access_token: Callable[[], str],
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._spec = spec
        self._label = connection.account.label.strip().lower()
        self._token = access_token
        self._clock = clock
        self._sleep = sleep
        self._base = api_url(spec, "")
        self._owner: tuple[str, ...] | None = None
        self._folder_ids: dict[str, str] = {}

    # --- who ---

    def owner_addresses(self) -> tuple[str, ...]:
        if self._owner is None:
            me = self._call("GET", "me", params={"$select": "mail,userPrincipalName"})
            found = me if isinstance(me, dict) else {}
            candidates = [text(found.get("mail")), text(found.get("userPrincipalName")), self._label]
            self._owner = tuple(dict.fromkeys(a.lower() for a in candidates if "@" in a))
        return self._owner

    # --- listing ---

    def current_cursor(self) -> str:
        since = self._clock() - CURSOR_MARGIN
        links: dict[str, str] = {}
        for folder in FOLDERS:
            answer = self._call(
                "GET",
                f"me/mailFolders/{folder}/messages/delta",
                params={
                    "changeType": "created",
                    "$select": "id,conversationId",
                    "$filter": f"receivedDateTime ge {_iso(since)}",
                },
            )
            for _ in range(MAX_CURSOR_PAGES):
                found = answer if isinstance(answer, dict) else {}
                delta, next_link = text(found.get("@odata.deltaLink")), text(found.get("@odata.nextLink"))
                if delta:
                    links[folder] = delta
                    break
                if not next_link:
                    raise http.ProviderApiError(502, {"error": "a delta page without nextLink or deltaLink"})
                answer = self._follow(next_link)
            else:
                raise ProviderUnavailable("Outlook's mailbox delta did not end; trying again later.")
        return _dump(links)

    def changes(self, cursor: str, page: str | None) -> MailPage:
        links = _load(cursor)
        state = _load(page) if page else {"folder": FOLDERS[0]}
        folder = state.get("folder", "")
        if folder not in FOLDERS or not all(links.get(f) for f in FOLDERS):
            raise CursorExpired(_SCOPE, "The stored mailbox cursor is not one this service wrote.")
        done = {f: state[f] for f in FOLDERS if state.get(f)}
        found = self._follow(state.get("next") or links[folder])
        refs = _refs(found)
        next_link, delta = text(found.get("@odata.nextLink")), text(found.get("@odata.deltaLink"))
        if next_link:
            return MailPage(messages=refs, next_page=_dump({**done, "folder": folder, "next": next_link}))
        if not delta:
            raise http.ProviderApiError(502, {"error": "a delta page without nextLink or deltaLink"})
        done[folder] = delta
        position = FOLDERS.index(folder)
        if position + 1 < len(FOLDERS):
            return MailPage(messages=refs, next_page=_dump({**done, "folder": FOLDERS[position + 1]}))
        return MailPage(messages=refs, cursor=_dump(done))

    def recent(self, since: datetime, page: str | None) -> MailPage:
        state = _load(page) if page else {"folder": FOLDERS[0]}
        folder = state.get("folder", "")
        if folder not in FOLDERS:
            folder = FOLDERS[0]
        if state.get("next"):
            found = self._follow(state["next"], expires=False)
        else:
            answer = self._call(
                "GET",
                f"me/mailFolders/{folder}/messages",
                params={
                    "$filter": f"receivedDateTime ge {_iso(since)}",
                    "$select": "id,conversationId",
                    "$top": PAGE_SIZE,
                },
            )
            found = answer if isinstance(answer, dict) else {}
        refs = _refs(found)
        next_link = text(found.get("@odata.nextLink"))
        if next_link:
            return MailPage(messages=refs, next_page=_dump({"folder": folder, "next": next_link}))
        position = FOLDERS.index(folder)
        if position + 1 < len(FOLDERS):
            return MailPage(messages=refs, next_page=_dump({"folder": FOLDERS[position + 1]}))
        return MailPage(messages=refs)

    # --- reading ---

    def read(self, ref: MessageRef) -> MailboxMessage | None:
        try:
            answer = self._call(
                "GET", f"me/messages/{quote(ref.message_id, safe='')}", params={"$select": SELECT}
            )
        except http.ProviderApiError as exc:
            if exc.status in (400, 404):  # gone since it was listed (or an id Graph never gave)
                return None
            raise
        if not isinstance(answer, dict) or not text(answer.get("id")):
            return None
        message_id = text(answer.get("id"))
        attachments = []
        if answer.get("hasAttachments"):
            listed = self._call(
                "GET",
                f"me/messages/{quote(message_id, safe='')}/attachments",
                params={"$select": "name,contentType,size"},
            )
            attachments = attachment_infos(listed)
        folder = text(answer.get("parentFolderId"))
        return MailboxMessage(
            ref=MessageRef(message_id, text(answer.get("conversationId")) or ref.thread_id),
            mail=parsed(answer, attachments),
            sent=bool(folder) and folder == self._folder_id("sentitems"),
            hidden=bool(answer.get("isDraft"))
            or (bool(folder) and folder in {self._folder_id(f) for f in HIDDEN_FOLDERS}),
            received_at=instant(answer.get("receivedDateTime")) or self._clock(),
        )

    def find(self, internet_message_id: str) -> MessageRef | None:
        wanted = internet_message_id.strip()
        wanted = wanted if wanted.startswith("<") else f"<{wanted}>"
        answer = self._call(
            "GET",
            "me/messages",
            params={
                "$filter": "internetMessageId eq '{}'".format(wanted.replace("'", "''")),
                "$select": "id,conversationId",
                "$top": 1,
            },
        )
        refs = _refs(answer if isinstance(answer, dict) else {})
        return refs[0] if refs else None

    # --- sending ---

    def send(self, outgoing: OutgoingMail) -> MessageRef:
        payload = base64.b64encode(outgoing.raw)
        if len(payload) > SEND_LIMIT:
            raise MailRefused(
                "message_too_large", "Outlook takes at most 4 MB per mail sent through Microsoft Graph."
            )
        try:
            http.api_call(
                "POST",
                api_url(self._spec, "me/sendMail"),
                access_token=self._token(),
                headers={"Content-Type": "text/plain"},
                data=payload,
            )
        except http.ProviderApiError as exc:
            raise _refused(exc) from None
        for wait in SENT_COPY_WAITS:
            if wait:
                self._sleep(wait)
            found = self.find(outgoing.internet_message_id)
            if found is not None:
                return found
        # Sent, but not yet in Sent Items: the next claim looks it up by Message-ID before sending.
        raise ProviderUnavailable("Outlook accepted the mail; its Sent Items copy is not visible yet.")

    # --- plumbing ---

    def _folder_id(self, name: str) -> str:
        if name not in self._folder_ids:
            try:
                answer = self._call("GET", f"me/mailFolders/{name}", params={"$select": "id"})
            except http.ProviderApiError as exc:
                if exc.status != 404:
                    raise
                answer = None
            self._folder_ids[name] = text(answer.get("id")) if isinstance(answer, dict) else ""
        return self._folder_ids[name]

    def _follow(self, link: str, *, expires: bool = True) -> dict[str, Any]:
        """GET a nextLink / deltaLink verbatim, only ever on the catalog's Graph base URL."""
        if not link.startswith(self._base):
            if expires:
                raise CursorExpired(_SCOPE, "A stored link does not point to Microsoft Graph.")
            raise http.ProviderApiError(502, {"error": "a link outside the Graph base URL"})
        try:
            answer = http.api_call("GET", link, access_token=self._token(), headers={"Prefer": _PREFER})
        except http.ProviderApiError as exc:
            if expires and (exc.status == 410 or exc.error.lower() in _GONE_CODES):
                raise CursorExpired(_SCOPE) from None
            raise
        return answer if isinstance(answer, dict) else {}

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return http.api_call(
            method,
            api_url(self._spec, path),
            access_token=self._token(),
            params=params,
            headers={"Prefer": _PREFER},
        )


def _refs(answer: dict[str, Any]) -> list[MessageRef]:
    """The messages a page names (deletions, `@removed`, are not messages to read)."""
    items = answer.get("value")
    return [
        MessageRef(text(item["id"]), text(item.get("conversationId")) or None)
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and text(item.get("id")) and "@removed" not in item
    ]


def _refused(exc: http.ProviderApiError) -> Exception:
    """sendMail's 4xx answers as send failures with a stable reason."""
    code = exc.error.lower()
    if code in _INVALID_RECIPIENT:
        return MailRefused("invalid_recipient", "Outlook refused a recipient address.")
    if code in _QUOTA:
        return MailRefused("quota_exceeded", "The mailbox is over its sending or storage quota.")
    if exc.status == 413 or code in ("errormessagesizeexceeded", "requestentitytoolarge"):
        return MailRefused("message_too_large", "Outlook refused the mail as too large.")
    return MailRefused("provider_rejected", f"Outlook refused the mail (HTTP {exc.status}).")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(value: dict[str, str]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _load(stored: str) -> dict[str, str]:
    try:
        found = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def MAILBOX_ADAPTER(
    spec: ProviderSpec,
    connection: Connection,
    credentials: Callable[[], Credentials],
    clock: Callable[[], datetime],
) -> OutlookMailbox:
    """The adapter for one connection, reading its OAuth access token from the credentials."""
    return OutlookMailbox(spec, connection, bearer(credentials), clock)
