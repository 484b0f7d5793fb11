"""Small helpers over the low-level DynamoDB client: typed (de)serialization and error names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def to_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def is_condition_failure(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


# Out-of-order and repeated deliveries lose here: versions only move forward.
_NEWER = "attribute_not_exists(pk) OR version < :v"


def put_if_newer(client: DynamoDBClient, table: str, item: Mapping[str, Any], version: int) -> bool:
    """Write `item` with `version` unless the same or a newer version is stored; True when written."""
    return replace_if_newer(client, table, item, version) is not None


def replace_if_newer(
    client: DynamoDBClient, table: str, item: Mapping[str, Any], version: int
) -> dict[str, Any] | None:
    """Like `put_if_newer`, answering what the write replaced ({} when nothing), or None when a newer
    version kept its place."""
    try:
        answer = client.put_item(
            TableName=table,
            Item=to_item({**item, "version": version}),
            ConditionExpression=_NEWER,
            ExpressionAttributeValues=to_values({":v": version}),
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if is_condition_failure(exc):
            return None
        raise
    return from_item(answer.get("Attributes") or {})
