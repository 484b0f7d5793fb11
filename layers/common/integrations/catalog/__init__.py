"""Provider specs as data, validated at load; code exists only where data cannot say it."""

from integrations.catalog.loader import Catalog, load_catalog
from integrations.catalog.model import (
    AuthKind,
    Category,
    ConfigField,
    ConfigFieldType,
    OAuthSpec,
    Paging,
    PagingStyle,
    ProviderSpec,
    WebhookSpec,
)

__all__ = [
    "AuthKind",
    "Catalog",
    "Category",
    "ConfigField",
    "ConfigFieldType",
    "OAuthSpec",
    "Paging",
    "PagingStyle",
    "ProviderSpec",
    "WebhookSpec",
    "load_catalog",
]
