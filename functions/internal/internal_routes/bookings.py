"""POST /internal/bookings: book a slot for an owner during a call."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.sync.booking import Booking, BookingRequest
from internal_routes.context import services

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/internal/bookings",
    summary="Book a slot on an owner's calendar (internal, SigV4)",
    description=(
        "For the platform only (AWS_IAM). Re-checks the exact slot at each conflict calendar's provider "
        "(free/busy) and in the owner's appointments right before writing: 409 `slot_taken` with "
        "`details.conflict` {start, end} when taken. Otherwise writes the event on "
        "`calendar_connection_id` (or the owner's first calendar that takes pushes; 404 "
        "`calendar_not_found`, 409 `no_calendar`), with a Meet / Teams link when `video` is true, "
        "records it like a pushed appointment and answers 201 with the event id and link. Of "
        "concurrent bookings for one slot (or overlapping slots of one owner) exactly one wins. "
        "`idempotency_key` (8-256 characters): the "
        "same key answers the same booking (200); the same key with another request is 422 "
        "`idempotency_key_reused`; while the first is still running, 409 `booking_in_progress`. 503 "
        "`calendar_unavailable` when a calendar that must be checked cannot answer."
    ),
    openapi_extensions=request_body_doc(BookingRequest),
    responses={201: {"description": "Booked"}, 200: {"description": "Booked earlier with this key"}},
    tags=["internal"],
)
def post_booking() -> Response[Booking]:
    container = services(router)
    request = read_json(router.current_event.raw_event, BookingRequest)
    booking, fresh = container.bookings.book(request)
    return Response(status_code=201 if fresh else 200, body=booking, content_type="application/json")
