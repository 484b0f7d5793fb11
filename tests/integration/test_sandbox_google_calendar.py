"""Google Calendar in the sandbox: sync tokens, paging, 410, writes, watch channels and push notifications."""

from __future__ import annotations

import re
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


# --- Sync: paging, incremental pages, tokens -------------------------------------------------------


def _person(sb: Sandbox, method: str, path: str, body: Any = None, **params: str) -> Any:
    answer = sb.http.request(method, sb.url("/_sandbox/google" + path), json=body, params=params, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def test_incremental_sync_pages_and_ends_with_a_new_sync_token(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    ids = [_send(sb, token, "POST", "/calendars/primary/events", EVENT).json()["id"] for _ in range(5)]

    changes, next_token, pages = _full_sync(sb, token, syncToken=sync_token, maxResults=2)
    after, _, _ = _full_sync(sb, token, syncToken=next_token)

    assert pages == 3
    assert [e["id"] for e in changes] == ids
    assert next_token != sync_token
    assert after == []


def test_a_change_made_while_paging_is_not_lost(sb: Sandbox, token: dict[str, Any]) -> None:
    """Given a full sync half done, when an unread event changes, then the next incremental has it."""
    for i in range(4):
        _send(sb, token, "POST", "/calendars/primary/events", {**EVENT, "summary": f"E{i}"})
    first = _get(sb, token, "/calendars/primary/events", maxResults=3).json()
    last = _get(sb, token, "/calendars/primary/events").json()["items"][-1]
    _send(sb, token, "PATCH", f"/calendars/primary/events/{last['id']}", {"summary": "Changed mid-sync"})

    rest, sync_token, _ = _full_sync(sb, token, maxResults=3, pageToken=first["nextPageToken"])
    changes, _, _ = _full_sync(sb, token, syncToken=sync_token)

    # The changed event left this listing's snapshot: it belongs to the next sync token.
    assert [e["summary"] for e in first["items"] + rest] == ["Team standup", "Lunch", "E0", "E1", "E2"]
    assert [(e["id"], e["summary"]) for e in changes] == [(last["id"], "Changed mid-sync")]


def test_page_tokens_belong_to_their_query(sb: Sandbox, token: dict[str, Any]) -> None:
    first = _get(sb, token, "/calendars/primary/events", maxResults=1).json()

    other_query = _get(sb, token, "/calendars/primary/events", pageToken=first["nextPageToken"], q="x")
    forged = _get(sb, token, "/calendars/primary/events", pageToken=first["nextPageToken"][:-2] + "AA")

    assert other_query.status_code == 400
    assert forged.status_code == 400


def test_max_results_is_capped_at_2500(sb: Sandbox, token: dict[str, Any]) -> None:
    assert _get(sb, token, "/calendars/primary/events", maxResults=2500).status_code == 200
    assert _get(sb, token, "/calendars/primary/events", maxResults=2501).status_code == 400


def test_the_expiry_switch_gives_google_410_body(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    _person(sb, "POST", "/sync_tokens/expire", {"account": "alex@example.com", "calendar_id": "primary"})

    answer = _get(sb, token, "/calendars/primary/events", syncToken=sync_token)

    assert answer.status_code == 410
    error = answer.json()["error"]
    assert error["code"] == 410
    assert error["message"] == "Sync token is no longer valid, a full sync is required."
    assert error["errors"][0]["domain"] == "calendar"
    assert error["errors"][0]["reason"] == "fullSyncRequired"
    assert error["errors"][0]["location"] == "syncToken"


def test_the_expiry_switch_spares_other_calendars(sb: Sandbox, token: dict[str, Any]) -> None:
    team = _team_calendar(sb, token)
    _, primary_token, _ = _full_sync(sb, token)
    team_token = _get(sb, token, f"/calendars/{team}/events").json()["nextSyncToken"]
    _person(sb, "POST", "/sync_tokens/expire", {"account": "alex@example.com", "calendar_id": team})

    assert _get(sb, token, "/calendars/primary/events", syncToken=primary_token).status_code == 200
    assert _get(sb, token, f"/calendars/{team}/events", syncToken=team_token).status_code == 410


def test_old_sync_tokens_expire_with_time(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    sb.advance(31 * 24 * 3600)
    fresh = connect(sb, "google")

    assert _get(sb, fresh, "/calendars/primary/events", syncToken=sync_token).status_code == 410


def test_a_sync_token_of_another_calendar_or_a_made_up_one_is_410(sb: Sandbox, token: dict[str, Any]) -> None:
    team = _team_calendar(sb, token)
    _, primary_token, _ = _full_sync(sb, token)

    assert _get(sb, token, f"/calendars/{team}/events", syncToken=primary_token).status_code == 410
    assert (
        _get(sb, token, "/calendars/primary/events", syncToken="CPDAlvWDx70CEPDAlvWDx70CGAU=").status_code
        == 410
    )


def test_show_deleted_and_updated_min_bring_back_deleted_events(sb: Sandbox, token: dict[str, Any]) -> None:
    _full_sync(sb, token)  # the account's seeded events exist from here
    sb.advance(60)
    gone = _send(sb, token, "POST", "/calendars/primary/events", EVENT).json()
    _send(sb, token, "DELETE", f"/calendars/primary/events/{gone['id']}")

    shown, _, _ = _full_sync(sb, token, showDeleted="true")
    since, _, _ = _full_sync(sb, token, updatedMin=gone["updated"])

    assert {"id": gone["id"], "status": "cancelled"}.items() <= {e["id"]: e for e in shown}[
        gone["id"]
    ].items()
    assert [e["id"] for e in since] == [gone["id"]]


def _team_calendar(sb: Sandbox, token: dict[str, Any]) -> str:
    items = _get(sb, token, "/users/me/calendarList").json()["items"]
    team: str = next(c["id"] for c in items if c["accessRole"] == "writer")
    return team


# --- Events: etags, properties, all-day, Meet ------------------------------------------------------


def test_every_write_changes_the_etag_and_stale_ones_get_412(sb: Sandbox, token: dict[str, Any]) -> None:
    created = _send(sb, token, "POST", "/calendars/primary/events", EVENT).json()
    path = f"/calendars/primary/events/{created['id']}"
    patched = _send(sb, token, "PATCH", path, {"summary": "B"}, **{"If-Match": created["etag"]}).json()

    stale_put = _send(sb, token, "PUT", path, EVENT, **{"If-Match": created["etag"]})
    stale_delete = _send(sb, token, "DELETE", path, **{"If-Match": created["etag"]})
    unchanged = _get(sb, token, path).json()
    fresh_delete = _send(sb, token, "DELETE", path, **{"If-Match": patched["etag"]})

    assert patched["etag"] != created["etag"] and patched["updated"] >= created["updated"]
    assert stale_put.status_code == stale_delete.status_code == 412
    assert stale_put.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
    assert unchanged["summary"] == "B" and unchanged["etag"] == patched["etag"]
    assert fresh_delete.status_code == 204


def test_extended_properties_are_stored_returned_and_filtered(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    props = {"private": {"appointment_id": "a-1", "origin": "us"}, "shared": {"booking": "b-9"}}
    ours = _send(
        sb, token, "POST", "/calendars/primary/events", {**EVENT, "extendedProperties": props}
    ).json()
    _send(
        sb,
        token,
        "POST",
        "/calendars/primary/events",
        {**EVENT, "extendedProperties": {"private": {"x": "y"}}},
    )

    both, _, _ = _full_sync(
        sb,
        token,
        privateExtendedProperty=["appointment_id=a-1", "origin=us"],
        sharedExtendedProperty="booking=b-9",
    )
    neither, _, _ = _full_sync(sb, token, privateExtendedProperty=["appointment_id=a-1", "origin=them"])
    wrong_scope, _, _ = _full_sync(sb, token, sharedExtendedProperty="appointment_id=a-1")
    changes, _, _ = _full_sync(sb, token, syncToken=sync_token)

    assert ours["extendedProperties"] == props
    assert [e["id"] for e in both] == [ours["id"]]
    assert neither == wrong_scope == []
    assert {e["id"]: e for e in changes}[ours["id"]]["extendedProperties"] == props
    assert (
        _get(
            sb, token, "/calendars/primary/events", syncToken=sync_token, privateExtendedProperty="a=b"
        ).status_code
        == 400
    )


def test_all_day_and_transparent_events_keep_their_fields(sb: Sandbox, token: dict[str, Any]) -> None:
    body = {
        "summary": "Offsite",
        "start": {"date": "2030-01-02"},
        "end": {"date": "2030-01-03"},
        "transparency": "transparent",
        "iCalUID": "offsite-2030@example.com",
    }
    created = _send(sb, token, "POST", "/calendars/primary/events", body).json()
    mixed = _send(
        sb, token, "POST", "/calendars/primary/events", {**body, "end": {"dateTime": "2030-01-03T00:00:00Z"}}
    )

    found, _, _ = _full_sync(sb, token, iCalUID="offsite-2030@example.com")

    assert created["start"] == {"date": "2030-01-02"} and created["transparency"] == "transparent"
    assert created["status"] == "confirmed" and created["updated"].endswith("Z")
    assert [e["id"] for e in found] == [created["id"]]
    assert mixed.status_code == 400


def test_meet_link_on_insert_patch_and_kept_afterwards(sb: Sandbox, token: dict[str, Any]) -> None:
    request = {"createRequest": {"requestId": "req-1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
    plain = _send(sb, token, "POST", "/calendars/primary/events", EVENT).json()
    path = f"{API}/calendars/primary/events/{plain['id']}"
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    patched = sb.http.patch(
        sb.url(path), params={"conferenceDataVersion": "1"}, json={"conferenceData": request}, headers=headers
    ).json()
    renamed = _send(
        sb, token, "PATCH", f"/calendars/primary/events/{plain['id']}", {"summary": "Renamed"}
    ).json()

    conference = patched["conferenceData"]
    assert conference["createRequest"]["status"] == {"statusCode": "success"}
    assert conference["conferenceSolution"]["key"]["type"] == "hangoutsMeet"
    assert re.fullmatch(r"[a-z]{3}-[a-z]{4}-[a-z]{3}", conference["conferenceId"])
    assert conference["entryPoints"][0] == {
        "entryPointType": "video",
        "uri": patched["hangoutLink"],
        "label": patched["hangoutLink"].removeprefix("https://"),
    }
    assert patched["hangoutLink"] == f"https://meet.google.com/{conference['conferenceId']}"
    assert renamed["hangoutLink"] == patched["hangoutLink"]


# --- Recurring events ------------------------------------------------------------------------------

SERIES = {
    "summary": "Weekly 1:1",
    "start": {"dateTime": "2030-01-07T10:00:00-05:00", "timeZone": "America/New_York"},
    "end": {"dateTime": "2030-01-07T10:30:00-05:00", "timeZone": "America/New_York"},
    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
}


def _series_with_exceptions(sb: Sandbox, token: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """A 4-week series whose 2nd instance moved an hour later and whose 3rd was cancelled."""
    master = _send(sb, token, "POST", "/calendars/primary/events", SERIES).json()
    moved_id, cancelled_id = f"{master['id']}_20300114T150000Z", f"{master['id']}_20300121T150000Z"
    moved = _send(
        sb,
        token,
        "PATCH",
        f"/calendars/primary/events/{moved_id}",
        {
            "start": {"dateTime": "2030-01-14T11:00:00-05:00"},
            "end": {"dateTime": "2030-01-14T11:30:00-05:00"},
        },
    )
    assert moved.status_code == 200, moved.text
    assert _send(sb, token, "DELETE", f"/calendars/primary/events/{cancelled_id}").status_code == 204
    return master, moved_id, cancelled_id


def test_a_series_lists_as_master_plus_exceptions(sb: Sandbox, token: dict[str, Any]) -> None:
    master, moved_id, cancelled_id = _series_with_exceptions(sb, token)

    items, _, _ = _full_sync(sb, token, timeMin="2030-01-01T00:00:00Z")
    by_id = {e["id"]: e for e in items}

    assert set(by_id) == {master["id"], moved_id, cancelled_id}
    assert by_id[master["id"]]["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4"]
    assert by_id[moved_id]["recurringEventId"] == master["id"]
    assert by_id[moved_id]["originalStartTime"]["dateTime"] == "2030-01-14T10:00:00-05:00"
    assert by_id[moved_id]["start"]["dateTime"] == "2030-01-14T11:00:00-05:00"
    assert "recurrence" not in by_id[moved_id]
    # A cancelled exception is listed even without showDeleted when singleEvents is false.
    assert by_id[cancelled_id] == {
        "kind": "calendar#event",
        "etag": by_id[cancelled_id]["etag"],
        "id": cancelled_id,
        "status": "cancelled",
        "recurringEventId": master["id"],
        "originalStartTime": {"dateTime": "2030-01-21T10:00:00-05:00", "timeZone": "America/New_York"},
    }


def test_single_events_expands_the_series(sb: Sandbox, token: dict[str, Any]) -> None:
    master, moved_id, _ = _series_with_exceptions(sb, token)

    items, _, _ = _full_sync(
        sb, token, singleEvents="true", timeMin="2030-01-01T00:00:00Z", orderBy="startTime"
    )
    instances = _get(sb, token, f"/calendars/primary/events/{master['id']}/instances").json()["items"]

    assert [e["start"]["dateTime"] for e in items] == [
        "2030-01-07T10:00:00-05:00",
        "2030-01-14T11:00:00-05:00",
        "2030-01-28T10:00:00-05:00",
    ]
    assert all(e["recurringEventId"] == master["id"] for e in items)
    assert [e["id"] for e in instances] == [
        f"{master['id']}_20300107T150000Z",
        moved_id,
        f"{master['id']}_20300128T150000Z",
    ]


def test_incremental_sync_sees_exceptions_and_a_deleted_series(sb: Sandbox, token: dict[str, Any]) -> None:
    _, sync_token, _ = _full_sync(sb, token)
    master, moved_id, cancelled_id = _series_with_exceptions(sb, token)
    middle, middle_token, _ = _full_sync(sb, token, syncToken=sync_token)
    _send(sb, token, "DELETE", f"/calendars/primary/events/{master['id']}")

    after_delete, _, _ = _full_sync(sb, token, syncToken=middle_token)

    assert {e["id"] for e in middle} == {master["id"], moved_id, cancelled_id}
    assert {e["id"]: e["status"] for e in after_delete} == {master["id"]: "cancelled", moved_id: "cancelled"}


def test_single_events_incremental_sync_returns_the_instances_that_changed(
    sb: Sandbox, token: dict[str, Any]
) -> None:
    _, sync_token, _ = _full_sync(sb, token, singleEvents="true")
    master, moved_id, cancelled_id = _series_with_exceptions(sb, token)

    changes, _, _ = _full_sync(sb, token, singleEvents="true", syncToken=sync_token)

    by_id = {e["id"]: e for e in changes}
    assert master["id"] not in by_id
    assert set(by_id) == {
        f"{master['id']}_20300107T150000Z",
        moved_id,
        cancelled_id,
        f"{master['id']}_20300128T150000Z",
    }
    assert by_id[moved_id]["start"]["dateTime"] == "2030-01-14T11:00:00-05:00"
    assert by_id[cancelled_id]["status"] == "cancelled"


# --- freeBusy --------------------------------------------------------------------------------------


def _freebusy(sb: Sandbox, token: dict[str, Any], items: list[str], **window: str) -> Any:
    body = {"timeMin": "2030-03-01T00:00:00Z", "timeMax": "2030-03-03T00:00:00Z", **window}
    return _send(sb, token, "POST", "/freeBusy", {**body, "items": [{"id": i} for i in items]})


def test_freebusy_counts_opaque_events_only(sb: Sandbox, token: dict[str, Any]) -> None:
    def add(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
        body = {"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}, **extra}
        created: dict[str, Any] = _send(sb, token, "POST", "/calendars/primary/events", body).json()
        return created

    add("Busy", "2030-03-01T14:00:00Z", "2030-03-01T15:00:00Z")
    add("Overlapping", "2030-03-01T14:30:00Z", "2030-03-01T15:30:00Z")
    add("Free", "2030-03-01T16:00:00Z", "2030-03-01T17:00:00Z", transparency="transparent")
    gone = add("Cancelled", "2030-03-01T18:00:00Z", "2030-03-01T19:00:00Z")
    _send(sb, token, "DELETE", f"/calendars/primary/events/{gone['id']}")
    _send(
        sb,
        token,
        "POST",
        "/calendars/primary/events",
        {"summary": "Day off", "start": {"date": "2030-03-02"}, "end": {"date": "2030-03-03"}},
    )

    answer = _freebusy(sb, token, ["primary", "nobody@example.com"])

    assert answer.status_code == 200
    body = answer.json()
    assert body["kind"] == "calendar#freeBusy"
    assert body["calendars"]["primary"]["busy"] == [
        {"start": "2030-03-01T14:00:00Z", "end": "2030-03-01T15:30:00Z"},
        # An all-day date is a day in the calendar's zone (America/New_York), clipped to the window.
        {"start": "2030-03-02T05:00:00Z", "end": "2030-03-03T00:00:00Z"},
    ]
    assert body["calendars"]["nobody@example.com"]["errors"] == [{"domain": "global", "reason": "notFound"}]


def test_freebusy_expands_series_around_exceptions(sb: Sandbox, token: dict[str, Any]) -> None:
    _series_with_exceptions(sb, token)

    busy = _freebusy(
        sb, token, ["primary"], timeMin="2030-01-01T00:00:00Z", timeMax="2030-02-01T00:00:00Z"
    ).json()

    assert busy["calendars"]["primary"]["busy"] == [
        {"start": "2030-01-07T15:00:00Z", "end": "2030-01-07T15:30:00Z"},
        {"start": "2030-01-14T16:00:00Z", "end": "2030-01-14T16:30:00Z"},
        {"start": "2030-01-28T15:00:00Z", "end": "2030-01-28T15:30:00Z"},
    ]


def test_freebusy_rejects_an_empty_window_and_events_only_grants(sb: Sandbox, token: dict[str, Any]) -> None:
    # Another account: Google would fold scopes granted earlier to the same account into the grant.
    events_only = connect(
        sb,
        "google",
        account="events.only@example.com",
        untick=("https://www.googleapis.com/auth/calendar.readonly",),
    )

    empty = _freebusy(sb, token, ["primary"], timeMax="2030-03-01T00:00:00Z")
    refused = _freebusy(sb, events_only, ["primary"])

    assert empty.status_code == 400
    assert empty.json()["error"]["errors"][0]["reason"] == "timeRangeEmpty"
    assert refused.status_code == 403


# --- Channels and person acts ----------------------------------------------------------------------


def test_watch_honours_a_requested_expiration_and_caps_it(
    sb: Sandbox, token: dict[str, Any], receiver: Receiver
) -> None:
    now_ms = int(sb.app.sandbox.now() * 1000)
    body = {"type": "web_hook", "address": receiver.address}

    def watch(channel_id: str, **extra: Any) -> int:
        answer = _send(
            sb, token, "POST", "/calendars/primary/events/watch", {**body, "id": channel_id, **extra}
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["expiration"]) - now_ms

    hour, day = 3_600_000, 24 * 3_600_000
    soon = watch("a", expiration=now_ms + hour)
    far = watch("b", expiration=now_ms + 10**11)
    both = watch("c", expiration=now_ms + hour, params={"ttl": "60"})
    default = watch("d")

    assert soon == hour
    assert abs(far - 30 * day) < 5000
    assert abs(both - 60_000) < 5000
    assert abs(default - 7 * day) < 5000


def test_person_acts_push_and_show_up_in_the_next_sync(
    sb: Sandbox, token: dict[str, Any], receiver: Receiver
) -> None:
    """Given a watched calendar, when the person creates, moves and deletes in Google's UI, then each
    act pushes `exists` and the incremental sync reports the final state."""
    _, sync_token, _ = _full_sync(sb, token)
    _watch(sb, token, receiver.address)
    receiver.wait_for(1)

    made = _person(
        sb,
        "POST",
        "/calendars/primary/events",
        {"summary": "Dentist", "start": "2030-02-01T10:00:00Z", "end": "2030-02-01T11:00:00Z"},
    )
    moved = _person(sb, "PATCH", f"/calendars/primary/events/{made['id']}", {"shift_minutes": 90})
    other = _person(
        sb,
        "POST",
        "/calendars/primary/events",
        {"summary": "Gym", "start": "2030-02-02", "end": "2030-02-03"},
    )
    _person(sb, "DELETE", f"/calendars/primary/events/{other['id']}")
    got = receiver.wait_for(5)
    changes, _, _ = _full_sync(sb, token, syncToken=sync_token)

    assert [n["X-Goog-Resource-State"] for n in got] == ["sync", "exists", "exists", "exists", "exists"]
    numbers = [int(n["X-Goog-Message-Number"]) for n in got]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    assert all(n["X-Goog-Channel-Expiration"].endswith("GMT") for n in got)
    assert moved["start"]["dateTime"] == "2030-02-01T11:30:00+00:00" and moved["sequence"] == 1
    assert {e["id"]: e["status"] for e in changes} == {made["id"]: "confirmed", other["id"]: "cancelled"}
    assert {e["id"]: e for e in changes}[made["id"]]["etag"] == moved["etag"]


def test_person_can_edit_and_cancel_single_instances(sb: Sandbox, token: dict[str, Any]) -> None:
    series = _person(
        sb,
        "POST",
        "/calendars/primary/events",
        {**SERIES, "start": "2030-01-07T10:00:00-05:00", "end": "2030-01-07T10:30:00-05:00"},
    )
    first, second = f"{series['id']}_20300107T150000Z", f"{series['id']}_20300114T150000Z"

    edited = _person(
        sb, "PATCH", f"/calendars/primary/events/{first}", {"summary": "Moved 1:1", "shift_minutes": 30}
    )
    cancelled = _person(sb, "DELETE", f"/calendars/primary/events/{second}")
    truth = _person(sb, "GET", "/calendars/primary/events")

    assert series["start"]["timeZone"] == "America/New_York"
    assert edited["recurringEventId"] == series["id"] and edited["summary"] == "Moved 1:1"
    assert cancelled == {
        "kind": "calendar#event",
        "etag": cancelled["etag"],
        "id": second,
        "status": "cancelled",
        "recurringEventId": series["id"],
        "originalStartTime": {"dateTime": "2030-01-14T10:00:00-05:00", "timeZone": "America/New_York"},
    }
    assert {e["id"] for e in truth["events"]} >= {series["id"], first}
    assert second not in {e["id"] for e in truth["events"]}


def test_person_acts_refuse_read_only_calendars(sb: Sandbox, token: dict[str, Any]) -> None:
    answer = sb.http.post(
        sb.url("/_sandbox/google/calendars/en.usa%23holiday%40group.v.calendar.google.com/events"),
        json={"summary": "x", "start": "2030-01-01", "end": "2030-01-02"},
        timeout=5,
    )

    assert answer.status_code == 403


def test_the_index_page_documents_person_acts_and_switches(sb: Sandbox) -> None:
    page = sb.http.get(sb.url("/"), timeout=5).text

    for path in (
        "/_sandbox/google/calendars/&lt;calendar_id&gt;/events",
        "/_sandbox/google/calendars/&lt;calendar_id&gt;/events/&lt;event_id&gt;",
        "/_sandbox/google/sync_tokens/expire",
        "/_sandbox/google/calendars/&lt;calendar_id&gt;/seed",
        "/_sandbox/faults",
        "/google/calendar/v3/freeBusy",
    ):
        assert path in page
    assert "shift_minutes" in page and "probability" in page


# --- Faults ----------------------------------------------------------------------------------------


def test_rate_limit_switch_can_answer_403_on_calendar_calls_only(sb: Sandbox, token: dict[str, Any]) -> None:
    added = sb.http.post(
        sb.url("/_sandbox/faults"),
        json={
            "app": "google",
            "kind": "rate_limit",
            "status": 403,
            "retry_after": 5,
            "path": f"{API}/",
            "count": 1,
        },
        timeout=5,
    )
    userinfo = sb.http.get(
        sb.url("/google/userinfo"), headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
    )

    limited = _get(sb, token, "/calendars/primary/events")
    after = _get(sb, token, "/calendars/primary/events")

    assert added.status_code == 201
    assert userinfo.status_code == 200
    assert limited.status_code == 403 and limited.headers["Retry-After"] == "5"
    assert limited.json()["error"]["errors"][0] == {
        "domain": "usageLimits",
        "reason": "rateLimitExceeded",
        "message": "Rate Limit Exceeded",
    }
    assert after.status_code == 200


def test_server_errors_and_faults_hit_freebusy_and_watch_too(
    sb: Sandbox, token: dict[str, Any], receiver: Receiver
) -> None:
    sb.http.post(
        sb.url("/_sandbox/faults"),
        json={"app": "google", "kind": "server_error", "count": 2, "path": API},
        timeout=5,
    )

    failed_freebusy = _freebusy(sb, token, ["primary"])
    failed_watch = _watch(sb, token, receiver.address)
    ok = _freebusy(sb, token, ["primary"])

    assert failed_freebusy.status_code == failed_watch.status_code == 503
    assert failed_freebusy.json()["error"]["errors"][0]["reason"] == "backendError"
    assert ok.status_code == 200


def test_a_probability_fault_hits_only_some_calls(sb: Sandbox, token: dict[str, Any]) -> None:
    sb.http.post(
        sb.url("/_sandbox/faults"),
        json={"app": "google", "kind": "rate_limit", "count": 1000, "probability": 0.3, "path": API},
        timeout=5,
    )

    codes = [_get(sb, token, "/calendars/primary/events", maxResults=1).status_code for _ in range(60)]

    assert set(codes) == {200, 429}
    assert 3 <= codes.count(429) <= 40


# --- Scale -----------------------------------------------------------------------------------------


def test_a_large_calendar_syncs_in_pages_and_increments_stay_small(
    sb: Sandbox, token: dict[str, Any]
) -> None:
    seeded = _person(sb, "POST", "/calendars/primary/seed", {"count": 20000})
    items, sync_token, pages = _full_sync(sb, token, maxResults=2500)
    target = items[1234]
    _person(sb, "PATCH", f"/calendars/primary/events/{target['id']}", {"summary": "One change"})

    changes, _, change_pages = _full_sync(sb, token, syncToken=sync_token, maxResults=2500)

    assert seeded == {"created": 20000, "events": 20002}
    assert len(items) == len({e["id"] for e in items}) == 20002
    assert pages == 9
    assert change_pages == 1 and [(e["id"], e["summary"]) for e in changes] == [(target["id"], "One change")]
