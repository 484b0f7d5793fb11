"""GoHighLevel contacts, notes and opportunities (API v2, `Version: 2021-07-28`), and the person's side.

Semantics follow /work/shared/providers/crm-scheduling-chat.md §1.4 to §1.7: every call needs the
`Version` header and a token for the location; contacts are read with the advanced search (`filters`
on `dateUpdated`, `sort`, `pageLimit`, `searchAfter` taken from the last contact of a page), deleted
contacts are no longer found; `/contacts/upsert` matches the location's contact by email, then phone;
`/opportunities/upsert` matches by contact and pipeline, and refuses a stage the pipeline no longer
has. 100 requests per 10 s per location, then 429 with `Retry-After` and the `X-RateLimit-*` headers.
A person's change in GHL's own page sends `ContactCreate` / `ContactUpdate` / `ContactDelete`,
signed with the app's Ed25519 key, to the gateway's `/webhooks/ghl`.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import apis
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.crm_store import GHL_BURST, crm_of, iso_ms, parse_instant, take
from infra.local.sandbox.errors import ghl_error
from infra.local.sandbox.push import Delivery

_READ = {"contacts.readonly", "contacts.write"}
_WRITE = {"contacts.write"}
_OPP_READ = {"opportunities.readonly", "opportunities.write"}
_OPP_WRITE = {"opportunities.write"}
_FIELDS = ("firstName", "lastName", "email", "phone", "companyName")
MAX_PAGE = 500


def _call(sb: Sandbox, request: Request, scopes: set[str]) -> str:
    """Version header, token and the location's burst limit; the token's location id."""
    apis.ghl_version(request)
    grant = require_token(sb, request, "ghl", scopes)
    if grant.extra.get("user_type", "Location") != "Location":
        # Sub-account APIs need a Location token (provider page §1.3): mint one from the company's.
        raise Reply(ghl_error(401, "This authClass type is not allowed to access this scope."))
    wait, left = take(sb, "ghl", f"ghl:{grant.account}", GHL_BURST)
    if wait is not None:
        response = ghl_error(429, "Too many requests")
        response.headers.update(_limit_headers(0))
        response.headers["Retry-After"] = str(math.ceil(wait))
        raise Reply(response)
    request.environ["sandbox.ghl.left"] = left
    return grant.account


def _limit_headers(left: int) -> dict[str, str]:
    return {
        "X-RateLimit-Max": str(GHL_BURST[0]),
        "X-RateLimit-Remaining": str(left),
        "X-RateLimit-Interval-Milliseconds": str(int(GHL_BURST[1] * 1000)),
        "X-RateLimit-Limit-Daily": "200000",
    }


def _answer(request: Request, body: Any, status: int = 200) -> Response:
    return json_response(body, status, _limit_headers(int(request.environ.get("sandbox.ghl.left", 0))))


def _own_location(location_id: str, body_location: Any) -> None:
    if not isinstance(body_location, str) or not body_location:
        raise Reply(ghl_error(422, "locationId should not be empty"))
    if body_location != location_id:
        raise Reply(ghl_error(403, "The token does not have access to this location."))


def _public(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in contact.items() if not k.startswith("_")}


def _live(sb: Sandbox, location_id: str, contact_id: str) -> dict[str, Any]:
    contact = crm_of(sb).ghl_contacts.get(contact_id)
    if contact is None or contact["locationId"] != location_id:
        raise Reply(ghl_error(400, "Contact not found"))
    return contact


def save_contact(
    sb: Sandbox, location_id: str, fields: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """Create or change a contact (callers hold the lock); stamps dateUpdated."""
    store = crm_of(sb)
    stamp = store.stamp(sb.now())
    now = stamp / 1000
    if existing is None:
        contact_id = uuid.uuid4().hex[:20]
        existing = {
            "id": contact_id,
            "locationId": location_id,
            "firstName": "",
            "lastName": "",
            "email": "",
            "phone": "",
            "companyName": "",
            "tags": [],
            "source": "",
            "dateAdded": iso_ms(now),
        }
        store.ghl_contacts[contact_id] = existing
    for name in _FIELDS:
        if name in fields and isinstance(fields[name], str):
            existing[name] = fields[name].strip().lower() if name == "email" else fields[name]
    existing["dateUpdated"] = iso_ms(now)
    existing["_ms"] = stamp
    return existing


def _match(sb: Sandbox, location_id: str, email: str, phone: str) -> dict[str, Any] | None:
    for contact in crm_of(sb).ghl_contacts.values():
        if contact["locationId"] != location_id:
            continue
        if email and contact["email"] == email.strip().lower():
            return contact
    for contact in crm_of(sb).ghl_contacts.values():
        if contact["locationId"] == location_id and phone and contact["phone"] == phone:
            return contact
    return None


# --- the API ----------------------------------------------------------------------------------------


def search_contacts(sb: Sandbox, request: Request) -> Response:
    """POST /contacts/search: `locationId`, `pageLimit` (≤ 500), `filters` ([{field: dateUpdated,
    operator: range, value: {gt|gte: ISO}}]), `sort` ([{field: dateUpdated, direction: asc}]) and
    `searchAfter` (the last contact's `searchAfter`)."""
    location_id = _call(sb, request, _READ)
    body = read_json(request) or {}
    _own_location(location_id, body.get("locationId"))
    limit = body.get("pageLimit", 20)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        return ghl_error(422, f"pageLimit must not be greater than {MAX_PAGE}")
    since, inclusive = None, False
    for rule in body.get("filters") or []:
        if isinstance(rule, dict) and rule.get("field") == "dateUpdated" and rule.get("operator") == "range":
            value = rule.get("value") or {}
            inclusive = "gte" in value
            instant = parse_instant(value.get("gte") if inclusive else value.get("gt"))
            if instant is None:
                return ghl_error(422, "filters.value must be a date")
            since = int(instant * 1000)
    after = body.get("searchAfter")
    with sb.state.lock:
        contacts = [
            c
            for c in crm_of(sb).ghl_contacts.values()
            if c["locationId"] == location_id
            and (since is None or (c["_ms"] >= since if inclusive else c["_ms"] > since))
        ]
        contacts.sort(key=lambda c: (c["_ms"], c["id"]))
        if isinstance(after, list) and len(after) == 2:
            mark = (int(after[0]), str(after[1]))
            contacts = [c for c in contacts if (c["_ms"], c["id"]) > mark]
        total = len(contacts)
        page = [{**_public(c), "searchAfter": [c["_ms"], c["id"]]} for c in contacts[:limit]]
    return _answer(request, {"contacts": page, "total": total})


def upsert_contact(sb: Sandbox, request: Request) -> Response:
    """POST /contacts/upsert: create, or update the contact the location matches by email, then phone."""
    location_id = _call(sb, request, _WRITE)
    body = read_json(request) or {}
    _own_location(location_id, body.get("locationId"))
    email, phone = str(body.get("email") or ""), str(body.get("phone") or "")
    if not email and not phone:
        return ghl_error(422, "email or phone is required")
    with sb.state.lock:
        found = _match(sb, location_id, email, phone)
        contact = save_contact(sb, location_id, body, found)
        answer = {"new": found is None, "contact": _public(contact), "traceId": uuid.uuid4().hex}
    return _answer(request, answer, 201 if found is None else 200)


def contact(sb: Sandbox, request: Request, contact_id: str) -> Response:
    """GET, PUT (change fields) or DELETE /contacts/{contactId}."""
    location_id = _call(sb, request, _READ if request.method == "GET" else _WRITE)
    with sb.state.lock:
        found = _live(sb, location_id, contact_id)
        if request.method == "DELETE":
            del crm_of(sb).ghl_contacts[contact_id]
            return _answer(request, {"succeded": True})
        if request.method == "PUT":
            found = save_contact(sb, location_id, read_json(request) or {}, found)
            return _answer(request, {"succeded": True, "contact": _public(found)})
        return _answer(request, {"contact": _public(found)})


def notes(sb: Sandbox, request: Request, contact_id: str) -> Response:
    """GET lists, POST adds a note on the contact ({"body", "userId"})."""
    location_id = _call(sb, request, _READ if request.method == "GET" else _WRITE)
    with sb.state.lock:
        _live(sb, location_id, contact_id)
        kept = crm_of(sb).ghl_notes.setdefault(contact_id, [])
        if request.method == "GET":
            return _answer(request, {"notes": list(kept)})
        body = read_json(request) or {}
        text = body.get("body")
        if not isinstance(text, str) or not text:
            return ghl_error(422, "body should not be empty")
        note = {
            "id": uuid.uuid4().hex[:20],
            "body": text,
            "contactId": contact_id,
            "userId": body.get("userId"),
            "dateAdded": iso_ms(sb.now()),
        }
        kept.append(note)
    return _answer(request, {"note": note}, 201)


def search_opportunities(sb: Sandbox, request: Request) -> Response:
    """GET /opportunities/search?location_id=…&contact_id=…&pipeline_id=…&status=open|all."""
    location_id = _call(sb, request, _OPP_READ)
    if request.args.get("location_id") != location_id:
        return ghl_error(422, "location_id should not be empty")
    wanted = {k: request.args.get(k) for k in ("contact_id", "pipeline_id")}
    status = request.args.get("status", "all")
    with sb.state.lock:
        found = [
            dict(o)
            for o in crm_of(sb).ghl_opportunities.values()
            if o["locationId"] == location_id
            and (not wanted["contact_id"] or o["contactId"] == wanted["contact_id"])
            and (not wanted["pipeline_id"] or o["pipelineId"] == wanted["pipeline_id"])
            and (status == "all" or o["status"] == status)
        ]
    return _answer(request, {"opportunities": found, "meta": {"total": len(found)}})


def _valid_stage(sb: Sandbox, location_id: str, pipeline_id: Any, stage_id: Any) -> None:
    for pipeline in apis.ghl_pipeline_list(sb, location_id):
        if pipeline["id"] == pipeline_id:
            if stage_id is None or any(s["id"] == stage_id for s in pipeline["stages"]):
                return
            raise Reply(ghl_error(400, "Pipeline stage not found"))
    raise Reply(ghl_error(400, "Pipeline not found"))


def upsert_opportunity(sb: Sandbox, request: Request) -> Response:
    """POST /opportunities/upsert: create, or update the contact's opportunity in that pipeline."""
    location_id = _call(sb, request, _OPP_WRITE)
    body = read_json(request) or {}
    _own_location(location_id, body.get("locationId"))
    contact_id = body.get("contactId")
    _valid_stage(sb, location_id, body.get("pipelineId"), body.get("pipelineStageId"))
    with sb.state.lock:
        _live(sb, location_id, str(contact_id))
        store = crm_of(sb)
        found = next(
            (
                o
                for o in store.ghl_opportunities.values()
                if o["contactId"] == contact_id and o["pipelineId"] == body.get("pipelineId")
            ),
            None,
        )
        now = iso_ms(sb.now())
        if found is None:
            found = {
                "id": uuid.uuid4().hex[:20],
                "locationId": location_id,
                "contactId": contact_id,
                "pipelineId": body.get("pipelineId"),
                "name": body.get("name") or "Opportunity",
                "status": body.get("status") or "open",
                "pipelineStageId": body.get("pipelineStageId"),
                "createdAt": now,
            }
            store.ghl_opportunities[found["id"]] = found
            created = True
        else:
            for key in ("pipelineStageId", "status", "name", "monetaryValue"):
                if key in body:
                    found[key] = body[key]
            created = False
        found["updatedAt"] = now
        answer = {"opportunity": dict(found), "new": created}
    return _answer(request, answer, 201 if created else 200)


# --- the person, in GHL's own page ---------------------------------------------------------------


def _send(sb: Sandbox, kind: str, contact: dict[str, Any]) -> None:
    from infra.local.sandbox.control import sign_delivery

    payload = {
        "type": kind,
        "webhookId": str(uuid.uuid4()),
        "timestamp": iso_ms(sb.now()),
        **_public(contact),
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    url = sb.config.webhook_url("ghl")
    headers = {"Content-Type": "application/json", **sign_delivery(sb, "ghl", url, raw)}
    sb.pushes.submit(Delivery(url=url, headers=headers, body=raw, label=f"ghl:{kind}"))


def person_contacts(sb: Sandbox, request: Request) -> Response:
    """POST creates a contact as the person would in GHL ({"location_id", "firstName", "lastName",
    "email", "phone", "companyName"}) and sends `ContactCreate`; GET ?location_id= lists the location's
    contacts with their notes and opportunities (the truth, no webhook)."""
    if request.method == "GET":
        shown = request.args.get("location_id", "")
        with sb.state.lock:
            store = crm_of(sb)
            found = [
                {
                    **_public(c),
                    "notes": list(store.ghl_notes.get(c["id"], [])),
                    "opportunities": [
                        dict(o) for o in store.ghl_opportunities.values() if o["contactId"] == c["id"]
                    ],
                }
                for c in store.ghl_contacts.values()
                if not shown or c["locationId"] == shown
            ]
        return json_response({"contacts": found})
    body = read_json(request) or {}
    location_id = body.get("location_id")
    if not isinstance(location_id, str) or not location_id:
        return json_response({"error": "location_id is required"}, 400)
    with sb.state.lock:
        created = dict(save_contact(sb, location_id, body, None))
    _send(sb, "ContactCreate", created)
    return json_response({"contact": _public(created)}, 201)


def person_contact(sb: Sandbox, request: Request, contact_id: str) -> Response:
    """PATCH changes the contact's fields as the person would in GHL and sends `ContactUpdate`;
    DELETE deletes it and sends `ContactDelete`."""
    with sb.state.lock:
        found = crm_of(sb).ghl_contacts.get(contact_id)
        if found is None:
            return json_response({"error": "no such contact"}, 404)
        if request.method == "DELETE":
            del crm_of(sb).ghl_contacts[contact_id]
            kind, sent = "ContactDelete", dict(found)
        else:
            kind, sent = (
                "ContactUpdate",
                dict(save_contact(sb, found["locationId"], read_json(request) or {}, found)),
            )
    _send(sb, kind, sent)
    return json_response({"contact": _public(sent)})


def person_bulk(sb: Sandbox, request: Request) -> Response:
    """POST {"location_id", "count"}: adds `count` contacts at once (an imported list; no webhooks)."""
    body = read_json(request) or {}
    location_id, count = body.get("location_id"), body.get("count")
    if not isinstance(location_id, str) or not isinstance(count, int) or not 0 < count <= 100_000:
        return json_response({"error": "location_id and a count of 1-100000 are required"}, 400)
    with sb.state.lock:
        base = len(crm_of(sb).ghl_contacts)
        for i in range(count):
            n = base + i
            save_contact(
                sb,
                location_id,
                {"firstName": f"Lead{n}", "lastName": "Imported", "email": f"lead{n}@example.com"},
                None,
            )
    return json_response({"created": count}, 201)


def routes() -> list[Route]:
    return [
        Route("/ghl/contacts/search", ("POST",), search_contacts, "api", "ghl"),
        Route("/ghl/contacts/upsert", ("POST",), upsert_contact, "api", "ghl"),
        Route("/ghl/contacts/<contact_id>", ("GET", "PUT", "DELETE"), contact, "api", "ghl"),
        Route("/ghl/contacts/<contact_id>/notes", ("GET", "POST"), notes, "api", "ghl"),
        Route("/ghl/opportunities/search", ("GET",), search_opportunities, "api", "ghl"),
        Route("/ghl/opportunities/upsert", ("POST",), upsert_opportunity, "api", "ghl"),
        Route("/_sandbox/ghl/contacts", ("GET", "POST"), person_contacts, "control", None),
        Route("/_sandbox/ghl/contacts/<contact_id>", ("PATCH", "DELETE"), person_contact, "control", None),
        Route("/_sandbox/ghl/contacts-bulk", ("POST",), person_bulk, "control", None),
    ]
