"""The internal API's boundary (design §8b): its request and answer models, and the IAM caller check.

Internal routes are authorized by API Gateway's AWS_IAM authorizer (SigV4), which puts the signer in
`requestContext.authorizer.iam`. A route here answers only such a call: an event carrying JWT claims
(a portal token) or no IAM identity is refused, whatever the template says, so a misrouted portal
request can never reach another tenant's owners. Tenant ids come explicitly in the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from integrations.domain.errors import Forbidden
from integrations.events import AppointmentOwner
from integrations.sync.availability import (
    MAX_WINDOW,
    Availability,
    OwnerAvailability,
    Window,
    window_of,
)
from integrations.sync.expansion import Interval

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def require_iam_caller(event: Any) -> None:
    """Refuse anything API Gateway's IAM authorizer did not sign off (403 `internal_only`)."""
    authorizer = ((event.get("requestContext") or {}) if isinstance(event, dict) else {}).get(
        "authorizer"
    ) or {}
    iam = authorizer.get("iam") if isinstance(authorizer, dict) else None
    if not isinstance(iam, dict) or not iam.get("accessKey") or "jwt" in authorizer:
        raise Forbidden("This route takes SigV4-signed calls of the platform only.", code="internal_only")


class WorkingHours(BaseModel):
    """Working time on one weekday, local to the request's zone: [start, end)."""

    model_config = ConfigDict(extra="forbid")

    day: str = Field(description="monday ... sunday")
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["09:00"])
    end: str = Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", examples=["17:00"])

    @field_validator("day")
    @classmethod
    def _weekday(cls, value: str) -> str:
        if value.lower() not in _WEEKDAYS:
            raise ValueError("day must be monday ... sunday")
        return value.lower()

    def period(self) -> tuple[int, int, int]:
        return (_WEEKDAYS.index(self.day), _minutes(self.start), _minutes(self.end))


class AvailabilityRequest(BaseModel):
    """Busy time and free slots of one owner or a team, over a window of at most 62 days."""

    model_config = ConfigDict(extra="forbid")

    agency_id: str = Field(min_length=1, max_length=128)
    owners: list[AppointmentOwner] = Field(min_length=1, max_length=20)
    start: AwareDatetime
    end: AwareDatetime
    slot_minutes: int = Field(default=30, ge=5, le=1440)
    time_zone: str = Field(default="UTC", examples=["America/New_York"])
    working_hours: list[WorkingHours] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _one_agency_and_a_bounded_window(self) -> AvailabilityRequest:
        if any(owner.agency_id != self.agency_id for owner in self.owners):
            raise ValueError("every owner's agency_id must be the request's agency_id")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError(f"the window may span at most {MAX_WINDOW.days} days")
        for period in self.working_hours or ():
            if _minutes(period.end) <= _minutes(period.start):
                raise ValueError("working hours must end after they start")
        self.window()
        return self

    def window(self) -> Window:
        return window_of(
            self.start,
            self.end,
            self.time_zone,
            self.slot_minutes,
            [p.period() for p in self.working_hours or ()],
        )


class Span(BaseModel):
    start: datetime
    end: datetime


class Reason(BaseModel):
    """Why an answer is degraded: a conflict calendar whose busy time may be missing."""

    code: str = Field(description="calendar_error, calendar_stale or calendar_paused")
    connection_id: str
    provider: str
    message: str


class OwnerAnswer(BaseModel):
    owner: AppointmentOwner
    state: str = Field(description="ok or degraded")
    reasons: list[Reason]
    busy: list[Span]
    free: list[Span]


class AvailabilityAnswer(BaseModel):
    """`busy`: anyone's busy time; `free`: slots when every owner is free; `state` degraded when any
    owner's answer is: never read a degraded answer's free slots as certain."""

    state: str = Field(description="ok or degraded")
    reasons: list[Reason]
    busy: list[Span]
    free: list[Span]
    owners: list[OwnerAnswer]

    @classmethod
    def of(cls, answer: Availability) -> AvailabilityAnswer:
        return cls(
            state=answer.state.value,
            reasons=[_reason(r) for r in answer.reasons],
            busy=_spans(answer.busy),
            free=_spans(answer.free),
            owners=[_owner(o) for o in answer.owners],
        )


def _owner(answer: OwnerAvailability) -> OwnerAnswer:
    return OwnerAnswer(
        owner=answer.owner,
        state=answer.state.value,
        reasons=[_reason(r) for r in answer.reasons],
        busy=_spans(answer.busy),
        free=_spans(answer.free),
    )


def _reason(reason: Any) -> Reason:
    return Reason(
        code=reason.code.value,
        connection_id=reason.connection_id,
        provider=reason.provider,
        message=reason.message,
    )


def _spans(spans: list[Interval]) -> list[Span]:
    return [Span(start=s.start, end=s.end) for s in spans]


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)
