"""Microsoft Graph change-notification subscriptions, shared by the Graph providers.

Graph checks `notificationUrl` (and `lifecycleNotificationUrl`) with the `validationToken` handshake
during the very POST, so the receiver must already be deployed. Each subscription gets its own random
`clientState`, echoed in every notification; the lookup stores only its SHA-256 (calendar-email.md
§4.5). A provider's `subscriptions.py` subclasses `GraphSubscriptions` with what it watches.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.providers.graph_notifications import LOOKUP_SUBSCRIPTION
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.signatures import secret_digest
from integrations.webhooks.subscriptions.support import api_url, best_effort, iso, of_kind

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext

# Outlook messages, events and contacts allow 10,080 minutes for basic notifications; stay under it.
LIFETIME = timedelta(minutes=10_000)


class GraphSubscriptions:
    """Graph subscriptions with a random clientState each and lifecycle notifications."""

    kinds = frozenset({LOOKUP_SUBSCRIPTION})
    config_fields: frozenset[str] = frozenset()

    def __init__(self, context: SubscriptionContext) -> None:
        self._context = context

    def watched(self, connection: Connection) -> list[tuple[str, str]]:
        """(resource, changeType) of each subscription the connection needs."""
        raise NotImplementedError

    def subscribe(self, spec: ProviderSpec, connection: Connection, access_token: str) -> list[Lookup]:
        made: list[Lookup] = []
        try:
            for resource, change_type in self.watched(connection):
                made.append(self._create(spec, connection, access_token, resource, change_type))
        except Exception:
            # Nothing half-made is returned: the ones already made are deleted (best effort).
            self.unsubscribe(spec, connection, access_token, made)
            raise
        return made

    def _create(
        self, spec: ProviderSpec, connection: Connection, access_token: str, resource: str, change_type: str
    ) -> Lookup:
        url = self._context.webhook_url(connection.provider)
        client_state = secrets.token_urlsafe(48)  # 64 characters; Graph allows 128
        created = http.api_call(
            "POST",
            api_url(spec, "subscriptions"),
            access_token=access_token,
            json={
                "changeType": change_type,
                "notificationUrl": url,
                "lifecycleNotificationUrl": url,
                "resource": resource,
                "expirationDateTime": iso(self._context.clock() + LIFETIME),
                "clientState": client_state,
            },
        )
        found: dict[str, Any] = created if isinstance(created, dict) else {}
        subscription_id = str(found.get("id") or "")
        if not subscription_id:
            raise http.ProviderApiError(200, found)
        return make_lookup(
            connection,
            LOOKUP_SUBSCRIPTION,
            subscription_id,
            **{
                Attr.CLIENT_STATE_SHA256: secret_digest(client_state),
                Attr.EXPIRES_AT: str(found.get("expirationDateTime") or ""),
                # What it watches, so a removed one can be made again on its own.
                Attr.RESOURCE_ID: resource,
            },
        )

    def recreate(
        self, spec: ProviderSpec, connection: Connection, access_token: str, removed: list[Lookup]
    ) -> list[Lookup] | None:
        """New subscriptions for the ones Graph removed (`subscriptionRemoved`), on what each watched
        if the connection still needs it; None when one was stored without its resource."""
        wanted = dict(self.watched(connection))
        resources = [lookup.attributes.get(Attr.RESOURCE_ID) for lookup in removed]
        if not all(resources):
            return None
        made: list[Lookup] = []
        try:
            for resource in dict.fromkeys(r for r in resources if r):
                if resource in wanted:
                    made.append(self._create(spec, connection, access_token, resource, wanted[resource]))
        except Exception:
            self.unsubscribe(spec, connection, access_token, made)
            raise
        return made

    def reauthorize(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookup: Lookup
    ) -> Lookup | None:
        """Answer `reauthorizationRequired`: a PATCH of the expiry with a valid token reauthorizes and
        renews at once (calendar-email.md §4.5). None when Graph no longer has the subscription."""
        url = api_url(spec, f"subscriptions/{quote(lookup.value, safe='')}")
        try:
            answer = http.api_call(
                "PATCH",
                url,
                access_token=access_token,
                json={"expirationDateTime": iso(self._context.clock() + LIFETIME)},
            )
        except http.ProviderApiError as exc:
            if exc.status == 404:
                return None
            raise
        found: dict[str, Any] = answer if isinstance(answer, dict) else {}
        expires = str(found.get("expirationDateTime") or "")
        if not expires:  # the stored expiry stays: an earlier one only renews sooner
            return lookup
        return replace(lookup, attributes={**lookup.attributes, Attr.EXPIRES_AT: expires})

    def unsubscribe(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> None:
        for item in of_kind(lookups, connection.provider, LOOKUP_SUBSCRIPTION):
            url = api_url(spec, f"subscriptions/{quote(item.value, safe='')}")
            best_effort(
                "graph subscription", partial(http.api_call, "DELETE", url, access_token=access_token)
            )
