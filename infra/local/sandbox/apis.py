"""Provider APIs the product calls for identity and configuration dropdowns."""

from __future__ import annotations

import base64
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import identity
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response
from infra.local.sandbox.crm_store import deleted_stages
from infra.local.sandbox.dialects import stable_alnum, stable_digits, stable_uuid
from infra.local.sandbox.errors import calendly_error, ghl_error, slack_error
from infra.local.sandbox.graph_store import online_meeting_providers
from infra.local.sandbox.state import Grant

GHL_VERSION = "2021-07-28"


# --- Google ----------------------------------------------------------------------------------------

_GOOGLE_EMAIL_SCOPES = {"email", "https://www.googleapis.com/auth/userinfo.email"}


def google_userinfo(sb: Sandbox, request: Request) -> Response:
    """OpenID Connect userinfo: `sub` always, `email` only with an email scope granted."""
    grant = require_token(
        sb,
        request,
        "google",
        {"openid", "profile", "https://www.googleapis.com/auth/userinfo.profile", *_GOOGLE_EMAIL_SCOPES},
    )
    profile = identity.google_profile(grant.account)
    body: dict[str, Any] = {"sub": profile["sub"]}
    if _GOOGLE_EMAIL_SCOPES & set(grant.scopes):
        body.update(email=profile["email"], email_verified=True)
    if {"profile", "https://www.googleapis.com/auth/userinfo.profile"} & set(grant.scopes):
        body.update({k: profile[k] for k in ("name", "given_name", "family_name", "picture")})
    return json_response(body)


# --- GoHighLevel -----------------------------------------------------------------------------------


def ghl_version(request: Request) -> None:
    version = request.headers.get("Version")
    if version is None:
        raise Reply(ghl_error(400, "Version header was not found"))
    if version != GHL_VERSION:
        raise Reply(ghl_error(400, f"Version header is invalid: {version}"))


def _ghl_location_access(grant: Grant, location_id: str) -> None:
    location = identity.ghl_location(grant.account)
    if grant.extra.get("user_type", "Location") == "Location":
        allowed = location_id == grant.account
    else:
        allowed = (
            location_id == grant.account
            or identity.ghl_location(location_id)["companyId"] == location["companyId"]
        )
    if not allowed:
        raise Reply(ghl_error(403, "The token does not have access to this location."))


def ghl_location(sb: Sandbox, request: Request, location_id: str) -> Response:
    """GET /locations/{locationId} (scope locations.readonly, header Version: 2021-07-28)."""
    ghl_version(request)
    grant = require_token(sb, request, "ghl", {"locations.readonly"})
    _ghl_location_access(grant, location_id)
    return json_response({"location": identity.ghl_location(location_id)})


def ghl_pipeline_list(sb: Sandbox, location_id: str) -> list[dict[str, Any]]:
    """The location's pipelines with their stages; stages deleted by the person are gone."""
    removed = deleted_stages(sb)
    pipelines = []
    for name, stages in (
        ("Sales Pipeline", ["New Lead", "Contacted", "Appointment Booked", "Proposal Sent", "Won"]),
        ("AI Voice Calls", ["Call Requested", "Call Completed", "Follow Up", "Qualified"]),
    ):
        pid = stable_alnum(20, "ghl-pipeline", location_id, name)
        pipelines.append(
            {
                "id": pid,
                "name": name,
                "locationId": location_id,
                "showInFunnel": True,
                "showInPieChart": True,
                "stages": [
                    {"id": sid, "name": s, "position": i, "showInFunnel": True}
                    for i, s in enumerate(stages)
                    if (sid := stable_uuid("ghl-stage", pid, s)) not in removed
                ],
            }
        )
    return pipelines


def ghl_pipelines(sb: Sandbox, request: Request) -> Response:
    """GET /opportunities/pipelines?locationId=…: pipelines with their stages."""
    ghl_version(request)
    grant = require_token(sb, request, "ghl", {"opportunities.readonly", "opportunities.write"})
    location_id = request.args.get("locationId")
    if not location_id:
        return ghl_error(422, "locationId should not be empty")
    _ghl_location_access(grant, location_id)
    return json_response({"pipelines": ghl_pipeline_list(sb, location_id)})


# --- HubSpot ---------------------------------------------------------------------------------------

