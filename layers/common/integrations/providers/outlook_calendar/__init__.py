"""Outlook Calendar (Microsoft Graph): connect, change-notification subscriptions and their notifications."""
