"""Deployment settings: the environment template.yaml (or the local stack) sets, validated at cold start.

Each function's module scope calls `Settings.from_env()` once; a missing or empty required variable
fails the import with a message naming it, instead of surfacing later as a skipped sync or a 500.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class TokenStorage(StrEnum):
    KMS = "kms"
    SECRETS_MANAGER = "secretsmanager"


class SettingsError(RuntimeError):
    """The function's environment is incomplete or wrong: a deployment fault, named precisely."""


# Required variables, by field. A plain dataclass, not a pydantic model: every function reads its
# settings at import, and building a model there costs a cold start more than the whole check.
_REQUIRED = {
    "stage": "STAGE",
    "table_name": "TABLE_NAME",
    "state_table_name": "STATE_TABLE_NAME",
    "sync_table_name": "SYNC_TABLE_NAME",
    "event_bus_name": "EVENT_BUS_NAME",
    "sync_queue_url": "SYNC_QUEUE_URL",
    "kms_key_id": "KMS_KEY_ID",
    "public_api_url": "PUBLIC_API_URL",
}
_OPTIONAL = {
    "token_storage": "TOKEN_STORAGE",
    "allowed_return_origins": "ALLOWED_RETURN_ORIGINS",
    "app_secret_prefix": "APP_SECRET_PREFIX",
    "agency_app_secret_prefix": "AGENCY_APP_SECRET_PREFIX",
    "sync_dead_letter_queue_url": "SYNC_DEAD_LETTER_QUEUE_URL",
    "inbound_email_domain": "INBOUND_EMAIL_DOMAIN",
    "inbound_mail_bucket": "INBOUND_MAIL_BUCKET",
    "inbound_mail_prefix": "INBOUND_MAIL_PREFIX",
}
_URL = re.compile(r"^https?://\S+$")


def _origins(value: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    stage: str
    table_name: str
    state_table_name: str
    sync_table_name: str
    event_bus_name: str
    sync_queue_url: str
    kms_key_id: str
    # Base URL of this API as providers see it; OAuth redirect URIs are built from it, never from Host.
    public_api_url: str
    token_storage: TokenStorage = TokenStorage.KMS
    allowed_return_origins: tuple[str, ...] = ()
    # Default to `<stage>/integrations/apps/` and `<stage>/integrations/agency-apps/` (template.yaml).
    app_secret_prefix: str = ""
    agency_app_secret_prefix: str = ""
    # Where the worker puts poison jobs at once; without it they fail until the queue's redrive moves them.
    sync_dead_letter_queue_url: str = ""
    # Domain of the BCC logging addresses (its MX points at the inbound mail receiver).
    inbound_email_domain: str = "bcc.integrations.invalid"
    # Where SES receiving stores raw messages (only the inbound mail function reads it).
    inbound_mail_bucket: str = ""
    inbound_mail_prefix: str = "inbound/"

    def __post_init__(self) -> None:
        # frozen: defaults derived from the stage are filled in once, here.
        if not self.app_secret_prefix:
            object.__setattr__(self, "app_secret_prefix", f"{self.stage}/integrations/apps/")
        if not self.agency_app_secret_prefix:
            object.__setattr__(self, "agency_app_secret_prefix", f"{self.stage}/integrations/agency-apps/")
        object.__setattr__(self, "public_api_url", self.public_api_url.rstrip("/"))

    def model_copy(self, *, update: Mapping[str, Any]) -> Settings:
        """A copy with some fields changed (the name pydantic models use, kept for callers)."""
        return replace(self, **update)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the process environment; SettingsError names every missing or bad variable."""
        env = os.environ if environ is None else environ

        def read(field: str, variable: str) -> str | None:
            # Read by its variable name; code and tests may also pass the field name.
            value = env.get(variable, env.get(field))
            return None if value is None else value.strip()

        values: dict[str, Any] = {}
        missing: list[str] = []
        for field, variable in _REQUIRED.items():
            value = read(field, variable)
            if not value:
                missing.append(variable)
            else:
                values[field] = value
        for field, variable in _OPTIONAL.items():
            value = read(field, variable)
            if value is not None:
                values[field] = value
        invalid = _convert(values)
        if missing or invalid:
            raise SettingsError(_explain(missing, invalid))
        return cls(**values)


def _convert(values: dict[str, Any]) -> list[str]:
    """Check and convert the typed values in place; what is wrong, by variable."""
    invalid: list[str] = []
    if "public_api_url" in values and not _URL.match(values["public_api_url"]):
        invalid.append("PUBLIC_API_URL (must be an http(s) URL)")
    if "token_storage" in values:
        try:
            values["token_storage"] = TokenStorage(values["token_storage"])
        except ValueError:
            choices = ", ".join(repr(t.value) for t in TokenStorage)
            invalid.append(f"TOKEN_STORAGE (must be one of {choices})")
    if "allowed_return_origins" in values:
        values["allowed_return_origins"] = _origins(values["allowed_return_origins"])
    return invalid


def _explain(missing: list[str], invalid: list[str]) -> str:
    parts = []
    if missing:
        parts.append("missing or empty environment variables: " + ", ".join(sorted(missing)))
    if invalid:
        parts.append("invalid environment variables: " + ", ".join(sorted(invalid)))
    return "Settings cannot be loaded; " + "; ".join(parts) + " (template.yaml's Globals set them all)."


__all__ = ["Settings", "SettingsError", "TokenStorage"]
