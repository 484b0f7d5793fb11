"""Provider plug-ins found by id: `integrations.providers.<folder>.<part>`, imported on first use.

The folder is the catalog entry's `module` (entries that share an implementation, such as Google
Calendar's one-way entry, name the folder they use) or else its id. A part a provider lacks (no
`subscriptions.py`, no `sync.py`) is simply absent; no table lists who has what.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType

from integrations.catalog import load_catalog
from integrations.providers.base import ProviderModule

_PACKAGE = "integrations.providers"


def folder_of(provider_id: str) -> str:
    """The plug-in folder that implements a catalog entry."""
    catalog = load_catalog()
    if provider_id in catalog:
        spec = catalog.get(provider_id)
        return spec.module or spec.id
    return provider_id


@cache
def part(provider_id: str, name: str) -> ModuleType | None:
    """The provider's `name` module (connect, webhook, subscriptions, sync), or None when it has none."""
    path = f"{_PACKAGE}.{folder_of(provider_id)}.{name}"
    try:
        found = importlib.util.find_spec(path)
    except ModuleNotFoundError:
        return None
    return importlib.import_module(path) if found is not None else None


def module_for(provider_id: str) -> ProviderModule:
    """The provider's connect hooks (its `connect.MODULE`), or the do-nothing defaults."""
    connect = part(provider_id, "connect")
    module = getattr(connect, "MODULE", None) if connect is not None else None
    return module if isinstance(module, ProviderModule) else ProviderModule()


def clear_cache() -> None:
    """Forget found plug-ins (tests that swap the catalog)."""
    part.cache_clear()
