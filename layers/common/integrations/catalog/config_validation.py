"""Validate a connection's config against its provider's config schema; every bad field is named."""

from __future__ import annotations

from typing import Any

from integrations.catalog.model import ConfigField, ConfigFieldType, ProviderSpec
from integrations.domain.errors import ValidationFailed


def validate_config(provider: ProviderSpec, config: Any) -> dict[str, Any]:
    """Return the normalized config, or raise ValidationFailed listing `{field, message}` per problem."""
    if not isinstance(config, dict):
        raise ValidationFailed(
            "config must be an object.",
            code="invalid_config",
            details=[_problem("config", "must be an object")],
        )
    problems: list[dict[str, str]] = []
    known = {f.name: f for f in provider.config_schema}
    for name in config:
        if name not in known:
            problems.append(_problem(name, f"is not a setting of {provider.name}"))
    normalized: dict[str, Any] = {}
    for field in provider.config_schema:
        value = config.get(field.name)
        if value is None or value == "":
            if field.required:
                problems.append(_problem(field.name, "is required"))
            continue
        error = _check(field, value)
        if error:
            problems.append(_problem(field.name, error))
        else:
            normalized[field.name] = value
    if problems:
        raise ValidationFailed(
            f"Invalid settings for {provider.name}: " + ", ".join(p["field"] for p in problems) + ".",
            code="invalid_config",
            details=problems,
        )
    return normalized


def _check(field: ConfigField, value: Any) -> str | None:
    if field.type is ConfigFieldType.BOOLEAN:
        return None if isinstance(value, bool) else "must be true or false"
    if field.type in (ConfigFieldType.STRING, ConfigFieldType.SELECT):
        if not isinstance(value, str):
            return "must be a string"
        return None if len(value) <= field.max_length else f"must be at most {field.max_length} characters"
    # Mapping: platform key -> provider property name.
    if not isinstance(value, dict):
        return "must be an object mapping platform fields to provider properties"
    unknown = [k for k in value if k not in field.mapping_keys]
    if unknown:
        allowed = ", ".join(field.mapping_keys)
        return f"has unknown keys {', '.join(sorted(map(str, unknown)))}; allowed: {allowed}"
    bad = [k for k, v in value.items() if not isinstance(v, str) or not v or len(v) > field.max_length]
    if bad:
        return f"needs a property name for {', '.join(sorted(bad))}"
    return None


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
