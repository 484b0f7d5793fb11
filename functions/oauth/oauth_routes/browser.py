"""The browser's half of the round trip: authorize (sets the binding cookie) and callback.

Both answer a 302 or a minimal page, never JSON, and never cacheable or leaking a Referer
(RFC 9700 §4.2.4). Query values are read from the raw query string, first occurrence only:
API Gateway joins repeated parameters with commas, which would blur a `state`.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from integrations.oauth.service import (
    BrowserAnswer,
    ConfirmPage,
    CookieSpec,
    Navigation,
    Redirect,
    confirm_cookie_name,
)
from oauth_routes.context import oauth

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


_LOCATION: dict[str, OpenAPIResponseHeader] = {
    "Location": {"description": "Where the browser goes next", "schema": {"type": "string"}}
}
_ERROR_PAGE: OpenAPIResponse = {
    "description": "The round trip cannot go on: a minimal page naming the reason and its code",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


@router.get(
    "/oauth/<provider>/authorize",
    summary="Browser: go to the provider",
    responses={
        302: {
            "description": "To the provider's consent screen (sets the binding cookie)",
            "headers": _LOCATION,
        },
        200: {
            "description": "A link not opened from the portal (Fetch Metadata `Sec-Fetch-Site: none` or "
            "`cross-site` without a Referer from an allowed portal origin): a confirmation page naming the "
            "provider, the tenant and who started the connection, whose Continue link repeats this route "
            "with `confirm` (and sets the cookie that must come back with it). Nothing is bound until then.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        400: _ERROR_PAGE,
    },
    tags=["oauth"],
)
def authorize(
    provider: str,
    # Documented here, read below from the raw query string (first occurrence only, see the module).
    session: Annotated[
        str | None,
        Query(description="The OAuth session from start's `redirect_url`; without it: the 400 page."),
    ] = None,
    confirm: Annotated[
        str | None,
        Query(
            description="The confirmation page's single-use token (its Continue link sets it); valid only "
            "with the cookie the page set in the same browser, else the page is shown again."
        ),
    ] = None,
) -> Response[str]:
    query = _query()
    headers = router.current_event.headers or {}
    navigation = Navigation(
        sec_fetch_site=headers.get("sec-fetch-site"),
        referer=headers.get("referer"),
        confirm=query.get("confirm"),
        confirm_cookie=_cookies().get(confirm_cookie_name(provider)),
    )
    return _answer(oauth().authorize(provider, query.get("session"), navigation))


@router.get(
    "/oauth/<provider>/callback",
    summary="Browser: back from the provider",
    responses={
        302: {
            "description": "Back to the portal's return_to page, with `integration`, `result` (and `code`) "
            "in its query",
            "headers": _LOCATION,
        },
        400: _ERROR_PAGE,
    },
    tags=["oauth"],
)
def callback(provider: str) -> Response[str]:
    return _answer(oauth().callback(provider, _query(), _cookies()))


def _query() -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in parse_qsl(router.current_event.raw_query_string or "", keep_blank_values=True):
        values.setdefault(key, value)
    return values


def _cookies() -> dict[str, str]:
    jar: dict[str, str] = {}
    for entry in router.current_event.cookies or []:
        name, _, value = entry.strip().partition("=")
        jar.setdefault(name.strip(), value.strip())
    return jar


# The confirmation page: nothing external, no scripts, never framed, never cached, no Referer out.
_CONFIRM_HEADERS = {
    **_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


def _confirm_page(answer: ConfirmPage) -> str:
    e = html.escape
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Connect {e(answer.provider_name)}?</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}"
        "a.button{display:inline-block;padding:.6rem 1.2rem;background:#1a56db;color:#fff;"
        "text-decoration:none;border-radius:.3rem}</style></head><body><main>"
        f"<h1>Connect {e(answer.provider_name)}?</h1>"
        f'<p>This link connects <strong id="provider">{e(answer.provider_name)}</strong> for '
        f'<strong id="tenant">{e(answer.tenant)}</strong>. It was started by '
        f'<strong id="requested-by">{e(answer.requested_by)}</strong>.</p>'
        "<p>Continue only if you expected this. If someone sent you this link, the account you sign in "
        "with next would be connected to their workspace.</p>"
        f'<p><a class="button" id="continue" href="{e(answer.confirm_url)}">Continue to '
        f"{e(answer.provider_name)}</a></p>"
        "<p>Otherwise close this page; nothing has been connected.</p></main></body></html>"
    )


def _answer(answer: BrowserAnswer) -> Response[str]:
    cookies = [_cookie(c) for c in answer.cookies]
    if isinstance(answer, ConfirmPage):
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=_confirm_page(answer),
            headers=dict(_CONFIRM_HEADERS),
            cookies=cookies,
        )
    if isinstance(answer, Redirect):
        return Response(
            status_code=302, body="", headers={**_HEADERS, "Location": answer.location}, cookies=cookies
        )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Connection not completed</title>'
        "</head><body><h1>Connection not completed</h1>"
        f"<p>{html.escape(answer.message)}</p><p><code>{html.escape(answer.code)}</code></p></body></html>"
    )
    headers = {**_HEADERS, "Content-Security-Policy": "default-src 'none'"}
    return Response(
        status_code=answer.status,
        content_type="text/html; charset=utf-8",
        body=page,
        headers=headers,
        cookies=cookies,
    )


def _cookie(spec: CookieSpec) -> Cookie:
    return Cookie(
        name=spec.name,
        value=spec.value,
        path=spec.path,
        secure=spec.secure,
        http_only=True,
        max_age=spec.max_age,
        same_site=SameSite.LAX_MODE,
    )
