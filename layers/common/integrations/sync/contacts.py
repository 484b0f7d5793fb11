"""Contacts and calls between the platform and a client's CRMs (design §8, CRM adapters).

Platform → CRM: `Contact Upserted` / `Deleted` update a projection of the platform's contacts (newer
versions only) and queue one job per CRM connection of the client. A job reads the projection's newest
state, never the event, so redeliveries and reordering converge: the contact is upserted (matched by
its stored CRM id, else by email or phone), the CRM id is stored, and what the CRM now holds is
written to the mirror, so that our own write read back by the next pull is no change (no echo).
`Call Completed` is kept and queues one job per CRM connection: the call is logged on the contact, the
record's id stored before the deal moves, so a retry never logs twice.

CRM → platform: a pull reads the contacts changed since the cursor page by page (webhooks are hints
that start one); each contact whose fields' hash differs from the mirror's publishes `Contact Changed`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.domain.connection import Connection
from integrations.events import (
    CallCompleted,
    ContactChanged,
    ContactDeleted,
    ContactFields,
    ContactUpserted,
)
from integrations.sync.crm import (
    ContactPage,
    CrmAdapter,
    CrmContact,
    LoggedCall,
    MirroredContact,
    fields_hash,
)
from integrations.sync.jobs import JobKind, SyncJob

CONTACTS_CURSOR = "contacts"


class StoredContactLike(Protocol):
    @property
    def fields(self) -> ContactFields | None: ...

    @property
    def version(self) -> int: ...


class CrmState(Protocol):
    """store.crm.DynamoCrmStore"""

    def upsert_contact(self, event: ContactUpserted) -> bool: ...

    def delete_contact(
        self, agency_id: str, client_id: str, contact_id: str, version: int, now: datetime
    ) -> bool: ...

    def contact(self, agency_id: str, client_id: str, contact_id: str) -> StoredContactLike | None: ...

    def external_id(
        self, agency_id: str, client_id: str, contact_id: str, connection_id: str
    ) -> str | None: ...

    def linked_connections(self, agency_id: str, client_id: str, contact_id: str) -> list[str]: ...

    def link(
        self, agency_id: str, client_id: str, contact_id: str, connection_id: str, external_id: str
    ) -> None: ...

    def unlink(self, agency_id: str, client_id: str, contact_id: str, connection_id: str) -> None: ...

    def mark_pending(self, connection_id: str, contact_id: str, version: int) -> None: ...

    def pending(self, connection_id: str, limit: int) -> list[str]: ...

    def clear_pending(self, connection_id: str, contact_id: str, version: int) -> None: ...

    def mirrored(self, connection_id: str, external_ids: Sequence[str]) -> dict[str, MirroredContact]: ...

    def put_mirrored(
        self,
        connection_id: str,
        entries: Sequence[MirroredContact],
        *,
        agency_id: str,
        client_id: str | None,
    ) -> None: ...

    def delete_mirrored(
        self, connection_id: str, external_ids: Sequence[str], *, agency_id: str, client_id: str | None
    ) -> None: ...

    def save_call(self, call: CallCompleted) -> None: ...

    def call(self, agency_id: str, call_id: str) -> CallCompleted | None: ...

    def logged_call(
        self, agency_id: str, call_id: str, connection_id: str
    ) -> tuple[LoggedCall, bool] | None: ...

    def record_call(
        self, agency_id: str, call_id: str, connection_id: str, logged: LoggedCall, *, done: bool
    ) -> None: ...


class ScopeReader(Protocol):
    def list_for_scope(self, scope: Scope) -> list[Connection]: ...


@dataclass(frozen=True, slots=True)
class PullResult:
    changes: int
    done: bool
    # Stopped to let the provider's rate window refill: go on after this many seconds.
    wait_seconds: float | None = None


def client_crms(
    connections: ScopeReader, has_crm: Callable[[Connection], bool], agency_id: str, client_id: str
) -> list[Connection]:
    """The client's connections that sync a CRM."""
    scope = Scope(agency_id, Level.CLIENT, client_id, None)
    return [c for c in connections.list_for_scope(scope) if has_crm(c)]


def _job(kind: JobKind, connection: Connection | str, hint: dict[str, Any]) -> SyncJob:
    if isinstance(connection, Connection):
        return SyncJob(kind=kind, connection_id=connection.id, provider=connection.provider, hint=hint)
    return SyncJob(kind=kind, connection_id=connection, provider="", hint=hint)


def _owner(connection: Connection) -> dict[str, Any]:
    """The tenant a connection's mirror writes belong to (its address directory)."""
    return {"agency_id": connection.agency_id, "client_id": connection.client_id}


def change_id(connection_id: str, external_id: str, change_hash: str) -> str:
    """The same for every delivery (and every re-read) of one change."""
    return hashlib.sha256(f"{connection_id}\x1f{external_id}\x1f{change_hash}".encode()).hexdigest()[:32]


