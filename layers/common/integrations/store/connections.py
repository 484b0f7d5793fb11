"""Connections, their lookup items and the agency-wide health listing in the main table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.connection import Connection, PortalStatus
from integrations.domain.errors import Conflict, VersionConflict
from integrations.domain.lookup import Lookup
from integrations.store import keys
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error
from integrations.store.pagination import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_unavailable = unavailable_on_aws_error("The connection store")


@dataclass(frozen=True, slots=True)
class HealthPage:
    connections: list[Connection]
    next_cursor: str | None


class ConnectionRepository:
    """Every read that lists is a Query on a key that begins with the caller's agency; never a Scan."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # --- reads ---

    @_unavailable
    def get(self, connection_id: str) -> Connection | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=to_values({"pk": keys.connection_pk(connection_id), "sk": keys.CONNECTION_SK}),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return _connection(item) if item else None

    @_unavailable
    def list_for_scope(self, scope: Scope) -> list[Connection]:
        """All connections of one owner at one level: a single Query on the ByOwner index."""
        return self._by_owner(
            keys.owner_partition(scope.agency_id, scope.client_id),
            keys.owner_prefix(scope.level, scope.user_id),
        )

    @_unavailable
    def list_people_of_client(self, agency_id: str, client_id: str) -> list[Connection]:
        """The own connections of every person of one client (user level): one Query on ByOwner."""
        return self._by_owner(keys.owner_partition(agency_id, client_id), f"{Level.USER.value}#")

    def _by_owner(self, partition: str, prefix: str) -> list[Connection]:
        connections: list[Connection] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.BY_OWNER,
            "KeyConditionExpression": "gsi1pk = :pk AND begins_with(gsi1sk, :prefix)",
            "ExpressionAttributeValues": to_values({":pk": partition, ":prefix": prefix}),
        }
        while True:
            answer = self._db.query(**kwargs)
            connections += [_connection(item) for item in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return connections
            kwargs["ExclusiveStartKey"] = last

    @_unavailable
    def health_page(
        self,
        agency_id: str,
        *,
        status: PortalStatus | None = None,
        provider: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> HealthPage:
        """Every connection of the agency, filtered by status (and provider) through the sort key."""
        partition = keys.health_partition(agency_id)
        values: dict[str, Any] = {":pk": partition}
        condition = "gsi2pk = :pk"
        if status is not None:
            values[":prefix"] = f"{status.value}#{provider}#" if provider else f"{status.value}#"
            condition += " AND begins_with(gsi2sk, :prefix)"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.BY_AGENCY_HEALTH,
            "KeyConditionExpression": condition,
            "Limit": limit,
        }
        if provider and status is None:
            # Without a status the provider is not a key prefix; filter within the agency's partition.
            kwargs["FilterExpression"] = "provider = :provider"
            values[":provider"] = provider
        kwargs["ExpressionAttributeValues"] = to_values(values)
        start = decode_cursor(cursor, partition_attr="gsi2pk", expected_partition=partition)
        if start:
            kwargs["ExclusiveStartKey"] = start
        answer = self._db.query(**kwargs)
        return HealthPage(
            connections=[_connection(item) for item in answer.get("Items", [])],
            next_cursor=encode_cursor(answer.get("LastEvaluatedKey"), "gsi2pk"),
        )

    @_unavailable
    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=to_values({"pk": keys.lookup_pk(provider, kind, value), "sk": keys.LOOKUP_SK}),
        )
        item = answer.get("Item")
        if not item:
            return None
        data = from_item(item)
        return Lookup(
            provider=provider,
            kind=kind,
            value=value,
            connection_id=data["connection_id"],
            agency_id=data["agency_id"],
            client_id=data.get("client_id"),
            attributes=dict(data.get("attributes", {})),
        )

    # --- writes ---

    @_unavailable
    def create(self, connection: Connection) -> Connection:
        connection.version = 1
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_item(connection),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise Conflict("A connection with this id exists.", code="connection_exists") from None
            raise
        return connection

    @_unavailable
    def save(self, connection: Connection) -> Connection:
        """Write a changed connection if nobody else has since it was read (optimistic locking)."""
        expected = connection.version
        connection.version = expected + 1
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_item(connection),
                ConditionExpression="#v = :expected",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues=to_values({":expected": expected}),
            )
        except ClientError as exc:
            connection.version = expected
            if is_condition_failure(exc):
                raise VersionConflict("The connection changed meanwhile; reload and try again.") from None
            raise
        return connection

    @_unavailable
    def put_lookups(self, connection: Connection, lookups: list[Lookup]) -> None:
        """Write lookup items and remember their keys on the connection, in one transaction."""
        if not lookups:
            return
        new_keys = [lookup.key for lookup in lookups]
        connection.lookup_keys = sorted(set(connection.lookup_keys) | set(new_keys))
        expected = connection.version
        connection.version = expected + 1
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": lookup.key,
                            "sk": keys.LOOKUP_SK,
                            "connection_id": lookup.connection_id,
                            "agency_id": lookup.agency_id,
                            "client_id": lookup.client_id,
                            "attributes": lookup.attributes or None,
                        }
                    ),
                }
            }
            for lookup in lookups
        ]
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _item(connection),
                    "ConditionExpression": "#v = :expected",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": to_values({":expected": expected}),
                }
            }
        )
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            connection.version = expected
            if is_condition_failure(exc):
                raise VersionConflict("The connection changed meanwhile; reload and try again.") from None
            raise

    @_unavailable
    def remove_lookups(self, connection: Connection, lookups: list[Lookup]) -> None:
        """Delete lookup items (replaced subscriptions) and forget their keys on the connection, together."""
        # One transaction holds 100 items: a connection has a handful of subscriptions, never that many.
        gone = set(sorted({lookup.key for lookup in lookups} & set(connection.lookup_keys))[:99])
        if not gone:
            return
        expected = connection.version
        remaining = sorted(set(connection.lookup_keys) - gone)
        connection.lookup_keys, connection.version = remaining, expected + 1
        items: list[Any] = [
            {"Delete": {"TableName": self._table, "Key": to_values({"pk": key, "sk": keys.LOOKUP_SK})}}
            for key in sorted(gone)
        ]
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _item(connection),
                    "ConditionExpression": "#v = :expected",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": to_values({":expected": expected}),
                }
            }
        )
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            connection.lookup_keys, connection.version = sorted(set(remaining) | gone), expected
            if is_condition_failure(exc):
                raise VersionConflict("The connection changed meanwhile; reload and try again.") from None
            raise

    @_unavailable
    def delete(self, connection: Connection) -> None:
        """Delete the connection, its credentials item and its lookups together."""
        deletes: list[Any] = [
            {"Delete": {"TableName": self._table, "Key": to_values({"pk": key, "sk": keys.LOOKUP_SK})}}
            for key in connection.lookup_keys
        ]
        deletes.append(
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": to_values({"pk": keys.connection_pk(connection.id), "sk": keys.CREDENTIALS_SK}),
                }
            }
        )
        deletes.append(
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": to_values({"pk": keys.connection_pk(connection.id), "sk": keys.CONNECTION_SK}),
                }
            }
        )
        # A transaction holds at most 100 items; lookups beyond that go first, in chunks.
        while len(deletes) > 100:
            chunk, deletes = deletes[:99], deletes[99:]
            self._db.transact_write_items(TransactItems=chunk)
        self._db.transact_write_items(TransactItems=deletes)


