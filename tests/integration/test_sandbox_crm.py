"""The sandbox's GoHighLevel and HubSpot CRM APIs behave as the providers document them, and a person's
change in the CRM sends the webhook the product's plug-ins verify and route."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from infra.local.sandbox import APP_CREDENTIALS, SandboxConfig
from integrations.providers.ghl.webhook import parse_ghl
from integrations.providers.hubspot.webhook import hubspot_v3_signature, parse_hubspot
from integrations.webhooks.request import Headers, WebhookRequest
from tests.integration.test_sandbox_apis import Receiver
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

LOCATION = "Sbx7LocQ2mK9fT4wR1pZ"
HUB = "24681357"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def sb(receiver: Receiver) -> Iterator[Sandbox]:
    urls = {p: f"{receiver.url}/webhooks/{p}" for p in ("ghl", "hubspot")}
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, webhook_urls=urls)) as sandbox:
        yield sandbox


def _ghl(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}", "Version": "2021-07-28"}


def _hubspot(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def _request(provider: str, url: str, headers: dict[str, str], body: bytes) -> WebhookRequest:
    return WebhookRequest(
        provider=provider,
        method="POST",
        path="/webhooks/" + provider,
        url=url,
        headers=Headers(headers),
        query={},
        raw_body=body,
        received_at=datetime.now(UTC),
    )


def _wait_for(receiver: Receiver, count: int) -> None:
    for _ in range(50):
        if len(receiver.received) >= count:
            return
        receiver.event.wait(0.1)
        receiver.event.clear()
    raise AssertionError("no webhook arrived")


def test_a_person_editing_a_ghl_contact_sends_a_signed_contact_update_routed_by_location(
    sb: Sandbox, receiver: Receiver
) -> None:
    created = sb.http.post(
        sb.url("/_sandbox/ghl/contacts"),
        json={"location_id": LOCATION, "firstName": "Jo", "email": "jo@x.com"},
    ).json()["contact"]
    changed = sb.http.patch(sb.url(f"/_sandbox/ghl/contacts/{created['id']}"), json={"firstName": "Joanna"})

    assert changed.status_code == 200
    _wait_for(receiver, 2)
    (_, _, first), (path, headers, body) = receiver.received
    assert json.loads(first)["type"] == "ContactCreate"
    key = serialization.load_pem_public_key(APP_CREDENTIALS["ghl"]["webhook_public_key"].encode())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    key.verify(base64.b64decode(headers["X-Ghl-Signature"]), body)
    parsed = parse_ghl(_request("ghl", receiver.url + path, headers, body))
    (delivery,) = parsed.deliveries
    assert (delivery.event_type, delivery.routing.value) == ("ContactUpdate", LOCATION)
    assert delivery.hint["object_id"] == created["id"]
    assert json.loads(body)["firstName"] == "Joanna"


def test_a_person_editing_a_hubspot_contact_sends_one_signed_property_change_per_property(
    sb: Sandbox, receiver: Receiver
) -> None:
    created = sb.http.post(
        sb.url("/_sandbox/hubspot/contacts"), json={"hub_id": HUB, "properties": {"email": "jo@x.com"}}
    ).json()
    sb.http.patch(
        sb.url(f"/_sandbox/hubspot/contacts/{created['id']}"),
        json={"properties": {"firstname": "Jo", "phone": "+15550100"}},
    )

    _wait_for(receiver, 2)
    path, headers, body = receiver.received[1]
    url = receiver.url + path
    secret = APP_CREDENTIALS["hubspot"]["client_secret"]
    expected = hubspot_v3_signature(secret, "POST", url, body, headers["X-Hubspot-Request-Timestamp"])
    assert headers["X-Hubspot-Signature-V3"] == expected
    deliveries = parse_hubspot(_request("hubspot", url, headers, body)).deliveries
    assert sorted(d.hint["property_name"] for d in deliveries) == ["firstname", "phone"]
    assert {(d.event_type, d.routing.value, d.hint["object_id"]) for d in deliveries} == {
        ("contact.propertyChange", HUB, created["id"])
    }


def test_ghl_contact_search_needs_the_version_and_pages_every_contact_once(sb: Sandbox) -> None:
    token = connect(sb, "ghl")
    sb.http.post(sb.url("/_sandbox/ghl/contacts-bulk"), json={"location_id": LOCATION, "count": 250})
    url = sb.url("/ghl/contacts/search")
    body: dict[str, Any] = {"locationId": LOCATION, "pageLimit": 100, "sort": [{"field": "dateUpdated"}]}

    without = sb.http.post(url, json=body, headers={"Authorization": f"Bearer {token['access_token']}"})
    too_big = sb.http.post(url, json={**body, "pageLimit": 501}, headers=_ghl(token))
    other = sb.http.post(url, json={**body, "locationId": "OtherLocation"}, headers=_ghl(token))
    seen: list[str] = []
    after = None
    while True:
        answer = sb.http.post(
            url, json={**body, **({"searchAfter": after} if after else {})}, headers=_ghl(token)
        )
        assert answer.status_code == 200
        assert int(answer.headers["X-RateLimit-Max"]) == 100
        page = answer.json()["contacts"]
        seen += [c["id"] for c in page]
        if len(page) < 100:
            break
        after = page[-1]["searchAfter"]

    assert (without.status_code, too_big.status_code, other.status_code) == (400, 422, 403)
    assert len(seen) == len(set(seen)) == 250


def test_ghl_upsert_matches_by_email_and_a_burst_over_100_is_refused_with_retry_after(sb: Sandbox) -> None:
    token = connect(sb, "ghl")
    url = sb.url("/ghl/contacts/upsert")
    contact = {"locationId": LOCATION, "email": "Sam@Example.com", "firstName": "Sam"}

    first = sb.http.post(url, json=contact, headers=_ghl(token))
    second = sb.http.post(url, json={**contact, "firstName": "Samuel"}, headers=_ghl(token))
    statuses = [sb.http.post(url, json=contact, headers=_ghl(token)).status_code for _ in range(100)]

    assert (first.json()["new"], second.json()["new"]) == (True, False)
    assert first.json()["contact"]["id"] == second.json()["contact"]["id"]
    assert second.json()["contact"]["firstName"] == "Samuel"
    assert statuses.count(429) == 2
    refused = sb.http.post(url, json=contact, headers=_ghl(token))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_hubspot_search_limits_and_batch_upsert_by_email(sb: Sandbox) -> None:
    token = connect(sb, "hubspot")
    search = sb.url("/hubspot/crm/v3/objects/contacts/search")
    upsert = sb.url("/hubspot/crm/v3/objects/contacts/batch/upsert")
    one = {"id": "sam@example.com", "idProperty": "email", "properties": {"firstname": "Sam"}}

    created = sb.http.post(upsert, json={"inputs": [one]}, headers=_hubspot(token))
    again = sb.http.post(upsert, json={"inputs": [{**one, "id": "SAM@example.com"}]}, headers=_hubspot(token))
    too_many = sb.http.post(upsert, json={"inputs": [one] * 101}, headers=_hubspot(token))
    too_big = sb.http.post(search, json={"limit": 201}, headers=_hubspot(token))
    past_window = sb.http.post(search, json={"limit": 200, "after": "9900"}, headers=_hubspot(token))
    found = sb.http.post(
        search,
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "sam@example.com"}]}
            ]
        },
        headers=_hubspot(token),
    )
    burst = [sb.http.post(search, json={"limit": 1}, headers=_hubspot(token)).status_code for _ in range(6)]

    assert created.json()["results"][0]["id"] == again.json()["results"][0]["id"]
    assert created.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert (too_many.status_code, too_big.status_code, past_window.status_code) == (400, 400, 400)
    assert [r["id"] for r in found.json()["results"]] == [created.json()["results"][0]["id"]]
    assert "X-HubSpot-RateLimit-Max" not in found.headers  # search answers carry no limit headers
    assert 429 in burst  # about five searches a second


def test_hubspot_email_engagements_are_validated_and_associated_like_hubspots(sb: Sandbox) -> None:
    token = connect(sb, "hubspot")
    contact = sb.http.post(
        sb.url("/hubspot/crm/v3/objects/contacts"),
        json={"properties": {"email": "sam@example.com"}},
        headers=_hubspot(token),
    ).json()
    emails = sb.url("/hubspot/crm/v3/objects/emails")
    headers = json.dumps({"from": {"email": "sam@example.com"}, "to": [{"email": "ava@agency.example"}]})
    good = {
        "hs_timestamp": "2026-12-01T09:00:00+00:00",
        "hs_email_direction": "INCOMING_EMAIL",
        "hs_email_subject": "Pricing",
        "hs_email_headers": headers,
        "hs_email_message_id": "<m1@example.com>",
    }
    association = {
        "to": {"id": contact["id"]},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 198}],
    }
    wrong_type = {
        **association,
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
    }

    no_direction = sb.http.post(
        emails, json={"properties": {**good, "hs_email_direction": "SIDEWAYS"}}, headers=_hubspot(token)
    )
    bad_headers = sb.http.post(
        emails, json={"properties": {**good, "hs_email_headers": "{not json"}}, headers=_hubspot(token)
    )
    refused = sb.http.post(
        emails, json={"properties": good, "associations": [wrong_type]}, headers=_hubspot(token)
    )
    created = sb.http.post(
        emails, json={"properties": good, "associations": [association]}, headers=_hubspot(token)
    )
    found = sb.http.post(
        sb.url("/hubspot/crm/v3/objects/emails/search"),
        json={
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_email_message_id",
                            "operator": "EQ",
                            "value": "<m1@example.com>",
                        },
                        {"propertyName": "associations.contact", "operator": "EQ", "value": contact["id"]},
                    ]
                }
            ]
        },
        headers=_hubspot(token),
    )

    assert (no_direction.status_code, bad_headers.status_code, refused.status_code) == (400, 400, 400)
    assert created.status_code == 201
    assert created.json()["properties"]["hs_email_from_email"] == "sam@example.com"
    assert [r["id"] for r in found.json()["results"]] == [created.json()["id"]]
    (listed,) = sb.http.get(sb.url("/_sandbox/hubspot/contacts"), params={"hub_id": HUB}).json()["contacts"]
    assert [e["id"] for e in listed["emails"]] == [created.json()["id"]]


def test_the_index_page_documents_the_crm_person_routes(sb: Sandbox) -> None:
    page = sb.http.get(sb.url("/")).text

    assert "GoHighLevel and HubSpot: act as the person" in page
    for route in (
        "/_sandbox/ghl/contacts",
        "/_sandbox/hubspot/contacts",
        "/_sandbox/crm/stages/",
        "/_sandbox/crm/throttled",
        "/ghl/contacts/search",
        "/hubspot/crm/v3/objects/calls",
        "/hubspot/crm/v3/objects/emails",
        "/hubspot/crm/v3/objects/emails/search",
        "/ghl/contacts/&lt;contact_id&gt;/notes",
    ):
        assert route in page
