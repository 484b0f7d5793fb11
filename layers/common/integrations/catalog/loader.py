"""Load the catalog from providers.json, apply the deployment's overrides, validate everything once."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from integrations.catalog.model import ProviderSpec
from integrations.domain.errors import NotFound

OVERRIDES_ENV = "INTEGRATIONS_CATALOG_OVERRIDES"
_DATA = Path(__file__).with_name("providers.json")


class CatalogError(RuntimeError):
    """The catalog or its overrides are invalid: a deployment mistake, reported at start-up."""


class Catalog:
    """Every provider by id, in catalog order."""

    def __init__(self, providers: list[ProviderSpec]) -> None:
        self._providers = {p.id: p for p in providers}
        if len(self._providers) != len(providers):
            raise CatalogError("duplicate provider ids in the catalog")
        for provider in providers:
            unknown = set(provider.conflicts_with) - self._providers.keys()
            if unknown:
                raise CatalogError(f"{provider.id} conflicts with unknown providers {sorted(unknown)}")

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._providers.values())

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._providers

    def get(self, provider_id: str) -> ProviderSpec:
        try:
            return self._providers[provider_id]
        except KeyError:
            raise NotFound(f"Unknown integration '{provider_id}'.", code="unknown_provider") from None

    def ids(self) -> list[str]:
        return list(self._providers)


def load_catalog(overrides_path: str | None = None) -> Catalog:
    """The catalog with overrides from `overrides_path` or $INTEGRATIONS_CATALOG_OVERRIDES applied."""
    path = overrides_path if overrides_path is not None else os.environ.get(OVERRIDES_ENV, "")
    return _load(path)


@cache
def _load(overrides_path: str) -> Catalog:
    raw: list[dict[str, Any]] = json.loads(_DATA.read_text(encoding="utf-8"))["providers"]
    if overrides_path:
        raw = _apply_overrides(raw, _read_overrides(overrides_path))
    try:
        providers = TypeAdapter(list[ProviderSpec]).validate_python(raw)
    except ValidationError as exc:
        raise CatalogError(f"invalid catalog: {exc}") from exc
    return Catalog(providers)


def _read_overrides(path: str) -> Mapping[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read catalog overrides {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogError("catalog overrides must be an object keyed by provider id")
    return data


def _apply_overrides(raw: list[dict[str, Any]], overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_id = {entry["id"]: entry for entry in raw}
    unknown = set(overrides) - by_id.keys()
    if unknown:
        raise CatalogError(f"overrides name unknown providers {sorted(unknown)}")
    return [_deep_merge(entry, overrides.get(entry["id"], {})) for entry in raw]


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def clear_cache() -> None:
    """Forget loaded catalogs (tests change the overrides file between cases)."""
    _load.cache_clear()
