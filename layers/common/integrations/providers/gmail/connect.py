"""Gmail: Pub/Sub pushes name the mailbox by address, so the address routes them to the connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.providers.google_account import GoogleModule
from integrations.providers.support import lookup

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup

LOOKUP_EMAIL = "email"


class GmailModule(GoogleModule):
    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        address = connection.account.label.lower()
        return [lookup(connection, LOOKUP_EMAIL, address)] if "@" in address else []


MODULE = GmailModule()
