"""The platform bus (EventBridge): the adapter behind events.EventPublisher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.domain.errors import DependencyUnavailable
from integrations.events import SOURCE
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from integrations.events import PlatformEvent


class EventBridgePublisher:
    """Publishes events to the bus. Failures raise: callers decide whether an event is essential."""

    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus_name = bus_name

    @unavailable_on_aws_error("The event bus")
    def publish(self, *events: PlatformEvent) -> None:
        if not events:
            return
        entries: list[PutEventsRequestEntryTypeDef] = [
            {
                "Source": SOURCE,
                "DetailType": event.detail_type,
                "Detail": event.model_dump_json(),
                "EventBusName": self._bus_name,
            }
            for event in events
        ]
        # PutEvents takes at most 10 entries per call.
        for start in range(0, len(entries), 10):
            answer = self._client.put_events(Entries=entries[start : start + 10])
            if answer.get("FailedEntryCount"):
                raise DependencyUnavailable(
                    f"{answer['FailedEntryCount']} events were not accepted by the bus."
                )
