"""Connections and agencies written straight through the stores, for tests that need existing state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations import aws
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level, Tier
from integrations.domain.agency import AgencySettings
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import Credentials
from integrations.store.agencies import AgencyRepository
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import credential_ref


def repositories() -> tuple[ConnectionRepository, AgencyRepository]:
    settings = Settings.from_env()
    return (
        ConnectionRepository(aws.dynamodb(), settings.table_name),
        AgencyRepository(aws.dynamodb(), settings.table_name),
    )


def agency(agency_id: str, tier: Tier = Tier.GROWTH, **choices: object) -> AgencySettings:
    _, agencies = repositories()
    agencies.set_tier(agency_id, tier)
    if choices:
        current = agencies.get(agency_id)
        agencies.save(current.model_copy(update=choices))
    return agencies.get(agency_id)


def connection(
    *,
    provider: str = "ghl",
    agency_id: str = "agency-1",
    client_id: str | None = "client-a",
    level: Level = Level.CLIENT,
    user_id: str | None = None,
    account_id: str | None = None,
    access_token: str = "at-secret-value",
    refresh_token: str = "rt-secret-value",
    extra: dict[str, Any] | None = None,
) -> Connection:
    connections, _ = repositories()
    conn = Connection(
        id=uuid.uuid4().hex,
        provider=provider,
        level=level,
        agency_id=agency_id,
        client_id=client_id if level is not Level.AGENCY else None,
        user_id=user_id,
        account=ExternalAccount(id=account_id or f"acct-{uuid.uuid4().hex[:6]}", label=f"{provider} account"),
        token_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    connections.create(conn)
    build_vault(Settings.from_env()).put(
        credential_ref(conn),
        Credentials(
            access_token=access_token,  # type: ignore[arg-type]
            refresh_token=refresh_token,  # type: ignore[arg-type]
            expires_at=conn.token_expires_at,
            extra=extra or {},
        ),
    )
    return conn
