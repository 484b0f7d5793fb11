"""Slack: the connection's waiting notifications posted to its channel, oldest first, with Block Kit.

`chat.postMessage` through slack_sdk's WebClient with its rate-limit retry handler (a 429 waits the
method's Retry-After and tries again). Failures in the engine's words: a channel the bot cannot post in
(`channel_not_found`, `not_in_channel`, `is_archived`) is `config_required` naming the channel, and the
messages wait in the outbox until it is fixed (up to the outbox's retention); a dead token
(`token_revoked`, `invalid_auth`, `account_inactive`…) is `reauth_required`; a 429 left after the
retries defers the job by Retry-After.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.domain.errors import ProviderUnavailable
from integrations.providers.slack.messages import Message, message_for, trial_message
from integrations.sync.errors import ConfigRequired

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.sync.steps import StepContext

# The platform's events a channel is told about: always, or when the config's switch says so.
ALWAYS = frozenset({"Call Completed"})
BY_CHOICE = {"Booking Created": "notify_bookings", "Integration Errored": "notify_errors"}
CHANNEL_FIELD = "channel_id"
CHANNEL_GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
TOKEN_DEAD = frozenset(
    {"token_revoked", "token_expired", "invalid_auth", "not_authed", "account_inactive", "app_uninstalled"}
)
# 429s retried inside one call (each waits Retry-After); what is left defers the job.
RATE_LIMIT_RETRIES = 8
# Leave this much of the invocation for settling after the last post.
SAFETY_MARGIN_MS = 10_000
PAGE = 50


def client(spec: ProviderSpec, access_token: str) -> WebClient:
    """A WebClient on the catalog's API base, retrying rate-limited calls after Retry-After."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry import RateLimitErrorRetryHandler

    made = WebClient(token=access_token, base_url=(spec.api_base_url or "").rstrip("/") + "/", timeout=10)
    made.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
    return made


def _channel_label(web: WebClient, channel: str) -> str:
    """`#name` when Slack still tells it, else the id."""
    from slack_sdk.errors import SlackApiError

    try:
        info = web.conversations_info(channel=channel)
    except SlackApiError:
        return channel
    found = info.get("channel")
    name = found.get("name") if isinstance(found, dict) else None
    return f"#{name}" if name else channel


def post(web: WebClient, channel: str, message: Message) -> None:
    """chat.postMessage; Slack's refusals raised in the engine's words."""
    from slack_sdk.errors import SlackApiError

    text, blocks = message
    try:
        web.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
    except SlackApiError as error:
        raise _translated(web, channel, error) from None


def _translated(web: WebClient, channel: str, error: Any) -> Exception:
    response = error.response
    code = str(response.get("error") or "")
    if response.status_code == 429:
        retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        return http.RateLimited(
            "Slack is rate limiting messages.", retry_after=float(retry_after) if retry_after else None
        )
    if code in TOKEN_DEAD:
        return http.AccessRefused(200, code)
    if code in CHANNEL_GONE:
        label = _channel_label(web, channel)
        why = {
            "channel_not_found": "cannot be found (deleted, or private without the app)",
            "not_in_channel": "does not have the app as a member",
            "is_archived": "is archived",
        }[code]
        return ConfigRequired(
            f"The Slack channel {label} {why}: invite the app or choose another channel. "
            "Messages wait until then."
        )
    if response.status_code >= 500:
        return ProviderUnavailable(f"Slack answered {response.status_code}.")
    return http.ProviderApiError(response.status_code, {"error": code})


def channel_of(connection: Connection) -> str:
    channel = connection.config.get(CHANNEL_FIELD)
    if not isinstance(channel, str) or not channel:
        raise ConfigRequired("Choose the Slack channel notifications are posted to.")
    return channel


class SlackNotifications:
    """The provider step (`STEP`): deliver the outbox in order, one connection at a time."""

    exclusive = True

    def notifies(self, connection: Connection, detail_type: str) -> bool:
        """Whether this connection's channel is told about events of `detail_type`."""
        if detail_type in ALWAYS:
            return True
        choice = BY_CHOICE.get(detail_type)
        return choice is not None and connection.config.get(choice) is True

    def run(self, context: StepContext) -> int:
        hint = context.job.hint
        if hint.get("source") == "webhook" and _uninstalled(hint):
            # The workspace removed the app or revoked its bot token: reconnecting is the only way on.
            raise http.AccessRefused(200, str(hint.get("event_type")))
        outbox, connection = context.outbox, context.connection
        if outbox is None:
            return 0
        waiting = outbox.waiting(connection.id, context.clock(), PAGE)
        if not waiting:
            return 0
        channel = channel_of(connection)
        web = client(context.spec, context.access_token())
        posted = 0
        while waiting:
            for item in waiting:
                if context.remaining_ms() < SAFETY_MARGIN_MS:
                    context.flags["more"] = True
                    return posted
                message = message_for(str(item.body.get("detail_type")), dict(item.body.get("detail") or {}))
                if message is not None:
                    post(web, channel, message)
                    posted += 1
                outbox.done(connection.id, item.key)
            waiting = outbox.waiting(connection.id, context.clock(), PAGE)
        return posted


def _uninstalled(hint: dict[str, Any]) -> bool:
    event = hint.get("event_type")
    if event == "app_uninstalled":
        return True
    revoked = hint.get("revoked_tokens")
    return event == "tokens_revoked" and isinstance(revoked, dict) and bool(revoked.get("bot"))


def send_trial(spec: ProviderSpec, connection: Connection, access_token: str) -> None:
    """ "Send a test message" from the configure step: posted at once, failures raised as they are."""
    post(client(spec, access_token), channel_of(connection), trial_message())


STEP = SlackNotifications()
