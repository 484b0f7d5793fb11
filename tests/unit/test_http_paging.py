"""One paging driver walks every provider's lists, as the catalog's `paging` entry describes them."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from pydantic import ValidationError

from integrations import http
from integrations.catalog import load_catalog
from integrations.catalog.model import Paging


class FakeProvider:
    """Answers pages from a script and records what each request asked for."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[tuple[str, dict[str, Any] | None]] = []

    def __call__(self, url: str, params: dict[str, Any] | None) -> Any:
        self.requests.append((url, None if params is None else dict(params)))
        return self.pages[min(len(self.requests), len(self.pages)) - 1]


def paging(provider: str) -> Paging:
    found = load_catalog(overrides_path="").get(provider).paging
    assert found is not None
    return found


def test_cursor_paging_sends_the_token_back_in_its_parameter_until_the_last_page() -> None:
    provider = FakeProvider(
        [
            {"items": [{"id": "a"}], "nextPageToken": "t1"},
            {"items": [{"id": "b"}], "nextPageToken": "t2"},
            {"items": [{"id": "c"}]},
        ]
    )
    found = list(
        http.paginate(paging("google_calendar"), "https://g/list", params={"x": "1"}, fetch=provider)
    )
    assert [item["id"] for item in found] == ["a", "b", "c"]
    assert provider.requests == [
        ("https://g/list", {"x": "1", "maxResults": 250}),
        ("https://g/list", {"x": "1", "maxResults": 250, "pageToken": "t1"}),
        ("https://g/list", {"x": "1", "maxResults": 250, "pageToken": "t2"}),
    ]


def test_cursor_paging_reads_a_nested_token() -> None:
    provider = FakeProvider(
        [
            {"results": [{"id": "1"}], "paging": {"next": {"after": "50"}}},
            {"results": [{"id": "2"}], "paging": {}},
        ]
    )
    found = list(http.paginate(paging("hubspot"), "https://h/pipelines", fetch=provider))
    assert [item["id"] for item in found] == ["1", "2"]
    assert provider.requests[1] == ("https://h/pipelines", {"after": "50"})


def test_link_paging_follows_the_complete_url_without_adding_parameters() -> None:
    provider = FakeProvider(
        [
            {"collection": [{"uri": "u1"}], "pagination": {"next_page": "https://c/event_types?page=2"}},
            {"collection": [{"uri": "u2"}], "pagination": {"next_page": None}},
        ]
    )
    found = list(
        http.paginate(paging("calendly"), "https://c/event_types", params={"user": "me"}, fetch=provider)
    )
    assert [item["uri"] for item in found] == ["u1", "u2"]
    assert provider.requests == [
        ("https://c/event_types", {"user": "me", "count": 100}),
        ("https://c/event_types?page=2", None),
    ]


def test_link_paging_reads_a_key_that_contains_a_dot() -> None:
    provider = FakeProvider(
        [
            {"value": [{"id": "cal1"}], "@odata.nextLink": "https://graph/me/calendars?$skip=1"},
            {"value": [{"id": "cal2"}]},
        ]
    )
    found = list(http.paginate(paging("outlook_calendar"), "https://graph/me/calendars", fetch=provider))
    assert [item["id"] for item in found] == ["cal1", "cal2"]
    assert [url for url, _ in provider.requests] == [
        "https://graph/me/calendars",
        "https://graph/me/calendars?$skip=1",
    ]


def test_a_call_names_its_own_items_when_the_catalog_has_none() -> None:
    provider = FakeProvider(
        [
            {"ok": True, "channels": [{"id": "C1"}], "response_metadata": {"next_cursor": "dXNlcjo"}},
            {"ok": True, "channels": [{"id": "C2"}], "response_metadata": {"next_cursor": ""}},
        ]
    )
    slack = paging("slack")
    assert slack.items is None
    with pytest.raises(ValueError, match="items"):
        list(http.paginate(slack, "https://s/conversations.list", fetch=provider))
    found = list(http.paginate(slack, "https://s/conversations.list", items="/channels", fetch=provider))
    assert [item["id"] for item in found] == ["C1", "C2"]
    assert provider.requests[-1][1] == {"limit": 200, "cursor": "dXNlcjo"}


def test_a_provider_that_repeats_its_token_is_not_asked_again() -> None:
    provider = FakeProvider([{"items": [{"id": "same"}], "nextPageToken": "stuck"}])
    found = list(http.paginate(paging("google_calendar"), "https://g/list", fetch=provider))
    # The first page, then the page the token names; the repeated token ends the walk.
    assert len(provider.requests) == 2
    assert [item["id"] for item in found] == ["same", "same"]


def test_a_link_that_points_back_is_not_followed_again() -> None:
    provider = FakeProvider(
        [
            {"value": [{"id": "1"}], "@odata.nextLink": "https://graph/p2"},
            {"value": [{"id": "2"}], "@odata.nextLink": "https://graph/p2"},
        ]
    )
    list(http.paginate(paging("outlook_calendar"), "https://graph/p1", fetch=provider))
    assert [url for url, _ in provider.requests] == ["https://graph/p1", "https://graph/p2"]


def test_paging_stops_at_the_page_bound_whatever_the_provider_says() -> None:
    pages = [{"items": [{"id": str(n)}], "nextPageToken": f"t{n}"} for n in range(50)]
    provider = FakeProvider(pages)
    bounded = paging("google_calendar").model_copy(update={"max_pages": 3})
    found = list(http.paginate(bounded, "https://g/list", fetch=provider))
    assert len(provider.requests) == 3
    assert [item["id"] for item in found] == ["0", "1", "2"]
    assert paging("google_calendar").max_pages == 20


def test_items_that_are_not_objects_and_pages_that_are_not_lists_are_skipped() -> None:
    provider = FakeProvider([{"items": ["text", {"id": "ok"}, None]}])
    found = list(http.paginate(paging("google_calendar"), "https://g/list", fetch=provider))
    assert found == [{"id": "ok"}]
    assert list(http.paginate(paging("google_calendar"), "https://g/list", fetch=FakeProvider([{}]))) == []


@responses.activate
def test_pages_are_fetched_with_get_and_the_bearer_token_by_default() -> None:
    responses.get("https://graph.test/me/calendars", json={"value": [{"id": "a"}]})
    found = list(
        http.paginate(paging("outlook_calendar"), "https://graph.test/me/calendars", access_token="tok")
    )
    assert found == [{"id": "a"}]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"


def test_json_pointer_reads_escaped_keys_and_list_indexes() -> None:
    document = {"a/b": {"m~n": [10, 20]}, "@odata.nextLink": "x"}
    assert http.pointer(document, "/a~1b/m~0n/1") == 20
    assert http.pointer(document, "/@odata.nextLink") == "x"
    assert http.pointer(document, "/a~1b/m~0n/7") is None
    assert http.pointer(document, "/missing/deeper") is None


def test_the_catalog_rejects_paging_it_could_not_drive() -> None:
    with pytest.raises(ValidationError, match="token_param"):
        Paging.model_validate({"style": "cursor", "next": "/next"})
    with pytest.raises(ValidationError, match="token_param"):
        Paging.model_validate({"style": "link", "next": "/next", "token_param": "page"})
    with pytest.raises(ValidationError, match="page_size"):
        Paging.model_validate({"style": "link", "next": "/next", "page_size_param": "count"})
    with pytest.raises(ValidationError, match="pattern"):
        Paging.model_validate({"style": "link", "next": "pagination.next_page"})