_HUBSPOT_PROPERTIES = [
    ("firstname", "First Name", "string", "text"),
    ("lastname", "Last Name", "string", "text"),
    ("email", "Email", "string", "text"),
    ("phone", "Phone Number", "string", "phonenumber"),
    ("company", "Company Name", "string", "text"),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio"),
    ("hs_lead_status", "Lead Status", "enumeration", "radio"),
    ("notes_last_contacted", "Last Contacted", "datetime", "date"),
    ("ai_call_summary", "AI Call Summary", "string", "textarea"),
    ("ai_call_outcome", "AI Call Outcome", "string", "text"),
    ("hs_object_id", "Record ID", "number", "number"),
]


def hubspot_contact_properties(sb: Sandbox, request: Request) -> Response:
    require_token(sb, request, "hubspot", {"crm.objects.contacts.read", "crm.schemas.contacts.read"})
    results = [
        {
            "name": name,
            "label": label,
            "type": kind,
            "fieldType": field_type,
            "groupName": "contactinformation",
            "description": "",
            "displayOrder": i,
            "options": [],
            "hasUniqueValue": name == "hs_object_id",
            "hidden": False,
            "calculated": False,
            "externalOptions": False,
            "formField": name != "hs_object_id",
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": not name.startswith("ai_"),
                "readOnlyValue": name == "hs_object_id",
            },
            "createdAt": "2024-01-15T10:00:00Z",
            "updatedAt": "2024-01-15T10:00:00Z",
            "archived": False,
        }
        for i, (name, label, kind, field_type) in enumerate(_HUBSPOT_PROPERTIES)
    ]
    return json_response({"results": results})


def hubspot_pipeline_list(sb: Sandbox) -> list[dict[str, Any]]:
    """The account's deal pipelines with their stages; stages deleted by the person are gone."""
    removed = deleted_stages(sb)
    stages = [
        ("appointmentscheduled", "Appointment Scheduled", "0.2"),
        ("qualifiedtobuy", "Qualified To Buy", "0.4"),
        ("closedwon", "Closed Won", "1.0"),
        ("closedlost", "Closed Lost", "0.0"),
    ]
    results: list[dict[str, Any]] = [
        {
            "id": "default",
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "archived": False,
            "stages": [
                {
                    "id": sid,
                    "label": label,
                    "displayOrder": i,
                    "archived": False,
                    "metadata": {"isClosed": str(sid.startswith("closed")).lower(), "probability": p},
                }
                for i, (sid, label, p) in enumerate(stages)
            ],
        },
        {
            "id": stable_digits(9, "hubspot-pipeline", "calls"),
            "label": "AI Call Deals",
            "displayOrder": 1,
            "archived": False,
            "stages": [
                {
                    "id": stable_digits(9, "hubspot-stage", s),
                    "label": s,
                    "displayOrder": i,
                    "archived": False,
                    "metadata": {"isClosed": "false", "probability": "0.5"},
                }
                for i, s in enumerate(["Call Booked", "Call Held", "Negotiation"])
            ],
        },
    ]
    for pipeline in results:
        pipeline["stages"] = [s for s in pipeline["stages"] if s["id"] not in removed]
    return results


def hubspot_deal_pipelines(sb: Sandbox, request: Request) -> Response:
    require_token(sb, request, "hubspot", {"crm.objects.deals.read", "crm.objects.deals.write"})
    return json_response({"results": hubspot_pipeline_list(sb)})


# --- Calendly --------------------------------------------------------------------------------------


def _calendly_base(request: Request) -> str:
    return f"{request.host_url.rstrip('/')}/calendly"


def calendly_me(sb: Sandbox, request: Request) -> Response:
    grant = require_token(sb, request, "calendly", {"users:read"})
    return json_response({"resource": identity.calendly_user(grant.account, _calendly_base(request))})


def calendly_event_types(sb: Sandbox, request: Request) -> Response:
    """GET /event_types?user=… or ?organization=…: only the token owner's own resources."""
    grant = require_token(sb, request, "calendly", {"event_types:read"})
    me = identity.calendly_user(grant.account, _calendly_base(request))
    user, organization = request.args.get("user"), request.args.get("organization")
    if not user and not organization:
        return calendly_error(
            400,
            "Invalid Argument",
            "The supplied parameters are invalid.",
            [{"parameter": "user", "message": "one of user, organization must be provided"}],
        )
    # URIs are compared by their id part: the same resource may be named through another host alias.
    if (user and user.rsplit("/", 1)[-1] != me["uri"].rsplit("/", 1)[-1]) or (
        organization and organization.rsplit("/", 1)[-1] != me["current_organization"].rsplit("/", 1)[-1]
    ):
        return calendly_error(403, "Permission Denied", "You do not have permission to access this resource.")
    from infra.local.sandbox import calendly

    with sb.state.lock:
        collection = calendly.event_types(sb, grant.account, _calendly_base(request))
    if request.args.get("active") in ("true", "false"):
        wanted = request.args["active"] == "true"
        collection = [e for e in collection if e["active"] is wanted]
    pagination = {
        "count": len(collection),
        "next_page": None,
        "previous_page": None,
        "next_page_token": None,
        "previous_page_token": None,
    }
    return json_response({"collection": collection, "pagination": pagination})


