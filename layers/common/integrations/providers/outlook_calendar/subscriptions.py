"""Microsoft Graph: one change-notification subscription on the connection's calendar events.

Graph checks `notificationUrl` (and `lifecycleNotificationUrl`) with the `validationToken` handshake
during this very POST, so the receiver must already be deployed. The random `clientState` is echoed in
every notification; the lookup stores only its SHA-256 (calendar-email.md §4.5).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.providers.outlook_calendar.webhook import LOOKUP_SUBSCRIPTION
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.signatures import secret_digest
from integrations.webhooks.subscriptions.support import api_url, best_effort, iso, of_kind

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext

# Outlook events allow 10,080 minutes for basic notifications; stay a little under it.
LIFETIME = timedelta(minutes=10_000)


def events_resource(connection: Connection) -> str:
    """The watched resource: the configured calendar's events, or the default calendar's."""
    calendar_id = connection.config.get("calendar_id")
    if isinstance(calendar_id, str) and calendar_id:
        return f"me/calendars/{quote(calendar_id, safe='')}/events"
    return "me/events"


class GraphSubscriptions:
    """A Graph subscription with a random clientState and lifecycle notifications."""

    kinds = frozenset({LOOKUP_SUBSCRIPTION})
    config_fields: frozenset[str] = frozenset()

    def __init__(self, context: SubscriptionContext) -> None:
        self._context = context

    def subscribe(self, spec: ProviderSpec, connection: Connection, access_token: str) -> list[Lookup]:
        url = self._context.webhook_url(connection.provider)
        client_state = secrets.token_urlsafe(48)  # 64 characters; Graph allows 128
        created = http.api_call(
            "POST",
            api_url(spec, "subscriptions"),
            access_token=access_token,
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": url,
                "lifecycleNotificationUrl": url,
                "resource": events_resource(connection),
                "expirationDateTime": iso(self._context.clock() + LIFETIME),
                "clientState": client_state,
            },
        )
        found: dict[str, Any] = created if isinstance(created, dict) else {}
        subscription_id = str(found.get("id") or "")
        if not subscription_id:
            raise http.ProviderApiError(200, found)
        return [
            make_lookup(
                connection,
                LOOKUP_SUBSCRIPTION,
                subscription_id,
                **{
                    Attr.CLIENT_STATE_SHA256: secret_digest(client_state),
                    Attr.EXPIRES_AT: str(found.get("expirationDateTime") or ""),
                },
            )
        ]

    def unsubscribe(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> None:
        for item in of_kind(lookups, connection.provider, LOOKUP_SUBSCRIPTION):
            url = api_url(spec, f"subscriptions/{quote(item.value, safe='')}")
            best_effort(
                "graph subscription", partial(http.api_call, "DELETE", url, access_token=access_token)
            )


MANAGER = GraphSubscriptions
