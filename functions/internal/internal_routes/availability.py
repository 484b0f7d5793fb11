"""POST /internal/availability: busy time and free slots of owners over a window."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.api.internal import AvailabilityAnswer, AvailabilityRequest
from internal_routes.context import services

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/internal/availability",
    summary="Availability of one owner or a team (internal, SigV4)",
    description=(
        "For the platform only (AWS_IAM: SigV4-signed; a portal JWT is refused with 403). Busy blocks "
        "and free slots over a window of at most 62 days, from the mirror of every conflict calendar of "
        "each owner plus their projected appointments. Slots are `slot_minutes` long and start at local "
        "multiples of it in `time_zone`, inside `working_hours` when given. `state: degraded` with "
        "`reasons` when a conflict calendar is in error, paused or not synced within twice its interval: "
        "its busy time may be missing. Several owners: `free` holds the slots when all are free. 422 "
        "`invalid_request` / `malformed_body` for a bad window, zone or owner of another agency."
    ),
    openapi_extensions=request_body_doc(AvailabilityRequest),
    tags=["internal"],
)
def post_availability() -> AvailabilityAnswer:
    container = services(router)
    request = read_json(router.current_event.raw_event, AvailabilityRequest)
    answer = container.availability.for_owners(request.owners, request.window())
    return AvailabilityAnswer.of(answer)
