"""HubSpot: connect (identity, properties, revocation) and its app webhooks (v3 signatures)."""