# --- Slack -----------------------------------------------------------------------------------------

_SLACK_CHANNELS = [
    ("general", False),
    ("random", False),
    ("sales", False),
    ("support", False),
    ("call-alerts", False),
    ("marketing", False),
    ("leadership", True),
]


def slack_auth_test(sb: Sandbox, request: Request) -> Response:
    grant = require_token(sb, request, "slack")
    team = identity.slack_team(grant.account)
    return json_response(
        {
            "ok": True,
            "url": f"https://{team['domain']}.slack.com/",
            "team": team["team_name"],
            "user": "integrations",
            "team_id": team["team_id"],
            "user_id": team["bot_user_id"],
            "bot_id": team["bot_id"],
            "is_enterprise_install": False,
        }
    )


def slack_channels(team_name: str) -> list[dict[str, Any]]:
    out = []
    for name, private in _SLACK_CHANNELS:
        cid = ("G" if private else "C") + stable_alnum(10, "slack-channel", team_name, name).upper()
        out.append(
            {
                "id": cid,
                "name": name,
                "is_channel": not private,
                "is_group": private,
                "is_im": False,
                "is_private": private,
                "is_archived": False,
                "is_general": name == "general",
                "is_member": name in ("general", "call-alerts"),
                "num_members": 12,
                "created": 1705312800,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": f"#{name} (sandbox)", "creator": "", "last_set": 0},
            }
        )
    return out


def _channels(sb: Sandbox, team: str) -> list[dict[str, Any]]:
    """The team's channels with what people changed (membership, archived)."""
    from infra.local.sandbox import slack

    with sb.state.lock:
        return [slack.overlay(sb, team, c) for c in slack_channels(team)]


