"""HubSpot CRM v3: contacts (search, batch upsert by email, read, update, archive), calls and emails
with their contact association, deals (search by associated contact, create, move stage), and the
person's side.

Semantics follow /work/shared/providers/crm-scheduling-chat.md §2.2 to §2.4: search takes `filterGroups`
(e.g. `lastmodifieddate` GT epoch ms), `sorts`, `properties`, `limit` ≤ 200 and `after`, answers
`paging.next.after`, stops at 10,000 results per query, carries no rate-limit headers and is limited to
5 requests per second; every other call counts against 110 per 10 s per account and carries the
`X-HubSpot-RateLimit-*` headers; over the limit it is 429 `RATE_LIMIT` / `TEN_SECONDLY_ROLLING`.
Batch upserts take ≤ 100 inputs. An email engagement needs `hs_timestamp`, an `hs_email_direction` of
`EMAIL`, `INCOMING_EMAIL` or `FORWARDED_EMAIL`, and `hs_email_headers` (when given) that parse as JSON;
its association to a contact is type 198, and HubSpot fills `hs_email_from_email` / `hs_email_to_email`
from the headers. A deal moved to a stage its pipeline no longer has is a 400
`VALIDATION_ERROR`. A person's change in HubSpot's own page sends `contact.creation`,
`contact.propertyChange` (one event per property) or `contact.deletion`, signed v3, to `/webhooks/hubspot`.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import apis
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.crm_store import HUBSPOT_BURST, HUBSPOT_SEARCH, crm_of, iso_ms, take
from infra.local.sandbox.errors import hubspot_error
from infra.local.sandbox.push import Delivery

_READ = {"crm.objects.contacts.read", "crm.objects.contacts.write"}
_WRITE = {"crm.objects.contacts.write"}
_DEALS = {"crm.objects.deals.read", "crm.objects.deals.write"}
_DEALS_WRITE = {"crm.objects.deals.write"}
MAX_SEARCH_PAGE = 200
MAX_BATCH = 100
SEARCH_WINDOW = 10_000
CALL_TO_CONTACT = 194
EMAIL_TO_CONTACT = 198
EMAIL_DIRECTIONS = ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")
DEAL_TO_CONTACT = 3
_APP_ID = "1234567"
# What HubSpot's email property accepts, near enough: one @, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _call(sb: Sandbox, request: Request, scopes: set[str], *, search: bool = False) -> str:
    """Token and the account's limits; the hub id."""
    grant = require_token(sb, request, "hubspot", scopes)
    hub = grant.account
    limit = HUBSPOT_SEARCH if search else HUBSPOT_BURST
    wait, left = take(sb, "hubspot", f"hubspot:{hub}:{'search' if search else 'burst'}", limit)
    if wait is not None:
        response = json_response(
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": secrets.token_hex(8),
                "policyName": "SECONDLY" if search else "TEN_SECONDLY_ROLLING",
            },
            429,
            {"Retry-After": str(math.ceil(wait))},
        )
        if not search:
            response.headers.update(_limit_headers(0))
        raise Reply(response)
    request.environ["sandbox.hubspot.left"] = None if search else left
    return hub


def _limit_headers(left: int) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(HUBSPOT_BURST[0]),
        "X-HubSpot-RateLimit-Remaining": str(left),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(HUBSPOT_BURST[1] * 1000)),
    }


def _answer(request: Request, body: Any, status: int = 200) -> Response:
    left = request.environ.get("sandbox.hubspot.left")
    return json_response(body, status, _limit_headers(left) if isinstance(left, int) else None)


def _public(record: dict[str, Any], wanted: list[str] | None = None) -> dict[str, Any]:
    properties = record["properties"]
    if wanted is not None:
        base = {"hs_object_id", "createdate", "lastmodifieddate"}
        properties = {k: v for k, v in properties.items() if k in base or k in wanted}
    return {k: v for k, v in record.items() if not k.startswith("_")} | {"properties": dict(properties)}


