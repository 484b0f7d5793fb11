"""Gmail: `users.watch` publishes mailbox changes (INBOX and SENT) to our Pub/Sub topic, pushed to the
receiver.

The topic (`projects/<p>/topics/<t>`, which must belong to the Google project of the OAuth client) is
the `topic_name` field of the `pubsub` app secret. Pushes name the mailbox by address, so the lookup
is the address; it also keeps the watch's expiry (renew daily, at most every 7 days) and history id.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.providers.gmail.webhook import LOOKUP_EMAIL
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.subscriptions import SubscriptionNotConfigured
from integrations.webhooks.subscriptions.support import api_url, best_effort, from_epoch_ms

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext


def mailbox_address(connection: Connection) -> str:
    """The address pushes name: the account label the Gmail module stores (lower case)."""
    label = connection.account.label.strip().lower()
    return label if "@" in label else ""


# What the watch covers: mail arriving (INBOX) and mail the person sends from Gmail itself (SENT).
WATCHED_LABELS = ["INBOX", "SENT"]


class GmailWatch:
    """`users.watch` on the INBOX and SENT labels, stopped with `users.stop`."""

    # The address lookup is the watch's record (its expiry). A new users.watch replaces the mailbox's
    # previous one at Google and users.stop ends every watch of the mailbox, so a renewal rewrites the
    # same lookup and nothing is ever stopped as stale.
    kinds: frozenset[str] = frozenset({LOOKUP_EMAIL})
    config_fields: frozenset[str] = frozenset()
    # A watch lasts 7 days; Google recommends renewing it daily (calendar-email.md §3.3): renew one
    # expiring within 6 days, i.e. a day after it was made. A lookup without a known expiry (the watch
    # failed at connect) is renewed at once.
    renew_ahead = timedelta(days=6)

    def __init__(self, context: SubscriptionContext) -> None:
        self._context = context

    def subscribe(self, spec: ProviderSpec, connection: Connection, access_token: str) -> list[Lookup]:
        topic = self._context.app_fields("pubsub").get("topic_name")
        if not isinstance(topic, str) or not topic:
            raise SubscriptionNotConfigured("The pubsub app secret has no topic_name for Gmail pushes.")
        address = mailbox_address(connection)
        if not address:
            raise SubscriptionNotConfigured("The Gmail connection has no mailbox address to route by.")
        answer = http.api_call(
            "POST",
            api_url(spec, "users/me/watch"),
            access_token=access_token,
            json={"topicName": topic, "labelIds": WATCHED_LABELS, "labelFilterBehavior": "include"},
        )
        found: dict[str, Any] = answer if isinstance(answer, dict) else {}
        return [
            make_lookup(
                connection,
                LOOKUP_EMAIL,
                address,
                **{
                    Attr.HISTORY_ID: str(found.get("historyId") or ""),
                    Attr.EXPIRES_AT: from_epoch_ms(found.get("expiration")),
                },
            )
        ]

    def unsubscribe(
        self, spec: ProviderSpec, connection: Connection, access_token: str, lookups: list[Lookup]
    ) -> None:
        stop = partial(http.api_call, "POST", api_url(spec, "users/me/stop"), access_token=access_token)
        best_effort("gmail watch", stop)


MANAGER = GmailWatch
