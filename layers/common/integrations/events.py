"""Typed platform events (design §9): what this service publishes and what it consumes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from integrations.domain.access import Level, Tier
from integrations.domain.connection import Connection, ErrorCode, PortalStatus, utcnow

SOURCE = "integrations"
PLATFORM_SOURCE = "platform"


class PlatformEvent(BaseModel):
    """Base of every event detail; `detail_type` is the EventBridge DetailType."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    detail_type: ClassVar[str]


class ConnectionRef(PlatformEvent):
    """Who and what a connection event is about. Never carries credentials."""

    connection_id: str
    provider: str
    level: Level
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    account_label: str = ""
    occurred_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of(cls, connection: Connection, **extra: Any) -> Any:
        return cls(
            connection_id=connection.id,
            provider=connection.provider,
            level=connection.level,
            agency_id=connection.agency_id,
            client_id=connection.client_id,
            user_id=connection.user_id,
            account_label=connection.account.label,
            **extra,
        )


class IntegrationConnected(ConnectionRef):
    detail_type = "Integration Connected"
    reauthorized: bool = False


class IntegrationDisconnected(ConnectionRef):
    detail_type = "Integration Disconnected"


class IntegrationErrored(ConnectionRef):
    detail_type = "Integration Errored"
    error_code: ErrorCode
    message: str


class IntegrationRecovered(ConnectionRef):
    detail_type = "Integration Recovered"
    status: PortalStatus


class IntegrationConfigChanged(ConnectionRef):
    detail_type = "Integration Config Changed"
    config: dict[str, Any]


class SyncProgress(ConnectionRef):
    """Out: how far a long sync job is (a CRM's initial contact import), published as it moves on.

    `total` is null when the provider does not say how many there are; `progress_id` is the same for
    every delivery of one step."""

    detail_type = "Sync Progress"
    progress_id: str
    kind: Literal["import"]
    state: Literal["running", "done"]
    done: int = Field(ge=0)
    total: int | None = Field(default=None, ge=0)
    message: str = ""


class CallRequested(PlatformEvent):
    """A provider workflow (GHL) asked the platform to place a call."""

    detail_type = "Call Requested"
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    contact_id: str | None = None
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    workflow_id: str | None = None
    # The voice agent the workflow names (its custom data's `agent_id`), and the rest of its custom data.
    agent_id: str | None = None
    custom: dict[str, str] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=utcnow)


class CalendarEventChanged(PlatformEvent):
    """Out: an event in a synced calendar was added, changed or deleted by someone other than us.

    `appointment_id` is set when the event is one we pushed (the person moved or deleted it, so the
    platform can reschedule). `change_id` is the same for every delivery of one change.
    """

    detail_type = "Calendar Event Changed"
    change_id: str
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    calendar_id: str
    event_id: str
    change: Literal["added", "updated", "deleted"]
    appointment_id: str | None = None
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    start: datetime | None = None
    end: datetime | None = None
    # All-day events: dates with an exclusive end, never midnight instants.
    start_date: date | None = None
    end_date: date | None = None
    busy: bool = True
    title: str = ""
    # `busy`: the linked calendar shares busy time only, so the title says "Busy" and nothing more.
    show_as: Literal["details", "busy"] = "details"
    # Exceptions of a recurring series: the series and the instance they replace.
    series_id: str | None = None
    original_start: str | None = None


