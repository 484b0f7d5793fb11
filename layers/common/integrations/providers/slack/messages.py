"""Block Kit messages for the platform's notifications (Call Completed, Booking Created, Integration
Errored): a readable layout plus the plain `text` Slack shows in notifications and screen readers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

Message = tuple[str, list[dict[str, Any]]]


def escape(value: object) -> str:
    """Slack mrkdwn's three control characters, escaped (provider data never becomes a link or mention)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def duration(seconds: int) -> str:
    """`1h 02m`, `5m 12s` or `40s`."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _field(label: str, value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value or '—'}"}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def call_completed(detail: dict[str, Any]) -> Message:
    contact = detail.get("contact") if isinstance(detail.get("contact"), dict) else {}
    assert isinstance(contact, dict)
    name = " ".join(str(contact.get(k) or "") for k in ("first_name", "last_name")).strip()
    number = str(contact.get("phone") or "")
    caller = (
        " ".join(p for p in (name, f"({number})" if name and number else number) if p) or "Unknown caller"
    )
    outcome = str(detail.get("outcome") or "")
    length = duration(int(detail.get("duration_seconds") or 0))
    direction = "Outbound call" if detail.get("direction") == "outbound" else "Inbound call"
    blocks: list[dict[str, Any]] = [
        _header(f"📞 {direction} completed"),
        {
            "type": "section",
            "fields": [
                _field("Caller", escape(caller)),
                _field("Outcome", escape(outcome)),
                _field("Duration", length),
                _field("Agent", escape(detail.get("agent") or "")),
            ],
        },
    ]
    summary = str(detail.get("summary") or "")
    if summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Summary*\n{escape(summary)}"}}
        )
    recording = str(detail.get("recording_url") or "")
    if recording.startswith(("https://", "http://")):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Listen to the recording"},
                        "url": recording,
                        "action_id": "recording",
                    }
                ],
            }
        )
    text = f"{direction} completed: {caller}" + (f" — {outcome}" if outcome else "") + f", {length}"
    return text, blocks


def booking_created(detail: dict[str, Any]) -> Message:
    invitee = detail.get("invitee") if isinstance(detail.get("invitee"), dict) else {}
    assert isinstance(invitee, dict)
    email = str(invitee.get("email") or "")
    who = str(invitee.get("name") or email or "Someone")
    what = str(detail.get("event_type_name") or "a meeting")
    start = datetime.fromisoformat(str(detail.get("start")).replace("Z", "+00:00"))
    when = start.strftime("%a %d %b %Y, %H:%M UTC")
    blocks: list[dict[str, Any]] = [
        _header("📅 New booking"),
        {
            "type": "section",
            "fields": [
                _field(
                    "Who", escape(who) + (f"\n{escape(invitee['email'])}" if invitee.get("email") else "")
                ),
                _field("What", escape(what)),
                _field("When", when),
                _field("Where", escape(detail.get("join_url") or detail.get("location") or "")),
            ],
        },
    ]
    if detail.get("rescheduled_from"):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Rescheduled booking"}]})
    return f"New booking: {who} booked {what} for {when}", blocks


def integration_errored(detail: dict[str, Any]) -> Message:
    label = str(detail.get("account_label") or detail.get("provider") or "An integration")
    message = str(detail.get("message") or "It needs attention.")
    blocks = [
        _header("⚠️ An integration needs attention"),
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(label)}*\n{escape(message)}"}},
    ]
    return f"{label} needs attention: {message}", blocks


def trial_message() -> Message:
    text = "Test message: notifications from your integrations will appear in this channel."
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": f"✅ {text}"}}]


BUILDERS = {
    "Call Completed": call_completed,
    "Booking Created": booking_created,
    "Integration Errored": integration_errored,
}


def message_for(detail_type: str, detail: dict[str, Any]) -> Message | None:
    """The message an event becomes, None for an event this channel does not show."""
    builder = BUILDERS.get(detail_type)
    return builder(detail) if builder is not None else None
