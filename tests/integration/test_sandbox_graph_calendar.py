"""The sandbox's Microsoft Graph calendar behaves like Graph: transactionId dedupe, If-Match 412,
extended properties only when expanded, Prefer time zones, delta's refusals and 410, notifications on
the person's acts, and every person-acts route documented on the index page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from infra.local.sandbox.graph import GraphSubscription
from infra.local.sandbox.graph_store import default_calendar_id, store_of
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

ACCOUNT = "alex@example.com"
API = "/microsoft/graph/v1.0"
PROPERTY = "String {5c8d4f3e-9a1b-4e6f-8d2c-7b3a1f0e9c64} Name integrations_appointment_id"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.3)) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


@pytest.fixture
def auth(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {connect(sb, 'microsoft', account=ACCOUNT)['access_token']}"}


def _call(sb: Sandbox, auth: dict[str, str], method: str, path: str, **kwargs: Any) -> Any:
    headers = {**auth, **kwargs.pop("headers", {})}
    return sb.http.request(method, sb.url(API + path), headers=headers, timeout=5, **kwargs)


def _event(**extra: Any) -> dict[str, Any]:
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    return {
        "subject": "Call",
        "start": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T11:00:00", "timeZone": "UTC"},
        **extra,
    }


def test_a_repeated_transaction_id_answers_the_first_event(sb: Sandbox, auth: dict[str, str]) -> None:
    first = _call(sb, auth, "POST", "/me/events", json=_event(transactionId="t-1")).json()
    again = _call(sb, auth, "POST", "/me/events", json=_event(transactionId="t-1", subject="Other")).json()
    other = _call(sb, auth, "POST", "/me/events", json=_event(transactionId="t-2")).json()
    assert again["id"] == first["id"] and again["subject"] == "Call"
    assert other["id"] != first["id"]


def test_if_match_with_an_old_etag_is_refused_with_412(sb: Sandbox, auth: dict[str, str]) -> None:
    created = _call(sb, auth, "POST", "/me/events", json=_event()).json()
    old = created["@odata.etag"]
    changed = _call(
        sb, auth, "PATCH", f"/me/events/{created['id']}", json={"subject": "A"}, headers={"If-Match": old}
    )
    assert changed.status_code == 200 and changed.json()["@odata.etag"] != old
    stale = _call(
        sb, auth, "PATCH", f"/me/events/{created['id']}", json={"subject": "B"}, headers={"If-Match": old}
    )
    assert (stale.status_code, stale.json()["error"]["code"]) == (412, "ErrorIrresolvableConflict")
    refused = _call(sb, auth, "DELETE", f"/me/events/{created['id']}", headers={"If-Match": old})
    assert refused.status_code == 412
    assert _call(sb, auth, "DELETE", f"/me/events/{created['id']}").status_code == 204
    assert _call(sb, auth, "GET", f"/me/events/{created['id']}").status_code == 404


def test_extended_properties_come_back_only_when_expanded(sb: Sandbox, auth: dict[str, str]) -> None:
    props = [
        {"id": PROPERTY, "value": "apt-1"},
        {"id": "String {00000000-0000-0000-0000-000000000001} Name x", "value": "y"},
    ]
    created = _call(sb, auth, "POST", "/me/events", json=_event(singleValueExtendedProperties=props)).json()
    assert "singleValueExtendedProperties" not in created
    expand = f"singleValueExtendedProperties($filter=id eq '{PROPERTY}')"
    found = _call(sb, auth, "GET", f"/me/events/{created['id']}", params={"$expand": expand}).json()
    assert found["singleValueExtendedProperties"] == [props[0]]


def test_times_answer_in_the_preferred_zone_and_all_day_dates_never_move(
    sb: Sandbox, auth: dict[str, str]
) -> None:
    timed = _call(sb, auth, "POST", "/me/events", json=_event()).json()
    day = timed["start"]["dateTime"][:10]
    all_day = _call(
        sb,
        auth,
        "POST",
        "/me/events",
        json=_event(
            isAllDay=True,
            start={"dateTime": f"{day}T00:00:00", "timeZone": "Pacific Standard Time"},
            end={"dateTime": f"{day}T00:00:00", "timeZone": "Pacific Standard Time"},
        ),
    )
    assert all_day.status_code == 400  # an all-day event lasts at least a day
    tokyo = {"Prefer": 'outlook.timezone="Asia/Tokyo"'}
    shown = _call(sb, auth, "GET", f"/me/events/{timed['id']}", headers=tokyo).json()
    assert shown["start"] == {"dateTime": f"{day}T19:00:00.0000000", "timeZone": "Asia/Tokyo"}
    assert shown["originalStartTimeZone"] == "UTC"


def test_delta_refuses_query_options_and_expired_tokens(sb: Sandbox, auth: dict[str, str]) -> None:
    window = {"startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2040-01-01T00:00:00Z"}
    refused = _call(sb, auth, "GET", "/me/calendarView/delta", params={**window, "$expand": "extensions"})
    assert refused.status_code == 400
    assert _call(sb, auth, "GET", "/me/calendarView/delta").status_code == 400  # no window
    _call(sb, auth, "POST", "/me/events", json=_event())
    first = _call(sb, auth, "GET", "/me/calendarView/delta", params=window).json()
    assert len(first["value"]) == 1
    link = first["@odata.deltaLink"]
    assert sb.http.get(link, headers=auth, timeout=5).json()["value"] == []
    sb.http.post(sb.url("/_sandbox/outlook/delta_tokens/expire"), json={}, timeout=5)
    gone = sb.http.get(link, headers=auth, timeout=5)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "syncStateNotFound")


def test_the_persons_acts_notify_the_subscription_on_the_calendar(sb: Sandbox) -> None:
    with sb.app.sandbox.state.lock:
        store_of(sb.app.sandbox).subscriptions["s-1"] = GraphSubscription(
            id="s-1",
            resource="me/events",
            change_types=("created", "updated", "deleted"),
            notification_url="http://127.0.0.1:9/webhooks/outlook_calendar",
            lifecycle_url=None,
            client_state="secret",
            expires_at=sb.app.sandbox.now() + 3600,
            account=ACCOUNT,
            client_id="client",
            calendar_id=default_calendar_id(ACCOUNT),
            created_at=sb.app.sandbox.now(),
        )
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    made = sb.http.post(
        sb.url("/_sandbox/outlook/calendars/default/events"),
        json={"subject": "x", "start": f"{day}T09:00:00Z", "end": f"{day}T10:00:00Z"},
        timeout=5,
    ).json()
    sb.http.patch(sb.url(f"/_sandbox/outlook/events/{made['id']}"), json={"shift_minutes": 30}, timeout=5)
    sb.http.delete(sb.url(f"/_sandbox/outlook/events/{made['id']}"), timeout=5)
    deliveries = sb.http.get(sb.url("/_sandbox/pushes"), params={"wait": "1"}, timeout=10).json()[
        "deliveries"
    ]
    assert [d["label"] for d in deliveries] == ["microsoft:created", "microsoft:updated", "microsoft:deleted"]


def test_the_index_page_documents_the_outlook_person_routes(sb: Sandbox) -> None:
    page = sb.http.get(sb.url("/"), timeout=5).text
    for path in (
        "/_sandbox/outlook/calendars/&lt;calendar_id&gt;/events",
        "/_sandbox/outlook/calendars/&lt;calendar_id&gt;/seed",
        "/_sandbox/outlook/events/&lt;event_id&gt;",
        "/_sandbox/outlook/delta_tokens/expire",
        "/microsoft/graph/v1.0/me/calendars/&lt;calendar&gt;/calendarView/delta",
    ):
        assert path in page
    assert "act as the person" in page and "syncStateNotFound" in page
