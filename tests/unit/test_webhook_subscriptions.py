"""Provider-side subscriptions at connect and their removal at disconnect (provider HTTP mocked), and
the lookup items they leave behind: routing ids plus digests or ciphertext, never a usable secret."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from integrations.catalog.loader import load_catalog
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import Credentials
from integrations.domain.lookup import Lookup, lookup_key
from integrations.http import ProviderApiError
from integrations.providers.calendly import connect as calendly_module
from integrations.providers.calendly import webhook as calendly_webhook
from integrations.providers.ghl import connect as ghl_module
from integrations.providers.ghl import webhook as ghl_webhook
from integrations.providers.gmail import connect as gmail_module
from integrations.providers.gmail import webhook as gmail_webhook
from integrations.providers.hubspot import connect as hubspot_module
from integrations.providers.hubspot import webhook as hubspot_webhook
from integrations.providers.slack import connect as slack_module
from integrations.providers.slack import webhook as slack_webhook
from integrations.webhooks import subscriptions
from integrations.webhooks.routing import Attr, merge_lookups, parse_lookup_key
from integrations.webhooks.subscriptions import SubscriptionContext, SubscriptionNotConfigured
from tests.support.webhooks import parse_request, plain_request

PUBLIC = "https://api.example.test"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class FakeBox:
    """Seals by tagging (the real SigningKeyBox is exercised against KMS in the integration tests)."""

    def __init__(self) -> None:
        self.sealed: dict[str, str] = {}

    def seal(self, connection: Connection, signing_key: str) -> str:
        token = f"sealed-{len(self.sealed)}"
        self.sealed[token] = signing_key
        return token


class FakeSecrets:
    def __init__(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        self._values = values

    def fields(self, app: str) -> Mapping[str, Any]:
        return self._values.get(app, {})


def connection(provider: str, **config: Any) -> Connection:
    return Connection(
        id="conn-1",
        provider=provider,
        level=Level.USER,
        agency_id="agency-1",
        client_id="client-a",
        user_id="user-1",
        account=ExternalAccount(id="https://api.calendly.com/users/U1", label="Ada@Example.com"),
        config=config,
    )


@pytest.fixture
def box() -> FakeBox:
    return FakeBox()


@pytest.fixture
def context(box: FakeBox) -> SubscriptionContext:
    return SubscriptionContext(
        public_api_url=PUBLIC,
        signing_keys=box,  # type: ignore[arg-type]
        app_secrets=FakeSecrets({"pubsub": {"topic_name": "projects/p/topics/gmail"}}),
        clock=lambda: NOW,
    )


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def sent(call: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(call.request.body)
    return body


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --------------------------------------------------------------------------- registry


def test_only_providers_with_per_connection_pushes_have_a_manager(context: SubscriptionContext) -> None:
    managed = {p for p in ("google_calendar", "calendly", "outlook_calendar", "gmail")}
    app_level = {"ghl", "hubspot", "slack", "icloud_calendar", "bcc_email", "google_calendar_oneway"}

    assert all(subscriptions.for_provider(p, context) is not None for p in managed)
    assert all(subscriptions.for_provider(p, context) is None for p in app_level)


# --------------------------------------------------------------------------- Google Calendar


def test_google_watch_opens_a_channel_whose_lookup_holds_only_the_token_digest(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    spec = load_catalog().get("google_calendar")
    http.post(
        "https://www.googleapis.com/calendar/v3/calendars/team%40group.calendar.google.com/events/watch",
        json={"kind": "api#channel", "id": "x", "resourceId": "res-9", "expiration": "1778241600000"},
    )

    [lookup] = subscriptions.for_provider("google_calendar", context).subscribe(  # type: ignore[union-attr]
        spec, connection("google_calendar", calendar_id="team@group.calendar.google.com"), "at-1"
    )

    body = sent(http.calls[0])
    assert http.calls[0].request.headers["Authorization"] == "Bearer at-1"
    assert body["type"] == "web_hook"
    assert body["address"] == f"{PUBLIC}/webhooks/google_calendar"
    assert body["id"] == lookup.value
    assert (lookup.kind, lookup.provider, lookup.connection_id) == ("channel", "google_calendar", "conn-1")
    assert lookup.attributes[Attr.TOKEN_SHA256] == digest(body["token"])
    assert body["token"] not in json.dumps(lookup.attributes)
    assert lookup.attributes[Attr.RESOURCE_ID] == "res-9"
    assert lookup.attributes[Attr.CALENDAR_ID] == "team@group.calendar.google.com"
    assert lookup.attributes[Attr.EXPIRES_AT] == "2026-05-08T12:00:00+00:00"


def test_google_watch_without_a_chosen_calendar_watches_primary(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.post(
        "https://www.googleapis.com/calendar/v3/calendars/primary/events/watch",
        json={"resourceId": "r", "expiration": "1778241600000"},
    )

    lookups = subscriptions.for_provider("google_calendar", context).subscribe(  # type: ignore[union-attr]
        load_catalog().get("google_calendar"), connection("google_calendar"), "at"
    )

    assert len(lookups) == 1


def test_google_calendar_that_cannot_be_watched_is_skipped_but_other_errors_raise(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    unwatchable = {"error": {"code": 400, "errors": [{"reason": "pushNotSupportedForRequestedResource"}]}}
    url = "https://www.googleapis.com/calendar/v3/calendars/primary/events/watch"
    http.post(url, json=unwatchable, status=400)
    http.post(url, json={"error": {"code": 400, "errors": [{"reason": "invalid"}]}}, status=400)
    manager = subscriptions.for_provider("google_calendar", context)
    assert manager is not None
    spec = load_catalog().get("google_calendar")

    assert manager.subscribe(spec, connection("google_calendar"), "at") == []
    with pytest.raises(ProviderApiError):
        manager.subscribe(spec, connection("google_calendar"), "at")


def test_google_unsubscribe_stops_each_channel_and_tolerates_gone_ones(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.post("https://www.googleapis.com/calendar/v3/channels/stop", status=204)
    http.post("https://www.googleapis.com/calendar/v3/channels/stop", status=404, json={"error": {}})
    channels = [
        Lookup(
            "google_calendar",
            "channel",
            f"ch-{n}",
            "conn-1",
            "agency-1",
            "client-a",
            {"resource_id": f"r{n}"},
        )
        for n in (1, 2)
    ]
    other = Lookup("google_calendar", "email", "x", "conn-1", "agency-1", None, {})

    subscriptions.for_provider("google_calendar", context).unsubscribe(  # type: ignore[union-attr]
        load_catalog().get("google_calendar"), connection("google_calendar"), "at", [*channels, other]
    )

    assert [sent(c) for c in http.calls] == [
        {"id": "ch-1", "resourceId": "r1"},
        {"id": "ch-2", "resourceId": "r2"},
    ]


# --------------------------------------------------------------------------- Calendly


def test_calendly_subscription_has_its_own_signing_key_kept_only_sealed(
    context: SubscriptionContext, box: FakeBox, http: responses.RequestsMock
) -> None:
    http.get(
        "https://api.calendly.com/users/me",
        json={
            "resource": {
                "uri": "https://api.calendly.com/users/U1",
                "current_organization": "https://api.calendly.com/organizations/O1",
            }
        },
    )
    http.post(
        "https://api.calendly.com/webhook_subscriptions",
        json={"resource": {"uri": "https://api.calendly.com/webhook_subscriptions/S1", "state": "active"}},
        status=201,
    )

    [lookup] = subscriptions.for_provider("calendly", context).subscribe(  # type: ignore[union-attr]
        load_catalog().get("calendly"), connection("calendly"), "at"
    )

    body = sent(http.calls[1])
    callback = urlsplit(body["url"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{PUBLIC}/webhooks/calendly"
    assert parse_qs(callback.query) == {"subscription": [lookup.value]}
    assert body["scope"] == "user"
    assert body["user"] == "https://api.calendly.com/users/U1"
    assert body["organization"] == "https://api.calendly.com/organizations/O1"
    assert "invitee.created" in body["events"]
    assert (lookup.kind, lookup.attributes[Attr.SUBSCRIPTION]) == (
        "subscription",
        "https://api.calendly.com/webhook_subscriptions/S1",
    )
    assert box.sealed[lookup.attributes[Attr.SIGNING_KEY_CIPHERTEXT]] == body["signing_key"]
    assert body["signing_key"] not in json.dumps(lookup.attributes)


def test_calendly_without_a_kms_key_refuses_to_subscribe(http: responses.RequestsMock) -> None:
    manager = subscriptions.for_provider("calendly", SubscriptionContext(public_api_url=PUBLIC))
    assert manager is not None

    with pytest.raises(SubscriptionNotConfigured):
        manager.subscribe(load_catalog().get("calendly"), connection("calendly"), "at")


def test_calendly_unsubscribe_deletes_the_subscription(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.delete("https://api.calendly.com/webhook_subscriptions/S1", status=204)
    item = Lookup(
        "calendly", "subscription", "r1", "conn-1", "agency-1", None,
        {Attr.SUBSCRIPTION: "https://api.calendly.com/webhook_subscriptions/S1"},
    )  # fmt: skip

    subscriptions.for_provider("calendly", context).unsubscribe(  # type: ignore[union-attr]
        load_catalog().get("calendly"), connection("calendly"), "at", [item]
    )

    assert len(http.calls) == 1


# --------------------------------------------------------------------------- Microsoft Graph


def test_graph_subscription_sends_a_random_client_state_and_stores_its_digest(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.post(
        "https://graph.microsoft.com/v1.0/subscriptions",
        json={"id": "sub-1", "expirationDateTime": "2026-05-08T11:00:00.0000000Z"},
        status=201,
    )

    [lookup] = subscriptions.for_provider("outlook_calendar", context).subscribe(  # type: ignore[union-attr]
        load_catalog().get("outlook_calendar"), connection("outlook_calendar", calendar_id="AAMk=="), "at"
    )

    body = sent(http.calls[0])
    assert body["notificationUrl"] == f"{PUBLIC}/webhooks/outlook_calendar"
    assert body["lifecycleNotificationUrl"] == body["notificationUrl"]
    assert body["resource"] == "me/calendars/AAMk%3D%3D/events"
    assert body["changeType"] == "created,updated,deleted"
    assert 16 <= len(body["clientState"]) <= 128
    assert body["expirationDateTime"].startswith("2026-05-08")
    assert (lookup.kind, lookup.value) == ("subscription", "sub-1")
    assert lookup.attributes[Attr.CLIENT_STATE_SHA256] == digest(body["clientState"])
    assert body["clientState"] not in json.dumps(lookup.attributes)


def test_graph_unsubscribe_deletes_the_subscription(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.delete("https://graph.microsoft.com/v1.0/subscriptions/sub-1", status=204)
    item = Lookup("outlook_calendar", "subscription", "sub-1", "conn-1", "agency-1", None, {})

    subscriptions.for_provider("outlook_calendar", context).unsubscribe(  # type: ignore[union-attr]
        load_catalog().get("outlook_calendar"), connection("outlook_calendar"), "at", [item]
    )

    assert len(http.calls) == 1


# --------------------------------------------------------------------------- Gmail


def test_gmail_watch_publishes_to_the_configured_topic_and_routes_by_address(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.post(
        "https://gmail.googleapis.com/gmail/v1/users/me/watch",
        json={"historyId": "1234", "expiration": "1778241600000"},
    )

    [lookup] = subscriptions.for_provider("gmail", context).subscribe(  # type: ignore[union-attr]
        load_catalog().get("gmail"), connection("gmail"), "at"
    )

    assert sent(http.calls[0])["topicName"] == "projects/p/topics/gmail"
    assert (lookup.kind, lookup.value) == ("email", "ada@example.com")
    assert lookup.attributes == {Attr.HISTORY_ID: "1234", Attr.EXPIRES_AT: "2026-05-08T12:00:00+00:00"}


def test_gmail_without_a_topic_is_not_configured(http: responses.RequestsMock) -> None:
    manager = subscriptions.for_provider("gmail", SubscriptionContext(public_api_url=PUBLIC))
    assert manager is not None

    with pytest.raises(SubscriptionNotConfigured):
        manager.subscribe(load_catalog().get("gmail"), connection("gmail"), "at")


def test_gmail_unsubscribe_stops_the_watch_and_never_raises(
    context: SubscriptionContext, http: responses.RequestsMock
) -> None:
    http.post("https://gmail.googleapis.com/gmail/v1/users/me/stop", status=503)

    subscriptions.for_provider("gmail", context).unsubscribe(  # type: ignore[union-attr]
        load_catalog().get("gmail"), connection("gmail"), "at", []
    )

    assert len(http.calls) == 1  # a POST is never retried blindly (integrations.http policy)


# --------------------------------------------------------------------------- routing contract


def test_lookup_kinds_are_the_ones_the_provider_modules_write() -> None:
    assert ghl_webhook.LOOKUP_LOCATION == ghl_module.LOOKUP_LOCATION
    assert ghl_webhook.LOOKUP_COMPANY == ghl_module.LOOKUP_COMPANY
    assert hubspot_webhook.LOOKUP_PORTAL == hubspot_module.LOOKUP_PORTAL
    assert slack_webhook.LOOKUP_TEAM == slack_module.LOOKUP_TEAM
    assert calendly_webhook.LOOKUP_USER == calendly_module.LOOKUP_USER
    assert gmail_webhook.LOOKUP_EMAIL == gmail_module.LOOKUP_EMAIL


@pytest.mark.parametrize(
    ("provider", "account_id", "token_answer", "body"),
    [
        ("ghl", "loc-1", {"locationId": "loc-1"}, {"type": "ContactCreate", "locationId": "loc-1"}),
        ("ghl", "company:co-1", {"companyId": "co-1"}, {"type": "UNINSTALL", "companyId": "co-1"}),
        (
            "hubspot",
            "62515",
            {},
            [{"eventId": 1, "portalId": 62515, "subscriptionType": "contact.creation", "objectId": 7}],
        ),
        (
            "slack",
            "T123",
            {},
            {
                "type": "event_callback",
                "team_id": "T123",
                "event_id": "Ev1",
                "event": {"type": "app_uninstalled"},
            },
        ),
    ],
)
def test_an_app_level_push_routes_to_the_lookup_written_at_connect(
    provider: str, account_id: str, token_answer: dict[str, Any], body: Any
) -> None:
    from integrations.providers.registry import module_for

    conn = connection(provider).model_copy(update={"account": ExternalAccount(id=account_id, label="x")})
    credentials = Credentials(extra={"token_answer": token_answer})
    spec = load_catalog().get(provider)

    written = module_for(provider).on_connect(spec, conn, credentials)
    routed = [d.routing for d in parse_request(plain_request(provider, json.dumps(body).encode())).deliveries]

    assert [lookup.key for lookup in written] == [lookup_key(provider, r.kind, r.value) for r in routed]


def test_merge_lookups_keeps_the_later_item_for_a_key() -> None:
    first = Lookup("gmail", "email", "a@x", "c", "ag", None, {})
    later = Lookup("gmail", "email", "a@x", "c", "ag", None, {Attr.HISTORY_ID: "9"})

    assert merge_lookups([first], [later]) == [later]


def test_lookup_keys_parse_back_even_when_the_value_holds_a_hash_sign() -> None:
    item = Lookup("calendly", "user", "https://x/users/U1#frag", "c", "ag", None, {})

    assert parse_lookup_key(item.key) == ("calendly", "user", "https://x/users/U1#frag")
    assert parse_lookup_key("CONN#x") is None
