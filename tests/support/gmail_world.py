"""A Gmail mailbox connected to the sync worker (moto + the sandbox), with the people on Gmail's side
(sandbox person-acts routes), a contacts book and a logger standing in for the mail ports."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level
from integrations.domain.connection import ExternalAccount
from integrations.events import EmailLogged, EmailParty, EmailSendRequested
from integrations.mail.ports import MailToLog
from integrations.observability import get_logger
from integrations.sync.jobs import SyncJob
from tests.support import seed
from tests.support.sandbox import Sandbox, callback_params, decide, exchange, start_authorization
from tests.support.sync_world import WorkerWorld

ACCOUNT = "casey@example.com"
GMAIL_SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/gmail.modify",
]
AGENCY, CLIENT, USER = "agency-1", "client-a", "user-1"
# The client's contacts: address -> the platform's contact id.
BOOK = {"jordan@example.com": "contact-jordan", "sam@example.org": "contact-sam"}


class Clock:
    """The service's clock, moved by tests (leases and claims run out when it passes them)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class Contacts:
    """MailContacts over a fixed book."""

    def __init__(self, book: dict[str, str]) -> None:
        self.book = book
        self.asked: list[list[str]] = []

    def known(self, agency_id: str, client_id: str, addresses: Sequence[str]) -> dict[str, str]:
        self.asked.append(list(addresses))
        return {
            a: self.book[a]
            for a in addresses
            if a in self.book and (agency_id, client_id) == (AGENCY, CLIENT)
        }


class Logger:
    """MailLogger that remembers what it was handed."""

    def __init__(self) -> None:
        self.entries: list[MailToLog] = []

    def log(self, entry: MailToLog) -> Sequence[EmailLogged]:
        self.entries.append(entry)
        return []


class GmailWorld(WorkerWorld):
    provider = "gmail"

    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(sb, tmp_path, monkeypatch)
        self.clock = Clock()
        self.contacts = Contacts(dict(BOOK))
        self.logger = Logger()
        self.container = Container(Settings.from_env(), clock=self.clock)
        self.container.__dict__["events"] = self.bus
        self.container.__dict__["mail_contacts"] = self.contacts
        self.container.__dict__["mail_logger"] = self.logger
        self.worker = self.container.sync_worker(get_logger("test"))
        auth = start_authorization(sb, "google", scopes=GMAIL_SCOPES)
        code = callback_params(decide(sb, auth, account=ACCOUNT))["code"]
        tokens = exchange(sb, "google", code, verifier=auth.verifier).json()
        connection = seed.connection(
            provider="gmail",
            agency_id=AGENCY,
            client_id=CLIENT,
            level=Level.USER,
            user_id=USER,
            account_id="g-casey",
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        )
        self.container.connections.save(
            connection.model_copy(update={"account": ExternalAccount(id="g-casey", label=ACCOUNT)})
        )
        self.connection_id = connection.id

    # --- Gmail's side ---

    def receive(self, **body: Any) -> dict[str, Any]:
        """Someone mails the person."""
        return self._post("/_sandbox/gmail/receive", body)

    def send_from_gmail(self, **body: Any) -> dict[str, Any]:
        """The person writes a mail in Gmail's own page."""
        return self._post("/_sandbox/gmail/send", body)

    def relabel(self, message_id: str, add: list[str], remove: list[str]) -> None:
        answer = self.sb.http.post(
            self.sb.url(f"/_sandbox/gmail/messages/{message_id}/labels"),
            json={"account": ACCOUNT, "add": add, "remove": remove},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text

    def delete(self, message_id: str) -> None:
        answer = self.sb.http.delete(
            self.sb.url(f"/_sandbox/gmail/messages/{message_id}"), params={"account": ACCOUNT}, timeout=5
        )
        assert answer.status_code == 200, answer.text

    def expire_history(self) -> None:
        self._post("/_sandbox/gmail/history/expire", {}, status=200)

    def mailbox(self) -> dict[str, Any]:
        answer = self.sb.http.get(
            self.sb.url("/_sandbox/gmail/mailbox"), params={"account": ACCOUNT}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def sent(self) -> list[dict[str, Any]]:
        return [m for m in self.mailbox()["messages"] if "SENT" in m["labelIds"]]

    def contact_mail_ids(self) -> set[str]:
        """The truth: the mailbox's messages exchanged with a contact (not drafts, spam or trash)."""
        found = set()
        for m in self.mailbox()["messages"]:
            if {"DRAFT", "SPAM", "TRASH"} & set(m["labelIds"]):
                continue
            parties = " ".join([m["from"], m["to"], m["cc"]]).lower()
            if any(address in parties for address in BOOK):
                found.add(m["id"])
        return found

    def fault(self, **body: Any) -> None:
        answer = self.sb.http.post(
            self.sb.url("/_sandbox/faults"), json={"app": "google", "path": "/google/gmail/v1/", **body}
        )
        assert answer.status_code == 201, answer.text

    def file(self, **body: Any) -> str:
        url: str = self._post("/_sandbox/files", body)["url"]
        return url

    def _post(self, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        answer = self.sb.http.post(self.sb.url(path), json={"account": ACCOUNT, **body}, timeout=10)
        assert answer.status_code == status, answer.text
        found: dict[str, Any] = answer.json()
        return found

    # --- the platform's side ---

    def send_request(self, request_id: str = "req-1", **fields: Any) -> EmailSendRequested:
        values: dict[str, Any] = {
            "request_id": request_id,
            "agency_id": AGENCY,
            "client_id": CLIENT,
            "user_id": USER,
            "to": [EmailParty(address="jordan@example.com", name="Jordan Lee")],
            "subject": "Pricing",
            "text": "Tuesday at 10 works.\n",
            **fields,
        }
        return EmailSendRequested(**values)

    def platform_sends(self, request: EmailSendRequested) -> list[SyncJob]:
        """What the worker's bus handler does with the event: record it and queue its send job."""
        jobs = self.container.mail_sender.requested(request)
        assert self.container.jobs.send_many(jobs) == []
        return jobs

    def published(self, detail_type: str) -> list[Any]:
        return self.bus.of(detail_type)


def raw_of(message: dict[str, Any]) -> bytes:
    text = str(message["raw"])
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
