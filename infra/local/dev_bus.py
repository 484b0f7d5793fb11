"""Acting as the platform locally: publish platform events on the bus, and watch what this service publishes.

Two halves, both served by the gateway's `/dev/*` routes (infra.local.gateway):

- `POST /dev/platform-events` → `PlatformEvents.publish`: `{"detail_type", "detail"}` is checked against
  the typed event of integrations.events where one exists, then put on the local bus with
  `source: "platform"`, exactly as the platform would, so the template's own rules deliver it.
- `GET /dev/events` → `EventLog.recent`: a bus rule created locally (pattern: every event whose source is
  not "platform") feeds a queue that `BusTap` drains into a ring buffer; the platform events published
  through the route above are added as they are accepted, marked `origin: "dev_route"`.

Only the local stack builds these; nothing here exists in a deployment.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from infra.local.event_sources import RuleTarget, _Poller, create_rule_target
from infra.local.resources import EventRuleSource, FunctionSpec

if TYPE_CHECKING:
    import boto3
    from pydantic import BaseModel

log = logging.getLogger("infra.local.dev_bus")

PLATFORM_SOURCE = "platform"
# The most recent events kept for `GET /dev/events`; older ones fall off.
LOG_CAPACITY = 500
DEFAULT_LIMIT = 50
# Everything on the bus except what the platform publishes: what this service says.
SERVICE_EVENTS_PATTERN: Mapping[str, Any] = {"source": [{"anything-but": [PLATFORM_SOURCE]}]}

Origin = Literal["service", "dev_route"]


# --------------------------------------------------------------------------- the log


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event seen on the bus, as `GET /dev/events` lists it."""

    id: str
    time: str
    source: str
    detail_type: str
    detail: Any
    # `service`: this service published it (captured from the bus); `dev_route`: POST /dev/platform-events.
    origin: Origin

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "source": self.source,
            "detail_type": self.detail_type,
            "direction": "out" if self.origin == "service" else "in",
            "origin": self.origin,
            "detail": self.detail,
        }


class EventLog:
    """A thread-safe ring buffer of the most recent events, listed newest first."""

    def __init__(self, capacity: int = LOG_CAPACITY) -> None:
        self.capacity = capacity
        self._events: deque[LoggedEvent] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, event: LoggedEvent) -> None:
        """Remember `event`; the oldest one falls off when the buffer is full."""
        with self._lock:
            self._events.append(event)

    def recent(self, limit: int = DEFAULT_LIMIT, detail_type: str | None = None) -> list[LoggedEvent]:
        """Up to `limit` events, newest first, only of `detail_type` when given."""
        with self._lock:
            newest_first = list(reversed(self._events))
        if detail_type:
            newest_first = [e for e in newest_first if e.detail_type == detail_type]
        return newest_first[:limit]


def logged_from_bus(envelope: Mapping[str, Any]) -> LoggedEvent:
    """The event EventBridge delivered to the tap's queue (its own envelope), as a log entry."""
    return LoggedEvent(
        id=str(envelope.get("id", "")),
        time=str(envelope.get("time", "")),
        source=str(envelope.get("source", "")),
        detail_type=str(envelope.get("detail-type", "")),
        detail=envelope.get("detail"),
        origin="service",
    )


