"""Calendly: connect (identity, event types, revocation) and webhook subscriptions."""
