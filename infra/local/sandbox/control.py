"""Control routes for tests and people: reset, faults, request log, clock, deliveries, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import icloud
from infra.local.sandbox.core import Route, Sandbox, json_response, read_json
from infra.local.sandbox.dialects import DIALECTS
from infra.local.sandbox.keys import APP_CREDENTIALS, GOOGLE_KEY_ID, ghl_signing_key, google_signing_key
from infra.local.sandbox.push import Delivery
from infra.local.sandbox.state import Fault, FaultKind

_ENDPOINTS = ("any", "token", "api")
# A token endpoint this slow broke rotating refresh tokens when token calls gave up at 10 s.
_SLOW_ANSWER_MS = 12_000


def reset(sb: Sandbox, request: Request) -> Response:
    """Forget every code, grant, token, fault, logged request, calendar change and delivery."""
    sb.state.reset()
    sb.pushes.clear()
    icloud.reset(sb)
    return json_response({"reset": True})


def faults(sb: Sandbox, request: Request) -> Response:
    """GET lists pending faults, DELETE clears them, POST adds one (or revokes grants at once).

    POST {"app", "kind", "count"=1, "retry_after"=1, "latency_ms"=0, "status", "endpoint"="any",
    "path"="", "probability"=1.0}. `kind`: rate_limit (429 with Retry-After, or 403 for Google's
    `rateLimitExceeded`, or 503 with Retry-After for Microsoft Graph),
    server_error (status 500-599, default 503), latency (waits latency_ms, then answers; longer than
    the caller's timeout is a time-out), slow_answer (does the call at once, then waits latency_ms,
    default 12000, before answering: a slow token endpoint that has already used the grant and rotated
    the refresh token, e.g. {"app": "ghl", "kind": "slow_answer", "endpoint": "token"}) or
    revoke_grants. `path` limits it to calls whose path starts with it (e.g. "/google/calendar/v3/");
    `probability` hits only that share of matching calls (a fault run); `count` is the number of hits
    in all.
    """
    if request.method == "GET":
        with sb.state.lock:
            return json_response({"faults": [f.public() for f in sb.state.faults]})
    if request.method == "DELETE":
        with sb.state.lock:
            sb.state.faults.clear()
        return json_response({"faults": []})
    body = read_json(request)
    if body is None:
        return json_response({"error": "a JSON object is required"}, 400)
    app = body.get("app")
    if app not in DIALECTS:
        return json_response({"error": f"app must be one of {sorted(DIALECTS)}"}, 400)
    try:
        kind = FaultKind(str(body.get("kind")))
        count = int(body.get("count", 1))
        retry_after = int(body.get("retry_after", 1))
        latency_ms = int(body.get("latency_ms", _SLOW_ANSWER_MS if kind is FaultKind.SLOW_ANSWER else 0))
        status = int(body.get("status", 429 if kind is FaultKind.RATE_LIMIT else 503))
        probability = float(body.get("probability", 1.0))
    except (TypeError, ValueError):
        return json_response(
            {"error": f"kind must be one of {[k.value for k in FaultKind]}; numbers must be numbers"}, 400
        )
    endpoint = body.get("endpoint", "any")
    path = body.get("path", "")
    status_ok = status in (403, 429, 503) if kind is FaultKind.RATE_LIMIT else 500 <= status <= 599
    if (
        count < 1
        or retry_after < 0
        or latency_ms < 0
        or not status_ok
        or endpoint not in _ENDPOINTS
        or not isinstance(path, str)
        or not 0 < probability <= 1
    ):
        return json_response(
            {
                "error": "count >= 1, retry_after >= 0, latency_ms >= 0, "
                "status 403, 429 or 503 for rate_limit and 500-599 for server_error, "
                f"endpoint in {_ENDPOINTS}, path a string, 0 < probability <= 1"
            },
            400,
        )
    if kind is FaultKind.REVOKE_GRANTS:
        # The user removed the app at the provider: every grant dies now.
        with sb.state.lock:
            revoked = sb.state.oauth.revoke_app(app)
        return json_response({"revoked": revoked})
    fault = Fault(
        app=app,
        kind=kind,
        remaining=count,
        retry_after=retry_after,
        latency_ms=latency_ms,
        status=status,
        endpoint=endpoint,
        path=path,
        probability=probability,
    )
    with sb.state.lock:
        sb.state.faults.append(fault)
    return json_response(fault.public(), status=201)


def requests_log(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/requests?app=&kind=&route=&grant_type=: the calls received, secrets redacted."""
    args = request.args
    with sb.state.lock:
        entries = [e.public() for e in sb.state.log]
    for name in ("app", "kind", "route", "grant_type", "method"):
        if args.get(name):
            entries = [e for e in entries if e.get(name) == args[name]]
    return json_response({"requests": entries})


def clock(sb: Sandbox, request: Request) -> Response:
    """GET the sandbox time; POST {"advance": seconds} moves it forward (tokens and codes expire)."""
    if request.method == "POST":
        body = read_json(request) or {}
        try:
            advance = float(body.get("advance", 0))
        except (TypeError, ValueError):
            return json_response({"error": "advance must be a number of seconds"}, 400)
        with sb.state.lock:
            sb.state.time_offset += advance
    return json_response({"now": sb.now(), "offset": sb.state.time_offset})


