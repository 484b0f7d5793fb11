"""The delivery ledger port: delivery ids already accepted, each acted on once (design §7).

A claim is `pending` until its job is queued (`confirm`). If the function dies in between (a timeout
while SQS hangs), the provider's redelivery finds a pending claim whose lease ran out and takes it
over, so the event is not lost; at worst a job is queued twice, which the worker tolerates (jobs are
hints and the worker re-reads the provider). The DynamoDB adapter is store.delivery_ledger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class DeliveryLedger(Protocol):
    """Claims delivery ids so each is acted on once; `release` undoes a claim whose work failed."""

    def claim(self, provider: str, event_id: str, now: datetime, connection_id: str) -> bool: ...

    def confirm(self, provider: str, event_id: str) -> None: ...

    def release(self, provider: str, event_id: str) -> None: ...
