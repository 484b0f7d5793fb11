"""Send records in the sync table (sync.mail_records.SendRecords): one item per `Email Send Requested`.

Item: `pk = MAILSEND#<agency>#<request id>`, `sk = SEND`, `request` (the event's JSON), `status`,
`connection_id`, `attempts`, `claimed_until` (epoch seconds), the provider's `message_id` /
`thread_id` once sent, `reason` / `message` once failed, `expires_at` (TTL): kept `RETENTION`,
longer than any redelivery of the bus (an hour) or the sync queue (days).

Every change is a conditional write on the status, so two deliveries never both claim a request and
a finished request is never claimed again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.events import EmailSendFailureReason, EmailSendRequested
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error
from integrations.sync.mail_records import SendRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETENTION = timedelta(days=30)
_SK = "SEND"
_unavailable = unavailable_on_aws_error("The mail send records")


def send_pk(agency_id: str, request_id: str) -> str:
    return f"MAILSEND#{agency_id}#{request_id}"


class DynamoMailSends:
    def __init__(self, client: DynamoDBClient, table_name: str, retention: timedelta = RETENTION) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention

    def _key(self, agency_id: str, request_id: str) -> dict[str, Any]:
        return to_values({"pk": send_pk(agency_id, request_id), "sk": _SK})

    @_unavailable
    def get(self, agency_id: str, request_id: str) -> SendRecord | None:
        answer = self._db.get_item(
            TableName=self._table, Key=self._key(agency_id, request_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return _record(from_item(item)) if item else None

    @_unavailable
    def create(self, request: EmailSendRequested, connection_id: str, now: datetime) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": send_pk(request.agency_id, request.request_id),
                        "sk": _SK,
                        "request": request.model_dump_json(),
                        "status": "requested",
                        "connection_id": connection_id,
                        "attempts": 0,
                        "claimed_until": 0,
                        "recorded_at": now.isoformat(),
                        "expires_at": int((now + self._retention).timestamp()),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @_unavailable
    def claim(self, agency_id: str, request_id: str, now: datetime, until: datetime) -> SendRecord | None:
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=self._key(agency_id, request_id),
                UpdateExpression="SET #s = :sending, attempts = attempts + :one, claimed_until = :until",
                # Never-tried, or tried by a claim whose lease ran out (its worker died or gave it back).
                ConditionExpression="#s = :requested OR (#s = :sending AND claimed_until < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_values(
                    {
                        ":sending": "sending",
                        ":requested": "requested",
                        ":one": 1,
                        ":until": int(until.timestamp()),
                        ":now": int(now.timestamp()),
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return _record(from_item(answer["Attributes"]))

    @_unavailable
    def release(self, agency_id: str, request_id: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(agency_id, request_id),
                UpdateExpression="SET claimed_until = :zero",
                ConditionExpression="#s = :sending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_values({":zero": 0, ":sending": "sending"}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    @_unavailable
    def sent(
        self, agency_id: str, request_id: str, message_id: str, thread_id: str | None, now: datetime
    ) -> None:
        values: dict[str, Any] = {":sent": "sent", ":m": message_id, ":at": now.isoformat()}
        update = "SET #s = :sent, message_id = :m, finished_at = :at"
        if thread_id:
            values[":t"] = thread_id
            update += ", thread_id = :t"
        self._db.update_item(
            TableName=self._table,
            Key=self._key(agency_id, request_id),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_values(values),
        )

    @_unavailable
    def failed(
        self,
        request: EmailSendRequested,
        connection_id: str | None,
        reason: EmailSendFailureReason,
        message: str,
        now: datetime,
    ) -> None:
        values: dict[str, Any] = {
            ":failed": "failed",
            ":sent": "sent",
            ":r": reason,
            ":msg": message,
            ":req": request.model_dump_json(),
            ":at": now.isoformat(),
            ":exp": int((now + self._retention).timestamp()),
            ":zero": 0,
        }
        update = (
            "SET #s = :failed, #r = :r, #msg = :msg, finished_at = :at, expires_at = :exp, "
            "#req = if_not_exists(#req, :req), attempts = if_not_exists(attempts, :zero)"
        )
        if connection_id:
            values[":c"] = connection_id
            update += ", connection_id = :c"
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(request.agency_id, request.request_id),
                UpdateExpression=update,
                # A send that went stays sent, whatever a late failure says.
                ConditionExpression="attribute_not_exists(pk) OR #s <> :sent",
                # Reserved words in DynamoDB's expression language, so named by placeholders.
                ExpressionAttributeNames={
                    "#s": "status",
                    "#r": "reason",
                    "#msg": "message",
                    "#req": "request",
                },
                ExpressionAttributeValues=to_values(values),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


def _record(item: dict[str, Any]) -> SendRecord:
    return SendRecord(
        request=EmailSendRequested.model_validate_json(str(item["request"])),
        status=item.get("status", "requested"),
        connection_id=item.get("connection_id") or None,
        attempts=int(item.get("attempts", 0)),
        message_id=item.get("message_id") or None,
        thread_id=item.get("thread_id") or None,
        reason=item.get("reason") or None,
        message=str(item.get("message") or ""),
    )
