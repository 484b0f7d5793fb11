"""Deployment settings: the environment template.yaml (or the local stack) sets, validated at cold start.

Each function's module scope calls `Settings.from_env()` once; a missing or empty required variable
fails the import with a message naming it, instead of surfacing later as a skipped sync or a 500.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)


class TokenStorage(StrEnum):
    KMS = "kms"
    SECRETS_MANAGER = "secretsmanager"


class SettingsError(RuntimeError):
    """The function's environment is incomplete or wrong: a deployment fault, named precisely."""


def _origins(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    return value


def _env(name: str, field: str) -> Any:
    # Read from the environment by its variable name; code and tests may also pass the field name.
    return Field(validation_alias=AliasChoices(name, field))


_Required = Annotated[str, Field(min_length=1)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    stage: _Required = _env("STAGE", "stage")
    table_name: _Required = _env("TABLE_NAME", "table_name")
    state_table_name: _Required = _env("STATE_TABLE_NAME", "state_table_name")
    sync_table_name: _Required = _env("SYNC_TABLE_NAME", "sync_table_name")
    event_bus_name: _Required = _env("EVENT_BUS_NAME", "event_bus_name")
    sync_queue_url: _Required = _env("SYNC_QUEUE_URL", "sync_queue_url")
    kms_key_id: _Required = _env("KMS_KEY_ID", "kms_key_id")
    # Base URL of this API as providers see it; OAuth redirect URIs are built from it, never from Host.
    public_api_url: Annotated[str, Field(pattern=r"^https?://\S+$")] = _env(
        "PUBLIC_API_URL", "public_api_url"
    )
    token_storage: TokenStorage = Field(
        default=TokenStorage.KMS, validation_alias=AliasChoices("TOKEN_STORAGE", "token_storage")
    )
    allowed_return_origins: Annotated[tuple[str, ...], BeforeValidator(_origins)] = Field(
        default=(), validation_alias=AliasChoices("ALLOWED_RETURN_ORIGINS", "allowed_return_origins")
    )
    # Default to `<stage>/integrations/apps/` and `<stage>/integrations/agency-apps/` (template.yaml).
    app_secret_prefix: str = Field(
        default="", validation_alias=AliasChoices("APP_SECRET_PREFIX", "app_secret_prefix")
    )
    agency_app_secret_prefix: str = Field(
        default="", validation_alias=AliasChoices("AGENCY_APP_SECRET_PREFIX", "agency_app_secret_prefix")
    )
    # Where the worker puts poison jobs at once; without it they fail until the queue's redrive moves them.
    sync_dead_letter_queue_url: str = Field(
        default="", validation_alias=AliasChoices("SYNC_DEAD_LETTER_QUEUE_URL", "sync_dead_letter_queue_url")
    )
    # Domain of the BCC logging addresses (its MX points at the inbound mail receiver).
    inbound_email_domain: str = Field(
        default="bcc.integrations.invalid",
        validation_alias=AliasChoices("INBOUND_EMAIL_DOMAIN", "inbound_email_domain"),
    )

    @model_validator(mode="after")
    def _defaults_from_stage(self) -> Settings:
        # frozen: defaults derived from the stage are filled in once, here.
        if not self.app_secret_prefix:
            object.__setattr__(self, "app_secret_prefix", f"{self.stage}/integrations/apps/")
        if not self.agency_app_secret_prefix:
            object.__setattr__(self, "agency_app_secret_prefix", f"{self.stage}/integrations/agency-apps/")
        object.__setattr__(self, "public_api_url", self.public_api_url.rstrip("/"))
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the process environment; SettingsError names every missing or bad variable."""
        env = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    missing: list[str] = []
    invalid: list[str] = []
    for error in exc.errors():
        name = _variable(error.get("loc", ()))
        if error.get("type") in ("missing", "string_too_short"):
            missing.append(name)
        else:
            invalid.append(f"{name} ({error.get('msg', 'invalid')})")
    parts = []
    if missing:
        parts.append("missing or empty environment variables: " + ", ".join(sorted(missing)))
    if invalid:
        parts.append("invalid environment variables: " + ", ".join(sorted(invalid)))
    return "Settings cannot be loaded; " + "; ".join(parts) + " (template.yaml's Globals set them all)."


def _variable(loc: tuple[Any, ...]) -> str:
    """The environment variable a field reads: its first alias."""
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return field.upper()