class AppointmentOwner(BaseModel):
    """Whose appointment it is: agency staff, a client user, a contact (prospect) or the client itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["staff", "client_user", "contact", "client"]
    agency_id: str = Field(min_length=1, max_length=128)
    client_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _ids_fit_the_kind(self) -> AppointmentOwner:
        if self.kind == "client" and (not self.client_id or self.user_id):
            raise ValueError("a client owner names the client and no user")
        if self.kind != "client" and not self.user_id:
            raise ValueError("a person owner names the user")
        if self.kind in ("client_user", "contact") and not self.client_id:
            raise ValueError("client users and contacts belong to a client")
        return self


class AppointmentUpserted(PlatformEvent):
    """In: the platform created or changed an appointment; pushed to the owner's linked calendars."""

    detail_type = "Appointment Upserted"
    appointment_id: str = Field(min_length=1, max_length=128)
    owner: AppointmentOwner
    # What the platform calls it: appointments, tasks and blocked time can be pushed selectively.
    type: Literal["appointment", "task", "blocked_time"] = "appointment"
    title: str = Field(default="", max_length=1024)
    description: str = Field(default="", max_length=8192)
    location: str = Field(default="", max_length=1024)
    start: AwareDatetime
    end: AwareDatetime
    # The IANA zone the appointment was booked in (the calendar shows it in that zone).
    time_zone: str
    attendees: list[str] = Field(default_factory=list, max_length=100)
    # Ask for a video meeting link (Google Meet) where the calendar can make one.
    video: bool = False
    # Increases with every change of the appointment: an older version arriving late changes nothing.
    version: int = Field(ge=0)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> AppointmentUpserted:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AppointmentDeleted(PlatformEvent):
    """In: the platform deleted an appointment; its pushed events are deleted."""

    detail_type = "Appointment Deleted"
    appointment_id: str = Field(min_length=1, max_length=128)
    owner: AppointmentOwner
    version: int = Field(ge=0)


class AppointmentPushed(PlatformEvent):
    """Out: an appointment is in a linked calendar, with the video link the provider made for it."""

    detail_type = "Appointment Pushed"
    appointment_id: str
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    calendar_id: str
    event_id: str
    video_url: str | None = None


class BookingInvitee(BaseModel):
    """Who booked, as the scheduling tool knows them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    email: str = ""
    phone: str | None = None
    time_zone: str | None = None
    # The booking form's questions with the invitee's answers, in the form's order.
    answers: list[dict[str, str]] = Field(default_factory=list)


class BookingEvent(PlatformEvent):
    """What a booking event says about the booking; `event_id` is the same for every delivery."""

    event_id: str
    booking_id: str
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    invitee: BookingInvitee
    event_type_id: str | None = None
    event_type_name: str = ""
    scheduled_event_id: str
    start: datetime
    end: datetime
    time_zone: str | None = None
    location: str | None = None
    join_url: str | None = None
    cancel_url: str | None = None
    reschedule_url: str | None = None
    tracking: dict[str, str] = Field(default_factory=dict)


class BookingCreated(BookingEvent):
    """Out: someone booked (a reschedule names the booking it replaces in `rescheduled_from`)."""

    detail_type = "Booking Created"
    rescheduled_from: str | None = None


class BookingCanceled(BookingEvent):
    """Out: a booking was canceled; a reschedule's cancel names its replacement in `rescheduled_to`."""

    detail_type = "Booking Canceled"
    rescheduled: bool = False
    rescheduled_to: str | None = None
    reason: str | None = None
    canceled_by: str | None = None


class AgencyPlanChanged(PlatformEvent):
    """In: the platform changed an agency's plan; the tier is never the agency's to set."""

    detail_type = "Agency Plan Changed"
    agency_id: str
    tier: Tier


class ContactFields(BaseModel):
    """A contact's fields as the platform names them; what a CRM mapping can carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_name: str = Field(default="", max_length=256)
    last_name: str = Field(default="", max_length=256)
    email: str = Field(default="", max_length=320)
    phone: str = Field(default="", max_length=64)
    company: str = Field(default="", max_length=256)


class ContactUpserted(PlatformEvent):
    """In: the platform created or changed a contact; upserted in each of the client's CRMs."""

    detail_type = "Contact Upserted"
    contact_id: str = Field(min_length=1, max_length=128)
    agency_id: str = Field(min_length=1, max_length=128)
    client_id: str = Field(min_length=1, max_length=128)
    fields: ContactFields
    # Increases with every change: an older version arriving late changes nothing.
    version: int = Field(ge=0)

    @model_validator(mode="after")
    def _reachable(self) -> ContactUpserted:
        if not (self.fields.email or self.fields.phone):
            raise ValueError("a contact needs an email or a phone to be matched in a CRM")
        return self


