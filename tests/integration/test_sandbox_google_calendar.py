"""Google Calendar in the sandbox: sync tokens, paging, 410, writes, watch channels and push notifications."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import SandboxConfig
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox

API = "/google/calendar/v3"


class Receiver:
    """The gateway's /webhooks/google_calendar, as far as the sandbox can tell."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, str]] = []
        self._lock = threading.Lock()

        def app(environ: Any, start_response: Any) -> Any:
            request = Request(environ)
            assert request.get_data() == b""
            with self._lock:
                self.notifications.append(dict(request.headers))
            return Response("", status=200)(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.address = f"http://127.0.0.1:{self.server.server_port}/webhooks/google_calendar"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.notifications) >= count:
                    return list(self.notifications)
            time.sleep(0.02)
        with self._lock:
            return list(self.notifications)


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=2.0)) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


@pytest.fixture
def token(sb: Sandbox) -> dict[str, Any]:
    return connect(sb, "google")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _get(sb: Sandbox, token: dict[str, Any], path: str, **params: Any) -> Any:
    return sb.http.get(
        sb.url(API + path),
        params=params,
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    )


def _send(
    sb: Sandbox, token: dict[str, Any], method: str, path: str, body: Any = None, **headers: str
) -> Any:
    return sb.http.request(
        method,
        sb.url(API + path),
        json=body,
        headers={"Authorization": f"Bearer {token['access_token']}", **headers},
        timeout=5,
    )


def _full_sync(sb: Sandbox, token: dict[str, Any], **params: Any) -> tuple[list[dict[str, Any]], str, int]:
    items: list[dict[str, Any]] = []
    pages = 0
    page_token = None
    while True:
        query = dict(params)
        if page_token:
            query["pageToken"] = page_token
        body = _get(sb, token, "/calendars/primary/events", **query).json()
        items += body["items"]
        pages += 1
        if "nextPageToken" in body:
            assert "nextSyncToken" not in body
            page_token = body["nextPageToken"]
            continue
        return items, body["nextSyncToken"], pages


EVENT = {
    "summary": "Demo call",
    "start": {"dateTime": "2030-01-02T15:00:00Z"},
    "end": {"dateTime": "2030-01-02T15:30:00Z"},
}


def test_calendar_list_has_a_primary_calendar(sb: Sandbox, token: dict[str, Any]) -> None:
    items = _get(sb, token, "/users/me/calendarList").json()["items"]

    primary = [c for c in items if c.get("primary")]
    assert [c["id"] for c in primary] == ["alex@example.com"]
    assert {c["accessRole"] for c in items} == {"owner", "writer", "reader"}


def test_full_sync_pages_and_gives_the_sync_token_on_the_last_page_only(
    sb: Sandbox, token: dict[str, Any]
) -> None:
    for i in range(3):
        assert (
            _send(sb, token, "POST", "/calendars/primary/events", {**EVENT, "summary": f"E{i}"}).status_code
            == 200
        )

    items, sync_token, pages = _full_sync(sb, token, maxResults=2)

    assert pages == 3  # two seeded events + three new ones, two per page
    assert [e["summary"] for e in items][-3:] == ["E0", "E1", "E2"]
    assert sync_token


