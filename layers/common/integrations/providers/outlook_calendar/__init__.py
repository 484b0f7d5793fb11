"""Outlook Calendar (Microsoft Graph): connect and change-notification subscriptions."""
