"""Slack: connect (bot identity, channels, revocation) and its Events API pushes."""
