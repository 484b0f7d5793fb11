"""Provider specs as validated data (endpoints, scopes, PKCE, webhooks, paging, config)."""

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
