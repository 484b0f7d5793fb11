"""Outlook Mail: the signed-in user labels the account (`microsoft_account`); nothing to pick."""

from __future__ import annotations

from integrations.providers.microsoft_account import MicrosoftModule

MODULE = MicrosoftModule()
