"""What the Microsoft Graph providers (Outlook calendar, Outlook mail) share: the signed-in user.

Microsoft has no per-grant revocation endpoint for this flow, so disconnect only forgets the tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.domain.connection import ExternalAccount
from integrations.providers.base import ProviderModule
from integrations.providers.support import IdentityUnavailable, api_url, text

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec


class MicrosoftModule(ProviderModule):
    """Identity from Graph's `/me`: the object id identifies, the user principal name labels."""

    def identity(
        self, spec: ProviderSpec, token_answer: dict[str, Any], access_token: str
    ) -> ExternalAccount:
        me = http.api_call("GET", api_url(spec, "me"), access_token=access_token)
        if not isinstance(me, dict) or not me.get("id"):
            raise IdentityUnavailable("Microsoft Graph did not return the signed-in user.")
        label = text(me.get("userPrincipalName") or me.get("mail") or me.get("displayName"))
        return ExternalAccount(id=text(me["id"]), label=label or text(me["id"]))
