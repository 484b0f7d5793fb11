"""What is kept per `Email Send Requested`: the request, which mailbox sends it, and how far it got.

States: `requested` (recorded, never tried) → `sending` (claimed; a send may have reached the
provider) → `sent` (the provider's ids recorded) or `failed` (a stable reason). A claim is leased:
a worker that dies mid-send leaves `sending` behind, and the next delivery takes it over after the
lease, knowing that it must look for the mail in the mailbox before sending anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from integrations.events import EmailSendFailureReason, EmailSendRequested

SendStatus = Literal["requested", "sending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class SendRecord:
    request: EmailSendRequested
    status: SendStatus
    connection_id: str | None = None
    # Claims so far: more than one means an earlier one may have sent already.
    attempts: int = 0
    message_id: str | None = None
    thread_id: str | None = None
    reason: EmailSendFailureReason | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.status in ("sent", "failed")


class SendRecords(Protocol):
    """The send records (store.mail_sends.DynamoMailSends)."""

    def get(self, agency_id: str, request_id: str) -> SendRecord | None: ...

    def create(self, request: EmailSendRequested, connection_id: str, now: datetime) -> bool:
        """Record a new request as `requested`; False when it was recorded before."""
        ...

    def claim(self, agency_id: str, request_id: str, now: datetime, until: datetime) -> SendRecord | None:
        """Take the request for sending until `until` (one more attempt); None when it is finished or
        another claim is still live."""
        ...

    def release(self, agency_id: str, request_id: str) -> None:
        """Give a claim up before its lease ends (the send did not go; the next delivery may try)."""
        ...

    def sent(
        self, agency_id: str, request_id: str, message_id: str, thread_id: str | None, now: datetime
    ) -> None:
        """The provider accepted the mail: its ids, for good."""
        ...

    def failed(
        self,
        request: EmailSendRequested,
        connection_id: str | None,
        reason: EmailSendFailureReason,
        message: str,
        now: datetime,
    ) -> None:
        """The request cannot be sent (recorded even when it never was before: no mailbox)."""
        ...
