"""Outlook Calendar (Microsoft Graph): the user principal name labels the account; calendars to pick.

Microsoft has no per-grant revocation endpoint for this flow, so disconnect only forgets the tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.domain.connection import ExternalAccount
from integrations.providers.base import Option, ProviderModule
from integrations.providers.support import IdentityUnavailable, api_url, bearer, paging_of, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials


class OutlookCalendarModule(ProviderModule):
    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        me = http.api_call("GET", api_url(spec, "me"), access_token=access_token)
        if not isinstance(me, dict) or not me.get("id"):
            raise IdentityUnavailable("Microsoft Graph did not return the signed-in user.")
        label = text(me.get("userPrincipalName") or me.get("mail") or me.get("displayName"))
        return ExternalAccount(id=text(me["id"]), label=label or text(me["id"]))

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
