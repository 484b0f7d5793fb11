"""Google Calendar: one `events.watch` channel per synced calendar, stopped with `channels.stop`.

Each channel gets a fresh id and a random token (calendar-email.md §2.9): Google echoes the token in
`X-Goog-Channel-Token`; the lookup stores only its SHA-256, with the resource id (needed to verify and
to stop) and the expiry (channels are never renewed by Google: a renewal job watches again first).
"""

from __future__ import annotations

import secrets
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.domain.errors import ProviderUnavailable
from integrations.providers.google_calendar.webhook import LOOKUP_CHANNEL
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.signatures import secret_digest
from integrations.webhooks.subscriptions.support import api_url, best_effort, from_epoch_ms, log, of_kind

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext

# Google's default and the value we ask for: 7 days (no published maximum; store what comes back).
CHANNEL_TTL_SECONDS = 7 * 24 * 3600
PRIMARY = "primary"


def calendars_to_watch(connection: Connection) -> list[str]:
    """The calendars this connection syncs: the configured one (primary until one is chosen), plus any
    conflict calendars the configuration names (sync preferences decide which of them are read)."""
    config = connection.config
    chosen = config.get("calendar_id")
    extra = config.get("conflict_calendars")
    ids = [chosen if isinstance(chosen, str) and chosen else PRIMARY]
    if isinstance(extra, list):
        ids += [c for c in extra if isinstance(c, str) and c]
    return list(dict.fromkeys(ids))


class GoogleCalendarChannels:
    """Watch channels on the connection's calendars."""

    kinds = frozenset({LOOKUP_CHANNEL})
    # The calendars watched (calendars_to_watch): a change moves the channels.
    config_fields: frozenset[str] = frozenset({"calendar_id", "conflict_calendars"})

    def __init__(self, context: SubscriptionContext) -> None:
        self._context = context

    def subscribe(self, spec: ProviderSpec, connection: Connection, access_token: str) -> list[Lookup]:
        address = self._context.webhook_url(connection.provider)
        lookups: list[Lookup] = []
        for calendar_id in calendars_to_watch(connection):
            channel_id = uuid.uuid4().hex
            token = secrets.token_urlsafe(32)
            answer = _watch(
                api_url(spec, f"calendars/{quote(calendar_id, safe='')}/events/watch"),
                access_token,
                {
                    "id": channel_id,
                    "type": "web_hook",
                    "address": address,
                    "token": token,
                    "params": {"ttl": str(CHANNEL_TTL_SECONDS)},
                },
            )
            if answer is None:
                # Holidays, birthdays and similar calendars cannot be watched: they are polled instead.
                log.info("calendar cannot be watched", extra={"connection_id": connection.id})
                continue
            found: dict[str, Any] = answer if isinstance(answer, dict) else {}
            lookups.append(
                make_lookup(
                    connection,
                    LOOKUP_CHANNEL,
                    channel_id,
                    **{
                        Attr.TOKEN_SHA256: secret_digest(token),
                        Attr.RESOURCE_ID: str(found.get("resourceId") or ""),
                        Attr.CALENDAR_ID: calendar_id,
                        Attr.EXPIRES_AT: from_epoch_ms(found.get("expiration")),
                    },
                )
            )
        return lookups

    def unsubscribe(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> None:
        for channel in of_kind(lookups, connection.provider, LOOKUP_CHANNEL):
            body = {"id": channel.value, "resourceId": channel.attributes.get(Attr.RESOURCE_ID, "")}
            stop = partial(http.api_call, "POST", api_url(spec, "channels/stop"), access_token=access_token)
            best_effort("google channel", partial(stop, json=body))


def _watch(url: str, access_token: str, body: dict[str, Any]) -> Any:
    """events.watch; None when Google says the calendar cannot be watched (a 400 whose reason is
    `pushNotSupportedForRequestedResource`, nested in `error.errors[].reason`)."""
    import requests

    try:
        response = http.session().post(url, json=body, headers={"Authorization": f"Bearer {access_token}"})
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"Google did not answer ({type(exc).__name__}).") from None
    http.check_rate_limit(response)
    if response.status_code >= 500:
        raise ProviderUnavailable(f"Google failed with HTTP {response.status_code}.")
    payload = http.get_json(response)
    if response.status_code >= 400:
        if response.status_code == 400 and _reason(payload) == "pushNotSupportedForRequestedResource":
            return None
        raise http.ProviderApiError(response.status_code, payload)
    return payload


def _reason(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    errors = error.get("errors") if isinstance(error, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    return str(first.get("reason", "")) if isinstance(first, dict) else ""


MANAGER = GoogleCalendarChannels