class BusTap(_Poller):
    """Drains the tap rule's queue into the log (EventBridge matches; this only reads)."""

    def __init__(self, sqs: Any, target: RuleTarget, events: EventLog) -> None:
        super().__init__("tap:dev-events")
        self._sqs = sqs
        self.target = target
        self.events = events

    def poll_once(self, wait_seconds: int = 1) -> int:
        answer = self._sqs.receive_message(
            QueueUrl=self.target.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        messages = list(answer.get("Messages") or [])
        for message in messages:
            try:
                self.events.add(logged_from_bus(json.loads(message["Body"])))
            except (ValueError, AttributeError):
                log.warning("tap: a message on %s is not an EventBridge event", self.target.queue_url)
            self._sqs.delete_message(QueueUrl=self.target.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)


def create_tap(session: boto3.Session, *, stage: str, bus_name: str, events: EventLog) -> BusTap:
    """Create the tap's rule and queue on the bus; the returned poller is not started yet."""
    source = EventRuleSource(
        event="DevEvents", bus=None, pattern=SERVICE_EVENTS_PATTERN, dead_letter_queue=None
    )
    target = create_rule_target(session, stage=stage, function="Tap", source=source, bus_name=bus_name)
    return BusTap(session.client("sqs"), target, events)


# --------------------------------------------------------------------------- publishing


class DevRouteError(Exception):
    """A request to a dev route that cannot be served: the answer's status, code, words and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


def platform_detail_types(specs: Iterable[FunctionSpec]) -> tuple[str, ...]:
    """Detail types the template's rules take from the platform (rules whose `source` names it)."""
    types: set[str] = set()
    for spec in specs:
        for rule in spec.event_rules:
            if PLATFORM_SOURCE in (rule.pattern.get("source") or ()):
                types.update(str(t) for t in rule.pattern.get("detail-type") or () if isinstance(t, str))
    return tuple(sorted(types))


def inbound_models() -> dict[str, type[BaseModel]]:
    """The typed platform events this service consumes, by detail type."""
    from integrations.events import INBOUND

    return {model.detail_type: model for model in INBOUND}


@dataclass(frozen=True, slots=True)
class PlatformEventRequest:
    """A checked `POST /dev/platform-events` body."""

    detail_type: str
    detail: dict[str, Any]


def parse_request(
    raw: bytes, accepted: Iterable[str], models: Mapping[str, type[BaseModel]]
) -> PlatformEventRequest:
    """Check a body `{"detail_type", "detail"}`; raises DevRouteError with the reason."""
    from pydantic import ValidationError

    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise DevRouteError(400, "invalid_json", "The body is not valid JSON.") from None
    problems: list[dict[str, str]] = []
    if not isinstance(body, dict):
        raise DevRouteError(
            422,
            "invalid_request",
            'The body must be a JSON object: {"detail_type": "...", "detail": {...}}.',
        )
    detail_type, detail = body.get("detail_type"), body.get("detail")
    if not isinstance(detail_type, str) or not detail_type:
        problems.append({"field": "detail_type", "message": "is required (a non-empty string)"})
    if not isinstance(detail, dict):
        problems.append({"field": "detail", "message": "is required (a JSON object)"})
    extra = sorted(body.keys() - {"detail_type", "detail"})
    problems.extend({"field": name, "message": "is not an accepted field"} for name in extra)
    if problems:
        summary = ", ".join(f"{p['field']} {p['message']}" for p in problems)
        raise DevRouteError(422, "invalid_request", f"The request is not valid: {summary}.", problems)
    assert isinstance(detail_type, str) and isinstance(detail, dict)
    known = sorted(set(accepted) | set(models))
    if detail_type not in known:
        raise DevRouteError(
            422,
            "unknown_event_type",
            f"{detail_type!r} is not a platform event this service takes. Use one of: {', '.join(known)}.",
            {"accepted": known},
        )
    model = models.get(detail_type)
    if model is not None:
        try:
            model.model_validate(detail)
        except ValidationError as exc:
            details = [_problem(error) for error in exc.errors()]
            summary = "; ".join(f"{d['field']} {d['message']}" for d in details[:5])
            raise DevRouteError(
                422, "invalid_detail", f"The {detail_type} detail is not valid: {summary}.", details
            ) from None
    return PlatformEventRequest(detail_type=detail_type, detail=detail)


def _problem(error: Mapping[str, Any]) -> dict[str, str]:
    from integrations.api.errors import problem_message

    location = ".".join(str(part) for part in error.get("loc", ()))
    message = problem_message(error)
    if message == "is not valid" and error.get("msg"):
        # Model rules ("end must be after start", "unknown time zone") say it better than a generic phrase.
        message = str(error["msg"]).removeprefix("Value error, ")
    return {"field": f"detail.{location}" if location else "detail", "message": message}


class PlatformEvents:
    """Publishes platform events on the local bus and records each accepted one in the log."""

    def __init__(
        self,
        events_client: Any,
        bus_name: str,
        log: EventLog,
        accepted: Iterable[str],
        models: Mapping[str, type[BaseModel]] | None = None,
    ) -> None:
        self._client = events_client
        self.bus_name = bus_name
        self.log = log
        self.accepted = tuple(accepted)
        self.models = dict(models) if models is not None else inbound_models()

    def publish(self, raw: bytes) -> LoggedEvent:
        """Check the body and put the event on the bus; returns the log entry (with the bus's event id)."""
        from botocore.exceptions import BotoCoreError, ClientError

        request = parse_request(raw, self.accepted, self.models)
        try:
            answer = self._client.put_events(
                Entries=[
                    {
                        "Source": PLATFORM_SOURCE,
                        "DetailType": request.detail_type,
                        "Detail": json.dumps(request.detail),
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (BotoCoreError, ClientError) as exc:
            reason = f"The bus could not be reached ({type(exc).__name__})."
            raise DevRouteError(503, "bus_unavailable", reason) from None
        [entry] = answer.get("Entries") or [{}]
        if answer.get("FailedEntryCount") or not entry.get("EventId"):
            reason = entry.get("ErrorMessage") or "no reason given"
            raise DevRouteError(503, "bus_unavailable", f"The bus did not take the event: {reason}.")
        logged = LoggedEvent(
            id=str(entry["EventId"]),
            time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            source=PLATFORM_SOURCE,
            detail_type=request.detail_type,
            detail=request.detail,
            origin="dev_route",
        )
        self.log.add(logged)
        return logged
