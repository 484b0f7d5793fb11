"""`POST /dev/internal/*`: the developer panel's calls to the internal API, signed as the platform and
verified by the gateway's own AWS_IAM check (infra.local.dev_internal)."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from infra.local.authorizer import DevCredentials, JwtAuthorizer, SigV4Verifier
from infra.local.dev_internal import PlatformSigner
from infra.local.gateway import Gateway, HealthState
from infra.local.resources import Route

DEV = DevCredentials("local", "local")
ROUTES = [
    Route("POST", "/internal/availability", "InternalFunction", "iam", "InternalAvailability"),
    Route("POST", "/internal/bookings", "InternalFunction", "iam", "InternalBookings"),
]
BODY = {"agency_id": "agency-1", "owners": []}


class Functions:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, function: str, event: Any) -> Any:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"state":"ok"}'}


def gateway(functions: Functions, signer: PlatformSigner | None) -> Gateway:
    return Gateway(
        ROUTES,
        functions.invoke,
        JwtAuthorizer("http://127.0.0.1:3000/dev", ["integrations-portal"]),
        health=HealthState(ready=True),
        sigv4=SigV4Verifier([DEV], region="us-east-1", account_id="123456789012"),
        platform_signer=signer,
    )


def call(app: Gateway, path: str, method: str = "POST", headers: dict[str, str] | None = None) -> Any:
    sent: dict[str, str] = {"Content-Type": "application/json", **(headers or {})}
    environ = EnvironBuilder(
        path=path,
        base_url="http://127.0.0.1:3000",
        method=method,
        data=json.dumps(BODY) if method == "POST" else None,
        headers=list(sent.items()),
    ).get_environ()
    return app.handle(Request(environ))


def test_the_dev_route_signs_the_call_and_the_internal_route_verifies_it() -> None:
    functions = Functions()
    answer = call(gateway(functions, PlatformSigner(DEV, "us-east-1")), "/dev/internal/availability")

    assert answer.status_code == 200
    assert answer.get_json() == {"state": "ok"}
    [event] = functions.events
    assert event["routeKey"] == "POST /internal/availability"
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == "local"
    assert json.loads(event["body"]) == BODY


def test_bookings_go_to_the_bookings_route() -> None:
    functions = Functions()
    answer = call(gateway(functions, PlatformSigner(DEV, "us-east-1")), "/dev/internal/bookings")

    assert answer.status_code == 200
    assert functions.events[0]["routeKey"] == "POST /internal/bookings"


def test_a_signature_the_gateway_does_not_accept_never_reaches_the_function() -> None:
    # Signed with credentials the verifier does not know: the same 403 as from outside.
    functions = Functions()
    stranger = PlatformSigner(DevCredentials("someone", "guessed"), "us-east-1")

    answer = call(gateway(functions, stranger), "/dev/internal/availability")

    assert answer.status_code == 403
    assert functions.events == []


def test_a_portal_jwt_sent_along_is_not_forwarded() -> None:
    functions = Functions()
    app = gateway(functions, PlatformSigner(DEV, "us-east-1"))

    call(app, "/dev/internal/availability", headers={"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.x"})

    [event] = functions.events
    assert event["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert "jwt" not in event["requestContext"]["authorizer"]


def test_only_post_is_taken() -> None:
    answer = call(gateway(Functions(), PlatformSigner(DEV, "us-east-1")), "/dev/internal/bookings", "GET")

    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"


def test_without_a_signer_the_dev_routes_do_not_exist() -> None:
    # As in a deployment: no such route.
    functions = Functions()
    answer = call(gateway(functions, None), "/dev/internal/availability")

    assert answer.status_code == 404
    assert functions.events == []
