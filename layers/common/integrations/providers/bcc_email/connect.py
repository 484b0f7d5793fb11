"""BCC logging address: mail sent with the owner's address in BCC is logged to their CRM.

The address's local part is the connection's account id; the lookup item written here is how the
inbound mail receiver finds the connection (and so the tenant) for a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.providers.base import ProviderModule
from integrations.providers.support import lookup

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup

LOOKUP_ADDRESS = "address"


class BccEmailModule(ProviderModule):
    inbound_lookup_kind = LOOKUP_ADDRESS

    def on_connect(
        self, spec: ProviderSpec, connection: Connection, credentials: Credentials
    ) -> list[Lookup]:
        return [lookup(connection, LOOKUP_ADDRESS, connection.account.id)]


MODULE = BccEmailModule()
