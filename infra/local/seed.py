"""What a fresh local stack holds: demo agencies and their clients, and the provider apps' secrets.

Clients are not stored by this service (they come with the caller's claims); they are listed here so
the health answer and the portal's demo identities agree on who exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.local.resources import secret_names
from integrations.domain.access import Tier

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True, slots=True)
class SeedAgency:
    agency_id: str
    tier: Tier
    clients: tuple[str, ...]


SEED_AGENCIES: tuple[SeedAgency, ...] = (
    SeedAgency("demo-agency", Tier.GROWTH, ("client-a", "client-b")),
    SeedAgency("starter-agency", Tier.STARTER, ("client-s",)),
)


def seed_agencies(dynamodb: DynamoDBClient, table_name: str) -> None:
    """Put each demo agency on its tier with every provider enabled (idempotent across restarts)."""
    from integrations.store.agencies import AgencyRepository

    agencies = AgencyRepository(dynamodb, table_name)
    for agency in SEED_AGENCIES:
        agencies.set_tier(agency.agency_id, agency.tier)
        current = agencies.get(agency.agency_id)
        if current.enabled_providers is not None:
            agencies.save(current.model_copy(update={"enabled_providers": None}))


def describe() -> list[dict[str, Any]]:
    """The seed as plain data (shown by `/dev/health`)."""
    return [
        {"agency_id": a.agency_id, "tier": a.tier.value, "clients": list(a.clients)} for a in SEED_AGENCIES
    ]


def app_secret_values(
    template: Mapping[str, Any], stage: str, credentials: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """`<stage>/integrations/apps/<app>` secret values: the template's placeholder fields, filled in.

    Every field the template documents is kept (empty when the app has no value for it), and every
    value the app's credentials carry is added, so the functions read the shape deployed secrets have.
    """
    names = secret_names(template, stage)
    prefix = f"{stage}/integrations/apps/"
    values: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::SecretsManager::Secret":
            continue
        props = resource.get("Properties") or {}
        name = names.get(logical_id, "")
        if not name.startswith(prefix):
            continue
        app = name[len(prefix) :]
        if app not in credentials:
            continue
        placeholder = props.get("SecretString")
        fields: dict[str, Any] = (
            json.loads(placeholder) if isinstance(placeholder, str) and placeholder else {}
        )
        fields.update(credentials[app])
        values[name] = json.dumps(fields, separators=(",", ":"))
    return values
