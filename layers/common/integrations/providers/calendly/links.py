"""Calendly single-use scheduling links (`POST /scheduling_links`, `max_event_count: 1`).

The event type is read first: one deactivated at Calendly (or deleted) is `config_required` naming it,
so the connection's card tells its owner to choose another. Two API calls, no paging: an agent on a
call gets the link in a fraction of a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from integrations import http
from integrations.providers.support import api_url, text
from integrations.sync.errors import ConfigRequired

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection

CONFIG_FIELD = "event_type_uri"


def _uuid_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


class CalendlyLinks:
    """`LINKS`: make a single-use booking link for an event type of the connected user."""

    def default_event_type(self, connection: Connection) -> str | None:
        value = connection.config.get(CONFIG_FIELD)
        return value if isinstance(value, str) and value else None

    def first_active(self, spec: ProviderSpec, connection: Connection, access_token: str) -> str | None:
        found = http.api_call(
            "GET",
            api_url(spec, "event_types"),
            access_token=access_token,
            params={"user": connection.account.id, "active": "true", "count": 1},
        )
        items = found.get("collection") if isinstance(found, dict) else None
        first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
        return text(first.get("uri")) or None

    def make(
        self,
        spec: ProviderSpec,
        connection: Connection,
        access_token: str,
        event_type: str,
        prefill: dict[str, str],
    ) -> dict[str, Any]:
        """{booking_url, event_type_id, event_type_name}; ConfigRequired when the type is inactive."""
        try:
            found = http.api_call(
                "GET", api_url(spec, f"event_types/{_uuid_of(event_type)}"), access_token=access_token
            )
        except http.ProviderApiError as error:
            if error.status != 404:
                raise
            raise ConfigRequired(
                "The Calendly event type for scheduling links no longer exists; choose another."
            ) from None
        resource = found.get("resource") if isinstance(found, dict) else None
        kind: dict[str, Any] = resource if isinstance(resource, dict) else {}
        name = text(kind.get("name")) or event_type
        if kind.get("active") is not True:
            raise ConfigRequired(
                f"The Calendly event type {name} is no longer active; turn it on or choose another."
            )
        created = http.api_call(
            "POST",
            api_url(spec, "scheduling_links"),
            access_token=access_token,
            json={
                "max_event_count": 1,
                "owner": text(kind.get("uri")) or event_type,
                "owner_type": "EventType",
            },
        )
        link = created.get("resource") if isinstance(created, dict) else None
        url = text(link.get("booking_url")) if isinstance(link, dict) else ""
        if not url:
            raise http.ProviderApiError(502, {"error": "no booking_url"})
        query = urlencode({k: v for k, v in prefill.items() if v})
        return {
            "booking_url": f"{url}{'&' if '?' in url else '?'}{query}" if query else url,
            "event_type_id": text(kind.get("uri")) or event_type,
            "event_type_name": name,
        }


LINKS = CalendlyLinks()
