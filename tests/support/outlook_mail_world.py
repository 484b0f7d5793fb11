"""An Outlook mailbox connected to the sync worker (moto + the sandbox's Microsoft Graph), with the
people on Outlook's side (sandbox person-acts routes), a contacts book and a logger standing in for the
mail ports. The same contacts and platform requests as the Gmail world."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level
from integrations.domain.connection import ExternalAccount
from integrations.events import EmailParty, EmailSendRequested
from integrations.observability import get_logger
from integrations.sync.jobs import SyncJob
from tests.support import seed
from tests.support.gmail_world import AGENCY, BOOK, CLIENT, USER, Clock, Contacts, Logger
from tests.support.sandbox import Sandbox, callback_params, decide, exchange, start_authorization
from tests.support.sync_world import WorkerWorld

ACCOUNT = "casey@contoso.example"
OUTLOOK_SCOPES = ["offline_access", "openid", "User.Read", "Mail.ReadWrite", "Mail.Send"]


class OutlookMailWorld(WorkerWorld):
    provider = "outlook_mail"

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
        auth = start_authorization(sb, "microsoft", scopes=OUTLOOK_SCOPES)
        code = callback_params(decide(sb, auth, account=ACCOUNT))["code"]
        tokens = exchange(sb, "microsoft", code, verifier=auth.verifier).json()
        connection = seed.connection(
            provider="outlook_mail",
            agency_id=AGENCY,
            client_id=CLIENT,
            level=Level.USER,
            user_id=USER,
            account_id="ms-casey",
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        )
        self.container.connections.save(
            connection.model_copy(update={"account": ExternalAccount(id="ms-casey", label=ACCOUNT)})
        )
        self.connection_id = connection.id

    # --- Outlook's side ---

    def receive(self, **body: Any) -> dict[str, Any]:
        """Someone mails the person."""
        return self._post("/_sandbox/outlook/mail/receive", body)

    def send_from_outlook(self, **body: Any) -> dict[str, Any]:
        """The person writes a mail in Outlook itself."""
        return self._post("/_sandbox/outlook/mail/send", body)

    def save_draft(self, **body: Any) -> dict[str, Any]:
        return self._post("/_sandbox/outlook/mail/draft", body)

    def move(self, message_id: str, folder: str) -> None:
        self._post(f"/_sandbox/outlook/mail/messages/{message_id}/move", {"folder": folder})

    def expire_delta(self) -> None:
        self._post("/_sandbox/outlook/mail/delta/expire", {}, status=200)

    def mailbox(self) -> list[dict[str, Any]]:
        answer = self.sb.http.get(
            self.sb.url("/_sandbox/outlook/mail/mailbox"), params={"account": ACCOUNT}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["messages"]
        return found

    def sent(self) -> list[dict[str, Any]]:
        return [m for m in self.mailbox() if m["folder"] == "sentitems"]

    def contact_mail_ids(self) -> set[str]:
        """The truth: the mailbox's messages exchanged with a contact (not drafts, junk or deleted)."""
        found = set()
        for m in self.mailbox():
            if m["isDraft"] or m["folder"] in ("junkemail", "deleteditems", "drafts"):
                continue
            parties = " ".join([m["from"], m["to"], m["cc"]]).lower()
            if any(address in parties for address in BOOK):
                found.add(m["id"])
        return found

    def fault(self, **body: Any) -> None:
        answer = self.sb.http.post(
            self.sb.url("/_sandbox/faults"),
            json={"app": "microsoft", "path": "/microsoft/graph/v1.0/", **body},
        )
        assert answer.status_code == 201, answer.text

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
    return base64.b64decode(str(message["raw"]))
