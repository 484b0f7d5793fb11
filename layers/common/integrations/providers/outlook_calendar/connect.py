"""Outlook Calendar (Microsoft Graph): the signed-in user (`microsoft_account`); calendars to pick."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations import http
from integrations.providers.base import Option
from integrations.providers.microsoft_account import MicrosoftModule
from integrations.providers.support import api_url, bearer, paging_of, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials


class OutlookCalendarModule(MicrosoftModule):
    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        source = spec.config_field(field)
        if source is None or source.options_source not in ("calendars", "readable_calendars"):
            return []
        # Pushes need a calendar we can edit; conflict calendars only need to be readable.
        writable = source.options_source == "calendars"
        token = bearer(credentials)
        calendars = http.paginate(paging_of(spec), api_url(spec, "me/calendars"), access_token=token)
        return [
            Option(value=text(calendar["id"]), label=text(calendar.get("name")))
            for calendar in calendars
            if calendar.get("id") and (not writable or calendar.get("canEdit", True))
        ]


MODULE = OutlookCalendarModule()
