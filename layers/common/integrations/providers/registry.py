"""Provider id -> provider module, imported lazily so a function pays only for what it uses."""

from __future__ import annotations

import importlib

from integrations.providers.base import ProviderModule

# Module path per provider id; a provider without a module gets the do-nothing defaults.
_MODULES: dict[str, str] = {
    "ghl": "integrations.providers.ghl",
    "hubspot": "integrations.providers.hubspot",
    "google_calendar": "integrations.providers.google_calendar",
    "google_calendar_oneway": "integrations.providers.google_calendar_oneway",
    "calendly": "integrations.providers.calendly",
    "slack": "integrations.providers.slack",
    "outlook_calendar": "integrations.providers.outlook_calendar",
    "icloud_calendar": "integrations.providers.icloud_calendar",
    "gmail": "integrations.providers.gmail",
    "bcc_email": "integrations.providers.bcc_email",
}
_loaded: dict[str, ProviderModule] = {}


def register(provider_id: str, module_path: str) -> None:
    _MODULES[provider_id] = module_path
    _loaded.pop(provider_id, None)


def module_for(provider_id: str) -> ProviderModule:
    """The provider's module (its `MODULE` attribute), or the defaults."""
    if provider_id not in _loaded:
        path = _MODULES.get(provider_id)
        _loaded[provider_id] = importlib.import_module(path).MODULE if path else ProviderModule()
    return _loaded[provider_id]
