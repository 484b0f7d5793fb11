"""Which mails were logged on which CRM contact, in the sync table: the once-only ledger of the mail
logger (mail/logger.py), like the call records of store/crm.py.

Item `pk = MLOG#<connection>#<digest of the Message-ID>`, `sk = CT#<contact's id in the CRM>`:
`status` (`pending` while one logger writes to the CRM, `done` after), `pending_until` (the writer's
lease), `record_id` (the note or engagement the CRM made), `done_at`, `announced` (its Email Logged
published).
No expiry: a mailbox resynced months later still finds its mails logged.

The claim is a conditional put: of two loggers of one mail (its BCC copy and its mailbox copy, or two
deliveries) exactly one writes to the CRM. A claim whose writer died keeps `pending` past its lease;
the next one takes it over and is told so, because that writer may have written to the CRM already.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from integrations.mail.ledger import LogClaim, LogState
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PENDING, DONE = "pending", "done"
_CLAIMABLE = "attribute_not_exists(pk) OR (#s = :pending AND pending_until < :now)"
_unavailable = unavailable_on_aws_error("The mail log")


def log_pk(connection_id: str, message_id: str) -> str:
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"MLOG#{connection_id}#{digest}"


class DynamoMailLog:
    """`mail.ledger.MailLedger` in the sync table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    @_unavailable
    def claim(
        self, connection_id: str, message_id: str, external_id: str, now: datetime, lease: timedelta
    ) -> LogClaim:
        """Take the right to log this mail on this contact, or say who has it."""
        key = {"pk": log_pk(connection_id, message_id), "sk": f"CT#{external_id}"}
        try:
            answer = self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        **key,
                        "status": PENDING,
                        "pending_until": _ms(now + lease),
                        "message_id": message_id[:2048],
                        "claimed_at": now.isoformat(),
                    }
                ),
                # One writer wins a race between two loggers of the same mail; a pending claim whose
                # writer's lease ran out (it died, maybe after its CRM write) may be taken over.
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_values({":now": _ms(now), ":pending": PENDING}),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            held = from_item(exc.response.get("Item") or {})  # type: ignore[arg-type]
            if held.get("status") == DONE:
                done_at = held.get("done_at")
                return LogClaim(
                    LogState.DONE,
                    str(held.get("record_id") or ""),
                    bool(held.get("announced")),
                    datetime.fromtimestamp(int(done_at) / 1000, UTC) if done_at is not None else None,
                )
            return LogClaim(LogState.BUSY)
        old = answer.get("Attributes")
        return LogClaim(LogState.TAKEN_OVER if old else LogState.CLAIMED)

    @_unavailable
    def confirm(
        self, connection_id: str, message_id: str, external_id: str, record_id: str, now: datetime
    ) -> None:
        """The CRM made `record_id`: the mail is logged on this contact for good."""
        self._db.update_item(
            TableName=self._table,
            Key=to_values({"pk": log_pk(connection_id, message_id), "sk": f"CT#{external_id}"}),
            UpdateExpression="SET #s = :done, record_id = :r, done_at = :t REMOVE pending_until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_values({":done": DONE, ":r": record_id, ":t": _ms(now)}),
        )

    @_unavailable
    def announced(self, connection_id: str, message_id: str, external_id: str) -> None:
        """Its Email Logged is published (a retry no longer publishes it again)."""
        self._db.update_item(
            TableName=self._table,
            Key=to_values({"pk": log_pk(connection_id, message_id), "sk": f"CT#{external_id}"}),
            UpdateExpression="SET announced = :t",
            ExpressionAttributeValues=to_values({":t": True}),
        )

    @_unavailable
    def release(self, connection_id: str, message_id: str, external_id: str) -> None:
        """Give up a pending claim whose CRM write surely did not happen (the CRM refused it)."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": log_pk(connection_id, message_id), "sk": f"CT#{external_id}"}),
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_values({":pending": PENDING}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
