"""GoHighLevel agencies (Companies): their locations, and location tokens minted from a company token.

Provider page §1.3: an agency-level install gets a Company token (`userType: Company`); sub-account
APIs need a Location token, which the app mints with `POST /oauth/locationToken` (form `companyId`,
`locationId`; Company token, scope `oauth.write`, `Version: 2021-07-28`). The answer has no refresh
token (re-mint from the company token instead). A location outside the company is refused (403), a
Location token cannot mint (401), and a minted token dies with the company grant it came from.
`GET /locations/search?companyId=` lists the company's locations (Company token, `locations.readonly`).
"""

from __future__ import annotations

import math
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import apis, identity
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.crm_store import GHL_BURST, crm_of, take
from infra.local.sandbox.dialects import DIALECTS, stable_alnum
from infra.local.sandbox.errors import ghl_error
from infra.local.sandbox.state import Grant

SANDBOX_COMPANY = identity.ghl_location("x")["companyId"]
OTHER_COMPANY = stable_alnum(20, "ghl-company", "another-agency")
# The sandbox agency's locations (the consent screen's default account first) and one of another agency.
DEFAULT_LOCATIONS: dict[str, tuple[str, str]] = {
    "Sbx7LocQ2mK9fT4wR1pZ": (SANDBOX_COMPANY, "Rivera Roofing"),
    "SbxLocB8nW3kP5vT2qYa": (SANDBOX_COMPANY, "Bright Dental"),
    "SbxLocC4hJ6mR9xL1sDe": (SANDBOX_COMPANY, "Coastal Realty"),
    "SbxLocZ0therAg3ncy00": (OTHER_COMPANY, "Another agency's client"),
}


def locations(sb: Sandbox) -> dict[str, dict[str, str]]:
    """Location id → {"companyId", "name"} (callers hold the state lock)."""
    found = crm_of(sb).ghl_locations
    if not found:
        found.update({k: {"companyId": c, "name": n} for k, (c, n) in DEFAULT_LOCATIONS.items()})
    return found


def company_of(grant: Grant) -> str | None:
    """The company a Company token speaks for; None for a Location token."""
    if grant.extra.get("user_type", "Location") != "Company":
        return None
    return str(identity.ghl_location(grant.account)["companyId"])


def _company_call(sb: Sandbox, request: Request, scopes: set[str]) -> tuple[Grant, str]:
    apis.ghl_version(request)
    grant = require_token(sb, request, "ghl", scopes)
    company = company_of(grant)
    if company is None:
        raise Reply(ghl_error(401, "This authClass type is not allowed to access this scope."))
    wait, _ = take(sb, "ghl", f"ghl:company:{company}", GHL_BURST)
    if wait is not None:
        response = ghl_error(429, "Too many requests")
        response.headers["Retry-After"] = str(math.ceil(wait))
        raise Reply(response)
    return grant, company


def search_locations(sb: Sandbox, request: Request) -> Response:
    """GET /locations/search?companyId=…: the company's locations (Company token)."""
    _, company = _company_call(sb, request, {"locations.readonly"})
    if request.args.get("companyId") != company:
        return ghl_error(403, "The token does not have access to this company.")
    with sb.state.lock:
        found = [
            {"id": k, "name": v["name"], "companyId": v["companyId"]}
            for k, v in locations(sb).items()
            if v["companyId"] == company
        ]
    return json_response({"locations": found})


def location_token(sb: Sandbox, request: Request) -> Response:
    """POST /oauth/locationToken (form companyId, locationId): a Location token for one of the
    company's locations, minted from the Company token; 403 for a location outside the company."""
    grant, company = _company_call(sb, request, {"oauth.write"})
    form = request.form
    company_id, location_id = form.get("companyId", ""), form.get("locationId", "")
    if not company_id or not location_id:
        return ghl_error(422, "companyId and locationId are required")
    if company_id != company:
        return ghl_error(403, "The token does not have access to this company.")
    with sb.state.lock:
        location = locations(sb).get(location_id)
        if location is None or location["companyId"] != company:
            return ghl_error(403, "The company does not have access to this location.")
        store, now = sb.state.oauth, sb.now()
        minted = store.new_grant("ghl", grant.client_id, location_id, grant.scopes, now, None)
        minted.extra.update({"user_type": "Location", "company_grant": grant.id})
        ttl = sb.access_ttl("ghl", DIALECTS["ghl"].access_ttl)
        access = store.issue_access(minted, ttl, now)
    body: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(grant.scopes),
        "userType": "Location",
        "locationId": location_id,
        "companyId": company,
        "userId": identity.ghl_location(location_id)["userId"],
        "planId": "sandbox-plan",
    }
    return json_response(body)


def person_locations(sb: Sandbox, request: Request) -> Response:
    """GET lists every location with its company; POST {"location_id", "name", "company": "sandbox" |
    "other" | a company id} adds a location to an agency, as an agency admin would in GHL."""
    if request.method == "GET":
        with sb.state.lock:
            return json_response({"locations": {k: dict(v) for k, v in locations(sb).items()}})
    body = read_json(request) or {}
    location_id, name = body.get("location_id"), body.get("name") or "New location"
    if not isinstance(location_id, str) or not location_id:
        return json_response({"error": "location_id is required"}, 400)
    company = {"sandbox": SANDBOX_COMPANY, "other": OTHER_COMPANY}.get(
        str(body.get("company", "sandbox")), str(body.get("company"))
    )
    with sb.state.lock:
        locations(sb)[location_id] = {"companyId": company, "name": str(name)}
    return json_response({"location_id": location_id, "companyId": company}, 201)


def routes() -> list[Route]:
    return [
        Route("/ghl/locations/search", ("GET",), search_locations, "api", "ghl"),
        Route("/ghl/oauth/locationToken", ("POST",), location_token, "api", "ghl"),
        Route("/_sandbox/ghl/locations", ("GET", "POST"), person_locations, "control", None),
    ]
