"""Check a connection's config against its provider's schema and current choices, naming each bad field."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
        value, error = _checked(field, value, config)
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


def _checked(field: ConfigField, value: Any, config: dict[str, Any]) -> tuple[Any, str | None]:
    """The field's value as stored, or why it cannot be."""
    if field.depends_on and config.get(field.depends_on) in (None, ""):
        # A stage means nothing without its pipeline: its choices come from the parent.
        return value, f"needs {field.depends_on} to be chosen first"
    if field.free_keys:
        return _free_mapping(field, value)
    return value, _check(field, value)


# The values the provider offers for a field now (its options route), given the parent field's value.
Choices = Callable[[ConfigField, str | None], Iterable[str]]


def check_choices(
    provider: ProviderSpec, config: Mapping[str, Any], previous: Mapping[str, Any], choices: Choices
) -> None:
    """Raise ValidationFailed naming each field whose value the provider does not offer.

    `config` has passed `validate_config`. Only values that changed (or whose parent changed) are
    looked up: a value accepted before is not re-checked against the provider on every save.
    """
    problems: list[dict[str, str]] = []
    for field in provider.config_schema:
        value = config.get(field.name)
        if field.options_source is None or value is None:
            continue
        parent = config.get(field.depends_on) if field.depends_on else None
        if value == previous.get(field.name) and (
            field.depends_on is None or parent == previous.get(field.depends_on)
        ):
            continue
        if field.depends_on and (not isinstance(parent, str) or _named(problems, field.depends_on)):
            continue  # the parent is missing or refused already: its choices say nothing
        allowed = set(choices(field, parent))
        error = _not_offered(provider, field, value, allowed)
        if error:
            problems.append(_problem(field.name, error))
    if problems:
        raise ValidationFailed(
            f"Invalid settings for {provider.name}: " + ", ".join(p["field"] for p in problems) + ".",
            code="invalid_config",
            details=problems,
        )


def _not_offered(provider: ProviderSpec, field: ConfigField, value: Any, allowed: set[str]) -> str | None:
    if field.type is ConfigFieldType.MULTI_SELECT:
        unknown = sorted({v for v in value if v not in allowed})
        return f"names calendars {provider.name} does not list: {', '.join(unknown)}" if unknown else None
    if field.type is ConfigFieldType.MAPPING and field.free_keys:
        refused = [f"{k} → {v}" for k, v in sorted(value.items()) if v not in allowed]
        if refused:
            return f"maps to values {provider.name} does not offer for {field.label}: {', '.join(refused)}"
        return None
    if field.type is ConfigFieldType.MAPPING:
        unknown = sorted({v for v in value.values() if v not in allowed})
        return f"names properties {provider.name} does not have: {', '.join(unknown)}" if unknown else None
    if value in allowed:
        return None
    return f"is not one of the choices {provider.name} offers for {field.label}"


def _named(problems: list[dict[str, str]], name: str) -> bool:
    return any(p["field"] == name for p in problems)


def _check(field: ConfigField, value: Any) -> str | None:
    if field.type is ConfigFieldType.BOOLEAN:
        return None if isinstance(value, bool) else "must be true or false"
    if field.type is ConfigFieldType.INTEGER:
        return _check_number(field, value)
    if field.type is ConfigFieldType.MULTI_SELECT:
        return _check_many(field, value)
    if field.type in (ConfigFieldType.STRING, ConfigFieldType.SELECT):
        return _check_text(field, value)
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


# A free-key mapping's keys (call outcomes): as long as the platform's outcome field allows.
FREE_KEY_LENGTH = 64


def _free_mapping(field: ConfigField, value: Any) -> tuple[dict[str, str], str | None]:
    """The mapping with its keys lower-cased and trimmed (how the engine looks them up), or why not."""
    if not isinstance(value, dict):
        return {}, "must be an object mapping values to choices"
    if len(value) > MAX_VALUES:
        return {}, f"may map at most {MAX_VALUES} values"
    normalized: dict[str, str] = {}
    for key, chosen in value.items():
        name = normalize_key(key)
        if not 1 <= len(name) <= FREE_KEY_LENGTH:
            return {}, f"keys must be 1 to {FREE_KEY_LENGTH} characters"
        if name in normalized:
            return {}, f"maps {name} twice (keys are compared in lower case)"
        if not isinstance(chosen, str) or not chosen or len(chosen) > field.max_length:
            return {}, f"needs a choice for {name}"
        normalized[name] = chosen
    return normalized, None


def normalize_key(key: Any) -> str:
    """A free mapping key as stored and looked up: trimmed, lower case."""
    return str(key).strip().lower()


def _check_number(field: ConfigField, value: Any) -> str | None:
    # bool is an int in Python: `true` is not a number of days.
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be a whole number"
    assert field.minimum is not None and field.maximum is not None  # the catalog model says so
    if not field.minimum <= value <= field.maximum:
        return f"must be from {field.minimum} to {field.maximum}"
    return None


def _check_text(field: ConfigField, value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > field.max_length:
        return f"must be at most {field.max_length} characters"
    if field.choices and value not in field.choice_values():
        return f"must be one of: {', '.join(field.choice_values())}"
    return None


# A multi_select holds at most this many values (conflict calendars of one account, say).
MAX_VALUES = 50


def _check_many(field: ConfigField, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return "must be a list of strings"
    if len(value) > MAX_VALUES:
        return f"may name at most {MAX_VALUES} values"
    if len(set(value)) != len(value):
        return "names a value twice"
    too_long = [v for v in value if len(v) > field.max_length]
    if too_long:
        return f"values must be at most {field.max_length} characters"
    unknown = [v for v in value if field.choices and v not in field.choice_values()]
    if unknown:
        return f"has unknown values {', '.join(sorted(unknown))}; allowed: {', '.join(field.choice_values())}"
    return None


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
