"""What the engine's results say on the bus: Calendar Event Changed and Appointment Pushed."""

from __future__ import annotations

from integrations.domain.connection import Connection
from integrations.events import AppointmentPushed, CalendarEventChanged
from integrations.sync.calendar import PushedEvent
from integrations.sync.calendar_sync import EventChange
from integrations.sync.preferences import BUSY_TITLE, preferences_of


def calendar_event_changed(connection: Connection, change: EventChange) -> CalendarEventChanged:
    """One real change of a synced calendar, for the connection's tenant and owner. A calendar that
    shows busy only tells when, never what: the title becomes "Busy"."""
    event = change.event
    show_as = preferences_of(connection).show_as
    return CalendarEventChanged(
        change_id=change.change_id,
        connection_id=connection.id,
        provider=connection.provider,
        agency_id=connection.agency_id,
        client_id=connection.client_id,
        user_id=connection.user_id,
        calendar_id=event.calendar_id,
        event_id=event.external_id,
        change=change.change.value,
        appointment_id=event.appointment_id,
        status=event.status.value,
        start=event.start,
        end=event.end,
        start_date=event.start_date,
        end_date=event.end_date,
        busy=event.busy and not event.declined,
        title=BUSY_TITLE if show_as == "busy" else event.title,
        show_as=show_as,
        series_id=event.series_id,
        original_start=event.original_start,
    )


def appointment_pushed(connection: Connection, pushed: PushedEvent) -> AppointmentPushed:
    return AppointmentPushed(
        appointment_id=pushed.appointment_id,
        connection_id=connection.id,
        provider=connection.provider,
        agency_id=connection.agency_id,
        client_id=connection.client_id,
        user_id=connection.user_id,
        calendar_id=pushed.calendar_id,
        event_id=pushed.external_id,
        video_url=pushed.video_url,
    )
