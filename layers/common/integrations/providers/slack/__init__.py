"""Slack: connect (bot identity, channels, revocation)."""
