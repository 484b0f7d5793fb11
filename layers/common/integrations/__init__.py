"""The integrations package: a generic core and one folder per provider (design §3).

The core: domain, catalog, store, http, oauth, connections, webhooks, sync, portal, api, events,
metrics and the composition root, container.
"""
