"""Outlook Mail (Microsoft Graph): connect, the mailbox adapter, message subscriptions, notifications."""
