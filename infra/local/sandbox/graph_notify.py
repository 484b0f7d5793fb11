"""Microsoft Graph change notifications: one `{"value": [...]}` POST per live subscription watching the
changed calendar, sent from the push thread (calendar-email.md §4.5, basic notifications: ids only)."""

from __future__ import annotations

import json
from typing import Any

from infra.local.sandbox import identity
from infra.local.sandbox.core import Sandbox
from infra.local.sandbox.graph_store import graph_time_text, store_of
from infra.local.sandbox.push import Delivery


def notify(sb: Sandbox, account: str, calendar: str, event_id: str, change: str, etag: Any) -> None:
    """Queue one notification per live subscription on this calendar that asked for `change`
    (callers hold the state lock)."""
    now = sb.now()
    profile = identity.microsoft_profile(account)
    path = f"Users/{profile['id']}/Events/{event_id}"
    for subscription in store_of(sb).subscriptions.values():
        if (
            subscription.deleted
            or subscription.expires_at <= now
            or subscription.account != account
            or subscription.calendar_id != calendar
            or change not in subscription.change_types
        ):
            continue
        item: dict[str, Any] = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_time_text(subscription.expires_at),
            "changeType": change,
            "resource": path,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": path,
                "@odata.etag": etag,
                "id": event_id,
            },
            "clientState": subscription.client_state,
            "tenantId": profile["tid"],
        }
        raw = json.dumps({"value": [item]}, separators=(",", ":")).encode()
        sb.pushes.submit(
            Delivery(
                url=subscription.notification_url,
                headers={"Content-Type": "application/json; charset=utf-8"},
                body=raw,
                label=f"microsoft:{change}",
            )
        )


# What Graph sends to a subscription's lifecycleNotificationUrl (calendar-email.md §4.5).
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def lifecycle(sb: Sandbox, subscriptions: list[Any], event: str) -> int:
    """Send `event` to the lifecycle URL of each subscription (callers hold the state lock). A
    `subscriptionRemoved` one is gone at Graph from then on, as there: it is no longer listed, renewed
    nor deleted (404), and sends nothing more."""
    sent = 0
    for subscription in subscriptions:
        item = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_time_text(subscription.expires_at),
            "tenantId": identity.microsoft_profile(subscription.account)["tid"],
            "clientState": subscription.client_state,
            "lifecycleEvent": event,
        }
        if event == "subscriptionRemoved":
            subscription.deleted = True
        raw = json.dumps({"value": [item]}, separators=(",", ":")).encode()
        sb.pushes.submit(
            Delivery(
                url=subscription.lifecycle_url or subscription.notification_url,
                headers={"Content-Type": "application/json; charset=utf-8"},
                body=raw,
                label=f"microsoft:{event}",
            )
        )
        sent += 1
    return sent
