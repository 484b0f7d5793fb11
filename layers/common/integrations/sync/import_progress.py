"""What a CRM's initial contact import records on the connection while it runs, and what the card and
the `Sync Progress` events read back.

The import is the first pull of a connection (no contacts cursor yet). It runs page by page over
several jobs when it must (out of time, pacing the provider's window); each page moves this record on
in the same write as the cursor, so a resumed import counts on from where it stopped. The total comes
from the provider when it says (HubSpot's search `total`, GHL's `total`), read on the import's first
page; without one the card shows counts only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from integrations.domain.connection import Connection
from integrations.events import SyncProgress
from integrations.sync.contacts import CONTACTS_CURSOR

# Where the import's progress lives in `Connection.cursors`.
CURSOR_KEY = "contacts_import"


class ImportProgress(BaseModel):
    """How far the initial import is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    state: Literal["importing", "done"] = "importing"
    imported: int = 0
    # Contacts the provider said the import covers; None when it does not say.
    total: int | None = None
    pages: int = 0
    started_at: datetime
    finished_at: datetime | None = None

    @classmethod
    def of(cls, connection: Connection) -> ImportProgress | None:
        stored = connection.cursors.get(CURSOR_KEY)
        return cls.model_validate(stored) if isinstance(stored, dict) else None

    @classmethod
    def begins(cls, connection: Connection, now: datetime) -> ImportProgress | None:
        """The import this pull continues or begins; None when the connection imported already."""
        found = cls.of(connection)
        if found is not None:
            return found if found.state == "importing" else None
        if connection.cursors.get(CONTACTS_CURSOR) is not None:
            # Connected before imports were recorded: its first import is long over.
            return None
        return cls(started_at=now)

    def after_page(self, contacts: int, total: int | None) -> ImportProgress:
        """One more page read; the first page's total is kept (later pages of a restarted search
        count what is left, not the whole)."""
        known = self.total if self.total is not None or self.pages else total
        imported = self.imported + contacts
        return self.model_copy(
            update={
                "imported": imported,
                "pages": self.pages + 1,
                # Contacts added while the import runs are imported too: never show 105 of 100.
                "total": max(known, imported) if known is not None else None,
            }
        )

    def finished(self, now: datetime) -> ImportProgress:
        return self.model_copy(
            update={
                "state": "done",
                "finished_at": now,
                "total": self.imported if self.total is None else max(self.total, self.imported),
            }
        )

    def event(self, connection: Connection) -> SyncProgress:
        """The bus's copy; its id is the same for every delivery of one step."""
        event: SyncProgress = SyncProgress.of(
            connection,
            progress_id=f"{connection.id}:import:{self.started_at.isoformat()}:{self.pages}:{self.state}",
            kind="import",
            state="done" if self.state == "done" else "running",
            done=self.imported,
            total=self.total,
            message=self.summary(connection.account.label),
        )
        return event

    def summary(self, where: str) -> str:
        """Progress in words: "Importing 200 of 10,000 contacts from …" or the confirmation."""
        noun = "contact" if (self.total or self.imported) == 1 else "contacts"
        if self.state == "done":
            return f"Imported {self.imported:,} {noun} from {where}."
        if self.total is not None:
            return f"Importing {self.imported:,} of {self.total:,} {noun} from {where}."
        return f"Importing contacts from {where}: {self.imported:,} so far."