def _item(connection: Connection) -> dict[str, Any]:
    status = connection.status.value
    values: dict[str, Any] = {
        "pk": keys.connection_pk(connection.id),
        "sk": keys.CONNECTION_SK,
        "gsi1pk": keys.owner_partition(connection.agency_id, connection.client_id),
        "gsi1sk": keys.owner_sort(connection.level, connection.user_id, connection.provider, connection.id),
        "gsi2pk": keys.health_partition(connection.agency_id),
        "gsi2sk": keys.health_sort(status, connection.provider, connection.client_id, connection.id),
        "agency_id": connection.agency_id,
        "provider": connection.provider,
        "status": status,
        "version": connection.version,
        "data": connection.model_dump_json(),
    }
    if connection.next_sync_at is not None:
        # Sparse, sharded index of due connections; absent when nothing is scheduled.
        values["gsi3pk"] = f"DUE#{hash_shard(connection.id)}"
        values["gsi3sk"] = _iso(connection.next_sync_at)
    return to_item(values)


def _connection(item: dict[str, Any]) -> Connection:
    data = from_item(item)
    connection = Connection.model_validate_json(data["data"])
    connection.version = int(data["version"])
    return connection


DUE_SHARDS = 8


def hash_shard(connection_id: str) -> int:
    """Stable shard of a connection in the DueForSync index (spreads hot partitions)."""
    return sum(connection_id.encode()) % DUE_SHARDS


def _iso(moment: datetime) -> str:
    return moment.isoformat()


__all__ = ["ConnectionRepository", "HealthPage", "Level", "Lookup", "VersionConflict"]
