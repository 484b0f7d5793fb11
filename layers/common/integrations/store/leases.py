"""Per-connection leases on the StateTable: token refresh (oauth.tokens.RefreshLeases), sync runs and
appointment pushes (sync.runner.Leases), each its own purpose so they never wait on each other.

Item `pk = LEASE#<connection id>#<purpose>`. The conditional put is the whole mutual exclusion: it
succeeds only when the item is absent or its `lease_until` has passed (the previous holder crashed or
timed out). TTL on `expires_at` only tidies up.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.domain.leases import LeaseHolder, LeaseOutcome
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_unavailable = unavailable_on_aws_error("The refresh lease store")


class DynamoLeases:
    """Leases of one purpose on the StateTable. The condition is the whole mutual exclusion; TTL only
    tidies up."""

    def __init__(self, client: DynamoDBClient, table_name: str, purpose: str = "refresh") -> None:
        self._db = client
        self._table = table_name
        self._purpose = purpose

    def key(self, connection_id: str) -> str:
        return f"LEASE#{connection_id}#{self._purpose}"

    @_unavailable
    def acquire(self, connection_id: str, owner: str, now: float, seconds: float) -> LeaseOutcome:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(connection_id, owner, now + seconds, backoff=False),
                # Free, or the previous holder's time is up (it crashed or timed out).
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues=to_values({":now": _num(now)}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            old = from_item(exc.response.get("Item", {}))  # type: ignore[arg-type]
            return LeaseOutcome(
                False,
                LeaseHolder(
                    owner=str(old.get("owner", "")),
                    until=float(old.get("lease_until", 0)),
                    backoff=bool(old.get("backoff", False)),
                ),
            )
        return LeaseOutcome(True)

    @_unavailable
    def release(self, connection_id: str, owner: str) -> None:
        self._conditional(
            lambda: self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": self.key(connection_id)}),
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=to_values({":me": owner}),
            )
        )

    @_unavailable
    def hold_for_backoff(self, connection_id: str, owner: str, until: float) -> None:
        """Keep the lease through a backoff so no instance calls the provider before `until`."""
        self._conditional(
            lambda: self._db.put_item(
                TableName=self._table,
                Item=self._item(connection_id, owner, until, backoff=True),
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=to_values({":me": owner}),
            )
        )

    def _item(self, connection_id: str, owner: str, until: float, *, backoff: bool) -> dict[str, Any]:
        return to_item(
            {
                "pk": self.key(connection_id),
                "kind": f"{self._purpose}_lease",
                "owner": owner,
                "lease_until": _num(until),
                "backoff": backoff,
                "expires_at": int(until) + 86400,
            }
        )

    @staticmethod
    def _conditional(write: Callable[[], Any]) -> None:
        try:
            write()
        except ClientError as exc:
            # Our lease ran out and someone else holds it now: theirs to manage.
            if not is_condition_failure(exc):
                raise


def _num(value: float) -> Any:
    return Decimal(str(round(value, 3)))
