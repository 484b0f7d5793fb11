"""What the Gmail sandbox keeps per mailbox: messages (raw RFC 5322 bytes and labels), threads, the
history of changes with ids that grow but not one by one, the watch, and the Pub/Sub pushes.

Threading follows Gmail (calendar-email.md §3.7): a message joins an existing thread only when it
names the thread (`threadId` on send, or a reply arriving), references a message of that thread
(`In-Reply-To` / `References`) and its subject matches the thread's (ignoring `Re:` / `Fwd:`).
History older than `history_floor` is gone: `history.list` from there answers 404, as Gmail does
when a history id is out of date.
"""

from __future__ import annotations

import base64
import email
import json
import re
import secrets
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from infra.local.sandbox.control import pubsub_jwt
from infra.local.sandbox.core import Sandbox
from infra.local.sandbox.keys import GOOGLE_PROJECT
from infra.local.sandbox.push import Delivery

FIRST_HISTORY_ID = 1000
PUSH_SUBSCRIPTION = f"projects/{GOOGLE_PROJECT}/subscriptions/gmail-push"
_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv)\s*:\s*)+", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Watch:
    topic: str
    label_ids: tuple[str, ...]
    include: bool
    expiration_ms: int
    client_id: str


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: list[str]
    history_id: int
    internal_ms: int

    @property
    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    def header(self, name: str) -> str:
        value = self.parsed.get(name)
        return " ".join(str(value).split()) if value is not None else ""

    @property
    def message_id(self) -> str:
        found = _MSGID.search(self.header("Message-ID"))
        return found.group(0) if found else ""

    def ref(self) -> dict[str, str]:
        return {"id": self.id, "threadId": self.thread_id}


@dataclass
class HistoryRecord:
    id: int
    kind: str  # messageAdded, messageDeleted, labelAdded, labelRemoved
    message: dict[str, Any]
    label_ids: list[str] = field(default_factory=list)


@dataclass
class Mailbox:
    address: str
    history_id: int = FIRST_HISTORY_ID
    watch: Watch | None = None
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    history: list[HistoryRecord] = field(default_factory=list)
    # history.list from an id below this answers 404 (the history was expired).
    history_floor: int = 0


@dataclass
class GmailStore:
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)


def store_of(sb: Sandbox) -> GmailStore:
    """The Gmail store (callers hold the state lock)."""
    store = sb.state.extensions.get("gmail")
    if not isinstance(store, GmailStore):
        store = GmailStore()
        sb.state.extensions["gmail"] = store
    return store


def mailbox(sb: Sandbox, address: str) -> Mailbox:
    """The account's mailbox, made on first use (callers hold the state lock)."""
    return store_of(sb).mailboxes.setdefault(address.lower(), Mailbox(address.lower()))


def next_history_id(box: Mailbox) -> int:
    # History ids grow, but not one by one.
    box.history_id += 1 + secrets.randbelow(5)
    return box.history_id


def base_subject(subject: str) -> str:
    return _PREFIX.sub("", subject).strip().lower()


def message_ids(text: str) -> list[str]:
    return _MSGID.findall(text)


def thread_for(box: Mailbox, parsed: EmailMessage, wanted: str | None) -> str | None:
    """The thread a new message joins, or None for a new thread (Gmail's three conditions)."""
    if not wanted:
        return None
    members = [m for m in box.messages.values() if m.thread_id == wanted]
    if not members:
        return None
    named = set(message_ids(str(parsed.get("In-Reply-To") or ""))) | set(
        message_ids(str(parsed.get("References") or ""))
    )
    if not named & {m.message_id for m in members}:
        return None
    subject = base_subject(" ".join(str(parsed.get("Subject") or "").split()))
    return wanted if subject == base_subject(members[0].header("Subject")) else None


def add_message(
    sb: Sandbox,
    box: Mailbox,
    raw: bytes,
    labels: list[str],
    *,
    thread_id: str | None,
    internal_ms: int | None,
) -> StoredMessage:
    """Store a message (received or sent), record `messageAdded` and push to a watch that covers it."""
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    message_id = secrets.token_hex(8)
    stored = StoredMessage(
        id=message_id,
        thread_id=thread_for(box, parsed, thread_id) or message_id,
        raw=raw,
        labels=list(dict.fromkeys(labels)),
        history_id=next_history_id(box),
        internal_ms=internal_ms if internal_ms is not None else int(sb.now() * 1000),
    )
    box.messages[stored.id] = stored
    box.history.append(
        HistoryRecord(stored.history_id, "messageAdded", {**stored.ref(), "labelIds": list(stored.labels)})
    )
    push_if_watched(sb, box, stored.labels)
    return stored


def change_labels(
    sb: Sandbox, box: Mailbox, stored: StoredMessage, add: list[str], remove: list[str]
) -> None:
    """Labels added and removed by the person: history records, a push; the message is not new."""
    added = [label for label in add if label not in stored.labels]
    removed = [label for label in remove if label in stored.labels]
    stored.labels = [label for label in stored.labels if label not in removed] + added
    for kind, labels in (("labelAdded", added), ("labelRemoved", removed)):
        if labels:
            record = {**stored.ref(), "labelIds": list(stored.labels)}
            box.history.append(HistoryRecord(next_history_id(box), kind, record, labels))
    stored.history_id = box.history_id
    if added or removed:
        push_if_watched(sb, box, [*stored.labels, *removed])


def delete_message(sb: Sandbox, box: Mailbox, stored: StoredMessage) -> None:
    """Deleted for good (not trashed): `messageDeleted` in history, a push."""
    del box.messages[stored.id]
    box.history.append(HistoryRecord(next_history_id(box), "messageDeleted", stored.ref()))
    push_if_watched(sb, box, stored.labels)


def expire_history(box: Mailbox) -> int:
    """Forget the mailbox's history: every history id known so far answers 404 from now on."""
    box.history_id += 1
    box.history_floor = box.history_id
    box.history.clear()
    return box.history_floor


def watched(box: Mailbox, labels: list[str], now_ms: int) -> bool:
    watch = box.watch
    if watch is None or watch.expiration_ms <= now_ms:
        return False
    if not watch.label_ids:
        return True
    overlap = bool(set(watch.label_ids) & set(labels))
    return overlap if watch.include else not overlap


def push_if_watched(sb: Sandbox, box: Mailbox, labels: list[str]) -> bool:
    if not watched(box, labels, int(sb.now() * 1000)):
        return False
    push(sb, box)
    return True


def push(sb: Sandbox, box: Mailbox) -> None:
    """Publish `{emailAddress, historyId}` to the topic; Pub/Sub pushes it to the receiver."""
    now = sb.now()
    data = json.dumps({"emailAddress": box.address, "historyId": box.history_id}).encode()
    message_id = str(secrets.randbelow(10**16))
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": rfc3339(now),
            "publish_time": rfc3339(now),
            "attributes": {},
        },
        "subscription": PUSH_SUBSCRIPTION,
    }
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
        "Authorization": f"Bearer {pubsub_jwt(now)}",
    }
    sb.pushes.submit(
        Delivery(url=sb.config.webhook_url("gmail"), headers=headers, body=raw, label="gmail:push")
    )


def rfc3339(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def recipients(parsed: EmailMessage) -> list[tuple[str, str]]:
    """(header, address) for every To / Cc / Bcc address."""
    found: list[tuple[str, str]] = []
    for name in ("To", "Cc", "Bcc"):
        values = [str(v) for v in parsed.get_all(name) or []]
        found.extend(
            (name, address.strip()) for display, address in getaddresses(values) if display or address
        )
    return found
