"""Integrations service: domain, catalog, stores, OAuth, providers, webhooks and sync."""
