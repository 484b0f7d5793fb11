"""GoHighLevel's CRM adapter: contacts by modified-since search, upsert, call notes, opportunities.

- Pull: `POST /contacts/search` filtered on `dateUpdated` (range `gte` the cursor, with a second of
  overlap that the mirror's hashes absorb), sorted ascending, 100 a page, paged with `searchAfter`.
  Contacts deleted in GHL are not found by search: their `ContactDelete` webhook names the contact,
  which the run re-reads (gone: announced as deleted).
- Upsert: `PUT /contacts/{id}` when we know the contact, else `POST /contacts/upsert` (the location's
  duplicate rule matches by email, then phone), so a redelivery never makes a second contact.
- Calls are logged as a **note** on the contact (`POST /contacts/{id}/notes`): it needs only the
  contacts scope the connection already has, while the conversations API records calls only through a
  registered conversation provider (a phone system) and its own scopes.
- Mails are logged as a **note** on the contact too (`POST /contacts/{id}/notes`). The conversations
  API would show a mail in the contact's thread, but `POST /conversations/messages/inbound` needs a
  `conversationProviderId` (a custom Email conversation provider registered on the marketplace app),
  a `conversationId` and the `conversations/message.write` scope, and `POST /conversations/messages`
  with type Email *sends* the mail from GHL; `/conversations/messages/outbound` takes external calls
  only (GHL docs, Conversation Providers and "Add an external outbound call"). A note needs only
  the contacts scope every CRM connection has. Its last line names the Message-ID, so a logger that
  died before recording its note finds it again in `GET /contacts/{id}/notes` instead of writing
  a second one (GHL takes no idempotency key).
- The opportunity for the contact is created or moved with `POST /opportunities/upsert` (matched by
  contact and pipeline) into the configured pipeline and the stage `stage_by_outcome` names for the
  call's outcome (or the single `stage_id` when no mapping is set). The pipelines are read first
  (`GET /opportunities/pipelines`, once a run): a stage or pipeline GHL no longer has is
  `ConfigRequired` naming it and the outcome, raised before anything is written.
- No SDK: the official Python client imports ~670 modules (~0.8 s, provider page §1.9) for the five
  calls used here; `requests` is already loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.events import CallCompleted, ContactFields, EmailParty
from integrations.providers import crm_http
from integrations.providers.support import api_url, text
from integrations.sync.crm import (
    ContactPage,
    CrmContact,
    LoggedMail,
    Pipeline,
    StageChoice,
    missing_stage,
    stage_for,
)
from integrations.sync.errors import ConfigRequired
from integrations.sync.sources import bearer

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials

API_VERSION = "2021-07-28"
PAGE_SIZE = 100
# Re-read this much before the newest change seen: writes landing in the same instant are not missed.
OVERLAP_MS = 1000
# An import or sweep leaves this share of the location's window to live writes.
READ_RESERVE = 0.3
LIMITS = crm_http.LimitHeaders(
    max="X-RateLimit-Max", remaining="X-RateLimit-Remaining", interval_ms="X-RateLimit-Interval-Milliseconds"
)
COMPANY_PREFIX = "company:"
_FIELDS = {
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "phone": "phone",
    "company": "companyName",
}


def _fields(contact: dict[str, Any]) -> ContactFields:
    return ContactFields(**{ours: text(contact.get(theirs)) for ours, theirs in _FIELDS.items()})


def _contact(found: dict[str, Any]) -> CrmContact:
    return CrmContact(external_id=text(found.get("id")), fields=_fields(found))


def _millis(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def _total(found: dict[str, Any]) -> int | None:
    """How many contacts the search matches: `total` in the search answer (`meta.total` in the older
    list answer's shape)."""
    value = found.get("total", (found.get("meta") or {}).get("total"))
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest}s" if minutes else f"{rest}s"


def note_text(call: CallCompleted) -> str:
    """The note as a person reads it in GHL's contact page."""
    lines = [f"{call.direction.capitalize()} call, {call.outcome}, {_duration(call.duration_seconds)}"]
    if call.agent:
        lines.append(f"Agent: {call.agent}")
    if call.summary:
        lines.append(call.summary)
    if call.recording_url:
        lines.append(f"Recording: {call.recording_url}")
    return "\n".join(lines)


# GHL stores note bodies as plain text; a mail's note keeps this much of the body.
NOTE_BODY_LIMIT = 20_000
MESSAGE_ID_LINE = "Message-ID: "