def save_record(
    sb: Sandbox,
    kind: dict[str, dict[str, Any]],
    hub: str,
    properties: dict[str, Any],
    found: dict[str, Any] | None,
) -> dict[str, Any]:
    """Create or change a record (callers hold the lock); stamps lastmodifieddate."""
    store = crm_of(sb)
    stamp = store.stamp(sb.now())
    now = stamp / 1000
    if found is None:
        record_id = store.next_id()
        found = {
            "id": record_id,
            "properties": {"hs_object_id": record_id, "createdate": iso_ms(now)},
            "createdAt": iso_ms(now),
            "archived": False,
            "_hub": hub,
        }
        kind[record_id] = found
    for name, value in properties.items():
        text = "" if value is None else str(value)
        found["properties"][name] = text.strip().lower() if name == "email" else text
    found["properties"]["lastmodifieddate"] = iso_ms(now)
    found["updatedAt"] = iso_ms(now)
    found["_ms"] = stamp
    return found


def _own(sb: Sandbox, kind: dict[str, dict[str, Any]], hub: str, record_id: str) -> dict[str, Any]:
    found = kind.get(record_id)
    if found is None or found["_hub"] != hub or found["archived"]:
        raise Reply(
            hubspot_error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
        )
    return found


def _filters_match(record: dict[str, Any], groups: list[Any], sb: Sandbox) -> bool:
    if not groups:
        return True
    return any(all(_filter(record, f, sb) for f in group.get("filters", [])) for group in groups)


def _filter(record: dict[str, Any], rule: dict[str, Any], sb: Sandbox) -> bool:
    name, operator, value = rule.get("propertyName"), rule.get("operator"), rule.get("value")
    if name == "associations.contact":
        return (record["id"], "contact", str(value)) in crm_of(sb).hubspot_associations
    if name == "lastmodifieddate":
        mine = int(record["_ms"])
        wanted = float(value or 0)
        return {"GT": mine > wanted, "GTE": mine >= wanted, "LT": mine < wanted, "LTE": mine <= wanted}.get(
            str(operator), False
        )
    current = record["properties"].get(str(name), "")
    if operator == "EQ":
        return str(current).lower() == str(value).lower()
    if operator == "NEQ":
        return str(current).lower() != str(value).lower()
    if operator == "HAS_PROPERTY":
        return bool(current)
    raise Reply(hubspot_error(400, "VALIDATION_ERROR", f"Unsupported operator {operator} in the sandbox."))


def _search(sb: Sandbox, request: Request, kind_name: str, scopes: set[str]) -> Response:
    hub = _call(sb, request, scopes, search=True)
    body = read_json(request) or {}
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 0 < limit <= MAX_SEARCH_PAGE:
        return hubspot_error(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_SEARCH_PAGE}")
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 25:
        return hubspot_error(400, "VALIDATION_ERROR", "Too many filter groups or filters.")
    after = int(body.get("after") or 0)
    if after + limit > SEARCH_WINDOW:
        return hubspot_error(400, "VALIDATION_ERROR", "Paging beyond 10,000 results is not supported.")
    wanted = body.get("properties")
    with sb.state.lock:
        kind = getattr(crm_of(sb), kind_name)
        found = [
            r
            for r in kind.values()
            if r["_hub"] == hub and not r["archived"] and _filters_match(r, groups, sb)
        ]
        sorts = body.get("sorts") or []
        if sorts and isinstance(sorts[0], dict) and sorts[0].get("propertyName") == "lastmodifieddate":
            found.sort(
                key=lambda r: (r["_ms"], int(r["id"])), reverse=sorts[0].get("direction") == "DESCENDING"
            )
        else:
            found.sort(key=lambda r: int(r["id"]))
        page = [
            _public(r, wanted if isinstance(wanted, list) else None) for r in found[after : after + limit]
        ]
    answer: dict[str, Any] = {"total": len(found), "results": page}
    if after + limit < len(found):
        answer["paging"] = {"next": {"after": str(after + limit), "link": ""}}
    return _answer(request, answer)


# --- contacts -------------------------------------------------------------------------------------


