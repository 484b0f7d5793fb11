"""What the Microsoft Graph stand-in keeps of Outlook mailboxes: messages (raw MIME and the folder they
are in), conversations, and the message delta states.

Ids are immutable (as under `Prefer: IdType="ImmutableId"`): a message keeps its id when it moves.
Conversations follow Exchange: a message joins the conversation of a message of the mailbox that its
In-Reply-To or References names, else it starts one. Every arrival in a folder gets a new sequence
number; a delta state remembers the sequence it was made at, so the next round lists what arrived in
the folder since. The expiry switch bumps the mailbox's epoch: every older delta or skip token then
answers 410 `syncStateNotFound`.
"""

from __future__ import annotations

import email
import re
import secrets
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

from infra.local.sandbox.core import Sandbox
from infra.local.sandbox.dialects import stable_alnum

# Well-known folder names (lower case) and their display names.
FOLDERS = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "junkemail": "Junk Email",
    "deleteditems": "Deleted Items",
    "archive": "Archive",
}
MAX_DELTA_STATES = 5000
_MSGID = re.compile(r"<[^<>\s]+>")


def folder_id(account: str, name: str) -> str:
    """The id Graph gives one of the mailbox's well-known folders (stable per account)."""
    return "AAMkAGMF" + stable_alnum(40, "ms-mail-folder", account.lower(), name) + "AAA="


@dataclass
class StoredMail:
    id: str
    folder: str  # a well-known name
    raw: bytes
    conversation_id: str
    received: float
    is_draft: bool
    seq: int  # when it arrived in its current folder

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


@dataclass
class MailDeltaState:
    """What a deltaLink remembers: its folder, its options, and the sequence it was made at."""

    account: str
    folder: str
    change_type: str | None
    since: float | None
    select: str | None
    seq: int
    epoch: int


@dataclass
class MailRound:
    items: list[dict[str, Any]]
    state: str
    epoch: int
    account: str


@dataclass
class OutlookMailbox:
    address: str
    messages: dict[str, StoredMail] = field(default_factory=dict)
    seq: int = 0
    epoch: int = 0


@dataclass
class GraphMailStore:
    mailboxes: dict[str, OutlookMailbox] = field(default_factory=dict)
    delta_states: dict[str, MailDeltaState] = field(default_factory=dict)
    rounds: dict[str, MailRound] = field(default_factory=dict)

    def keep_state(self, state: MailDeltaState) -> str:
        token = secrets.token_urlsafe(24)
        self.delta_states[token] = state
        while len(self.delta_states) > MAX_DELTA_STATES:
            del self.delta_states[next(iter(self.delta_states))]
        return token

    def keep_round(self, found: MailRound) -> str:
        # No dots: a skip token is `<round>.<offset>`.
        round_id = secrets.token_urlsafe(18)
        while len(self.rounds) >= 2000:
            del self.rounds[next(iter(self.rounds))]
        self.rounds[round_id] = found
        return round_id


def store_of(sb: Sandbox) -> GraphMailStore:
    """The Outlook mail store (callers hold the state lock)."""
    store = sb.state.extensions.get("graph_mail")
    if not isinstance(store, GraphMailStore):
        store = GraphMailStore()
        sb.state.extensions["graph_mail"] = store
    return store


def mailbox(sb: Sandbox, address: str) -> OutlookMailbox:
    """The account's mailbox, made on first use (callers hold the state lock)."""
    return store_of(sb).mailboxes.setdefault(address.lower(), OutlookMailbox(address.lower()))


def folder_named(account: str, value: str) -> str | None:
    """A folder given by well-known name (any case) or id, as its well-known name; None if unknown."""
    name = value.strip().strip("'").lower()
    if name in FOLDERS:
        return name
    return next((n for n in FOLDERS if folder_id(account, n) == value), None)


def new_message_id() -> str:
    return "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + secrets.token_urlsafe(24).replace("-", "A").replace(
        "_", "B"
    )


def conversation_for(box: OutlookMailbox, parsed: EmailMessage) -> str:
    """The conversation a new message joins (one of a message it names), or a new one."""
    named = set(_MSGID.findall(str(parsed.get("In-Reply-To") or ""))) | set(
        _MSGID.findall(str(parsed.get("References") or ""))
    )
    for stored in box.messages.values():
        if stored.message_id and stored.message_id in named:
            return stored.conversation_id
    return "AAQkAG" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "B") + "="


def add_mail(
    sb: Sandbox, box: OutlookMailbox, raw: bytes, folder: str, *, received: float | None, draft: bool = False
) -> StoredMail:
    """Store a message in a folder with a new sequence number (callers hold the lock and notify)."""
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    box.seq += 1
    stored = StoredMail(
        id=new_message_id(),
        folder=folder,
        raw=raw,
        conversation_id=conversation_for(box, parsed),
        received=received if received is not None else sb.now(),
        is_draft=draft,
        seq=box.seq,
    )
    box.messages[stored.id] = stored
    return stored


def move(box: OutlookMailbox, stored: StoredMail, folder: str) -> None:
    """The message moves (its id stays); it is new to the folder it arrives in."""
    box.seq += 1
    stored.folder = folder
    stored.seq = box.seq


def recipients(parsed: EmailMessage, names: tuple[str, ...] = ("To", "Cc", "Bcc")) -> list[tuple[str, str]]:
    """(display name, address) of every address in the given headers."""
    found: list[tuple[str, str]] = []
    for name in names:
        values = [str(v) for v in parsed.get_all(name) or []]
        found.extend(
            (display, address.strip()) for display, address in getaddresses(values) if display or address
        )
    return found


def party(value: str) -> dict[str, Any] | None:
    display, address = parseaddr(value)
    if not address:
        return None
    return {"emailAddress": {"name": display or address, "address": address}}
