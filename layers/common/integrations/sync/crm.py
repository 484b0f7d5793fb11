"""The CRM adapter shape and the values it speaks in (design §8, Adapters).

A CRM adapter (`CRM_ADAPTER` in `providers/<id>/sync.py`) does five things for one connection:
pull the contacts changed since a cursor, one page at a time (the provider's modified-since search);
upsert a contact; log a finished call on a contact; log a mail on a contact (and find that log again
when a logger died before recording it); and move the contact's opportunity or deal to the
configured stage. It speaks in the platform's field names (`ContactFields`): mapping them onto the
provider's properties is the adapter's job, and so is translating the provider's errors into the
engine's (`RateLimited`, `ReauthRequired`, `ConfigRequired`, `ProviderUnavailable`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from typing import Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from integrations.catalog.config_validation import normalize_key
from integrations.events import CallCompleted, ContactFields, EmailParty

# What a CRM keeps of a mail's bodies: HubSpot's text properties hold 65,536 characters.
MAIL_BODY_LIMIT = 60_000
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"[ \t\r\f\v]+")


class CrmContact(BaseModel):
    """One contact as the CRM holds it, in the platform's field names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: str
    fields: ContactFields
    deleted: bool = False

    @property
    def change_hash(self) -> str:
        """A digest of what matters to the platform: a read-back of our own write hashes the same."""
        return fields_hash(self.fields, self.deleted)


def fields_hash(fields: ContactFields, deleted: bool = False) -> str:
    values = fields.model_dump()
    # Case and spacing differences (a CRM lower-cases emails) are no change.
    parts = [str(values[name]).strip().lower() for name in sorted(values)]
    return hashlib.sha256("\x1f".join([*parts, "deleted" if deleted else ""]).encode()).hexdigest()[:32]