class ContactDeleted(PlatformEvent):
    """In: the platform deleted a contact; deleted in each CRM that holds our copy."""

    detail_type = "Contact Deleted"
    contact_id: str = Field(min_length=1, max_length=128)
    agency_id: str = Field(min_length=1, max_length=128)
    client_id: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=0)


class ContactChanged(PlatformEvent):
    """Out: a contact in a connected CRM was added, changed or deleted by someone other than us.

    `contact_id` is the platform's id when the contact is one we wrote (or matched); `change_id` is
    the same for every delivery of one change."""

    detail_type = "Contact Changed"
    change_id: str
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    external_id: str
    contact_id: str | None = None
    change: Literal["added", "updated", "deleted"]
    fields: ContactFields


class CallCompleted(PlatformEvent):
    """In: the platform finished a call; logged on the contact in each of the client's CRMs, and the
    contact's opportunity or deal moved to the configured stage."""

    detail_type = "Call Completed"
    call_id: str = Field(min_length=1, max_length=128)
    agency_id: str = Field(min_length=1, max_length=128)
    client_id: str = Field(min_length=1, max_length=128)
    contact_id: str = Field(min_length=1, max_length=128)
    contact: ContactFields
    direction: Literal["inbound", "outbound"]
    outcome: str = Field(min_length=1, max_length=64)
    duration_seconds: int = Field(ge=0)
    summary: str = Field(default="", max_length=8192)
    recording_url: str | None = Field(default=None, max_length=2048)
    agent: str = Field(default="", max_length=256)
    started_at: AwareDatetime


class EmailParty(BaseModel):
    """One address of a mail, with the display name its header gave (empty when none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(min_length=3, max_length=320)
    name: str = Field(default="", max_length=256)


class EmailAttachmentInfo(BaseModel):
    """An attachment as metadata only: its bytes never travel on the bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: str = Field(default="", max_length=512)
    content_type: str = Field(default="application/octet-stream", max_length=256)
    size: int = Field(default=0, ge=0)


class EmailMessageEvent(PlatformEvent):
    """What a mail event says about one message of a connected mailbox.

    `email_id` is the same for every delivery of one message (consumers deduplicate on it);
    `message_id` and `thread_id` are the provider's, `internet_message_id` the RFC 5322 Message-ID."""

    email_id: str
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    message_id: str
    thread_id: str | None = None
    internet_message_id: str | None = None
    sender: EmailParty
    to: list[EmailParty] = Field(default_factory=list)
    cc: list[EmailParty] = Field(default_factory=list)
    subject: str = ""
    # Bodies are cut at the service's size limit; `truncated` says so.
    text: str = ""
    html: str = ""
    truncated: bool = False
    attachments: list[EmailAttachmentInfo] = Field(default_factory=list)
    # The platform contacts this mail was exchanged with (the reason it is published at all).
    contact_ids: list[str] = Field(default_factory=list)
    sent_at: datetime


class EmailReceived(EmailMessageEvent):
    """Out: mail from one of the platform's contacts arrived in a connected mailbox."""

    detail_type = "Email Received"


class EmailSent(EmailMessageEvent):
    """Out: mail to one of the platform's contacts left a connected mailbox (sent by the person in
    their mail client, or by this service for an `Email Send Requested`, named in `request_id`)."""

    detail_type = "Email Sent"
    request_id: str | None = None


