"""HubSpot: connect (identity, properties, revocation)."""
