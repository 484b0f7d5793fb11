"""What "Push existing data" records on the connection while it runs, and what the card reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from integrations.domain.connection import Connection

# Where the replay's progress lives in `Connection.cursors`.
CURSOR_KEY = "push_existing"


class PushProgress(BaseModel):
    """What the card shows while a replay runs and after it ends."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    state: Literal["pushing", "done", "interrupted"] = "pushing"
    total: int = 0
    pushed: int = 0
    failed: int = 0
    # The last appointment id finished (pushed or failed): the replay resumes after it.
    after: str | None = None
    calendar_id: str = ""
    calendar_label: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str = ""

    @classmethod
    def of(cls, connection: Connection) -> PushProgress | None:
        stored = connection.cursors.get(CURSOR_KEY)
        return cls.model_validate(stored) if isinstance(stored, dict) else None

    def running_summary(self) -> str:
        """Progress in words, while the replay runs."""
        where = self.calendar_label or self.calendar_id or "the calendar"
        return f"Pushing {self.pushed + self.failed} of {self.total} appointments to {where}."

    def summary(self) -> str:
        """The confirmation in words."""
        where = self.calendar_label or self.calendar_id or "the calendar"
        noun = "appointment" if self.pushed == 1 else "appointments"
        text = f"Pushed {self.pushed} {noun} to {where}"
        if self.failed:
            text += f"; {self.failed} could not be pushed"
        return text + "."
