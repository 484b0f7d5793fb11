"""CRM adapters found by provider: `providers/<id>/sync.py` offers `CRM_ADAPTER`, called as
`CRM_ADAPTER(spec, connection, credentials, clock)` with `credentials: Callable[[], Credentials]`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import ModuleType

from integrations.catalog import Catalog
from integrations.domain.connection import Connection
from integrations.domain.credentials import Credentials
from integrations.providers.registry import part
from integrations.sync.crm import CrmAdapter


class ProviderCrms:
    """Builds a connection's CRM adapter; None for providers that are no CRM."""

    def __init__(
        self,
        catalog: Catalog,
        credentials: Callable[[Connection], Credentials],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._credentials = credentials
        self._clock = clock

    def has_crm(self, connection: Connection) -> bool:
        return connection.provider in self._catalog and self._module(connection) is not None

    def adapter(self, connection: Connection) -> CrmAdapter | None:
        module = self._module(connection) if connection.provider in self._catalog else None
        if module is None:
            return None
        spec = self._catalog.get(connection.provider)
        adapter: CrmAdapter = module.CRM_ADAPTER(
            spec, connection, lambda: self._credentials(connection), self._clock
        )
        return adapter

    @staticmethod
    def _module(connection: Connection) -> ModuleType | None:
        module = part(connection.provider, "sync")
        return module if module is not None and hasattr(module, "CRM_ADAPTER") else None