class EmailAttachmentRef(BaseModel):
    """An attachment the platform offers by reference: an HTTPS URL this service downloads once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=8, max_length=2048)
    filename: str = Field(min_length=1, max_length=512)
    content_type: str = Field(default="application/octet-stream", max_length=256)


class EmailSendRequested(PlatformEvent):
    """In: the platform asks to send a mail as a person, from one of their connected mailboxes.

    Sent at most once per `request_id`, however often the event is delivered."""

    detail_type = "Email Send Requested"
    request_id: str = Field(min_length=1, max_length=128)
    agency_id: str = Field(min_length=1, max_length=128)
    client_id: str | None = Field(default=None, max_length=128)
    user_id: str = Field(min_length=1, max_length=128)
    # Which mailbox; None: the person's only (or first connected) mailbox.
    connection_id: str | None = Field(default=None, max_length=128)
    to: list[EmailParty] = Field(min_length=1, max_length=100)
    cc: list[EmailParty] = Field(default_factory=list, max_length=100)
    bcc: list[EmailParty] = Field(default_factory=list, max_length=100)
    subject: str = Field(default="", max_length=998)
    text: str = Field(default="", max_length=1_000_000)
    html: str = Field(default="", max_length=2_000_000)
    attachments: list[EmailAttachmentRef] = Field(default_factory=list, max_length=20)
    # Reply in the thread of this message (the provider's message id, as Email Received gave it).
    reply_to_message_id: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _has_a_body(self) -> EmailSendRequested:
        if not (self.text or self.html):
            raise ValueError("a mail needs a text or an HTML body")
        return self


EmailSendFailureReason = Literal[
    "invalid_recipient",
    "quota_exceeded",
    "reauth_required",
    "no_mailbox",
    "attachment_unavailable",
    "message_too_large",
    "reply_target_not_found",
    "provider_rejected",
]


class EmailSendFailed(PlatformEvent):
    """Out: a requested mail was not sent, with a stable reason and a message a person understands."""

    detail_type = "Email Send Failed"
    request_id: str
    agency_id: str
    client_id: str | None = None
    user_id: str
    connection_id: str | None = None
    provider: str | None = None
    reason: EmailSendFailureReason
    message: str
    failed_at: datetime = Field(default_factory=utcnow)


class EmailLogged(PlatformEvent):
    """Out: a mail was logged on a contact in one of the client's CRMs (through the BCC logging
    address or a synced mailbox). `log_id` is the same for every delivery of one logging."""

    detail_type = "Email Logged"
    log_id: str
    agency_id: str
    client_id: str
    # The CRM connection it was logged in, and the record the CRM made (note, conversation message,
    # email engagement).
    connection_id: str
    provider: str
    record_id: str
    contact_external_id: str
    contact_id: str | None = None
    # The contact did not exist in the CRM and was created from the mail.
    contact_created: bool = False
    direction: Literal["inbound", "outbound"]
    via: Literal["bcc", "mailbox"]
    internet_message_id: str
    subject: str = ""
    sender: EmailParty
    logged_at: datetime = Field(default_factory=utcnow)


OUTBOUND: tuple[type[PlatformEvent], ...] = (
    IntegrationConnected,
    IntegrationDisconnected,
    IntegrationErrored,
    IntegrationRecovered,
    IntegrationConfigChanged,
    SyncProgress,
    CallRequested,
    CalendarEventChanged,
    AppointmentPushed,
    ContactChanged,
    BookingCreated,
    BookingCanceled,
    EmailReceived,
    EmailSent,
    EmailSendFailed,
    EmailLogged,
)
INBOUND: tuple[type[PlatformEvent], ...] = (
    AgencyPlanChanged,
    AppointmentUpserted,
    AppointmentDeleted,
    ContactUpserted,
    ContactDeleted,
    CallCompleted,
    EmailSendRequested,
)


class EventPublisher(Protocol):
    """Publishes events to the bus (store.bus). Failures raise: callers decide if an event is essential."""

    def publish(self, *events: PlatformEvent) -> None: ...


def status_events(connection: Connection, change: Any) -> list[PlatformEvent]:
    """The events a status change means: Errored on entering error, Recovered on leaving it."""
    if change is None:
        return []
    if change.is_error and connection.error is not None:
        return [
            IntegrationErrored.of(
                connection, error_code=connection.error.code, message=connection.error.message
            )
        ]
    if change.is_recovery:
        return [IntegrationRecovered.of(connection, status=change.after)]
    return []
