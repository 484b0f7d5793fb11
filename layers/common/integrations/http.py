"""One HTTP policy for every provider call: timeouts, a User-Agent, safe retries, typed rate limits,
and one paging driver for list endpoints, driven by the catalog's `paging` description.

Retries happen only for idempotent methods and only on connection failures and 502/503/504. A POST
is never retried here: a token request whose answer was lost may already have rotated the refresh
token, so the caller re-reads its state before deciding anything (reliability.md B1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from integrations.domain.errors import ProviderUnavailable, ReauthRequired

if TYPE_CHECKING:
    from integrations.catalog.model import Paging

USER_AGENT = "integrations-service/0.1"
# (connect, read) seconds: every token call fits well inside a refresh lease and a Lambda timeout.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
# Token calls wait longer: a token endpoint can take over 10 s, and giving up on a refresh the provider
# went on to process loses a rotating refresh token. 3 + 20 s fits the 29 s Lambda timeout and
# API Gateway's 30 s (the callback's exchange), and stays inside the refresh lease (oauth.tokens).
TOKEN_TIMEOUT: tuple[float, float] = (3.05, 20.0)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class RateLimited(ProviderUnavailable):
    """The provider answered 429; `retry_after` (seconds) says when to try again, if it said."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, details={"retry_after": retry_after} if retry_after is not None else None)
        self.retry_after = retry_after


class PolicySession(requests.Session):
    """A requests Session whose calls get the default timeout unless they name one."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def new_session() -> PolicySession:
    """A fresh session with the policy (tests and threads that want their own pool)."""
    session = PolicySession()
    retry = Retry(
        total=2,
        connect=2,
        read=0,  # a read timeout may mean the request was processed: never replay it blindly
        status=2,
        status_forcelist=(502, 503, 504),
        allowed_methods=_IDEMPOTENT,
        backoff_factor=0.2,
        backoff_jitter=0.2,
        respect_retry_after_header=False,  # 429 is surfaced to the caller as RateLimited
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=20)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


_local = threading.local()


def session() -> PolicySession:
    """The calling thread's shared session (requests Sessions are not guaranteed thread-safe)."""
    current: PolicySession | None = getattr(_local, "session", None)
    if current is None:
        current = new_session()
        _local.session = current
    return current


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def check_rate_limit(response: requests.Response) -> None:
    """Raise RateLimited for a 429 answer."""
    if response.status_code == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited("The provider is rate limiting requests.", retry_after=retry_after)


