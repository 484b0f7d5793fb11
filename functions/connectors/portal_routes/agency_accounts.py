"""What an agency sets up around a CRM: the sub-accounts an agency-level connection serves for its
clients, and the secret URL a CRM workflow calls to ask for a call."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.portal.views import (
    ConnectionView,
    ServeSubAccount,
    SubAccountList,
    WorkflowWebhookSecretView,
    WorkflowWebhookView,
)
from portal_routes.connections import ConnectionId
from portal_routes.context import caller, portal

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
SubAccountId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get(
    "/connections/<connection_id>/sub-accounts",
    summary="The sub-accounts an agency-level connection covers, and the client each serves",
    description=(
        "Agency admins, on an agency-level connection whose provider has sub-accounts (GoHighLevel: "
        "the company's locations, read from `GET /locations/search`). 409 `sub_accounts_not_supported` "
        "otherwise."
    ),
    tags=["connections"],
)
def get_sub_accounts(connection_id: ConnectionId) -> SubAccountList:
    return portal().sub_accounts(caller(router), connection_id)


@router.put(
    "/connections/<connection_id>/sub-accounts/<sub_account_id>",
    summary="Serve a client's sub-account through the agency's connection",
    description=(
        "Agency admins. The client's card then shows the sub-account connected through the agency "
        "(`served_by`); its tokens are minted from the agency's grant (GHL `/oauth/locationToken`). "
        "422 `unknown_sub_account` (not one the provider lists for the agency), 409 `sub_account_taken` "
        "(another client has it), 409 `client_has_own_connection` (the client's own connection wins)."
    ),
    openapi_extensions=request_body_doc(ServeSubAccount),
    tags=["connections"],
)
def put_sub_account(connection_id: ConnectionId, sub_account_id: SubAccountId) -> ConnectionView:
    event = router.current_event.raw_event
    return portal().serve_sub_account(
        caller(router), connection_id, sub_account_id, lambda: read_json(event, ServeSubAccount)
    )


@router.delete(
    "/connections/<connection_id>/sub-accounts/<sub_account_id>",
    summary="Stop serving a sub-account (its served connection is disconnected)",
    description="Agency admins. 404 `not_served`; 409 `client_has_own_connection`.",
    responses={204: {"description": "No longer served"}},
    tags=["connections"],
)
def delete_sub_account(connection_id: ConnectionId, sub_account_id: SubAccountId) -> Response[str]:
    portal().stop_serving(caller(router), connection_id, sub_account_id)
    return Response(status_code=204, body="")


@router.get(
    "/connections/<connection_id>/workflow-webhook",
    summary="The URL a CRM workflow posts call requests to, and whether its secret is set",
    description=(
        "Manage permission. Never shows the secret (it is stored as a digest); POST issues a new one. "
        "409 `workflow_webhook_not_supported` for connections without workflows (or agency-level ones: "
        "use the client's location connection)."
    ),
    tags=["connections"],
)
def get_workflow_webhook(connection_id: ConnectionId) -> WorkflowWebhookView:
    return portal().workflow_webhook(caller(router), connection_id)


@router.post(
    "/connections/<connection_id>/workflow-webhook",
    summary="Issue (or rotate) the workflow secret; the answer shows it once",
    description=(
        "Manage permission. Paste the URL and `Authorization: Bearer <secret>` into the GHL workflow's "
        "Custom Webhook action. Rotating invalidates the previous secret at once."
    ),
    responses={201: {"description": "Issued"}},
    tags=["connections"],
)
def post_workflow_webhook(connection_id: ConnectionId) -> Response[WorkflowWebhookSecretView]:
    issued = portal().rotate_workflow_webhook(caller(router), connection_id)
    return Response(status_code=201, body=issued, content_type="application/json")
