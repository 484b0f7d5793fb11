"""Calendly: connect (identity, event types, revocation), subscriptions and their pushes."""
