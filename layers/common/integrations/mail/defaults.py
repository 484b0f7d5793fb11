"""The mail ports with nothing behind them: no address is a contact, nothing is logged.

What the composition root wires while no contacts directory or CRM logger is configured: under the
privacy rule that makes every mailbox message private, so nothing is published or stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from integrations.events import EmailLogged
from integrations.mail.ports import MailToLog


class NoContacts:
    """MailContacts that knows nobody."""

    def known(self, agency_id: str, client_id: str, addresses: Sequence[str]) -> dict[str, str]:
        return {}


class NoLogging:
    """MailLogger that logs nothing."""

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        return []