class CrmSync:
    """Turns platform events into CRM jobs, runs those jobs, and pulls each CRM's changed contacts."""

    def __init__(
        self,
        *,
        state: CrmState,
        crm_connections: Callable[[str, str], list[Connection]],
        publish: Callable[[Sequence[ContactChanged]], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._state = state
        self._crms = crm_connections
        self._publish = publish
        self._clock = clock

    # --- platform events → jobs ---

    def contact_upserted(self, event: ContactUpserted) -> list[SyncJob]:
        """Project the contact and name the upserts it needs (queued on redelivery too: the first
        delivery may have died before queueing, and the jobs are idempotent)."""
        self._state.upsert_contact(event)
        hint = {"agency_id": event.agency_id, "client_id": event.client_id, "contact_id": event.contact_id}
        crms = self._crms(event.agency_id, event.client_id)
        for connection in crms:
            # Marked before the job is queued: whichever job runs first sees every contact waiting.
            self._state.mark_pending(connection.id, event.contact_id, event.version)
        return [_job(JobKind.PUSH_CONTACT, c, hint) for c in crms]

    def contact_deleted(self, event: ContactDeleted) -> list[SyncJob]:
        """Tombstone the contact and name every connection holding a copy."""
        self._state.delete_contact(
            event.agency_id, event.client_id, event.contact_id, event.version, self._clock()
        )
        hint = {"agency_id": event.agency_id, "client_id": event.client_id, "contact_id": event.contact_id}
        holders = self._state.linked_connections(event.agency_id, event.client_id, event.contact_id)
        return [_job(JobKind.PUSH_CONTACT, connection_id, hint) for connection_id in sorted(set(holders))]

    def call_completed(self, event: CallCompleted) -> list[SyncJob]:
        """Keep the call and name one log job per CRM of the client."""
        self._state.save_call(event)
        hint = {"agency_id": event.agency_id, "call_id": event.call_id}
        return [_job(JobKind.LOG_CALL, c, hint) for c in self._crms(event.agency_id, event.client_id)]

    # --- jobs ---

    def push_contact(
        self, connection: Connection, adapter: CrmAdapter, agency_id: str, client_id: str, contact_id: str
    ) -> Literal["written", "deleted", "unchanged"]:
        """Bring the CRM's copy of a platform contact to the projection's newest state: new contacts
        waiting for the same CRM go with it in one batch where the CRM has one."""
        stored = self._state.contact(agency_id, client_id, contact_id)
        known = self._state.external_id(agency_id, client_id, contact_id, connection.id)
        fields = stored.fields if stored is not None else None
        version = stored.version if stored is not None else 0
        if fields is None:
            self._state.clear_pending(connection.id, contact_id, version)
            if known is None:
                return "unchanged"
            adapter.delete_contact(known)
            self._state.delete_mirrored(connection.id, [known], **_owner(connection))
            self._state.unlink(agency_id, client_id, contact_id, connection.id)
            return "deleted"
        if known is not None and self._holds(connection, known, fields):
            # Written already (by a batch another job sent, or before a redelivery).
            self._state.clear_pending(connection.id, contact_id, version)
            return "unchanged"
        if known is None and fields.email and adapter.batch_size > 1:
            batched = self._push_waiting(connection, adapter, agency_id, client_id, contact_id)
            if batched:
                return "written"
        written = adapter.upsert_contact(fields, known)
        self._written(connection, agency_id, client_id, [(contact_id, version, written)], known)
        return "written"

    def _holds(self, connection: Connection, external_id: str, fields: ContactFields) -> bool:
        """Whether the CRM's copy, as we last wrote or read it, already has these fields."""
        mirrored = self._state.mirrored(connection.id, [external_id]).get(external_id)
        return mirrored is not None and mirrored.change_hash == fields_hash(fields)

    def _push_waiting(
        self, connection: Connection, adapter: CrmAdapter, agency_id: str, client_id: str, contact_id: str
    ) -> bool:
        """Upsert this contact with the other new contacts waiting for the CRM, in batches; False
        (nothing written for this contact) when it waits alone or the CRM refused its input."""
        waiting = [c for c in self._state.pending(connection.id, adapter.batch_size) if c != contact_id]
        rows: list[tuple[str, int, ContactFields]] = []
        for candidate in [contact_id, *waiting][: adapter.batch_size]:
            stored = self._state.contact(agency_id, client_id, candidate)
            if stored is None or stored.fields is None or not stored.fields.email:
                continue  # a deletion, or no email to match by: its own job handles it
            if self._state.external_id(agency_id, client_id, candidate, connection.id) is not None:
                continue  # known to the CRM: updated by its id, by its own job
            rows.append((candidate, stored.version, stored.fields))
        if len(rows) < 2 or rows[0][0] != contact_id:
            return False
        answers = adapter.upsert_contacts([fields for _, _, fields in rows])
        done = [(cid, ver, w) for (cid, ver, _), w in zip(rows, answers, strict=True) if w is not None]
        # Refused inputs keep their marks: their own jobs try them again, and only them.
        self._written(connection, agency_id, client_id, done, None)
        return answers[0] is not None

    def _written(
        self,
        connection: Connection,
        agency_id: str,
        client_id: str,
        done: Sequence[tuple[str, int, CrmContact]],
        known: str | None,
    ) -> None:
        """Record what the CRM now holds for each contact written, then take it off the waiting list."""
        # Link first: a retry after a crash matches the contact by its id instead of creating it.
        for contact_id, _, written in done:
            if written.external_id != known:
                self._state.link(agency_id, client_id, contact_id, connection.id, written.external_id)
        self._state.put_mirrored(
            connection.id,
            [MirroredContact(w.external_id, w.change_hash, w.fields, cid) for cid, _, w in done],
            **_owner(connection),
        )
        for contact_id, version, _ in done:
            self._state.clear_pending(connection.id, contact_id, version)

    def log_call(
        self, connection: Connection, adapter: CrmAdapter, agency_id: str, call_id: str
    ) -> Literal["logged", "unchanged", "unknown"]:
        """Log the call on its contact and move the deal; each step recorded, none done twice."""
        call = self._state.call(agency_id, call_id)
        if call is None:
            return "unknown"
        progress = self._state.logged_call(agency_id, call_id, connection.id)
        if progress is not None and progress[1]:
            return "unchanged"
        external_id = self._contact_in(connection, adapter, call)
        logged = progress[0] if progress is not None else None
        if logged is None:
            logged = LoggedCall(record_id=adapter.log_call(external_id, call))
            self._state.record_call(agency_id, call_id, connection.id, logged, done=False)
        deal_id = adapter.move_deal(external_id, call)
        self._state.record_call(
            agency_id, call_id, connection.id, logged.model_copy(update={"deal_id": deal_id}), done=True
        )
        return "logged"

    def _contact_in(self, connection: Connection, adapter: CrmAdapter, call: CallCompleted) -> str:
        """The call's contact in this CRM: the linked copy, else upserted from the call's fields."""
        known = self._state.external_id(call.agency_id, call.client_id, call.contact_id, connection.id)
        if known is not None:
            return known
        written = adapter.upsert_contact(call.contact, None)
        self._state.link(call.agency_id, call.client_id, call.contact_id, connection.id, written.external_id)
        self._state.put_mirrored(
            connection.id,
            [MirroredContact(written.external_id, written.change_hash, written.fields, call.contact_id)],
            **_owner(connection),
        )
        return written.external_id

    # --- pulls ---

    def pull(
        self,
        connection: Connection,
        adapter: CrmAdapter,
        cursor: dict[str, Any] | None,
        checkpoint: Callable[[ContactPage], None],
        keep_going: Callable[[], bool],
    ) -> PullResult:
        """Read changed contacts page by page from `cursor`, publishing real changes and handing each
        page to `checkpoint` (which saves its cursor); stops early (done False) when `keep_going` says so."""
        changes = 0
        while True:
            page = adapter.changed_contacts(cursor)
            changes += self._apply(connection, page.contacts)
            cursor = page.cursor
            checkpoint(page)
            if page.last:
                return PullResult(changes, done=True)
            if page.wait_seconds is not None:
                return PullResult(changes, done=False, wait_seconds=page.wait_seconds)
            if not keep_going():
                return PullResult(changes, done=False)

    def reread(self, connection: Connection, adapter: CrmAdapter, external_ids: Sequence[str]) -> int:
        """Read hinted contacts one by one (a deletion a modified-since search cannot show)."""
        return self._apply(connection, [adapter.read_contact(i) for i in dict.fromkeys(external_ids)])

    def _apply(self, connection: Connection, contacts: Sequence[CrmContact]) -> int:
        stored = self._state.mirrored(connection.id, [c.external_id for c in contacts])
        changed: list[ContactChanged] = []
        keep: list[MirroredContact] = []
        gone: list[str] = []
        for contact in contacts:
            before = stored.get(contact.external_id)
            if contact.deleted:
                if before is not None:
                    gone.append(contact.external_id)
                    changed.append(self._changed(connection, contact, before.contact_id, "deleted"))
                continue
            if before is not None and before.change_hash == contact.change_hash:
                continue
            contact_id = before.contact_id if before is not None else None
            keep.append(MirroredContact(contact.external_id, contact.change_hash, contact.fields, contact_id))
            kind: Literal["added", "updated"] = "updated" if before is not None else "added"
            changed.append(self._changed(connection, contact, contact_id, kind))
        # Announce before the mirror moves on: a crash in between re-announces (same change_id) on the
        # next read instead of losing the change.
        if changed:
            self._publish(changed)
        self._state.put_mirrored(connection.id, keep, **_owner(connection))
        self._state.delete_mirrored(connection.id, gone, **_owner(connection))
        return len(changed)

    @staticmethod
    def _changed(
        connection: Connection,
        contact: CrmContact,
        contact_id: str | None,
        kind: Literal["added", "updated", "deleted"],
    ) -> ContactChanged:
        return ContactChanged(
            change_id=change_id(connection.id, contact.external_id, contact.change_hash),
            connection_id=connection.id,
            provider=connection.provider,
            agency_id=connection.agency_id,
            client_id=connection.client_id,
            external_id=contact.external_id,
            contact_id=contact_id,
            change=kind,
            fields=contact.fields,
        )