def _slack_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def slack_conversations_list(sb: Sandbox, request: Request) -> Response:
    """conversations.list with `types`, `limit` and cursor pagination (`response_metadata.next_cursor`)."""
    grant = require_token(sb, request, "slack")
    types = set((request.values.get("types") or "public_channel").split(","))
    unknown = types - {"public_channel", "private_channel", "mpim", "im"}
    if unknown:
        return slack_error("invalid_types")
    needed = {"public_channel": "channels:read", "private_channel": "groups:read"}
    for kind in types & needed.keys():
        if needed[kind] not in grant.scopes:
            return slack_error("missing_scope", needed=needed[kind], provided=",".join(grant.scopes))
    try:
        limit = int(request.values.get("limit") or 100)
    except ValueError:
        return slack_error("invalid_limit")
    limit = max(1, min(limit, 1000))
    cursor = request.values.get("cursor") or ""
    offset = 0
    if cursor:
        try:
            offset = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
        except ValueError:
            return slack_error("invalid_cursor")
    exclude_archived = request.values.get("exclude_archived") in ("true", "1")
    channels = [
        c
        for c in _channels(sb, grant.account)
        if ("private_channel" if c["is_private"] else "public_channel") in types
        and not (exclude_archived and c["is_archived"])
    ]
    page = channels[offset : offset + limit]
    next_cursor = _slack_cursor(offset + limit) if offset + limit < len(channels) else ""
    return json_response({"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}})


def slack_post_message(sb: Sandbox, request: Request) -> Response:
    """chat.postMessage into a channel the bot is a member of; messages are kept for tests to read."""
    grant = require_token(sb, request, "slack", {"chat:write"})
    payload = request.get_json(silent=True) if request.is_json else None
    values: dict[str, Any] = payload if isinstance(payload, dict) else dict(request.values)
    channel = str(values.get("channel") or "")
    if not channel:
        return slack_error("channel_not_found")
    match = next(
        (c for c in _channels(sb, grant.account) if channel in (c["id"], c["name"], "#" + c["name"])), None
    )
    if match is None or (match["is_private"] and not match["is_member"]):
        # A private channel the bot is not in is invisible to it.
        return slack_error("channel_not_found")
    if match["is_archived"]:
        return slack_error("is_archived")
    if not match["is_member"]:
        return slack_error("not_in_channel")
    if not values.get("text") and not values.get("blocks"):
        return slack_error("no_text")
    from infra.local.sandbox import slack

    with sb.state.lock:
        wait = slack.retry_after(sb, grant.account, "chat.postMessage", match["id"])
    if wait is not None:
        return json_response(
            {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(wait)}
        )
    with sb.state.lock:
        messages: list[dict[str, Any]] = sb.state.extensions.setdefault("slack_messages", [])
        ts = f"{sb.now():.6f}"
        message = {
            "team": grant.account,
            "channel": match["id"],
            "ts": ts,
            "text": values.get("text", ""),
            "blocks": values.get("blocks"),
        }
        messages.append(message)
    team = identity.slack_team(grant.account)
    return json_response(
        {
            "ok": True,
            "channel": match["id"],
            "ts": ts,
            "message": {"type": "message", "bot_id": team["bot_id"], "text": message["text"], "ts": ts},
        }
    )


def slack_conversations_info(sb: Sandbox, request: Request) -> Response:
    """conversations.info {channel}: a channel the bot can see (private ones only as a member)."""
    grant = require_token(sb, request, "slack")
    channel = str(request.values.get("channel") or "")
    match = next((c for c in _channels(sb, grant.account) if c["id"] == channel), None)
    if match is None or (match["is_private"] and not match["is_member"]):
        return slack_error("channel_not_found")
    return json_response({"ok": True, "channel": match})


def slack_unknown_method(sb: Sandbox, request: Request, method: str) -> Response:
    return json_response({"ok": False, "error": "unknown_method", "req_method": method}, status=404)


# --- Microsoft Graph -------------------------------------------------------------------------------


def graph_me(sb: Sandbox, request: Request) -> Response:
    grant = require_token(sb, request, "microsoft", {"User.Read"})
    profile = {k: v for k, v in identity.microsoft_profile(grant.account).items() if k != "tid"}
    return json_response(
        {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity", **profile}
    )


def graph_calendars(sb: Sandbox, request: Request) -> Response:
    grant = require_token(sb, request, "microsoft", {"Calendars.Read", "Calendars.ReadWrite"})
    owner = {"name": identity.microsoft_profile(grant.account)["displayName"], "address": grant.account}
    calendars = []
    for name, default, can_edit in (
        ("Calendar", True, True),
        ("Work", False, True),
        ("Birthdays", False, False),
    ):
        calendars.append(
            {
                "id": "AAMk" + stable_alnum(40, "ms-calendar", grant.account, name),
                "name": name,
                "color": "auto",
                "hexColor": "",
                "isDefaultCalendar": default,
                "changeKey": stable_alnum(16, "ms-calendar-ck", grant.account, name),
                "canShare": can_edit,
                "canViewPrivateItems": True,
                "canEdit": can_edit,
                "allowedOnlineMeetingProviders": online_meeting_providers(grant.account),
                "defaultOnlineMeetingProvider": online_meeting_providers(grant.account)[0],
                "isTallyingResponses": True,
                "isRemovable": not default,
                "owner": owner,
            }
        )
    return json_response(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/calendars",
            "value": calendars,
        }
    )


def routes() -> list[Route]:
    return [
        Route("/google/userinfo", ("GET", "POST"), google_userinfo, "api", "google"),
        Route("/google/oauth2/v3/userinfo", ("GET", "POST"), google_userinfo, "api", "google"),
        Route("/ghl/locations/<location_id>", ("GET",), ghl_location, "api", "ghl"),
        Route("/ghl/opportunities/pipelines", ("GET",), ghl_pipelines, "api", "ghl"),
        Route("/hubspot/crm/v3/properties/contacts", ("GET",), hubspot_contact_properties, "api", "hubspot"),
        Route("/hubspot/crm/v3/pipelines/deals", ("GET",), hubspot_deal_pipelines, "api", "hubspot"),
        Route("/calendly/users/me", ("GET",), calendly_me, "api", "calendly"),
        Route("/calendly/event_types", ("GET",), calendly_event_types, "api", "calendly"),
        Route("/slack/api/auth.test", ("GET", "POST"), slack_auth_test, "api", "slack"),
        Route("/slack/api/conversations.list", ("GET", "POST"), slack_conversations_list, "api", "slack"),
        Route("/slack/api/chat.postMessage", ("POST",), slack_post_message, "api", "slack"),
        Route("/slack/api/conversations.info", ("GET", "POST"), slack_conversations_info, "api", "slack"),
        Route("/slack/api/<method>", ("GET", "POST"), slack_unknown_method, "api", "slack"),
        Route("/microsoft/graph/v1.0/me", ("GET",), graph_me, "api", "microsoft"),
        Route("/microsoft/graph/v1.0/me/calendars", ("GET",), graph_calendars, "api", "microsoft"),
    ]
