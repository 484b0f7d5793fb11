"""Agencies' settings in the main table, with optimistic locking on the agency admin's edits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from integrations.domain.access import Tier
from integrations.domain.agency import AgencySettings
from integrations.domain.errors import VersionConflict
from integrations.store import keys
from integrations.store.dynamo import from_item, is_condition_failure, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_unavailable = unavailable_on_aws_error("The agency store")


class AgencyRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    @_unavailable
    def get(self, agency_id: str) -> AgencySettings:
        """The agency's settings; an agency the platform has not told us about gets the defaults."""
        answer = self._db.get_item(
            TableName=self._table, Key=to_values({"pk": keys.agency_pk(agency_id), "sk": keys.SETTINGS_SK})
        )
        item = answer.get("Item")
        if not item:
            return AgencySettings(agency_id=agency_id)
        data = from_item(item)
        return AgencySettings(
            agency_id=agency_id,
            tier=Tier(data.get("tier", Tier.STARTER.value)),
            enabled_providers=list(data["enabled_providers"]) if "enabled_providers" in data else None,
            staff_personal_connections=bool(data.get("staff_personal_connections", True)),
            contact_personal_connections=bool(data.get("contact_personal_connections", True)),
            version=int(data.get("version", 0)),
        )

    @_unavailable
    def save(self, settings: AgencySettings) -> AgencySettings:
        """Write the agency's choices (never the tier) if unchanged since read."""
        names = {"#v": "version", "#ep": "enabled_providers"}
        values = {
            ":staff": settings.staff_personal_connections,
            ":contacts": settings.contact_personal_connections,
            ":next": settings.version + 1,
        }
        update = (
            "SET staff_personal_connections = :staff, contact_personal_connections = :contacts, #v = :next"
        )
        if settings.enabled_providers is None:
            update += " REMOVE #ep"
        else:
            update = update.replace(", #v", ", #ep = :ep, #v")
            values[":ep"] = list(settings.enabled_providers)  # type: ignore[assignment]
        if settings.version:
            condition = "#v = :expected"
            values[":expected"] = settings.version
        else:
            condition = "attribute_not_exists(#v) OR #v = :zero"
            values[":zero"] = 0
        try:
            self._db.update_item(
                TableName=self._table,
                Key=to_values({"pk": keys.agency_pk(settings.agency_id), "sk": keys.SETTINGS_SK}),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_values(values),
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise VersionConflict("The settings changed meanwhile; reload and try again.") from None
            raise
        return settings.model_copy(update={"version": settings.version + 1})

    @_unavailable
    def set_tier(self, agency_id: str, tier: Tier) -> None:
        """Apply the platform's plan change (upsert; leaves the agency's own choices alone)."""
        self._db.update_item(
            TableName=self._table,
            Key=to_values({"pk": keys.agency_pk(agency_id), "sk": keys.SETTINGS_SK}),
            UpdateExpression="SET tier = :tier",
            ExpressionAttributeValues=to_values({":tier": tier.value}),
        )
