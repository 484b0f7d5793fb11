"""Mailbox adapters found by provider: `providers/<id>/sync.py` offers `MAILBOX_ADAPTER`, called as
`MAILBOX_ADAPTER(spec, connection, credentials, clock)` with `credentials: Callable[[], Credentials]`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import ModuleType

from integrations.catalog import Catalog
from integrations.domain.connection import Connection
from integrations.domain.credentials import Credentials
from integrations.providers.registry import part
from integrations.sync.mail import MailboxAdapter


class ProviderMailboxes:
    """Builds a connection's mailbox adapter; None for providers that are no mailbox."""

    def __init__(
        self,
        catalog: Catalog,
        credentials: Callable[[Connection], Credentials],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._credentials = credentials
        self._clock = clock

    def is_mailbox(self, connection: Connection) -> bool:
        return connection.provider in self._catalog and self._module(connection.provider) is not None

    def adapter(self, connection: Connection) -> MailboxAdapter | None:
        module = self._module(connection.provider) if connection.provider in self._catalog else None
        if module is None:
            return None
        spec = self._catalog.get(connection.provider)
        adapter: MailboxAdapter = module.MAILBOX_ADAPTER(
            spec, connection, lambda: self._credentials(connection), self._clock
        )
        return adapter

    @staticmethod
    def _module(provider: str) -> ModuleType | None:
        module = part(provider, "sync")
        return module if module is not None and hasattr(module, "MAILBOX_ADAPTER") else None
