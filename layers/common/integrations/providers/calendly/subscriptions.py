"""Calendly: one webhook subscription per connection, signed with its own random signing key.

The callback URL carries our routing id (`?subscription=<id>`), so a delivery finds its lookup item
before verification. The signing key is needed in clear to check an HMAC, so the lookup holds it
KMS-encrypted under the tenant and `purpose = webhook_signing_key` (keyring.SigningKeyBox); Calendly
does not echo it back (crm-scheduling-chat.md §3.3).
"""

from __future__ import annotations

import secrets
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.providers.calendly.webhook import LOOKUP_SUBSCRIPTION, SUBSCRIPTION_PARAM
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.subscriptions import SubscriptionNotConfigured
from integrations.webhooks.subscriptions.support import api_url, best_effort, of_kind

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext

EVENTS = ("invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted")


class CalendlySubscriptions:
    """A user-scope webhook subscription for the connected Calendly user."""

    kinds = frozenset({LOOKUP_SUBSCRIPTION})
    config_fields: frozenset[str] = frozenset()

    def __init__(self, context: SubscriptionContext) -> None:
        self._context = context

    def subscribe(self, spec: ProviderSpec, connection: Connection, access_token: str) -> list[Lookup]:
        box = self._context.signing_keys
        if box is None:
            raise SubscriptionNotConfigured("No KMS key is configured to protect Calendly signing keys.")
        routing_id = uuid.uuid4().hex
        callback = (
            f"{self._context.webhook_url(connection.provider)}"
            f"?{SUBSCRIPTION_PARAM}={quote(routing_id, safe='')}"
        )
        me = http.api_call("GET", api_url(spec, "users/me"), access_token=access_token)
        user: dict[str, Any] = me.get("resource", {}) if isinstance(me, dict) else {}
        user_uri = str(user.get("uri") or connection.account.id)
        organization = str(user.get("current_organization") or "")
        signing_key = secrets.token_urlsafe(32)
        created = http.api_call(
            "POST",
            api_url(spec, "webhook_subscriptions"),
            access_token=access_token,
            json={
                "url": callback,
                "events": list(EVENTS),
                "organization": organization,
                "user": user_uri,
                "scope": "user",
                "signing_key": signing_key,
            },
        )
        resource: dict[str, Any] = created.get("resource", {}) if isinstance(created, dict) else {}
        return [
            make_lookup(
                connection,
                LOOKUP_SUBSCRIPTION,
                routing_id,
                **{
                    Attr.SUBSCRIPTION: str(resource.get("uri") or ""),
                    Attr.SIGNING_KEY_CIPHERTEXT: box.seal(connection, signing_key),
                },
            )
        ]

    def stale(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> list[Lookup]:
        """The subscriptions Calendly no longer delivers to: `state: disabled` after a day of failed
        deliveries (there is no re-enable), or gone (404)."""
        stale: list[Lookup] = []
        for item in of_kind(lookups, connection.provider, LOOKUP_SUBSCRIPTION):
            uri = item.attributes.get(Attr.SUBSCRIPTION)
            if not uri:
                stale.append(item)
                continue
            try:
                found = http.api_call("GET", _through(spec, uri), access_token=access_token)
            except http.ProviderApiError as error:
                if error.status != 404:
                    raise
                stale.append(item)
                continue
            resource = found.get("resource") if isinstance(found, dict) else None
            if not isinstance(resource, dict) or resource.get("state") != "active":
                stale.append(item)
        return stale

    def unsubscribe(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> None:
        for item in of_kind(lookups, connection.provider, LOOKUP_SUBSCRIPTION):
            uri = item.attributes.get(Attr.SUBSCRIPTION)
            if uri:
                best_effort(
                    "calendly subscription", partial(http.api_call, "DELETE", uri, access_token=access_token)
                )


def _through(spec: ProviderSpec, uri: str) -> str:
    """A subscription URI read through the configured API base (the sandbox, or a proxy)."""
    marker = "/webhook_subscriptions/"
    return api_url(spec, "webhook_subscriptions/" + uri.split(marker, 1)[1]) if marker in uri else uri


MANAGER = CalendlySubscriptions