def pushes(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/pushes?label=&wait=1: deliveries made (wait=1 lets queued ones finish first)."""
    if request.args.get("wait") in ("1", "true"):
        sb.pushes.wait_idle(timeout=sb.config.push_timeout + 2)
    items = [d.public() for d in sb.pushes.history()]
    label = request.args.get("label")
    if label:
        items = [d for d in items if d["label"] == label]
    return json_response({"deliveries": items})


def slack_messages(sb: Sandbox, request: Request) -> Response:
    """GET /_sandbox/slack/messages[?channel=]: what was posted to Slack channels, oldest first."""
    channel = request.args.get("channel")
    with sb.state.lock:
        messages = list(sb.state.extensions.get("slack_messages", []))
    return json_response({"messages": [m for m in messages if channel in (None, m["channel"])]})


# --- Signed webhook deliveries, as each provider signs them ----------------------------------------


def sign_delivery(sb: Sandbox, provider: str, url: str, body: bytes) -> dict[str, str]:
    now = sb.now()
    if provider == "ghl":
        return {"X-GHL-Signature": base64.b64encode(ghl_signing_key().sign(body)).decode()}
    if provider == "hubspot":
        timestamp = str(int(now * 1000))
        source = b"POST" + url.encode() + body + timestamp.encode()
        secret = APP_CREDENTIALS["hubspot"]["client_secret"].encode()
        signature = base64.b64encode(hmac.new(secret, source, hashlib.sha256).digest()).decode()
        return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}
    if provider == "calendly":
        t = str(int(now))
        key = APP_CREDENTIALS["calendly"]["webhook_signing_key"].encode()
        signature = hmac.new(key, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"Calendly-Webhook-Signature": f"t={t},v1={signature}"}
    if provider == "slack":
        ts = str(int(now))
        secret = APP_CREDENTIALS["slack"]["signing_secret"].encode()
        signature = hmac.new(secret, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Signature": f"v0={signature}", "X-Slack-Request-Timestamp": ts}
    if provider == "gmail":
        return {"Authorization": f"Bearer {pubsub_jwt(now)}"}
    return {}


def pubsub_jwt(now: float, audience: str | None = None) -> str:
    """The OIDC token Pub/Sub puts on an authenticated push (RS256, Google issuer)."""
    import jwt

    creds = APP_CREDENTIALS["pubsub"]
    claims = {
        "aud": audience or creds["audience"],
        "azp": "1" + "0" * 20,
        "email": creds["service_account_email"],
        "email_verified": True,
        "sub": "1" + "0" * 20,
        "iss": creds["issuer"],
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    return jwt.encode(claims, google_signing_key(), algorithm="RS256", headers={"kid": GOOGLE_KEY_ID})


def _gmail_envelope(payload: Any, now: float) -> Any:
    data = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    return {
        "message": {
            "data": data,
            "messageId": str(secrets.randbelow(10**16)),
            "message_id": str(secrets.randbelow(10**16)),
            "publishTime": f"{now:.0f}",
            "attributes": {},
        },
        "subscription": "projects/sandbox-project/subscriptions/gmail-push",
    }


def webhook(sb: Sandbox, request: Request, provider: str) -> Response:
    """POST /_sandbox/webhooks/<provider> {"payload": …, "tamper": false}: sign, deliver, report.

    Signed as the provider signs; sent to the gateway's `/webhooks/<provider>` (or
    `SandboxConfig.webhook_urls`), loopback only.
    """
    body = read_json(request)
    if body is None or "payload" not in body:
        return json_response({"error": 'a JSON object with "payload" is required'}, 400)
    payload = body["payload"]
    if provider == "gmail":
        payload = _gmail_envelope(payload, sb.now())
    raw = json.dumps(payload, separators=(",", ":")).encode()
    url = str(body.get("url") or sb.config.webhook_url(provider))
    headers = {"Content-Type": "application/json", **sign_delivery(sb, provider, url, raw)}
    if body.get("tamper"):
        # Flip one byte of the signed body after signing: the receiver must refuse it.
        raw = raw[:-2] + bytes([raw[-2] ^ 0x01]) + raw[-1:]
    delivery = sb.pushes.submit(Delivery(url=url, headers=headers, body=raw, label=f"{provider}:webhook"))
    delivery.done.wait(sb.config.push_timeout + 1)
    return json_response(
        {
            "status": delivery.status,
            "error": delivery.error,
            "body": delivery.response_body,
            "headers": headers,
        }
    )


def routes() -> list[Route]:
    return [
        Route("/_sandbox/reset", ("POST",), reset, "control", None),
        Route("/_sandbox/faults", ("GET", "POST", "DELETE"), faults, "control", None),
        Route("/_sandbox/requests", ("GET",), requests_log, "control", None),
        Route("/_sandbox/clock", ("GET", "POST"), clock, "control", None),
        Route("/_sandbox/pushes", ("GET",), pushes, "control", None),
        Route("/_sandbox/slack/messages", ("GET",), slack_messages, "control", None),
        Route("/_sandbox/webhooks/<provider>", ("POST",), webhook, "control", None),
    ]
