"""Google Calendar, one-way: pushes platform appointments; identity and revocation as every Google app."""

from __future__ import annotations

from integrations.providers.google import GoogleModule


class GoogleCalendarOnewayModule(GoogleModule):
    """Its only setting is a free-text calendar id, so there are no options to list."""


MODULE = GoogleCalendarOnewayModule()
