"""Slack's channel state and rate limits in the sandbox, and the routes that act as the workspace.

Channels start as apis._SLACK_CHANNELS says (the bot is a member of #general and #call-alerts); a
person can remove the app from a channel, invite it back, archive or unarchive a channel, and set how
fast `chat.postMessage` may post per channel (Slack's special tier: about one message per second per
channel, short bursts allowed; over it, HTTP 429 with `Retry-After`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.core import Route, Sandbox, json_response, read_json


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class SlackState:
    # (team, channel id) -> the bot's membership / the channel's archived flag, where a person changed it.
    members: dict[tuple[str, str], bool] = field(default_factory=dict)
    archived: dict[tuple[str, str], bool] = field(default_factory=dict)
    # method -> (burst, per second)
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: {"chat.postMessage": (10.0, 1.0)})
    buckets: dict[tuple[str, str, str], Bucket] = field(default_factory=dict)
    limited: int = 0


def state_of(sb: Sandbox) -> SlackState:
    """The Slack state (callers hold the state lock)."""
    found = sb.state.extensions.get("slack")
    if not isinstance(found, SlackState):
        found = SlackState()
        sb.state.extensions["slack"] = found
    return found


def overlay(sb: Sandbox, team: str, channel: dict[str, Any]) -> dict[str, Any]:
    """A channel with the membership and archived flags a person set."""
    state = state_of(sb)
    key = (team, str(channel["id"]))
    return {
        **channel,
        "is_member": state.members.get(key, channel["is_member"]),
        "is_archived": state.archived.get(key, channel["is_archived"]),
    }


def retry_after(sb: Sandbox, team: str, method: str, channel: str) -> int | None:
    """Take one call from the method's per-channel bucket; the seconds to wait when it is empty."""
    state = state_of(sb)
    limit = state.limits.get(method)
    if limit is None:
        return None
    burst, rate = limit
    now = sb.now()
    bucket = state.buckets.setdefault((team, method, channel), Bucket(tokens=burst, at=now))
    bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
    bucket.at = now
    if bucket.tokens >= 1:
        bucket.tokens -= 1
        return None
    state.limited += 1
    return max(1, math.ceil((1 - bucket.tokens) / rate))


def _find(sb: Sandbox, team: str, channel: str) -> tuple[str, str] | Response:
    from infra.local.sandbox.apis import slack_channels

    match = next((c for c in slack_channels(team) if channel in (c["id"], c["name"], "#" + c["name"])), None)
    if match is None:
        return json_response({"error": "no such channel"}, 404)
    return team, str(match["id"])


def control_membership(sb: Sandbox, request: Request, channel: str) -> Response:
    """POST /_sandbox/slack/channels/{channel}/membership {team, member}: invite the app to the channel
    (`member: true`) or remove it (`false`), as a workspace member would."""
    body = read_json(request) or {}
    with sb.state.lock:
        found = _find(sb, str(body.get("team") or ""), channel)
        if isinstance(found, Response):
            return found
        state_of(sb).members[found] = bool(body.get("member"))
    return json_response({"channel": found[1], "member": bool(body.get("member"))})


def control_archive(sb: Sandbox, request: Request, channel: str) -> Response:
    """POST /_sandbox/slack/channels/{channel}/archive {team, archived}: archive or unarchive a channel."""
    body = read_json(request) or {}
    with sb.state.lock:
        found = _find(sb, str(body.get("team") or ""), channel)
        if isinstance(found, Response):
            return found
        state_of(sb).archived[found] = bool(body.get("archived", True))
    return json_response({"channel": found[1], "archived": bool(body.get("archived", True))})


def control_rate_limits(sb: Sandbox, request: Request) -> Response:
    """GET the per-channel limits and how many calls were refused; POST {method, burst, per_second}
    sets one (default chat.postMessage: burst 10, 1 per second per channel; 429 + Retry-After)."""
    with sb.state.lock:
        state = state_of(sb)
        if request.method == "POST":
            body = read_json(request) or {}
            method = str(body.get("method") or "chat.postMessage")
            state.limits[method] = (float(body.get("burst", 10)), float(body.get("per_second", 1)))
            state.buckets.clear()
        return json_response(
            {
                "limits": {m: {"burst": b, "per_second": r} for m, (b, r) in state.limits.items()},
                "limited": state.limited,
            }
        )


def routes() -> list[Route]:
    return [
        Route(
            "/_sandbox/slack/channels/<channel>/membership", ("POST",), control_membership, "control", None
        ),
        Route("/_sandbox/slack/channels/<channel>/archive", ("POST",), control_archive, "control", None),
        Route("/_sandbox/slack/rate_limits", ("GET", "POST"), control_rate_limits, "control", None),
    ]