def search_contacts(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/contacts/search (filterGroups, sorts, properties, limit ≤ 200, after)."""
    return _search(sb, request, "hubspot_contacts", _READ)


def batch_upsert_contacts(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/contacts/batch/upsert: ≤ 100 inputs {id, idProperty: email, properties}.

    As HubSpot: a malformed request or one naming an email twice fails whole (400); an input HubSpot
    cannot take (an invalid email, or one `/_sandbox/hubspot/upsert-refusals` names) is an entry of
    `errors` naming its id while the others are written, answered 207 Multi-Status with `numErrors`.
    Results come in no particular order: callers match them by email."""
    hub = _call(sb, request, _WRITE)
    inputs = (read_json(request) or {}).get("inputs")
    if not isinstance(inputs, list) or not 0 < len(inputs) <= MAX_BATCH:
        return hubspot_error(400, "VALIDATION_ERROR", f"inputs must hold 1 to {MAX_BATCH} objects")
    if not all(isinstance(i, dict) and i.get("idProperty") == "email" and i.get("id") for i in inputs):
        return hubspot_error(400, "VALIDATION_ERROR", "Each input needs an email id and idProperty email.")
    emails = [str(i["id"]).strip().lower() for i in inputs]
    if len(set(emails)) != len(emails):
        return hubspot_error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input.")
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with sb.state.lock:
        crm = crm_of(sb)
        contacts = crm.hubspot_contacts
        for item, email in zip(inputs, emails, strict=True):
            refusals = crm.hubspot_refused_inputs.get(email, 0)
            if refusals or not _EMAIL.fullmatch(email):
                if refusals:
                    crm.hubspot_refused_inputs[email] = refusals - 1
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"Property values were not valid: email {item['id']!r}",
                        "context": {"ids": [str(item["id"])]},
                    }
                )
                continue
            found = next(
                (
                    c
                    for c in contacts.values()
                    if c["_hub"] == hub and not c["archived"] and c["properties"].get("email") == email
                ),
                None,
            )
            properties = {**(item.get("properties") or {}), "email": email}
            saved = save_record(sb, contacts, hub, properties, found)
            results.append({**_public(saved), "new": found is None})
    # HubSpot does not promise the inputs' order; the sandbox turns it around so callers cannot rely on it.
    body: dict[str, Any] = {"status": "COMPLETE", "results": results[::-1]}
    if errors:
        body.update({"numErrors": len(errors), "errors": errors})
    return _answer(request, body, 207 if errors else 200)


def person_refuse_upserts(sb: Sandbox, request: Request) -> Response:
    """POST {"emails": [...], "times": 1}: batch upsert inputs for these emails are refused (a per-input
    error, 207) the next `times` times each, as when HubSpot cannot take a contact just now."""
    body = read_json(request) or {}
    emails, times = body.get("emails"), body.get("times", 1)
    if not isinstance(emails, list) or not isinstance(times, int) or times < 1:
        return json_response({"error": "emails must be a list and times a whole number >= 1"}, 400)
    with sb.state.lock:
        refused = crm_of(sb).hubspot_refused_inputs
        for email in emails:
            refused[str(email).strip().lower()] = times
        return json_response({"refused": dict(refused)}, 201)


def contact(sb: Sandbox, request: Request, contact_id: str) -> Response:
    """GET, PATCH ({"properties"}) or DELETE (archive) /crm/v3/objects/contacts/{contactId}."""
    hub = _call(sb, request, _READ if request.method == "GET" else _WRITE)
    with sb.state.lock:
        contacts = crm_of(sb).hubspot_contacts
        found = _own(sb, contacts, hub, contact_id)
        if request.method == "DELETE":
            found["archived"] = True
            return Response(status=204)
        if request.method == "PATCH":
            properties = (read_json(request) or {}).get("properties") or {}
            found = save_record(sb, contacts, hub, properties, found)
        return _answer(request, _public(found))


