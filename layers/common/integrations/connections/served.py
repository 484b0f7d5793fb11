"""Sub-accounts an agency-level connection serves for its clients (GHL: a company's locations).

An agency that installed the app at company level maps each client to one of the company's locations.
The mapping *is* a connection: a client-level connection for that location, marked `served_by` the
agency's connection, whose tokens the token manager mints from the agency's grant (cached in its own
vault item, minted again when due). Everything else (contact sync, webhooks routed by location,
workflow call requests, the card) works as for a connection the client made itself. One location
routes to one connection (its lookup), so a location can serve one client only; a client's own
connection always wins (connect.Connector): mapping a client that has one is refused, and a client
that connects its own account takes over (same account: same connection) or retires the served one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from integrations.connections.connect import public_facts
from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import Credentials
from integrations.domain.errors import Conflict, NotFound, ValidationFailed
from integrations.providers.registry import module_for

if TYPE_CHECKING:
    from datetime import datetime

    from integrations.catalog.loader import Catalog
    from integrations.connections.connect import Connector
    from integrations.connections.disconnect import Disconnector
    from integrations.domain.lookup import Lookup
    from integrations.providers.base import ProviderModule


class LookupReader(Protocol):
    """store.connections.ConnectionRepository (the part used here)."""

    def get(self, connection_id: str) -> Connection | None: ...

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None: ...


@dataclass(frozen=True, slots=True)
class SubAccount:
    """One sub-account of the agency's account and whom it serves now."""

    id: str
    label: str
    client_id: str | None = None
    connection_id: str | None = None
    # True when the agency's connection serves it; False when the client connected it itself.
    served_by_agency: bool = False


class ServedAccounts:
    def __init__(
        self,
        *,
        catalog: Catalog,
        connections: LookupReader,
        connector: Callable[[], Connector],
        disconnector: Callable[[], Disconnector],
        fresh_credentials: Callable[[Connection], Credentials],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._connections = connections
        self._connector = connector
        self._disconnector = disconnector
        self._fresh = fresh_credentials
        self._clock = clock

    def list(self, agency: Connection) -> list[SubAccount]:
        """The sub-accounts the agency's grant covers (read from the provider) and whom each serves."""
        module, kind = self._module(agency)
        found = []
        for option in module.sub_accounts(self._catalog.get(agency.provider), self._fresh(agency)):
            lookup = self._connections.get_lookup(agency.provider, kind, option.value)
            holder = self._connections.get(lookup.connection_id) if lookup is not None else None
            found.append(
                SubAccount(
                    id=option.value,
                    label=option.label,
                    client_id=holder.client_id if holder is not None else None,
                    connection_id=holder.id if holder is not None else None,
                    served_by_agency=holder is not None and holder.served_by == agency.id,
                )
            )
        return found

    def serve(self, agency: Connection, client_id: str, sub_account_id: str) -> Connection:
        """Serve the client's sub-account through the agency's connection; validated against the
        sub-accounts the provider lists for the agency's grant, and never one another client holds."""
        module, kind = self._module(agency)
        spec = self._catalog.get(agency.provider)
        credentials = self._fresh(agency)
        offered = {o.value: o.label for o in module.sub_accounts(spec, credentials)}
        if sub_account_id not in offered:
            raise ValidationFailed(
                f"The agency's {spec.name} account does not cover '{sub_account_id}'.",
                code="unknown_sub_account",
                details=[{"field": "sub_account_id", "message": "is not one of the agency's sub-accounts"}],
            )
        lookup = self._connections.get_lookup(agency.provider, kind, sub_account_id)
        if lookup is not None and lookup.client_id != client_id:
            # One sub-account routes to one connection: a second client would read the first's data.
            raise Conflict(
                f"'{offered[sub_account_id]}' is connected for another client already.",
                code="sub_account_taken",
            )
        answer = module.sub_account_token(spec, credentials, sub_account_id)
        minted = Credentials(
            access_token=SecretStr(str(answer["access_token"])),
            token_type=str(answer.get("token_type") or "Bearer"),
            expires_at=_expiry(self._clock(), answer.get("expires_in")),
            extra={"token_answer": public_facts(answer)},
        )
        scope = Scope(agency.agency_id, Level.CLIENT, client_id, None)
        account = ExternalAccount(id=sub_account_id, label=offered[sub_account_id] or sub_account_id)
        return self._connector().connect_served(spec, scope, account, minted, agency.id).connection

    def stop(self, agency: Connection, sub_account_id: str) -> None:
        """Stop serving a sub-account: its served connection is disconnected (a client's own stays)."""
        _, kind = self._module(agency)
        lookup = self._connections.get_lookup(agency.provider, kind, sub_account_id)
        holder = self._connections.get(lookup.connection_id) if lookup is not None else None
        if holder is None or holder.agency_id != agency.agency_id:
            raise NotFound("The agency's connection does not serve this sub-account.", code="not_served")
        if holder.served_by != agency.id:
            raise Conflict(
                "The client connected this account itself; only the client can disconnect it.",
                code="client_has_own_connection",
            )
        self._disconnector().disconnect(holder)

    def _module(self, agency: Connection) -> tuple[ProviderModule, str]:
        module = module_for(agency.provider)
        if agency.level is not Level.AGENCY or module.sub_account_lookup is None:
            raise Conflict(
                "Only an agency-level connection with sub-accounts can serve clients.",
                code="sub_accounts_not_supported",
            )
        return module, module.sub_account_lookup


def _expiry(now: datetime, expires_in: object) -> datetime | None:
    from datetime import timedelta

    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        return None
    try:
        return now + timedelta(seconds=float(expires_in))
    except ValueError:
        return None
