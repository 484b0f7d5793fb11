"""Deployment settings read from the environment that template.yaml (or the local stack) sets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum


class TokenStorage(StrEnum):
    KMS = "kms"
    SECRETS_MANAGER = "secretsmanager"


@dataclass(frozen=True, slots=True)
class Settings:
    stage: str
    table_name: str
    state_table_name: str
    event_bus_name: str
    sync_queue_url: str
    kms_key_id: str
    token_storage: TokenStorage
    # Base URL of this API as providers see it; OAuth redirect URIs are built from it, never from Host.
    public_api_url: str
    allowed_return_origins: tuple[str, ...] = field(default_factory=tuple)
    app_secret_prefix: str = ""
    agency_app_secret_prefix: str = ""
    # Domain of the BCC logging addresses (its MX points at the inbound mail receiver).
    inbound_email_domain: str = "bcc.integrations.invalid"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        stage = env.get("STAGE", "dev")
        return cls(
            stage=stage,
            table_name=env.get("TABLE_NAME", f"integrations-{stage}-main"),
            state_table_name=env.get("STATE_TABLE_NAME", f"integrations-{stage}-state"),
            event_bus_name=env.get("EVENT_BUS_NAME", f"integrations-{stage}"),
            sync_queue_url=env.get("SYNC_QUEUE_URL", ""),
            kms_key_id=env.get("KMS_KEY_ID", ""),
            token_storage=TokenStorage(env.get("TOKEN_STORAGE", TokenStorage.KMS.value)),
            public_api_url=env.get("PUBLIC_API_URL", "").rstrip("/"),
            allowed_return_origins=tuple(
                o.strip().rstrip("/") for o in env.get("ALLOWED_RETURN_ORIGINS", "").split(",") if o.strip()
            ),
            app_secret_prefix=env.get("APP_SECRET_PREFIX", f"{stage}/integrations/apps/"),
            agency_app_secret_prefix=env.get(
                "AGENCY_APP_SECRET_PREFIX", f"{stage}/integrations/agency-apps/"
            ),
        )