def test_incremental_sync_returns_changes_and_deletions(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    created = _send(sb, token, "POST", "/calendars/primary/events", EVENT).json()
    gone = _send(sb, token, "POST", "/calendars/primary/events", {**EVENT, "summary": "Gone"}).json()
    _send(sb, token, "PATCH", f"/calendars/primary/events/{created['id']}", {"summary": "Renamed"})
    assert _send(sb, token, "DELETE", f"/calendars/primary/events/{gone['id']}").status_code == 204

    changes, next_token, _ = _full_sync(sb, token, syncToken=sync_token)
    nothing, _, _ = _full_sync(sb, token, syncToken=next_token)

    by_id = {e["id"]: e for e in changes}
    assert by_id[created["id"]]["summary"] == "Renamed"
    assert by_id[gone["id"]] == {
        "kind": "calendar#event",
        "etag": by_id[gone["id"]]["etag"],
        "id": gone["id"],
        "status": "cancelled",
    }
    assert nothing == []


def test_a_full_sync_hides_deleted_events(sb: Sandbox, token: dict[str, Any]) -> None:
    gone = _send(sb, token, "POST", "/calendars/primary/events", EVENT).json()
    _send(sb, token, "DELETE", f"/calendars/primary/events/{gone['id']}")

    items, _, _ = _full_sync(sb, token)

    assert gone["id"] not in {e["id"] for e in items}


def test_an_expired_sync_token_answers_410(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    sb.http.post(sb.url("/_sandbox/google/sync_tokens/expire"), json={}, timeout=5)

    answer = _get(sb, token, "/calendars/primary/events", syncToken=sync_token)

    assert answer.status_code == 410
    assert answer.json()["error"]["errors"][0]["reason"] == "fullSyncRequired"


def test_sync_token_with_filters_is_a_bad_request(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)

    answer = _get(
        sb, token, "/calendars/primary/events", syncToken=sync_token, timeMin="2030-01-01T00:00:00Z"
    )

    assert answer.status_code == 400


def test_time_window_filters_a_full_sync(sb: Sandbox, token: dict[str, Any]) -> None:
    _send(sb, token, "POST", "/calendars/primary/events", EVENT)

    items, _, _ = _full_sync(sb, token, timeMin="2030-01-02T15:10:00Z", timeMax="2030-01-03T00:00:00Z")

    assert [e["summary"] for e in items] == ["Demo call"]


def test_writes_check_etags_ids_and_deletion(sb: Sandbox, token: dict[str, Any]) -> None:
    event = _send(sb, token, "POST", "/calendars/primary/events", {**EVENT, "id": "appt00001"}).json()

    duplicate = _send(sb, token, "POST", "/calendars/primary/events", {**EVENT, "id": "appt00001"})
    bad_id = _send(sb, token, "POST", "/calendars/primary/events", {**EVENT, "id": "UPPER_case"})
    stale = _send(
        sb, token, "PATCH", "/calendars/primary/events/appt00001", {"summary": "x"}, **{"If-Match": '"1"'}
    )
    fresh = _send(
        sb,
        token,
        "PATCH",
        "/calendars/primary/events/appt00001",
        {"summary": "y"},
        **{"If-Match": event["etag"]},
    )
    first_delete = _send(sb, token, "DELETE", "/calendars/primary/events/appt00001")
    second_delete = _send(sb, token, "DELETE", "/calendars/primary/events/appt00001")

    assert event["id"] == "appt00001"
    assert duplicate.status_code == 409
    assert bad_id.status_code == 400
    assert stale.status_code == 412
    assert fresh.status_code == 200 and fresh.json()["etag"] != event["etag"]
    assert first_delete.status_code == 204
    assert second_delete.status_code == 410


def test_private_extended_properties_are_kept_and_filterable(sb: Sandbox, token: dict[str, Any]) -> None:
    tagged = {**EVENT, "extendedProperties": {"private": {"appointment_id": "a-1"}}}
    _send(sb, token, "POST", "/calendars/primary/events", tagged)

    items, _, _ = _full_sync(sb, token, privateExtendedProperty="appointment_id=a-1")

    assert [e["extendedProperties"]["private"]["appointment_id"] for e in items] == ["a-1"]


def test_meet_links_need_conference_data_version_1(sb: Sandbox, token: dict[str, Any]) -> None:
    body = {
        **EVENT,
        "conferenceData": {
            "createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        },
    }

    without = _send(sb, token, "POST", "/calendars/primary/events", body).json()
    with_version = sb.http.post(
        sb.url(API + "/calendars/primary/events"),
        params={"conferenceDataVersion": "1"},
        json=body,
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    ).json()

    assert "hangoutLink" not in without
    assert with_version["hangoutLink"].startswith("https://meet.google.com/")


def test_read_only_grant_cannot_write(sb: Sandbox) -> None:
    token = connect(sb, "google", untick=("https://www.googleapis.com/auth/calendar.events",))

    answer = _send(sb, token, "POST", "/calendars/primary/events", EVENT)

    assert answer.status_code == 403
    assert answer.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"


def test_reader_calendars_refuse_writes(sb: Sandbox, token: dict[str, Any]) -> None:
    answer = _send(
        sb, token, "POST", "/calendars/en.usa%23holiday%40group.v.calendar.google.com/events", EVENT
    )

    assert answer.status_code == 403


def _watch(
    sb: Sandbox, token: dict[str, Any], address: str, channel_id: str = "chan-1", calendar: str = "primary"
) -> Any:
    return _send(
        sb,
        token,
        "POST",
        f"/calendars/{calendar}/events/watch",
        {"id": channel_id, "type": "web_hook", "address": address, "token": "route-me"},
    )


def test_watch_sends_sync_then_exists_on_every_change(
    sb: Sandbox, token: dict[str, Any], receiver: Receiver
) -> None:
    channel = _watch(sb, token, receiver.address).json()
    assert channel["kind"] == "api#channel" and channel["resourceId"]
    assert int(channel["expiration"]) > time.time() * 1000

    sb.http.post(
        sb.url("/_sandbox/google/events"),
        json={
            "account": "alex@example.com",
            "calendar_id": "primary",
            "summary": "Dentist",
            "start": "2030-01-05T10:00:00Z",
            "end": "2030-01-05T11:00:00Z",
        },
        timeout=5,
    ).raise_for_status()
    _send(sb, token, "POST", "/calendars/primary/events", EVENT)
    got = receiver.wait_for(3)

    assert [n["X-Goog-Resource-State"] for n in got] == ["sync", "exists", "exists"]
    assert got[0]["X-Goog-Message-Number"] == "1"
    numbers = [int(n["X-Goog-Message-Number"]) for n in got]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    for n in got:
        assert n["X-Goog-Channel-Id"] == "chan-1"
        assert n["X-Goog-Channel-Token"] == "route-me"
        assert n["X-Goog-Resource-Id"] == channel["resourceId"]
        assert n["X-Goog-Resource-Uri"] == channel["resourceUri"]
        assert n["X-Goog-Channel-Expiration"].endswith("GMT")


def test_stopped_channels_stay_quiet(sb: Sandbox, token: dict[str, Any], receiver: Receiver) -> None:
    channel = _watch(sb, token, receiver.address).json()
    receiver.wait_for(1)

    stopped = _send(
        sb, token, "POST", "/channels/stop", {"id": "chan-1", "resourceId": channel["resourceId"]}
    )
    again = _send(sb, token, "POST", "/channels/stop", {"id": "chan-1", "resourceId": channel["resourceId"]})
    _send(sb, token, "POST", "/calendars/primary/events", EVENT)
    sb.http.get(sb.url("/_sandbox/pushes"), params={"wait": "1"}, timeout=10)

    assert stopped.status_code == 204
    assert again.status_code == 404
    assert [n["X-Goog-Resource-State"] for n in receiver.notifications] == ["sync"]


def test_watch_rules(sb: Sandbox, token: dict[str, Any], receiver: Receiver) -> None:
    assert _watch(sb, token, receiver.address).status_code == 200
    duplicate = _watch(sb, token, receiver.address)
    remote = _watch(sb, token, "https://example.com/hook", channel_id="chan-2")
    holidays = _watch(
        sb,
        token,
        receiver.address,
        channel_id="chan-3",
        calendar="en.usa%23holiday%40group.v.calendar.google.com",
    )

    assert duplicate.json()["error"]["errors"][0]["reason"] == "channelIdNotUnique"
    assert remote.status_code == 400
    assert holidays.json()["error"]["errors"][0]["reason"] == "pushNotSupportedForRequestedResource"


def test_expired_channels_stop_delivering(sb: Sandbox, token: dict[str, Any], receiver: Receiver) -> None:
    _watch(sb, token, receiver.address)
    receiver.wait_for(1)
    sb.advance(8 * 24 * 3600)
    fresh = connect(sb, "google")

    assert _send(sb, fresh, "POST", "/calendars/primary/events", EVENT).status_code == 200
    sb.http.get(sb.url("/_sandbox/pushes"), params={"wait": "1"}, timeout=10)

    assert len(receiver.notifications) == 1
