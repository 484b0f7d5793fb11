"""Single-use scheduling links for the platform (design §8b, internal API): for a connection and an
event type (the config's default, else the account's first active one), a link that books once.

Provider-agnostic: the provider's `links.py` offers `LINKS` (found through the registry). A refusal
settles on the connection like a sync failure would: a deactivated event type is `config_required`
naming it, a refused grant `reauth_required`; the caller gets the same error as a 4xx.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.errors import IntegrationError, NotFound, ReauthRequired
from integrations.providers.registry import part
from integrations.sync.errors import ConfigRequired

if TYPE_CHECKING:
    from integrations.catalog import Catalog
    from integrations.domain.connection import Connection
    from integrations.sync.settle import ConnectionState


class SchedulingLinkRequest(BaseModel):
    """What the platform asks for; the tenant ids are explicit and must match the connection's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency_id: str = Field(min_length=1, max_length=128)
    client_id: str | None = Field(default=None, max_length=128)
    connection_id: str = Field(min_length=1, max_length=128)
    # An event type of the account; the connection's configured default when absent.
    event_type_id: str | None = Field(default=None, max_length=512)
    # Prefill the booking page (name, email) and tag the booking (utm_*), echoed in the booking event.
    name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=256)
    utm_source: str | None = Field(default=None, max_length=256)
    utm_campaign: str | None = Field(default=None, max_length=256)


class SchedulingLink(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    booking_url: str
    connection_id: str
    event_type_id: str
    event_type_name: str
    single_use: bool = True


class LinksNotSupported(IntegrationError):
    status = 409
    code = "links_not_supported"


class ConnectionNeedsAttention(IntegrationError):
    status = 409
    code = "connection_needs_attention"


class SchedulingLinks:
    def __init__(
        self,
        *,
        catalog: Catalog,
        connections: ConnectionState,
        access_token: Callable[[Connection], str],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._connections = connections
        self._access_token = access_token
        self._clock = clock

    def create(self, request: SchedulingLinkRequest) -> SchedulingLink:
        """A fresh single-use link; 404 for another tenant's connection, 409 when it cannot make one."""
        connection = self._connections.get(request.connection_id)
        if (
            connection is None
            or connection.agency_id != request.agency_id
            or (request.client_id is not None and connection.client_id != request.client_id)
        ):
            raise NotFound("No such connection.", code="connection_not_found")
        module = part(connection.provider, "links")
        links: Any = getattr(module, "LINKS", None) if module is not None else None
        if links is None:
            raise LinksNotSupported("This connection does not make scheduling links.")
        if connection.waits_for_person and connection.error is not None:
            raise ConnectionNeedsAttention(connection.error.message)
        spec = self._catalog.get(connection.provider)
        prefill = {
            "name": request.name or "",
            "email": request.email or "",
            "utm_source": request.utm_source or "",
            "utm_campaign": request.utm_campaign or "",
        }
        try:
            token = self._access_token(connection)
            event_type = (
                request.event_type_id
                or links.default_event_type(connection)
                or links.first_active(spec, connection, token)
            )
            if not event_type:
                raise ConfigRequired("The account has no active event type to make links for.")
            made: dict[str, str] = links.make(spec, connection, token, event_type, prefill)
        except ConfigRequired as refused:
            why = refused.message
            if request.event_type_id is None:  # the configured choice went bad: the card says so
                self._settle(connection, lambda c, now: c.config_needed(why, now))
            raise
        except ReauthRequired as lost:
            gone = lost.message
            from integrations.domain.connection import ErrorCode

            self._settle(connection, lambda c, now: c.auth_failed(ErrorCode.REAUTH_REQUIRED, gone, now))
            raise
        return SchedulingLink(connection_id=connection.id, **made)

    def _settle(self, connection: Connection, transition: Callable[[Connection, datetime], Any]) -> None:
        now = self._clock()
        self._connections.apply(connection.id, lambda c: transition(c, now))
