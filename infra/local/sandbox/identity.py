"""The account behind what a person typed on a consent page, as each provider describes it."""

from __future__ import annotations

import re
from typing import Any

from infra.local.sandbox.dialects import display_name, stable_alnum, stable_digits, stable_uuid


def google_profile(email: str) -> dict[str, Any]:
    name = display_name(email)
    given, _, family = name.partition(" ")
    return {
        "sub": stable_digits(21, "google-sub", email.lower()),
        "email": email,
        "email_verified": True,
        "name": name,
        "given_name": given,
        "family_name": family,
        "picture": "https://lh3.googleusercontent.com/a/sandbox-avatar",
    }


def microsoft_profile(email: str) -> dict[str, Any]:
    name = display_name(email)
    given, _, family = name.partition(" ")
    return {
        "id": stable_uuid("ms-user", email.lower()),
        "tid": stable_uuid("ms-tenant", email.split("@", 1)[1].lower()),
        "displayName": name,
        "givenName": given,
        "surname": family or None,
        "mail": email,
        "userPrincipalName": email,
        "jobTitle": None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "businessPhones": [],
    }


def ghl_location(location_id: str) -> dict[str, Any]:
    company = stable_alnum(20, "ghl-company", "sandbox-agency")
    return {
        "id": location_id,
        "companyId": company,
        "userId": stable_alnum(20, "ghl-user", location_id),
        "name": f"Sandbox Location {location_id[:6]}",
        "email": f"owner+{location_id[:6].lower()}@example.com",
        "phone": "+15555550100",
        "address": "1 Sandbox Way",
        "city": "Austin",
        "state": "TX",
        "country": "US",
        "postalCode": "78701",
        "website": "https://example.com",
        "timezone": "America/Chicago",
    }


def hubspot_portal(hub_id: str) -> dict[str, Any]:
    return {
        "hub_id": int(hub_id),
        "hub_domain": f"sandbox-{hub_id}.example.com",
        "user": "alex@example.com",
        "user_id": int(stable_digits(8, "hubspot-user", hub_id)),
    }


def calendly_user(email: str, api_base: str) -> dict[str, Any]:
    """The `/users/me` resource; URIs point at the sandbox so they can be called back as they are."""
    user_uuid = stable_uuid("calendly-user", email.lower()).upper()
    org_uuid = stable_uuid("calendly-org", email.split("@", 1)[1].lower()).upper()
    slug = re.sub(r"[^a-z0-9]+", "-", email.split("@", 1)[0].lower()).strip("-") or "user"
    return {
        "uri": f"{api_base}/users/{user_uuid}",
        "name": display_name(email),
        "slug": slug,
        "email": email,
        "scheduling_url": f"https://calendly.com/{slug}",
        "timezone": "America/New_York",
        "avatar_url": None,
        "locale": "en",
        "created_at": "2024-01-15T10:00:00.000000Z",
        "updated_at": "2024-01-15T10:00:00.000000Z",
        "current_organization": f"{api_base}/organizations/{org_uuid}",
        "resource_type": "User",
    }


def slack_team(name: str) -> dict[str, str]:
    domain = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "workspace"
    return {
        "team_id": "T" + stable_alnum(10, "slack-team", name).upper(),
        "team_name": name,
        "domain": domain,
        "bot_user_id": "U" + stable_alnum(10, "slack-bot-user", name).upper(),
        "bot_id": "B" + stable_alnum(10, "slack-bot", name).upper(),
        "authed_user_id": "U" + stable_alnum(10, "slack-installer", name).upper(),
    }
