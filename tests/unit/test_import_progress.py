"""The import's progress record: the provider's total when it says one, counts only when not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.sync.import_progress import ImportProgress

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _connection(cursors: dict[str, Any] | None = None) -> Connection:
    return Connection(
        id="c1",
        provider="hubspot",
        level=Level.CLIENT,
        agency_id="a1",
        client_id="cl1",
        account=ExternalAccount(id="24681357", label="Acme"),
        cursors=cursors or {},
        created_at=NOW,
        updated_at=NOW,
    )


def test_without_a_total_the_card_counts_only() -> None:
    progress = ImportProgress(started_at=NOW).after_page(100, None).after_page(100, None)

    assert (progress.imported, progress.total) == (200, None)
    assert progress.summary("Acme") == "Importing contacts from Acme: 200 so far."
    assert progress.finished(NOW).summary("Acme") == "Imported 200 contacts from Acme."


def test_the_first_pages_total_is_kept_and_never_below_what_was_read() -> None:
    progress = ImportProgress(started_at=NOW).after_page(200, 450)
    # A later page of a restarted search counts what is left: not the whole.
    progress = progress.after_page(200, 60)
    assert (progress.imported, progress.total) == (400, 450)
    # Contacts added while the import runs are imported too.
    progress = progress.after_page(90, 50)
    assert (progress.imported, progress.total) == (490, 490)
    assert progress.summary("Acme") == "Importing 490 of 490 contacts from Acme."


def test_a_connection_that_pulled_before_is_not_importing() -> None:
    assert ImportProgress.begins(_connection(), NOW) == ImportProgress(started_at=NOW)
    assert ImportProgress.begins(_connection({"contacts": {"since": 1.0}}), NOW) is None
    done = ImportProgress(started_at=NOW).finished(NOW).model_dump(mode="json")
    assert ImportProgress.begins(_connection({"contacts_import": done}), NOW) is None
    running = ImportProgress(started_at=NOW).after_page(5, None)
    stored = {"contacts_import": running.model_dump(mode="json"), "contacts": {"after": "x"}}
    assert ImportProgress.begins(_connection(stored), NOW) == running


def test_each_step_has_its_own_event_id() -> None:
    connection = _connection()
    first = ImportProgress(started_at=NOW).after_page(10, 20)
    ids = {first.event(connection).progress_id, first.after_page(10, 20).event(connection).progress_id}
    assert len(ids) == 2
    assert first.event(connection).progress_id == first.event(connection).progress_id