class ContactPage(BaseModel):
    """One page of changed contacts and the cursor to read the next page (or the next run) from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contacts: list[CrmContact] = Field(default_factory=list)
    cursor: dict[str, Any]
    # No page follows in this pass: the cursor now says "changed since" for the next run.
    last: bool
    # The provider's request window is nearly spent: read on after this many seconds, so that live
    # writes (a call to log) keep their share of it.
    wait_seconds: float | None = None
    # How many contacts the whole search matches, when the provider says (an import's total).
    total: int | None = None


@dataclass(frozen=True, slots=True)
class MirroredContact:
    """What we last saw (or wrote) of one CRM contact: its hash decides whether a read is a change."""

    external_id: str
    change_hash: str
    fields: ContactFields
    # The platform's id, when the contact is one we wrote or matched.
    contact_id: str | None = None


class LoggedCall(BaseModel):
    """What logging a call left in the CRM: the note or engagement, and the deal it moved (if any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    deal_id: str | None = None


class LoggedMail(BaseModel):
    """What a CRM keeps of one mail logged on a contact (bodies cut at MAIL_BODY_LIMIT)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Literal["inbound", "outbound"]
    # The RFC 5322 Message-ID (or the stable id derived for a mail without one).
    internet_message_id: str = Field(min_length=1, max_length=2048)
    subject: str = Field(default="", max_length=998)
    text: str = Field(default="", max_length=MAIL_BODY_LIMIT)
    html: str = Field(default="", max_length=MAIL_BODY_LIMIT)
    truncated: bool = False
    sender: EmailParty
    to: list[EmailParty] = Field(default_factory=list)
    cc: list[EmailParty] = Field(default_factory=list)
    sent_at: AwareDatetime
    attachments: list[str] = Field(default_factory=list)

    @property
    def plain(self) -> str:
        """The text body, or the HTML body's text when the mail has only HTML."""
        if self.text.strip() or not self.html:
            return self.text
        stripped = unescape(_TAG.sub(" ", self.html))
        lines = (_BLANKS.sub(" ", line).strip() for line in stripped.splitlines())
        return "\n".join(line for line in lines if line)


def cut(body: str, limit: int = MAIL_BODY_LIMIT) -> tuple[str, bool]:
    """The body within `limit` characters, and whether it was cut."""
    return (body, False) if len(body) <= limit else (body[:limit], True)


@dataclass(frozen=True, slots=True)
class StageChoice:
    """Where a finished call moves the contact's opportunity or deal, and the outcome that chose it."""

    pipeline_id: str
    stage_id: str
    outcome: str
    # Chosen by the outcome mapping (not the single stage every call goes to).
    mapped: bool


def stage_for(
    config: Mapping[str, Any], call: CallCompleted, *, pipeline: str, stage: str, by_outcome: str
) -> StageChoice | None:
    """The stage the connection's config names for this call (field names are the provider's).

    Without an outcome mapping, the single configured stage applies to every outcome; with one, only
    mapped outcomes move anything (an unmapped outcome is logged and moves nothing).
    """
    pipeline_id = config.get(pipeline)
    if not isinstance(pipeline_id, str) or not pipeline_id:
        return None
    outcome = normalize_key(call.outcome)
    mapping = config.get(by_outcome)
    if isinstance(mapping, dict) and mapping:
        chosen = mapping.get(outcome)
        if not isinstance(chosen, str) or not chosen:
            return None
        return StageChoice(pipeline_id, chosen, outcome, mapped=True)
    single = config.get(stage)
    if not isinstance(single, str) or not single:
        return None
    return StageChoice(pipeline_id, single, outcome, mapped=False)


@dataclass(frozen=True, slots=True)
class Pipeline:
    """One of the CRM's pipelines as it is now: its stages' ids."""

    id: str
    label: str
    stages: frozenset[str]


def missing_stage(crm: str, choice: StageChoice, pipelines: Sequence[Pipeline]) -> str | None:
    """Why the CRM cannot take this stage (the pipeline or the stage is gone), naming both and the
    outcome; None when both are there."""
    found = next((p for p in pipelines if p.id == choice.pipeline_id), None)
    if found is None:
        return (
            f"The {crm} pipeline {choice.pipeline_id} chosen for calls no longer exists "
            f"(call outcome “{choice.outcome}”); choose another pipeline."
        )
    if choice.stage_id in found.stages:
        return None
    if choice.mapped:
        return (
            f"The stage {choice.stage_id} mapped to the call outcome “{choice.outcome}” no longer "
            f"exists in the {crm} pipeline “{found.label}”; choose another stage for it."
        )
    return (
        f"The stage {choice.stage_id} chosen for calls no longer exists in the {crm} pipeline "
        f"“{found.label}” (call outcome “{choice.outcome}”); choose another stage."
    )


class CrmAdapter(Protocol):
    """What the engine asks of a provider's CRM adapter for one connection."""

    def changed_contacts(self, cursor: dict[str, Any] | None) -> ContactPage:
        """The next page of contacts changed since the cursor (None: every contact, the initial import)."""
        ...

    def deleted_in_hint(self, hint: dict[str, Any]) -> str | None:
        """The contact a webhook hint says was deleted (a search never finds deleted contacts)."""
        ...

    def read_contact(self, external_id: str) -> CrmContact:
        """One contact as the CRM holds it now; `deleted` when it is gone."""
        ...

    def upsert_contact(self, fields: ContactFields, external_id: str | None) -> CrmContact:
        """Create or update the contact (matched by email or phone when `external_id` is unknown)."""
        ...

    @property
    def batch_size(self) -> int:
        """How many contacts one `upsert_contacts` call takes (1: the provider has no batch upsert)."""
        ...

    def upsert_contacts(self, contacts: Sequence[ContactFields]) -> list[CrmContact | None]:
        """Create or update several contacts we hold no CRM id for, each with an email, matched by
        email; per input, in order, the contact as the CRM now holds it, or None where the CRM refused
        that input (the others are written; the refused are tried again on their own)."""
        ...

    def delete_contact(self, external_id: str) -> None:
        """Delete the contact; one that is already gone is no error."""
        ...

    def log_call(self, external_id: str, call: CallCompleted) -> str:
        """Log the call on the contact (a note or a call engagement); returns the record's id."""
        ...

    def log_email(self, external_id: str, mail: LoggedMail) -> str:
        """Log the mail on the contact (a note or an email engagement); returns the record's id."""
        ...

    def logged_email(self, external_id: str, mail: LoggedMail) -> str | None:
        """The record an earlier log of this mail on the contact made, if the CRM holds one (asked
        only when a logger died between its CRM write and recording it)."""
        ...

    def move_deal(self, external_id: str, call: CallCompleted) -> str | None:
        """Move (or open) the contact's opportunity or deal into the stage the config names for this
        call's outcome (`stage_for`); None when it names none. The pipeline and stage are checked at
        the CRM first: one it no longer has raises ConfigRequired naming it and the outcome."""
        ...
