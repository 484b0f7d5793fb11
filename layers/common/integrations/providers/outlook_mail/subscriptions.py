"""Outlook Mail: two Graph subscriptions, on messages created in the Inbox and in Sent Items.

Outlook message subscriptions last at most 10,080 minutes (under 7 days, basic notifications);
Microsoft advises renewing at about half-life, so maintenance makes them again once less than
3.5 days are left, and at once when their expiry is unknown (calendar-email.md §4.5).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from integrations.providers.graph_subscriptions import GraphSubscriptions

if TYPE_CHECKING:
    from integrations.domain.connection import Connection

# What the mailbox adapter reads: mail arriving, and mail the person sends from Outlook itself.
WATCHED = [
    ("me/mailFolders('Inbox')/messages", "created"),
    ("me/mailFolders('SentItems')/messages", "created"),
]


class MailSubscriptions(GraphSubscriptions):
    """New messages of the Inbox and Sent Items."""

    renew_ahead = timedelta(days=3, hours=12)

    def watched(self, connection: Connection) -> list[tuple[str, str]]:
        return list(WATCHED)


MANAGER = MailSubscriptions
