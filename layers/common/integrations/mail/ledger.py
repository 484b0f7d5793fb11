"""The ports the mail logger keeps its state through: the once-only ledger of logged mails and the
client's address directory (adapters in store/mail_log.py and store/mail_contacts.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol


class LogState(Enum):
    # This logger holds the claim; nobody wrote to the CRM for it before.
    CLAIMED = "claimed"
    # This logger holds the claim of a writer that died: the CRM may already hold its record.
    TAKEN_OVER = "taken_over"
    # Another logger holds the claim and its lease is running.
    BUSY = "busy"
    # Logged before.
    DONE = "done"


@dataclass(frozen=True, slots=True)
class LogClaim:
    state: LogState
    record_id: str = ""
    # For DONE: whether its Email Logged was published, and when the log was confirmed.
    announced: bool = False
    done_at: datetime | None = None


class MailLedger(Protocol):
    def claim(
        self, connection_id: str, message_id: str, external_id: str, now: datetime, lease: timedelta
    ) -> LogClaim: ...

    def confirm(
        self, connection_id: str, message_id: str, external_id: str, record_id: str, now: datetime
    ) -> None: ...

    def announced(self, connection_id: str, message_id: str, external_id: str) -> None: ...

    def release(self, connection_id: str, message_id: str, external_id: str) -> None: ...


class AddressEntryLike(Protocol):
    @property
    def contact_id(self) -> str | None: ...

    @property
    def external_ids(self) -> dict[str, str]: ...


class AddressBook(Protocol):
    """store.mail_contacts.DynamoMailContacts"""

    def entries(
        self, agency_id: str, client_id: str, addresses: Sequence[str]
    ) -> Mapping[str, AddressEntryLike]: ...

    def claim_creation(
        self, agency_id: str, client_id: str, address: str, holder: str, now: datetime, seconds: float
    ) -> bool: ...

    def release_creation(self, agency_id: str, client_id: str, address: str, holder: str) -> None: ...
