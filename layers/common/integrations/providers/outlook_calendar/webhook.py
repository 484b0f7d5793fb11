"""Outlook Calendar's change notifications: Graph's, verified and parsed by `graph_notifications`."""

from __future__ import annotations

from integrations.providers.graph_notifications import (
    LOOKUP_SUBSCRIPTION,
    GraphVerifier,
    GraphWebhook,
    graph_validation_token,
    parse_graph,
)

WEBHOOK = GraphWebhook()

__all__ = ["LOOKUP_SUBSCRIPTION", "WEBHOOK", "GraphVerifier", "graph_validation_token", "parse_graph"]