def get_json(response: requests.Response) -> Any:
    """The JSON body, or None when there is none or it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def api_call(
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
) -> Any:
    """Call a provider API and return its JSON; 429 → RateLimited, 5xx/network → ProviderUnavailable.

    401 / 403 → AccessRefused (the domain's ReauthRequired). Other 4xx answers raise
    ProviderApiError with the status, never the request or token.
    """
    all_headers = dict(headers or {})
    if access_token:
        all_headers["Authorization"] = f"Bearer {access_token}"
    try:
        response = session().request(method, url, headers=all_headers, params=params, json=json, data=data)
    except requests.RequestException as exc:
        # Only the exception's class: its text can include the URL and parameters.
        raise ProviderUnavailable(f"The provider did not answer ({type(exc).__name__}).") from None
    check_rate_limit(response)
    if response.status_code == 503 and response.headers.get("Retry-After"):
        # Graph (and HTTP itself, RFC 9110 §10.2.3) says when to come back on a 503 too: wait that long.
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited("The provider is temporarily unavailable.", retry_after=retry_after)
    if response.status_code >= 500:
        raise ProviderUnavailable(f"The provider failed with HTTP {response.status_code}.")
    if response.status_code >= 400:
        error = refusal(response.status_code, get_json(response))
        if isinstance(error, RateLimited) and error.retry_after is None:
            # Google's 403 rateLimitExceeded carries Retry-After like a 429 does.
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise error
    return get_json(response)


def refusal(status: int, body: Any) -> Exception:
    """The error for a 4xx answer: the token refused (401/403) is a reauth, anything else ProviderApiError."""
    if status == 403 and _usage_limited(body):
        # Google answers some rate limits with 403 `usageLimits`: wait, the grant is fine.
        return RateLimited("The provider is rate limiting requests.")
    if status in (401, 403):
        return AccessRefused(status, _error_name(body))
    return ProviderApiError(status, body)


class AccessRefused(ReauthRequired):
    """The provider refused the connection's token (401 / 403): its owner must connect it again."""

    def __init__(self, provider_status: int, error: str = "") -> None:
        super().__init__(
            "The provider no longer accepts this connection's authorization; connect it again.",
            details={"provider_status": provider_status, **({"provider_error": error} if error else {})},
        )
        self.provider_status = provider_status
        self.error = error


class ProviderApiError(Exception):
    """A provider API refused a call (4xx other than 429). Carries the status and a safe summary."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.error = _error_name(body)
        # Google-style `error.errors[].reason` values (rateLimitExceeded, fullSyncRequired…): short names.
        self.reasons = _reasons(body)
        super().__init__(
            f"The provider refused the request (HTTP {status}{', ' + self.error if self.error else ''})."
        )

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


_USAGE_LIMITS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


def _usage_limited(body: Any) -> bool:
    """Google's error body names a usage limit (`error.errors[].reason` / domain `usageLimits`)."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("errors") if isinstance(error, dict) else None
    return isinstance(details, list) and any(
        isinstance(d, dict) and (d.get("reason") in _USAGE_LIMITS or d.get("domain") == "usageLimits")
        for d in details
    )


def _error_name(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error", "status", "code"):
            value = body.get(key)
            if isinstance(value, str) and len(value) <= 80:
                return value
            if isinstance(value, dict) and isinstance(value.get("code"), str):
                return str(value["code"])[:80]
    return ""


def _reasons(body: Any) -> tuple[str, ...]:
    error = body.get("error") if isinstance(body, dict) else None
    items = error.get("errors") if isinstance(error, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple(
        str(item["reason"])[:80]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("reason"), str)
    )


# Fetches one page: (url, params) -> the decoded answer. params is None when the URL carries its query.
PageFetch = Callable[[str, dict[str, Any] | None], Any]


def paginate(
    paging: Paging,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    items: str | None = None,
    access_token: str | None = None,
    headers: dict[str, str] | None = None,
    fetch: PageFetch | None = None,
) -> Iterator[dict[str, Any]]:
    """Every item of a paged list, page after page, at most `paging.max_pages` pages.

    Pages are fetched with GET through `api_call` unless `fetch` says otherwise (Slack's Web API
    takes POSTed forms). It stops on the last page, at the page bound, and when the provider hands
    back a token or link it already gave (a provider bug would otherwise loop until the bound).
    """
    from integrations.catalog.model import PagingStyle

    items_at = items or paging.items
    if items_at is None:
        raise ValueError("paginate needs the items pointer: the catalog's paging.items or `items`")
    get = fetch or _bearer_get(access_token, headers)
    query: dict[str, Any] | None = dict(params or {})
    if paging.page_size_param and paging.page_size and query is not None:
        query.setdefault(paging.page_size_param, paging.page_size)
    seen: set[str] = set()
    for _ in range(paging.max_pages):
        page = get(url, query)
        found = pointer(page, items_at)
        for item in found if isinstance(found, list) else []:
            if isinstance(item, dict):
                yield item
        marker = pointer(page, paging.next)
        if not isinstance(marker, str) or not marker or marker in seen:
            return
        seen.add(marker)
        if paging.style is PagingStyle.LINK:
            # The link is complete: it carries the query (page size included) itself.
            url, query = marker, None
        else:
            assert paging.token_param is not None  # the catalog model checks it
            query = {**(query or {}), paging.token_param: marker}


def pointer(document: Any, path: str) -> Any:
    """The value at a JSON Pointer (RFC 6901) in a decoded JSON document, or None when absent."""
    value = document
    for raw in path.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _bearer_get(access_token: str | None, headers: dict[str, str] | None) -> PageFetch:
    def get(url: str, params: dict[str, Any] | None) -> Any:
        return api_call("GET", url, access_token=access_token, headers=headers, params=params)

    return get
