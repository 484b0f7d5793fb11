"""POST /internal/scheduling-links: a single-use booking link of a client's scheduling connection."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.sync.links import SchedulingLink, SchedulingLinkRequest
from internal_routes.context import services

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/internal/scheduling-links",
    summary="A single-use scheduling link (internal, SigV4)",
    description=(
        "For the platform only (AWS_IAM: SigV4-signed; a portal JWT is refused with 403). Makes a "
        "single-use Calendly link for the connection's configured event type (or `event_type_id`), "
        "prefilled with `name` / `email` and tagged with `utm_*`, which the booking event echoes. 404 "
        "`connection_not_found` for a connection of another tenant; 409 `config_required` when the "
        "event type is deactivated (naming it); 422 for a bad body."
    ),
    openapi_extensions=request_body_doc(SchedulingLinkRequest),
    responses={201: {"description": "Created"}},
    tags=["internal"],
)
def post_scheduling_link() -> Response[SchedulingLink]:
    container = services(router)
    request = read_json(router.current_event.raw_event, SchedulingLinkRequest)
    link = container.scheduling_links.create(request)
    return Response(status_code=201, body=link, content_type="application/json")
