"""Webhook parsing: each provider's body becomes deliveries with a dedupe id, a routing key and a hint."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.providers.calendly import webhook as calendly_webhook
from integrations.providers.ghl import webhook as ghl_webhook
from integrations.providers.ghl.webhook import CallRequested
from integrations.providers.gmail import webhook as gmail_webhook
from integrations.providers.google_calendar import webhook as google_calendar_webhook
from integrations.providers.hubspot import webhook as hubspot_webhook
from integrations.providers.outlook_calendar import webhook as outlook_calendar_webhook
from integrations.providers.slack import webhook as slack_webhook
from integrations.sync.jobs import JobKind
from integrations.webhooks.errors import MalformedPayload
from integrations.webhooks.plugin import Delivery, RoutingKey, WebhookAnswer, WebhookPlugin
from integrations.webhooks.receiver import webhook_for
from integrations.webhooks.request import Headers, WebhookRequest, from_http_api_event, parse_query
from tests.support import signing
from tests.support.webhooks import parse_request, secret_lookup_keys


def plugin_for(request: WebhookRequest) -> WebhookPlugin | None:
    found = webhook_for(request.provider)
    return found[1].for_request(request) if found is not None else None


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BASE_URL = "https://api.example.test"


def make_request(
    provider: str,
    body: bytes | Mapping[str, Any] | list[Any] = b"",
    *,
    headers: Mapping[str, str] | None = None,
    query: str = "",
    received_at: datetime = NOW,
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = f"{BASE_URL}/webhooks/{provider}"
    return WebhookRequest(
        provider=provider,
        method="POST",
        raw_body=raw,
        headers=Headers(headers or {}),
        query=parse_query(query),
        path=f"/webhooks/{provider}",
        url=f"{url}?{query}" if query else url,
        received_at=received_at,
        raw_query=query,
    )


def only(request: WebhookRequest) -> Delivery:
    parsed = parse_request(request)
    assert len(parsed.deliveries) == 1
    return parsed.deliveries[0]


def malformed(request: WebhookRequest) -> MalformedPayload:
    with pytest.raises(MalformedPayload) as caught:
        parse_request(request)
    assert caught.value.status == 400
    return caught.value


# --------------------------------------------------------------------------- the request


def test_an_http_api_event_becomes_a_request_with_the_raw_bytes_and_the_public_url() -> None:
    body = '{"caf\u00e9": 1}'.encode()
    event = {
        "rawPath": "/webhooks/hubspot",
        "rawQueryString": "a=%3A1&b=2&a=3",
        "headers": {"x-hubspot-signature-v3": "sig", "content-type": "application/json"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
        "requestContext": {"http": {"method": "post"}},
    }

    request = from_http_api_event(
        event, provider="hubspot", public_url=f"{BASE_URL}/webhooks/hubspot", received_at=NOW
    )

    assert request.raw_body == body
    assert request.method == "POST"
    assert request.headers["X-HubSpot-Signature-V3"] == "sig"
    assert request.query == {"a": ":1", "b": "2"}
    assert request.url == f"{BASE_URL}/webhooks/hubspot?a=%3A1&b=2&a=3"
    assert request.path == "/webhooks/hubspot"
    assert plugin_for(request) is hubspot_webhook.WEBHOOK


def test_a_text_body_is_kept_as_its_utf8_bytes_and_no_query_adds_no_question_mark() -> None:
    event = {"rawPath": "/webhooks/slack", "body": "payload=\u00e9", "headers": {}, "isBase64Encoded": False}

    request = from_http_api_event(
        event, provider="slack", public_url=f"{BASE_URL}/webhooks/slack", received_at=NOW
    )

    assert request.raw_body == "payload=\u00e9".encode()
    assert request.url == f"{BASE_URL}/webhooks/slack"


def test_an_event_with_broken_base64_is_malformed() -> None:
    event = {"body": "***", "isBase64Encoded": True}

    with pytest.raises(MalformedPayload):
        from_http_api_event(event, provider="slack", public_url=BASE_URL, received_at=NOW)


def test_headers_are_case_insensitive_and_repeated_ones_are_joined() -> None:
    headers = Headers([("X-Goog-Channel-ID", "a"), ("x-goog-channel-id", "b")])

    assert headers["X-GOOG-CHANNEL-ID"] == "a, b"
    assert "x-Goog-Channel-Id" in headers
    assert "a, b" not in repr(headers)


def test_the_request_repr_leaves_out_the_body() -> None:
    assert "secret-body" not in repr(make_request("slack", b"secret-body"))


@pytest.mark.parametrize(
    ("provider", "query", "plugin"),
    [
        ("ghl", "", ghl_webhook.WEBHOOK),
        ("ghl", "workflow=call&location=L1", ghl_webhook.WORKFLOW),
        ("gmail", "", gmail_webhook.WEBHOOK),
        ("outlook_calendar", "", outlook_calendar_webhook.WEBHOOK),
        ("icloud_calendar", "", None),
        ("google_calendar_oneway", "", None),
    ],
)
def test_each_provider_maps_to_its_plugin(provider: str, query: str, plugin: WebhookPlugin | None) -> None:
    assert plugin_for(make_request(provider, query=query)) is plugin


# --------------------------------------------------------------------------- Google Calendar


def google_request(**changes: Any) -> WebhookRequest:
    params: dict[str, Any] = {
        "channel_id": "chan-1",
        "token": "t",
        "resource_id": "res-1",
        "message_number": 42,
    }
    return make_request("google_calendar", headers=signing.google_channel_headers(**{**params, **changes}))


def test_google_push_routes_by_channel_id_and_dedupes_on_channel_and_message_number() -> None:
    delivery = only(google_request(expires_at=NOW + timedelta(days=7)))

    assert delivery.routing == RoutingKey(kind=google_calendar_webhook.LOOKUP_CHANNEL, value="chan-1")
    assert delivery.event_id == "chan-1:42"
    assert delivery.dedupe_key == "google_calendar#chan-1:42"
    assert delivery.event_type == "exists"
    assert delivery.hint["resource_id"] == "res-1"
    assert delivery.hint["message_number"] == 42
    assert "t" not in delivery.hint.values()  # the channel token is a secret


def test_google_sync_message_is_a_delivery_of_type_sync() -> None:
    assert only(google_request(resource_state="sync", message_number=1)).event_type == "sync"


def test_google_push_without_a_message_number_is_malformed() -> None:
    headers = dict(
        signing.google_channel_headers(channel_id="c", token="t", resource_id="r", message_number=1)
    )
    headers["X-Goog-Message-Number"] = "one"

    malformed(make_request("google_calendar", headers=headers))


# --------------------------------------------------------------------------- Gmail


def pubsub_body(data: str, message_id: str = "2070443601311540") -> dict[str, Any]:
    return {
        "message": {"data": data, "messageId": message_id, "publishTime": "2026-05-01T12:00:00Z"},
        "subscription": "projects/p/subscriptions/gmail-push",
    }


def b64(value: Any, *, urlsafe: bool, padded: bool) -> str:
    raw = json.dumps(value).encode()
    text = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return text if padded else text.rstrip("=")


def test_gmail_push_routes_by_the_lowercased_address_and_dedupes_on_the_message_id() -> None:
    body = signing.pubsub_push_body(
        email_address="Person@Example.com",
        history_id=9876,
        message_id="m-1",
        subscription="projects/p/subscriptions/s",
        published_at=NOW,
    )

    delivery = only(make_request("gmail", body))

    assert delivery.routing == RoutingKey(kind=gmail_webhook.LOOKUP_EMAIL, value="person@example.com")
    assert delivery.event_id == "m-1"
    assert delivery.hint["history_id"] == "9876"


def test_gmail_push_accepts_the_snake_case_field_names_pubsub_also_sends() -> None:
    data = b64({"emailAddress": "a@example.com", "historyId": 5}, urlsafe=True, padded=False)
    body = {"message": {"data": data, "message_id": "m-9", "publish_time": "2026-05-01T12:00:00Z"}}

    delivery = only(make_request("gmail", body))

    assert delivery.event_id == "m-9"
    assert delivery.hint["publish_time"] == "2026-05-01T12:00:00Z"


@pytest.mark.parametrize(("urlsafe", "padded"), [(True, True), (True, False), (False, True), (False, False)])
def test_gmail_data_is_decoded_in_either_base64_alphabet_with_or_without_padding(
    urlsafe: bool, padded: bool
) -> None:
    # "\u00ff\u00fe" makes the standard and URL-safe encodings differ.
    data = {"emailAddress": "a\u00ff\u00fe@example.com", "historyId": "12"}

    delivery = only(make_request("gmail", pubsub_body(b64(data, urlsafe=urlsafe, padded=padded))))

    assert delivery.routing.value == "a\u00ff\u00fe@example.com"


@pytest.mark.parametrize(
    "body",
    [
        {"message": {"messageId": "m"}},
        pubsub_body("%%%not-base64%%%"),
        pubsub_body(b64({"emailAddress": "a@b.c"}, urlsafe=True, padded=True)),
        pubsub_body(b64({"emailAddress": "a@b.c", "historyId": "12x"}, urlsafe=True, padded=True)),
        pubsub_body(b64(["not", "an", "object"], urlsafe=True, padded=True)),
        pubsub_body(b64({"emailAddress": "a@b.c", "historyId": 1}, urlsafe=True, padded=True), message_id=""),
    ],
    ids=["no_data", "bad_base64", "no_history", "bad_history", "not_object", "empty_message_id"],
)
def test_gmail_push_that_is_not_a_gmail_notification_is_malformed(body: dict[str, Any]) -> None:
    malformed(make_request("gmail", body))


# --------------------------------------------------------------------------- Calendly


def calendly_body(
    event: str = "invitee.created", uri: str = "https://api.calendly.com/invitees/I1"
) -> dict[str, Any]:
    return {
        "event": event,
        "created_at": "2026-05-01T11:59:58.000000Z",
        "created_by": "https://api.calendly.com/users/U1",
        "payload": {
            "uri": uri,
            "email": "invitee@example.com",
            "status": "active" if event == "invitee.created" else "canceled",
            "rescheduled": False,
            "event": "https://api.calendly.com/scheduled_events/E1",
            "scheduled_event": {"uri": "https://api.calendly.com/scheduled_events/E1", "event_type": "ET1"},
        },
    }


def test_calendly_routes_by_the_subscription_id_in_the_callback_url() -> None:
    delivery = only(make_request("calendly", calendly_body(), query="subscription=sub-77"))

    assert delivery.routing == RoutingKey(kind=calendly_webhook.LOOKUP_SUBSCRIPTION, value="sub-77")
    assert delivery.event_type == "invitee.created"
    assert delivery.hint["scheduled_event_uri"] == "https://api.calendly.com/scheduled_events/E1"
    assert "email" not in delivery.hint  # a hint carries ids, not the invitee's data


def test_calendly_without_a_subscription_id_routes_by_the_creating_user() -> None:
    delivery = only(make_request("calendly", calendly_body()))

    assert delivery.routing == RoutingKey(
        kind=calendly_webhook.LOOKUP_USER, value="https://api.calendly.com/users/U1"
    )


def test_calendly_event_id_is_stable_across_redeliveries_and_differs_between_events() -> None:
    first = only(make_request("calendly", calendly_body()))
    again = only(make_request("calendly", calendly_body()))
    canceled = only(make_request("calendly", calendly_body("invitee.canceled")))

    assert first.event_id == again.event_id
    assert first.event_id != canceled.event_id


@pytest.mark.parametrize(
    "body",
    [
        {"event": "invitee.created"},
        {"event": "", "payload": {}},
        {"event": "invitee.created", "payload": {"uri": "u"}},  # no subscription in the URL, no creator
        ["invitee.created"],
    ],
)
def test_calendly_body_that_cannot_be_routed_is_malformed(body: Any) -> None:
    malformed(make_request("calendly", body))


# --------------------------------------------------------------------------- GoHighLevel


def test_ghl_event_routes_by_location_and_dedupes_on_the_webhook_id() -> None:
    body = {
        "type": "ContactCreate",
        "locationId": "loc-1",
        "id": "c-1",
        "webhookId": "wh-1",
        "email": "x@y.z",
    }

    delivery = only(make_request("ghl", body))

    assert delivery.routing == RoutingKey(kind=ghl_webhook.LOOKUP_LOCATION, value="loc-1")
    assert delivery.event_id == "wh-1"
    assert delivery.event_type == "ContactCreate"
    assert delivery.hint == {"type": "ContactCreate", "object_id": "c-1"}


def test_ghl_event_without_a_webhook_id_is_deduped_on_a_digest_of_the_body() -> None:
    body = {"type": "OpportunityStageUpdate", "locationId": "loc-1", "id": "o-1", "pipelineStageId": "s2"}
    other = {**body, "pipelineStageId": "s3"}

    first, again = only(make_request("ghl", body)), only(make_request("ghl", body))

    assert first.event_id == again.event_id
    assert first.event_id != only(make_request("ghl", other)).event_id


def test_ghl_bulk_install_gives_one_delivery_per_location() -> None:
    body = {
        "type": "INSTALL",
        "appId": "app",
        "companyId": "co-1",
        "locationIds": ["l1", "l2", "l1"],
        "webhookId": "w",
    }

    deliveries = parse_request(make_request("ghl", body)).deliveries

    assert [d.routing.value for d in deliveries] == ["l1", "l2"]
    assert len({d.event_id for d in deliveries}) == 2


def test_ghl_agency_level_uninstall_routes_by_company() -> None:
    delivery = only(make_request("ghl", {"type": "UNINSTALL", "appId": "app", "companyId": "co-1"}))

    assert delivery.routing == RoutingKey(kind=ghl_webhook.LOOKUP_COMPANY, value="co-1")


def test_ghl_event_identified_by_alt_id_routes_by_that_location() -> None:
    delivery = only(make_request("ghl", {"type": "NoteCreate", "altId": "loc-9", "altType": "location"}))

    assert delivery.routing == RoutingKey(kind=ghl_webhook.LOOKUP_LOCATION, value="loc-9")


@pytest.mark.parametrize(
    "body",
    [{"type": "ContactCreate"}, {"locationId": "l"}, {"type": "X", "locationId": ""}, "just text", [1]],
)
def test_ghl_event_without_type_or_account_is_malformed(body: Any) -> None:
    malformed(make_request("ghl", body))


WORKFLOW_QUERY = "workflow=call&location=loc-1"


def test_ghl_workflow_standard_webhook_becomes_a_call_request() -> None:
    body = {
        "contact_id": "c-1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+15550100",
        "email": "ada@example.com",
        "location": {"id": "loc-1", "name": "Downtown"},
        "workflow": {"id": "wf-1", "name": "Call new leads"},
        "customData": {"agent_id": "agent-7", "campaign": "spring", "attempt": 2},
    }

    delivery = only(make_request("ghl", body, query=WORKFLOW_QUERY))

    assert delivery.event_type == "call_requested"
    assert delivery.routing == RoutingKey(kind=ghl_webhook.LOOKUP_WORKFLOW, value="loc-1")
    call = CallRequested.model_validate(delivery.hint)
    assert call == CallRequested(
        location_id="loc-1",
        contact_id="c-1",
        phone="+15550100",
        name="Ada Lovelace",
        email="ada@example.com",
        agent_id="agent-7",
        workflow_id="wf-1",
        custom={"campaign": "spring", "attempt": "2"},
    )


def test_ghl_workflow_custom_body_with_only_custom_data_is_a_call_request() -> None:
    body = {"customData": {"phone": "+15550101", "request_id": "req-1"}}

    delivery = only(make_request("ghl", body, query=WORKFLOW_QUERY))

    assert delivery.event_id == "req-1"
    assert CallRequested.model_validate(delivery.hint).phone == "+15550101"


def test_ghl_workflow_custom_body_may_name_the_contact_in_camel_case() -> None:
    delivery = only(make_request("ghl", {"contactId": "c-9"}, query=WORKFLOW_QUERY))

    assert CallRequested.model_validate(delivery.hint).contact_id == "c-9"


def test_ghl_workflow_retry_within_a_minute_is_a_duplicate_but_a_later_run_is_not() -> None:
    body = {"contact_id": "c-1", "phone": "+15550100"}
    first = only(make_request("ghl", body, query=WORKFLOW_QUERY, received_at=NOW))
    retry = only(make_request("ghl", body, query=WORKFLOW_QUERY, received_at=NOW + timedelta(seconds=20)))
    later = only(make_request("ghl", body, query=WORKFLOW_QUERY, received_at=NOW + timedelta(days=1)))

    assert first.event_id == retry.event_id
    assert first.event_id != later.event_id


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ({"first_name": "Ada"}, WORKFLOW_QUERY),  # nobody to call
        ({"phone": "+15550100"}, "workflow=call"),  # no location in the URL
        ({"phone": 15550100}, WORKFLOW_QUERY),  # wrong type
    ],
)
def test_ghl_workflow_call_request_without_what_it_needs_is_malformed(body: Any, query: str) -> None:
    malformed(make_request("ghl", body, query=query))


# --------------------------------------------------------------------------- HubSpot


def hubspot_event(**changes: Any) -> dict[str, Any]:
    event = {
        "eventId": 1701,
        "subscriptionId": 4321,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1777636790000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 123,
        "propertyName": "email",
        "propertyValue": "new@example.com",
        "changeSource": "CRM",
    }
    return {**event, **changes}


def test_hubspot_batch_gives_one_delivery_per_event_routed_by_portal() -> None:
    body = [
        hubspot_event(),
        hubspot_event(eventId=1702, portalId="99", objectId=456, subscriptionType="deal.creation"),
    ]

    deliveries = parse_request(make_request("hubspot", body)).deliveries

    assert [d.routing for d in deliveries] == [
        RoutingKey(kind=hubspot_webhook.LOOKUP_PORTAL, value="62515"),
        RoutingKey(kind=hubspot_webhook.LOOKUP_PORTAL, value="99"),
    ]
    assert [d.event_type for d in deliveries] == ["contact.propertyChange", "deal.creation"]
    assert deliveries[0].hint["object_id"] == "123"
    assert "propertyValue" not in json.dumps(deliveries[0].hint)


def test_hubspot_retry_keeps_the_dedupe_id_but_a_colliding_event_id_does_not_collide() -> None:
    # HubSpot says eventId is not guaranteed unique; attemptNumber changes on every retry.
    first = only(make_request("hubspot", [hubspot_event()]))
    retry = only(make_request("hubspot", [hubspot_event(attemptNumber=3)]))
    other = only(make_request("hubspot", [hubspot_event(objectId=999)]))

    assert first.event_id == retry.event_id
    assert first.event_id != other.event_id


def test_hubspot_event_type_field_is_accepted_when_subscription_type_is_absent() -> None:
    event = {k: v for k, v in hubspot_event(eventType="contact.creation").items() if k != "subscriptionType"}

    assert only(make_request("hubspot", [event])).event_type == "contact.creation"


def test_hubspot_empty_batch_has_no_deliveries() -> None:
    assert parse_request(make_request("hubspot", [])).deliveries == []


@pytest.mark.parametrize(
    "body",
    [
        hubspot_event(),  # an object, not an array
        [{"eventId": 1}],  # no portal
        [hubspot_event(portalId=True)],
        [hubspot_event(subscriptionType=None)],
        [hubspot_event(), "x"],
    ],
    ids=["object", "no_portal", "bool_portal", "no_type", "junk_item"],
)
def test_hubspot_body_that_is_not_an_event_batch_is_malformed(body: Any) -> None:
    malformed(make_request("hubspot", body))


# --------------------------------------------------------------------------- Microsoft Graph


def graph_note(subscription_id: str = "sub-1", **changes: Any) -> dict[str, Any]:
    note = signing.graph_notification(
        subscription_id=subscription_id, client_state="secret-state", resource_id="AAMk1"
    )
    return {**note, **changes}


def test_graph_batch_gives_one_delivery_per_notification_routed_by_subscription() -> None:
    body = signing.graph_notification_body(graph_note(), graph_note("sub-2", changeType="deleted"))

    deliveries = parse_request(make_request("outlook_calendar", body)).deliveries

    assert [d.routing.value for d in deliveries] == ["sub-1", "sub-2"]
    assert [d.event_type for d in deliveries] == ["updated", "deleted"]
    assert deliveries[0].hint["resource_id"] == "AAMk1"
    assert all("secret-state" not in json.dumps(d.hint) for d in deliveries)


def test_graph_notification_id_is_used_when_present_and_a_stable_digest_otherwise() -> None:
    with_id = only(make_request("outlook_calendar", signing.graph_notification_body(graph_note(id="n-1"))))
    first = only(make_request("outlook_calendar", signing.graph_notification_body(graph_note())))
    again = only(make_request("outlook_calendar", signing.graph_notification_body(graph_note())))
    changed = graph_note(resourceData={"id": "AAMk1", "@odata.etag": 'W/"new"'})
    newer = only(make_request("outlook_calendar", signing.graph_notification_body(changed)))

    assert with_id.event_id == "n-1"
    assert first.event_id == again.event_id != newer.event_id


def test_graph_lifecycle_notification_is_typed_by_its_lifecycle_event() -> None:
    lifecycle = {
        "subscriptionId": "sub-1",
        "clientState": "secret-state",
        "lifecycleEvent": "reauthorizationRequired",
        "subscriptionExpirationDateTime": "2026-05-02T12:00:00Z",
        "tenantId": "t",
    }

    delivery = only(make_request("outlook_calendar", {"value": [lifecycle]}))

    assert delivery.event_type == "lifecycle.reauthorizationRequired"
    assert delivery.hint["subscription_expiration"] == "2026-05-02T12:00:00Z"


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("subscriptionRemoved", JobKind.RECREATE_SUBSCRIPTION),
        ("reauthorizationRequired", JobKind.REAUTHORIZE_SUBSCRIPTION),
        ("missed", JobKind.SYNC),
    ],
)
@pytest.mark.parametrize("provider", ["outlook_calendar", "outlook_mail"])
def test_graph_lifecycle_events_run_work_on_the_named_subscription(
    provider: str, event: str, kind: JobKind
) -> None:
    lifecycle = {"subscriptionId": "sub-9", "clientState": "s", "lifecycleEvent": event, "tenantId": "t"}

    delivery = only(make_request(provider, {"value": [lifecycle]}))

    found = webhook_for(provider)
    assert found is not None
    assert found[1].job_kind(delivery) is kind
    assert delivery.hint["subscription_id"] == "sub-9"


@pytest.mark.parametrize(
    "body",
    [{"value": []}, {"value": [{"clientState": "x"}]}, {"value": [{"subscriptionId": "s"}]}, {"other": 1}],
    ids=["empty", "no_subscription", "no_change_type", "no_value"],
)
def test_graph_body_that_is_not_a_notification_batch_is_malformed(body: Any) -> None:
    malformed(make_request("outlook_calendar", body))


# --------------------------------------------------------------------------- Slack


def test_slack_url_verification_answers_the_challenge_and_enqueues_nothing() -> None:
    parsed = parse_request(
        make_request("slack", {"type": "url_verification", "token": "x", "challenge": "3eZbrw1a"})
    )

    assert parsed.reply == WebhookAnswer.of_json(200, {"challenge": "3eZbrw1a"})
    assert parsed.deliveries == []


def slack_callback(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "token": "legacy",
        "team_id": "T061EG9R6",
        "api_app_id": "A0PNCHHK2",
        "type": "event_callback",
        "event_id": "Ev0PV52K21",
        "event_time": 1777636800,
        "event": event,
    }
    return {**body, **changes}


def test_slack_app_uninstalled_routes_by_team_and_dedupes_on_event_id() -> None:
    delivery = only(
        make_request("slack", slack_callback({"type": "app_uninstalled"}), headers={"X-Slack-Retry-Num": "1"})
    )

    assert delivery.routing == RoutingKey(kind=slack_webhook.LOOKUP_TEAM, value="T061EG9R6")
    assert delivery.event_id == "Ev0PV52K21"
    assert delivery.event_type == "app_uninstalled"
    assert delivery.hint["retry_num"] == "1"


def test_slack_tokens_revoked_carries_the_revoked_user_ids() -> None:
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": ["B1", "B2"]}}

    delivery = only(make_request("slack", slack_callback(event)))

    assert delivery.event_type == "tokens_revoked"
    assert delivery.hint["revoked_tokens"] == {"oauth": ["U1"], "bot": ["B1", "B2"]}


def test_slack_team_falls_back_to_the_authorizations() -> None:
    body = slack_callback({"type": "app_uninstalled"}, team_id=None, authorizations=[{"team_id": "T2"}])

    assert only(make_request("slack", body)).routing.value == "T2"


def test_slack_app_rate_limited_is_a_delivery_per_team_and_minute() -> None:
    body = {
        "type": "app_rate_limited",
        "team_id": "T1",
        "minute_rate_limited": 1777636800,
        "api_app_id": "A1",
    }

    delivery = only(make_request("slack", body))

    assert delivery.event_type == "app_rate_limited"
    assert delivery.event_id == "app_rate_limited:T1:1777636800"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "url_verification"},
        slack_callback({"type": "app_uninstalled"}, event_id=None),
        slack_callback({"type": "app_uninstalled"}, team_id=None),
        slack_callback({"no": "type"}),
        b"token=x&team_id=T1&command=%2Fcall",  # a form body (slash command) is not an Events API event
    ],
    ids=["no_challenge", "no_event_id", "no_team", "no_event_type", "form_body"],
)
def test_slack_body_that_is_not_an_events_api_request_is_malformed(body: Any) -> None:
    malformed(make_request("slack", body))


# --------------------------------------------------------------------------- lookups before verification


def test_secret_lookup_keys_name_the_records_each_per_channel_scheme_needs() -> None:
    graph = signing.graph_notification_body(graph_note("s1"), graph_note("s2"), graph_note("s1"))

    assert secret_lookup_keys(google_request()) == [
        RoutingKey(kind=google_calendar_webhook.LOOKUP_CHANNEL, value="chan-1")
    ]
    assert secret_lookup_keys(make_request("outlook_calendar", graph)) == [
        RoutingKey(kind=outlook_calendar_webhook.LOOKUP_SUBSCRIPTION, value="s1"),
        RoutingKey(kind=outlook_calendar_webhook.LOOKUP_SUBSCRIPTION, value="s2"),
    ]
    assert secret_lookup_keys(make_request("calendly", b"", query="subscription=sub-7")) == [
        RoutingKey(kind=calendly_webhook.LOOKUP_SUBSCRIPTION, value="sub-7")
    ]
    assert secret_lookup_keys(make_request("calendly", calendly_body())) == [
        RoutingKey(kind=calendly_webhook.LOOKUP_USER, value="https://api.calendly.com/users/U1")
    ]
    # A workflow route has its own lookup (holding the location's workflow secret digest).
    assert secret_lookup_keys(make_request("ghl", b"{}", query=WORKFLOW_QUERY)) == [
        RoutingKey(kind=ghl_webhook.LOOKUP_WORKFLOW, value="loc-1")
    ]


@pytest.mark.parametrize("provider", ["hubspot", "slack", "ghl", "gmail"])
def test_app_wide_schemes_need_no_lookup_before_verification(provider: str) -> None:
    assert secret_lookup_keys(make_request(provider, b"{}")) == []


def test_nothing_to_look_up_gives_no_keys_instead_of_an_error() -> None:
    assert secret_lookup_keys(make_request("outlook_calendar", b"garbage")) == []
    assert secret_lookup_keys(make_request("calendly", b"garbage")) == []
    assert secret_lookup_keys(make_request("google_calendar")) == []


# --------------------------------------------------------------------------- property: only MalformedPayload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=16), inner, max_size=5),
    max_leaves=16,
)
# Bodies shaped like each provider's, with random values, reach deeper than random bytes do.
shaped = st.one_of(
    st.fixed_dictionaries({"type": json_values, "locationId": json_values, "webhookId": json_values}),
    st.lists(
        st.fixed_dictionaries(
            {"eventId": json_values, "portalId": json_values, "subscriptionType": json_values}
        )
    ),
    st.fixed_dictionaries(
        {"value": st.lists(st.dictionaries(st.sampled_from(["subscriptionId", "changeType"]), json_values))}
    ),
    st.fixed_dictionaries(
        {"message": st.fixed_dictionaries({"data": json_values, "messageId": json_values})}
    ),
    st.fixed_dictionaries({"event": json_values, "payload": json_values, "created_by": json_values}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["event_callback", "url_verification"]), "event": json_values}
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    provider=st.sampled_from(
        ["google_calendar", "gmail", "calendly", "ghl", "hubspot", "outlook_calendar", "slack"]
    ),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        shaped.map(lambda v: json.dumps(v).encode()),
    ),
    headers=st.dictionaries(
        st.sampled_from(["X-Goog-Channel-ID", "X-Goog-Message-Number", "X-Goog-Resource-State"]),
        st.text(max_size=12),
    ),
    query=st.sampled_from(["", "workflow=call&location=L", "subscription=s", "workflow=call"]),
)
def test_random_bodies_raise_nothing_but_malformed_payload(
    provider: str, body: bytes, headers: dict[str, str], query: str
) -> None:
    request = make_request(provider, body, headers=headers, query=query)

    secret_lookup_keys(request)  # never raises: it runs before verification
    try:
        parsed = parse_request(request)
    except MalformedPayload:
        return
    for delivery in parsed.deliveries:
        assert delivery.event_id
        assert delivery.routing.value
        json.dumps(delivery.hint)  # every hint can go on the queue
