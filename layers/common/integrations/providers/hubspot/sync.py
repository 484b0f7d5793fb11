"""HubSpot's CRM adapter: contacts by `lastmodifieddate` search, upsert by email, call engagements and
deal stages, with the connection's contact property mapping applied both ways.

- Pull: a `contact.deletion` webhook's contact is re-read (404: deleted); then
  `POST /crm/v3/objects/contacts/search`, `lastmodifieddate` GTE the cursor (a second of
  overlap, absorbed by the mirror's hashes), ascending, 200 a page, paged with `after`. A search stops
  at 10,000 results, so a longer pass starts a new search from the newest change seen.
- Upsert: `PATCH` the contact we know; else `batch/upsert` with `idProperty: email` (idempotent: a
  redelivery updates the same contact); a contact with only a phone is found by a phone search first.
  Several new contacts waiting for one connection go in one `batch/upsert` of up to 100 inputs; a 207
  answer lists the inputs HubSpot refused, which are tried again on their own.
- Calls: a call engagement (`POST /crm/v3/objects/calls`) associated with the contact (type 194);
  the summary and outcome also go to the contact properties the mapping names for them.
- Mails: an email engagement (`POST /crm/v3/objects/emails`) associated with the contact (type 198):
  `hs_timestamp`, `hs_email_direction` (`EMAIL` sent by the user, `INCOMING_EMAIL` received),
  `hs_email_subject`, `hs_email_text` / `hs_email_html`, `hs_email_headers` (the JSON HubSpot fills
  the from / to / cc properties from) and `hs_email_message_id`. HubSpot's create takes no
  idempotency key, so a logger that died before recording the engagement finds it again by
  searching emails with that Message-ID associated with the contact (⚠ `hs_email_message_id` is set
  by HubSpot's own mailbox logging; check that the live API accepts it on create).
- Deals: the contact's deal in the configured pipeline moves (`PATCH dealstage`) to the stage
  `deal_stage_by_outcome` names for the call's outcome (or the single `deal_stage_id` when no mapping
  is set), or a deal is opened there. The pipelines are read first (`GET /crm/v3/pipelines/deals`,
  once a run): a pipeline or stage HubSpot no longer has (or has archived) is `ConfigRequired` naming
  it and the outcome, raised before anything is written.
- No SDK: `hubspot-api-client` installs ~52 MB of generated code and pulls `urllib3`/`six`/`dateutil`
  (provider page §2.4) for six calls that `requests`, already loaded, makes directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
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

PAGE_SIZE = 200
# Inputs one batch call takes (provider page §2.2).
BATCH_SIZE = 100
SEARCH_WINDOW = 10_000
OVERLAP_MS = 1000
READ_RESERVE = 0.3
CALL_TO_CONTACT = 194
EMAIL_TO_CONTACT = 198
DEAL_TO_CONTACT = 3
LIMITS = crm_http.LimitHeaders(
    max="X-HubSpot-RateLimit-Max",
    remaining="X-HubSpot-RateLimit-Remaining",
    interval_ms="X-HubSpot-RateLimit-Interval-Milliseconds",
)
# Platform field → HubSpot property when the connection's mapping leaves one out.
DEFAULT_MAPPING = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "email",
    "phone": "phone",
    "company": "company",
}
_CONTACT_FIELDS = tuple(DEFAULT_MAPPING)
_OBJECTS = "crm/v3/objects"


def _millis(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def _header_party(party: EmailParty) -> dict[str, str]:
    first, _, last = party.name.partition(" ")
    return {"email": party.address, "firstName": first, "lastName": last}


def email_headers(mail: LoggedMail) -> str:
    """`hs_email_headers`: the JSON string HubSpot reads the from / to / cc properties from."""
    return json.dumps(
        {
            "from": _header_party(mail.sender),
            "to": [_header_party(p) for p in mail.to],
            "cc": [_header_party(p) for p in mail.cc],
            "bcc": [],
        }
    )


class HubspotCrm:
    """One HubSpot account's contacts, calls and deals for one connection."""

    def __init__(
        self, spec: ProviderSpec, connection: Connection, credentials: Callable[[], Credentials]
    ) -> None:
        self._spec = spec
        self._connection = connection
        self._token = bearer(credentials)
        chosen = connection.config.get("property_mapping")
        mapping = (
            {k: v for k, v in chosen.items() if isinstance(v, str) and v} if isinstance(chosen, dict) else {}
        )
        self._mapping = {**DEFAULT_MAPPING, **mapping}
        # The account's deal pipelines, read once per run (before the first deal write).
        self._pipelines: list[Pipeline] | None = None

    def _call(self, method: str, path: str, *, reserve: float = 0.0, **kwargs: Any) -> Any:
        return crm_http.call(
            method, api_url(self._spec, path), token=self._token(), limits=LIMITS, reserve=reserve, **kwargs
        )

    def _fields(self, properties: dict[str, Any]) -> ContactFields:
        return ContactFields(**{f: text(properties.get(self._mapping[f])) for f in _CONTACT_FIELDS})

    def _contact(self, record: dict[str, Any]) -> CrmContact:
        return CrmContact(
            external_id=text(record.get("id")),
            fields=self._fields(record.get("properties") or {}),
            deleted=bool(record.get("archived")),
        )

    def _properties(self, fields: ContactFields) -> dict[str, str]:
        return {self._mapping[f]: getattr(fields, f) for f in _CONTACT_FIELDS if getattr(fields, f)}

    # --- pull ---

    def changed_contacts(self, cursor: dict[str, Any] | None) -> ContactPage:
        """One page of contacts modified since the cursor, oldest first."""
        cursor = dict(cursor or {})
        chosen = cursor.get("since")
        since = float(chosen) if isinstance(chosen, int | float) else 0.0
        offset = int(cursor.get("after") or 0)
        newest = float(cursor.get("newest") or 0)
        if offset + PAGE_SIZE > SEARCH_WINDOW:
            # Past the search's window: search again from the newest change seen so far.
            since, offset = max(since, newest - OVERLAP_MS), 0
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(int(since))}
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": sorted({self._mapping[f] for f in _CONTACT_FIELDS} | {"lastmodifieddate"}),
            "limit": PAGE_SIZE,
            "after": str(offset),
        }
        answer = self._call("POST", f"{_OBJECTS}/contacts/search", json=body, reserve=READ_RESERVE)
        wait = answer.seconds if isinstance(answer, crm_http.Paced) else None
        found = (answer.body if isinstance(answer, crm_http.Paced) else answer) or {}
        rows = [r for r in found.get("results", []) if isinstance(r, dict) and r.get("id")]
        for row in rows:
            stamp = _millis((row.get("properties") or {}).get("lastmodifieddate"))
            newest = max(newest, stamp or 0)
        following = text(((found.get("paging") or {}).get("next") or {}).get("after"))
        last = not following
        if last:
            start = max(0.0, newest - OVERLAP_MS) if newest else since
            cursor = {"since": start}
        else:
            cursor = {"since": since, "after": following, "newest": newest}
        total = found.get("total")
        return ContactPage(
            contacts=[self._contact(r) for r in rows],
            cursor=cursor,
            last=last,
            wait_seconds=wait,
            # The search's `total`: every contact modified since the search's start.
            total=total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None,
        )

    def deleted_in_hint(self, hint: dict[str, Any]) -> str | None:
        """A `contact.deletion` (or privacy deletion) webhook names the contact (`objectId`)."""
        if hint.get("event_type") in ("contact.deletion", "contact.privacyDeletion"):
            return text(hint.get("object_id")) or None
        return None

    def read_contact(self, external_id: str) -> CrmContact:
        """GET the contact with the mapped properties; archived or unknown (404) is deleted."""
        params = {"properties": ",".join(sorted({self._mapping[f] for f in _CONTACT_FIELDS}))}
        try:
            found = self._call("GET", f"{_OBJECTS}/contacts/{external_id}", params=params)
        except http.ProviderApiError as error:
            if error.status != 404:
                raise
            return CrmContact(external_id=external_id, fields=ContactFields(), deleted=True)
        return self._contact(found)

    # --- writes ---

    def upsert_contact(self, fields: ContactFields, external_id: str | None) -> CrmContact:
        """PATCH the known contact; else upsert by email (or find by phone, then create or PATCH)."""
        properties = self._properties(fields)
        if external_id:
            try:
                found = self._call(
                    "PATCH", f"{_OBJECTS}/contacts/{external_id}", json={"properties": properties}
                )
                return self._contact(found)
            except http.ProviderApiError as error:
                if error.status != 404:
                    raise
                # Deleted in HubSpot since: made again below.
        email_property = self._mapping["email"]
        if fields.email and email_property == "email":
            inputs = [{"id": fields.email, "idProperty": "email", "properties": properties}]
            found = self._call("POST", f"{_OBJECTS}/contacts/batch/upsert", json={"inputs": inputs}) or {}
            results = found.get("results") or []
            if not results:
                # 207 with the input in `errors`: HubSpot refused this contact.
                raise http.ProviderApiError(400, (found.get("errors") or [{}])[0])
            return self._contact(results[0])
        match = self._find(fields)
        if match is not None:
            found = self._call("PATCH", f"{_OBJECTS}/contacts/{match}", json={"properties": properties})
            return self._contact(found)
        return self._contact(self._call("POST", f"{_OBJECTS}/contacts", json={"properties": properties}))

    @property
    def batch_size(self) -> int:
        """`batch/upsert` takes 100 inputs matched by the `email` property; a mapping that puts the
        email elsewhere has nothing to match by."""
        return BATCH_SIZE if self._mapping["email"] == "email" else 1

    def upsert_contacts(self, contacts: Sequence[ContactFields]) -> list[CrmContact | None]:
        """`POST .../contacts/batch/upsert` by email, up to 100 inputs. HubSpot answers 207 with
        `errors` (each naming its input's id) when it refused some inputs; results come in no
        particular order, so they are matched back by email."""
        written: dict[str, CrmContact] = {}
        for start in range(0, len(contacts), BATCH_SIZE):
            chunk = contacts[start : start + BATCH_SIZE]
            inputs = [
                {"id": fields.email, "idProperty": "email", "properties": self._properties(fields)}
                for fields in chunk
            ]
            found = self._call("POST", f"{_OBJECTS}/contacts/batch/upsert", json={"inputs": inputs}) or {}
            for record in found.get("results") or []:
                email = text((record.get("properties") or {}).get("email")).strip().lower()
                if email:
                    written[email] = self._contact(record)
        return [written.get(fields.email.strip().lower()) for fields in contacts]

    def _find(self, fields: ContactFields) -> str | None:
        name, value = (
            (self._mapping["email"], fields.email) if fields.email else (self._mapping["phone"], fields.phone)
        )
        body = {
            "filterGroups": [{"filters": [{"propertyName": name, "operator": "EQ", "value": value}]}],
            "limit": 1,
        }
        found = self._call("POST", f"{_OBJECTS}/contacts/search", json=body) or {}
        rows = found.get("results") or []
        return text(rows[0].get("id")) if rows else None

    def delete_contact(self, external_id: str) -> None:
        try:
            self._call("DELETE", f"{_OBJECTS}/contacts/{external_id}")
        except http.ProviderApiError as error:
            if error.status != 404:
                raise

    def log_call(self, external_id: str, call: CallCompleted) -> str:
        """A call engagement on the contact; the mapped summary and outcome properties set too."""
        properties = {
            "hs_timestamp": call.started_at.isoformat(),
            "hs_call_title": f"{call.direction.capitalize()} call: {call.outcome}",
            "hs_call_body": call.summary,
            "hs_call_direction": call.direction.upper(),
            "hs_call_duration": str(call.duration_seconds * 1000),
            "hs_call_status": "COMPLETED",
            **({"hs_call_recording_url": call.recording_url} if call.recording_url else {}),
        }
        association = {
            "to": {"id": external_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}],
        }
        found = self._call(
            "POST", f"{_OBJECTS}/calls", json={"properties": properties, "associations": [association]}
        )
        on_contact = {
            self._mapping[key]: value
            for key, value in (("call_summary", call.summary), ("call_outcome", call.outcome))
            if self._mapping.get(key) and value
        }
        if on_contact:
            self._call("PATCH", f"{_OBJECTS}/contacts/{external_id}", json={"properties": on_contact})
        return text(found.get("id"))

    def log_email(self, external_id: str, mail: LoggedMail) -> str:
        """An email engagement on the contact, in the direction the mail went."""
        text_body = mail.text
        if mail.attachments:
            text_body = f"{text_body}\n\nAttachments: {', '.join(mail.attachments)}".lstrip()
        properties = {
            "hs_timestamp": mail.sent_at.isoformat(),
            "hs_email_direction": "EMAIL" if mail.direction == "outbound" else "INCOMING_EMAIL",
            "hs_email_status": "SENT",
            "hs_email_subject": mail.subject,
            "hs_email_text": text_body,
            "hs_email_html": mail.html,
            "hs_email_headers": email_headers(mail),
            "hs_email_message_id": mail.internet_message_id,
        }
        association = {
            "to": {"id": external_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": EMAIL_TO_CONTACT}],
        }
        found = self._call(
            "POST",
            f"{_OBJECTS}/emails",
            json={"properties": {k: v for k, v in properties.items() if v}, "associations": [association]},
        )
        return text(found.get("id"))

    def logged_email(self, external_id: str, mail: LoggedMail) -> str | None:
        """The contact's email engagement with this Message-ID, if HubSpot holds one."""
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_email_message_id",
                            "operator": "EQ",
                            "value": mail.internet_message_id,
                        },
                        {"propertyName": "associations.contact", "operator": "EQ", "value": external_id},
                    ]
                }
            ],
            "properties": ["hs_email_message_id"],
            "limit": 1,
        }
        found = self._call("POST", f"{_OBJECTS}/emails/search", json=body) or {}
        rows = found.get("results") or []
        return (text(rows[0].get("id")) or None) if rows else None

    def move_deal(self, external_id: str, call: CallCompleted) -> str | None:
        """Move the contact's deal in the configured pipeline to the stage the config names for the
        call's outcome (or open one there), once the pipeline and stage are known to still exist."""
        choice = stage_for(
            self._connection.config,
            call,
            pipeline="deal_pipeline_id",
            stage="deal_stage_id",
            by_outcome="deal_stage_by_outcome",
        )
        if choice is None:
            return None
        self._require(choice, fresh=False)
        try:
            return self._move(external_id, call, choice)
        except http.ProviderApiError as error:
            if error.status != 400:
                raise
            # Deleted between the check and the write: say which, else the refusal stands.
            self._require(choice, fresh=True)
            raise

    def _move(self, external_id: str, call: CallCompleted, choice: StageChoice) -> str:
        search = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "associations.contact", "operator": "EQ", "value": external_id},
                        {"propertyName": "pipeline", "operator": "EQ", "value": choice.pipeline_id},
                    ]
                }
            ],
            "properties": ["dealstage", "pipeline", "dealname"],
            "limit": 1,
        }
        found = self._call("POST", f"{_OBJECTS}/deals/search", json=search) or {}
        rows = found.get("results") or []
        if rows:
            deal_id = text(rows[0].get("id"))
            self._call(
                "PATCH", f"{_OBJECTS}/deals/{deal_id}", json={"properties": {"dealstage": choice.stage_id}}
            )
            return deal_id
        name = " ".join(p for p in (call.contact.first_name, call.contact.last_name) if p) or "Contact"
        association = {
            "to": {"id": external_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT}],
        }
        created = self._call(
            "POST",
            f"{_OBJECTS}/deals",
            json={
                "properties": {
                    "dealname": f"{name} (call)",
                    "pipeline": choice.pipeline_id,
                    "dealstage": choice.stage_id,
                },
                "associations": [association],
            },
        )
        return text(created.get("id"))

    def _require(self, choice: StageChoice, *, fresh: bool) -> None:
        """ConfigRequired naming the deal pipeline or stage HubSpot no longer has (an archived stage
        is gone too); the pipelines are read once a run."""
        if fresh or self._pipelines is None:
            found = self._call("GET", "crm/v3/pipelines/deals") or {}
            self._pipelines = [
                Pipeline(
                    id=text(p.get("id")),
                    label=text(p.get("label")),
                    stages=frozenset(
                        text(s.get("id"))
                        for s in p.get("stages") or []
                        if isinstance(s, dict) and not s.get("archived")
                    ),
                )
                for p in found.get("results") or []
                if isinstance(p, dict) and not p.get("archived")
            ]
        missing = missing_stage("HubSpot", choice, self._pipelines)
        if missing is not None:
            raise ConfigRequired(missing)


def CRM_ADAPTER(
    spec: ProviderSpec,
    connection: Connection,
    credentials: Callable[[], Credentials],
    clock: Callable[[], datetime],
) -> HubspotCrm:
    """The engine's factory (`sync.crm_sources`)."""
    return HubspotCrm(spec, connection, credentials)