def _party(party: EmailParty) -> str:
    return f"{party.name} <{party.address}>" if party.name else party.address


def mail_note_text(mail: LoggedMail) -> str:
    """The note as a person reads it in GHL's contact page; its last line names the Message-ID."""
    verb = "Email received" if mail.direction == "inbound" else "Email sent"
    lines = [f"{verb}: {mail.subject or '(no subject)'}", f"From: {_party(mail.sender)}"]
    if mail.to:
        lines.append("To: " + ", ".join(_party(p) for p in mail.to))
    if mail.cc:
        lines.append("Cc: " + ", ".join(_party(p) for p in mail.cc))
    lines.append(f"Date: {mail.sent_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    if mail.attachments:
        lines.append("Attachments: " + ", ".join(mail.attachments))
    body = mail.plain.strip()
    if len(body) > NOTE_BODY_LIMIT or mail.truncated:
        body = body[:NOTE_BODY_LIMIT].rstrip() + "\n[\u2026 cut]"
    if body:
        lines += ["", body]
    lines += ["", MESSAGE_ID_LINE + mail.internet_message_id]
    return "\n".join(lines)


class GhlCrm:
    """One GHL location's contacts, notes and opportunities."""

    def __init__(
        self, spec: ProviderSpec, connection: Connection, credentials: Callable[[], Credentials]
    ) -> None:
        self._spec = spec
        self._connection = connection
        self._token = bearer(credentials)
        self._location = connection.account.id
        # The location's pipelines, read once per run (before the first opportunity write).
        self._pipelines: list[Pipeline] | None = None

    def _call(self, method: str, path: str, *, reserve: float = 0.0, **kwargs: Any) -> Any:
        return crm_http.call(
            method,
            api_url(self._spec, path),
            token=self._token(),
            limits=LIMITS,
            headers={"Version": API_VERSION},
            reserve=reserve,
            **kwargs,
        )

    def changed_contacts(self, cursor: dict[str, Any] | None) -> ContactPage:
        """One page of contacts updated since the cursor, oldest first."""
        cursor = dict(cursor or {})
        if self._location.startswith(COMPANY_PREFIX):
            # An agency-level connection has no contacts of its own.
            return ContactPage(contacts=[], cursor=cursor, last=True)
        body: dict[str, Any] = {
            "locationId": self._location,
            "pageLimit": PAGE_SIZE,
            "sort": [{"field": "dateUpdated", "direction": "asc"}],
        }
        since = cursor.get("since")
        if isinstance(since, int | float):
            body["filters"] = [{"field": "dateUpdated", "operator": "range", "value": {"gte": int(since)}}]
        if cursor.get("after"):
            body["searchAfter"] = cursor["after"]
        answer = self._call("POST", "contacts/search", json=body, reserve=READ_RESERVE)
        wait = answer.seconds if isinstance(answer, crm_http.Paced) else None
        found = (answer.body if isinstance(answer, crm_http.Paced) else answer) or {}
        rows = [c for c in found.get("contacts", []) if isinstance(c, dict) and c.get("id")]
        newest = max([cursor.get("newest") or 0, *(m for c in rows if (m := _millis(c.get("dateUpdated"))))])
        last = len(rows) < PAGE_SIZE
        if last:
            start = max(0.0, float(newest) - OVERLAP_MS) if newest else since
            following: dict[str, Any] = {"since": start} if start is not None else {}
        else:
            following = {**cursor, "after": rows[-1].get("searchAfter"), "newest": newest}
        return ContactPage(
            contacts=[_contact(c) for c in rows],
            cursor=following,
            last=last,
            wait_seconds=wait,
            total=_total(found),
        )

    def deleted_in_hint(self, hint: dict[str, Any]) -> str | None:
        """A `ContactDelete` webhook names the contact (its `id`)."""
        if hint.get("event_type") == "ContactDelete" or hint.get("type") == "ContactDelete":
            return text(hint.get("object_id")) or None
        return None

    def read_contact(self, external_id: str) -> CrmContact:
        """GET /contacts/{id}; GHL answers a contact it no longer has with 400 (or 404)."""
        try:
            found = self._call("GET", f"contacts/{external_id}")
        except http.ProviderApiError as error:
            if error.status not in (400, 404):
                raise
            return CrmContact(external_id=external_id, fields=ContactFields(), deleted=True)
        return _contact(found.get("contact") or {"id": external_id})

    def upsert_contact(self, fields: ContactFields, external_id: str | None) -> CrmContact:
        """PUT the known contact; else upsert by the location's duplicate rule (email, then phone)."""
        values = {theirs: getattr(fields, ours) for ours, theirs in _FIELDS.items() if getattr(fields, ours)}
        if external_id:
            try:
                found = self._call("PUT", f"contacts/{external_id}", json=values)
                return _contact(found.get("contact") or {"id": external_id, **values})
            except http.ProviderApiError as error:
                if error.status not in (400, 404):
                    raise
                # Deleted in GHL since: upsert makes it again.
        found = self._call("POST", "contacts/upsert", json={"locationId": self._location, **values})
        return _contact(found.get("contact") or {})

    # GHL has no batch upsert (each contact goes through `/contacts/upsert`).
    batch_size = 1

    def upsert_contacts(self, contacts: Sequence[ContactFields]) -> list[CrmContact | None]:
        return [self.upsert_contact(fields, None) for fields in contacts]

    def delete_contact(self, external_id: str) -> None:
        try:
            self._call("DELETE", f"contacts/{external_id}")
        except http.ProviderApiError as error:
            if error.status not in (400, 404):
                raise

    def log_call(self, external_id: str, call: CallCompleted) -> str:
        """A note on the contact (see the module docstring for why not the conversations API)."""
        found = self._call("POST", f"contacts/{external_id}/notes", json={"body": note_text(call)})
        return text((found.get("note") or {}).get("id"))

    def log_email(self, external_id: str, mail: LoggedMail) -> str:
        """A note on the contact (see the module docstring for why not the conversations API)."""
        found = self._call("POST", f"contacts/{external_id}/notes", json={"body": mail_note_text(mail)})
        return text((found.get("note") or {}).get("id"))

    def logged_email(self, external_id: str, mail: LoggedMail) -> str | None:
        """The contact's note for this mail, found by its Message-ID line."""
        try:
            found = self._call("GET", f"contacts/{external_id}/notes") or {}
        except http.ProviderApiError as error:
            if error.status not in (400, 404):
                raise
            return None
        marker = MESSAGE_ID_LINE + mail.internet_message_id
        for note in found.get("notes") or []:
            if isinstance(note, dict) and text(note.get("body")).rstrip().endswith(marker):
                return text(note.get("id")) or None
        return None

    def move_deal(self, external_id: str, call: CallCompleted) -> str | None:
        """Create or move the contact's opportunity in the configured pipeline into the stage the
        config names for the call's outcome, once the pipeline and stage are known to still exist."""
        choice = stage_for(
            self._connection.config,
            call,
            pipeline="pipeline_id",
            stage="stage_id",
            by_outcome="stage_by_outcome",
        )
        if choice is None:
            return None
        self._require(choice, fresh=False)
        name = " ".join(p for p in (call.contact.first_name, call.contact.last_name) if p) or "Contact"
        body = {
            "locationId": self._location,
            "contactId": external_id,
            "pipelineId": choice.pipeline_id,
            "pipelineStageId": choice.stage_id,
            "name": f"{name} (call {call.started_at.date().isoformat()})",
            "status": "open",
        }
        try:
            found = self._call("POST", "opportunities/upsert", json=body)
        except http.ProviderApiError as error:
            if error.status not in (400, 404, 422):
                raise
            # Deleted between the check and the write: say which, else the refusal stands.
            self._require(choice, fresh=True)
            raise
        return text((found.get("opportunity") or {}).get("id"))

    def _require(self, choice: StageChoice, *, fresh: bool) -> None:
        """ConfigRequired naming the pipeline or stage GHL no longer has (pipelines read once a run)."""
        if fresh or self._pipelines is None:
            found = self._call("GET", "opportunities/pipelines", params={"locationId": self._location}) or {}
            self._pipelines = [
                Pipeline(
                    id=text(p.get("id")),
                    label=text(p.get("name")),
                    stages=frozenset(text(s.get("id")) for s in p.get("stages") or [] if isinstance(s, dict)),
                )
                for p in found.get("pipelines") or []
                if isinstance(p, dict)
            ]
        missing = missing_stage("GoHighLevel", choice, self._pipelines)
        if missing is not None:
            raise ConfigRequired(missing)


def CRM_ADAPTER(
    spec: ProviderSpec,
    connection: Connection,
    credentials: Callable[[], Credentials],
    clock: Callable[[], datetime],
) -> GhlCrm:
    """The engine's factory (`sync.crm_sources`)."""
    return GhlCrm(spec, connection, credentials)
