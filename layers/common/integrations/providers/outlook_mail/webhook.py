"""Outlook Mail's change notifications: Graph's, verified and parsed by `graph_notifications`.

Message notifications are only wake-ups: the job reads the stored delta cursor, whatever they name.
Lifecycle notifications act on the subscription they name (`graph_notifications`): subscriptionRemoved
makes it again, reauthorizationRequired renews it in place, `missed` runs a sync.
"""

from __future__ import annotations

from integrations.providers.graph_notifications import LOOKUP_SUBSCRIPTION, GraphWebhook

WEBHOOK = GraphWebhook()

__all__ = ["LOOKUP_SUBSCRIPTION", "WEBHOOK"]
