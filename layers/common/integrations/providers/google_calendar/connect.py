"""Google Calendar, two-way: the calendars a booking can be written to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations import http
from integrations.providers.base import Option
from integrations.providers.google_account import GoogleModule
from integrations.providers.support import api_url, bearer, paging_of, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials


def writable_calendars(spec: ProviderSpec, credentials: Credentials) -> list[Option]:
    """calendarList.list with minAccessRole=writer: the calendars events can be written to."""
    return _calendars(spec, credentials, "writer")


def readable_calendars(spec: ProviderSpec, credentials: Credentials) -> list[Option]:
    """calendarList.list with minAccessRole=reader: the calendars whose events sync can read
    (conflict calendars need not be writable: a shared team calendar blocks time too)."""
    return _calendars(spec, credentials, "reader")


def _calendars(spec: ProviderSpec, credentials: Credentials, min_role: str) -> list[Option]:
    options: list[Option] = []
    for item in http.paginate(
        paging_of(spec),
        api_url(spec, "users/me/calendarList"),
        params={"minAccessRole": min_role},
        access_token=bearer(credentials),
    ):
        calendar_id = text(item.get("id"))
        if not calendar_id:
            continue
        label = text(item.get("summaryOverride") or item.get("summary")) or calendar_id
        option = Option(value=calendar_id, label=f"{label} (primary)" if item.get("primary") else label)
        # The primary calendar first: the usual choice.
        options.insert(0, option) if item.get("primary") else options.append(option)
    return options


class GoogleCalendarModule(GoogleModule):
    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        source = spec.config_field(field)
        if source is not None and source.options_source == "calendars":
            return writable_calendars(spec, credentials)
        if source is not None and source.options_source == "readable_calendars":
            return readable_calendars(spec, credentials)
        return []


MODULE = GoogleCalendarModule()