def create_contact(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/contacts ({"properties"}); a taken email is 409 CONFLICT."""
    hub = _call(sb, request, _WRITE)
    properties = (read_json(request) or {}).get("properties") or {}
    with sb.state.lock:
        contacts = crm_of(sb).hubspot_contacts
        email = str(properties.get("email") or "").strip().lower()
        if email and any(
            c["properties"].get("email") == email and c["_hub"] == hub and not c["archived"]
            for c in contacts.values()
        ):
            return hubspot_error(409, "CONFLICT", "Contact already exists.")
        saved = save_record(sb, contacts, hub, properties, None)
    return _answer(request, _public(saved), 201)


# --- calls and deals ------------------------------------------------------------------------------


def _check_associations(sb: Sandbox, associations: Any, type_id: int, hub: str) -> None:
    """Refuse a wrong association type or a contact the account does not have, before any write."""
    for association in associations or []:
        types = [t.get("associationTypeId") for t in association.get("types", [])]
        if type_id not in types:
            raise Reply(
                hubspot_error(400, "VALIDATION_ERROR", f"associationTypeId {types} is not valid here.")
            )
        _own(sb, crm_of(sb).hubspot_contacts, hub, str((association.get("to") or {}).get("id")))


def _associate(sb: Sandbox, record_id: str, associations: Any, type_id: int, hub: str) -> None:
    for association in associations or []:
        target = str((association.get("to") or {}).get("id"))
        types = [t.get("associationTypeId") for t in association.get("types", [])]
        if type_id not in types:
            raise Reply(
                hubspot_error(400, "VALIDATION_ERROR", f"associationTypeId {types} is not valid here.")
            )
        _own(sb, crm_of(sb).hubspot_contacts, hub, target)
        crm_of(sb).hubspot_associations.add((record_id, "contact", target))


def create_call(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/calls ({"properties": {hs_timestamp, hs_call_body, ...}, "associations"})."""
    hub = _call(sb, request, _WRITE)
    body = read_json(request) or {}
    properties = body.get("properties") or {}
    if not properties.get("hs_timestamp"):
        return hubspot_error(400, "VALIDATION_ERROR", "Property hs_timestamp is required.")
    with sb.state.lock:
        saved = save_record(sb, crm_of(sb).hubspot_calls, hub, properties, None)
        _associate(sb, saved["id"], body.get("associations"), CALL_TO_CONTACT, hub)
    return _answer(request, _public(saved), 201)


def create_email(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/emails ({"properties": {hs_timestamp, hs_email_direction, hs_email_subject,
    hs_email_text, hs_email_html, hs_email_headers, ...}, "associations": [type 198 to a contact]})."""
    hub = _call(sb, request, _WRITE)
    body = read_json(request) or {}
    properties = dict(body.get("properties") or {})
    if not properties.get("hs_timestamp"):
        return hubspot_error(400, "VALIDATION_ERROR", "Property hs_timestamp is required.")
    if properties.get("hs_email_direction") not in EMAIL_DIRECTIONS:
        return hubspot_error(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: hs_email_direction {properties.get('hs_email_direction')!r}",
        )
    headers = properties.get("hs_email_headers")
    if headers is not None:
        try:
            parsed = json.loads(str(headers))
        except ValueError:
            return hubspot_error(400, "VALIDATION_ERROR", "hs_email_headers must be a JSON string.")
        sender = (parsed.get("from") or {}) if isinstance(parsed, dict) else {}
        to = [p.get("email", "") for p in (parsed.get("to") or []) if isinstance(p, dict)]
        properties["hs_email_from_email"] = str(sender.get("email") or "")
        properties["hs_email_to_email"] = ";".join(to)
    with sb.state.lock:
        _check_associations(sb, body.get("associations"), EMAIL_TO_CONTACT, hub)
        saved = save_record(sb, crm_of(sb).hubspot_emails, hub, properties, None)
        _associate(sb, saved["id"], body.get("associations"), EMAIL_TO_CONTACT, hub)
    return _answer(request, _public(saved), 201)


def search_emails(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/emails/search (e.g. `hs_email_message_id` EQ and `associations.contact` EQ)."""
    return _search(sb, request, "hubspot_emails", _READ)


def search_deals(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/deals/search (filters include `associations.contact` EQ the contact id)."""
    return _search(sb, request, "hubspot_deals", _DEALS)


def _valid_stage(sb: Sandbox, pipeline_id: Any, stage_id: Any) -> None:
    for pipeline in apis.hubspot_pipeline_list(sb):
        if pipeline["id"] == pipeline_id:
            if stage_id is None or any(s["id"] == stage_id for s in pipeline["stages"]):
                return
            break
    raise Reply(
        hubspot_error(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: dealstage {stage_id!r} is not in pipeline {pipeline_id!r}",
        )
    )


def create_deal(sb: Sandbox, request: Request) -> Response:
    """POST /crm/v3/objects/deals ({"properties": {dealname, pipeline, dealstage}, "associations"})."""
    hub = _call(sb, request, _DEALS_WRITE)
    body = read_json(request) or {}
    properties = body.get("properties") or {}
    _valid_stage(sb, properties.get("pipeline"), properties.get("dealstage"))
    with sb.state.lock:
        saved = save_record(sb, crm_of(sb).hubspot_deals, hub, properties, None)
        _associate(sb, saved["id"], body.get("associations"), DEAL_TO_CONTACT, hub)
    return _answer(request, _public(saved), 201)


def deal(sb: Sandbox, request: Request, deal_id: str) -> Response:
    """GET or PATCH /crm/v3/objects/deals/{dealId} (moving stages = PATCH `dealstage`)."""
    hub = _call(sb, request, _DEALS if request.method == "GET" else _DEALS_WRITE)
    with sb.state.lock:
        deals = crm_of(sb).hubspot_deals
        found = _own(sb, deals, hub, deal_id)
        if request.method == "PATCH":
            properties = (read_json(request) or {}).get("properties") or {}
            pipeline = properties.get("pipeline", found["properties"].get("pipeline"))
            if "dealstage" in properties:
                _valid_stage(sb, pipeline, properties["dealstage"])
            found = save_record(sb, deals, hub, properties, found)
        return _answer(request, _public(found))


# --- the person, in HubSpot's own page -------------------------------------------------------------


def _send(sb: Sandbox, hub: str, object_id: str, events: list[tuple[str, str | None, str | None]]) -> None:
    from infra.local.sandbox.control import sign_delivery

    now = int(sb.now() * 1000)
    payload = [
        {
            "eventId": secrets.randbelow(10**9),
            "subscriptionId": 1000 + i,
            "portalId": int(hub),
            "appId": int(_APP_ID),
            "occurredAt": now,
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeSource": "CRM_UI",
            **({"propertyName": name, "propertyValue": value} if name else {}),
        }
        for i, (kind, name, value) in enumerate(events)
    ]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    url = sb.config.webhook_url("hubspot")
    headers = {"Content-Type": "application/json", **sign_delivery(sb, "hubspot", url, raw)}
    sb.pushes.submit(Delivery(url=url, headers=headers, body=raw, label="hubspot:contact"))


def person_contacts(sb: Sandbox, request: Request) -> Response:
    """POST creates a contact as the person would in HubSpot ({"hub_id", "properties"}) and sends
    `contact.creation`; GET ?hub_id= lists the account's contacts with their calls, emails and deals
    (the truth, no webhook)."""
    if request.method == "GET":
        shown_hub = request.args.get("hub_id", "")
        with sb.state.lock:
            store = crm_of(sb)

            def linked(kind: dict[str, dict[str, Any]], contact_id: str) -> list[dict[str, Any]]:
                return [
                    _public(r)
                    for r in kind.values()
                    if (r["id"], "contact", contact_id) in store.hubspot_associations
                ]

            found = [
                {
                    **_public(c),
                    "calls": linked(store.hubspot_calls, c["id"]),
                    "emails": linked(store.hubspot_emails, c["id"]),
                    "deals": linked(store.hubspot_deals, c["id"]),
                }
                for c in store.hubspot_contacts.values()
                if (not shown_hub or c["_hub"] == shown_hub) and not c["archived"]
            ]
        return json_response({"contacts": found})
    body = read_json(request) or {}
    hub, properties = body.get("hub_id"), body.get("properties")
    if not isinstance(hub, str) or not hub.isdigit() or not isinstance(properties, dict):
        return json_response({"error": "hub_id (digits) and properties are required"}, 400)
    with sb.state.lock:
        saved = dict(save_record(sb, crm_of(sb).hubspot_contacts, hub, properties, None))
    _send(sb, hub, saved["id"], [("contact.creation", None, None)])
    return json_response(_public(saved), 201)


def person_contact(sb: Sandbox, request: Request, contact_id: str) -> Response:
    """PATCH {"properties"} changes the contact as the person would in HubSpot and sends one
    `contact.propertyChange` per property; DELETE archives it and sends `contact.deletion`."""
    with sb.state.lock:
        contacts = crm_of(sb).hubspot_contacts
        found = contacts.get(contact_id)
        if found is None or found["archived"]:
            return json_response({"error": "no such contact"}, 404)
        hub = found["_hub"]
        if request.method == "DELETE":
            found["archived"] = True
            events: list[tuple[str, str | None, str | None]] = [("contact.deletion", None, None)]
        else:
            properties = (read_json(request) or {}).get("properties") or {}
            found = save_record(sb, contacts, hub, properties, found)
            events = [("contact.propertyChange", k, str(v)) for k, v in properties.items()]
        shown = _public(found)
    _send(sb, hub, contact_id, events)
    return json_response(shown)


def person_bulk(sb: Sandbox, request: Request) -> Response:
    """POST {"hub_id", "count"}: adds `count` contacts at once (an imported list; no webhooks)."""
    body = read_json(request) or {}
    hub, count = body.get("hub_id"), body.get("count")
    if not isinstance(hub, str) or not isinstance(count, int) or not 0 < count <= 100_000:
        return json_response({"error": "hub_id and a count of 1-100000 are required"}, 400)
    with sb.state.lock:
        contacts = crm_of(sb).hubspot_contacts
        base = len(contacts)
        for i in range(count):
            n = base + i
            save_record(
                sb,
                contacts,
                hub,
                {"firstname": f"Lead{n}", "lastname": "Imported", "email": f"lead{n}@example.com"},
                None,
            )
    return json_response({"created": count}, 201)


def person_delete_stage(sb: Sandbox, request: Request, stage_id: str) -> Response:
    """DELETE removes a pipeline stage (GHL or HubSpot) as an admin would: it leaves the pipelines list
    and every write naming it is refused. Reset brings it back."""
    with sb.state.lock:
        crm_of(sb).deleted_stages.add(stage_id)
    return json_response({"deleted": stage_id})


def throttled(sb: Sandbox, request: Request) -> Response:
    """GET how many requests the CRMs' rate limits refused (429), per app."""
    with sb.state.lock:
        return json_response({"throttled": dict(crm_of(sb).throttled)})


def routes() -> list[Route]:
    base = "/hubspot/crm/v3/objects"
    return [
        Route(f"{base}/contacts/search", ("POST",), search_contacts, "api", "hubspot"),
        Route(f"{base}/contacts/batch/upsert", ("POST",), batch_upsert_contacts, "api", "hubspot"),
        Route(f"{base}/contacts", ("POST",), create_contact, "api", "hubspot"),
        Route(f"{base}/contacts/<contact_id>", ("GET", "PATCH", "DELETE"), contact, "api", "hubspot"),
        Route(f"{base}/calls", ("POST",), create_call, "api", "hubspot"),
        Route(f"{base}/emails", ("POST",), create_email, "api", "hubspot"),
        Route(f"{base}/emails/search", ("POST",), search_emails, "api", "hubspot"),
        Route(f"{base}/deals/search", ("POST",), search_deals, "api", "hubspot"),
        Route(f"{base}/deals", ("POST",), create_deal, "api", "hubspot"),
        Route(f"{base}/deals/<deal_id>", ("GET", "PATCH"), deal, "api", "hubspot"),
        Route("/_sandbox/hubspot/contacts", ("GET", "POST"), person_contacts, "control", None),
        Route(
            "/_sandbox/hubspot/contacts/<contact_id>", ("PATCH", "DELETE"), person_contact, "control", None
        ),
        Route("/_sandbox/hubspot/contacts-bulk", ("POST",), person_bulk, "control", None),
        Route("/_sandbox/hubspot/upsert-refusals", ("POST",), person_refuse_upserts, "control", None),
        Route("/_sandbox/crm/stages/<stage_id>", ("DELETE",), person_delete_stage, "control", None),
        Route("/_sandbox/crm/throttled", ("GET",), throttled, "control", None),
    ]
