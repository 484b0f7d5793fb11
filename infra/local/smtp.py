"""SES receiving, offline: a real SMTP listener for the BCC logging domain.

What SES does for the template's receipt rule (`AWS::SES::ReceiptRule`), this does on 127.0.0.1:
- RCPT TO an address outside the rule's recipients (the inbound domain) answers 550, as SES refuses
  mail for domains it does not receive for;
- DATA stores the raw message in the rule's bucket under its prefix (`<prefix><message id>`, in the
  embedded AWS), then answers 250 — whatever the function later does, a sender never gets a bounce;
- then invokes the rule's function asynchronously with the event SES's Lambda action sends
  (`Records[0].ses.mail` + `.receipt`, verdicts PASS), retrying a failed invocation twice and then
  sending the notice to the function's on-failure queue, as Lambda's asynchronous invocation does.

A person simulates SES's scanners with headers: `X-Sandbox-Spam: FAIL` (or GRAY) sets the spam
verdict, `X-Sandbox-Virus: FAIL` the virus verdict. STARTTLS is not offered locally (the rule's
`TlsPolicy: Require` applies in AWS only). Any SMTP client works:

    python -m smtplib  (or: swaks --server 127.0.0.1:2525 --to log-…@bcc.integrations.invalid)
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("infra.local.smtp")

# A simulated verdict: the header's value, if it is one SES could give.
SPAM_HEADER = "X-Sandbox-Spam"
VIRUS_HEADER = "X-Sandbox-Virus"
_VERDICTS = {"PASS", "FAIL", "GRAY", "PROCESSING_FAILED"}
# What Lambda does with an asynchronous invocation that raised (EventInvokeConfig in the template).
ASYNC_RETRIES = 2


@dataclass(frozen=True, slots=True)
class ReceiptRule:
    """The template's receipt rule, resolved: who it receives for, where it stores, whom it invokes."""

    recipients: tuple[str, ...]
    bucket: str
    prefix: str
    function: str
    function_arn: str
    # Where a notice goes after the last failed retry (the function's on-failure destination).
    dead_letter_queue_url: str | None = None

    def receives(self, address: str) -> bool:
        """Whether the rule covers the address (SES: a domain covers its addresses, not subdomains)."""
        address = address.strip().strip("<>").lower()
        domain = address.rpartition("@")[2]
        return any(r.lower() in (address, domain) for r in self.recipients)


def ses_message_id() -> str:
    """An id shaped like SES's (lower-case letters and digits, 40 characters)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def ses_event(
    rule: ReceiptRule, raw: bytes, mail_from: str, recipients: list[str], message_id: str, now: datetime
) -> dict[str, Any]:
    """The event SES's Lambda action sends for one received message."""
    parsed = message_from_bytes(raw, policy=policy.compat32)
    headers = [{"name": str(k), "value": str(v)[:2048]} for k, v in list(parsed.items())[:200]]

    def header(name: str) -> str:
        value = parsed.get(name)
        return str(value)[:2048] if value is not None else ""

    def verdict(name: str) -> str:
        value = header(name).strip().upper()
        return value if value in _VERDICTS else "PASS"

    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    common: dict[str, Any] = {
        "returnPath": mail_from,
        "from": [header("From")] if header("From") else [],
        "date": header("Date"),
        "to": [header("To")] if header("To") else [],
        "messageId": header("Message-ID"),
        "subject": header("Subject"),
    }
    return {
        "Records": [
            {
                "eventSource": "aws:ses",
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "timestamp": stamp,
                        "source": mail_from,
                        "messageId": message_id,
                        "destination": recipients,
                        "headersTruncated": False,
                        "headers": headers,
                        "commonHeaders": {k: v for k, v in common.items() if v},
                    },
                    "receipt": {
                        "timestamp": stamp,
                        "processingTimeMillis": 1,
                        "recipients": recipients,
                        "spamVerdict": {"status": verdict(SPAM_HEADER)},
                        "virusVerdict": {"status": verdict(VIRUS_HEADER)},
                        "spfVerdict": {"status": "PASS"},
                        "dkimVerdict": {"status": "PASS"},
                        "dmarcVerdict": {"status": "PASS"},
                        "dmarcPolicy": "none",
                        "action": {
                            "type": "Lambda",
                            "functionArn": rule.function_arn,
                            "invocationType": "Event",
                        },
                    },
                },
            }
        ]
    }


class SesReceiving:
    """aiosmtpd's handler: the receipt rule's checks, its S3 action, then its Lambda action."""

    def __init__(
        self,
        rule: ReceiptRule,
        s3: S3Client,
        invoke: Callable[[str, Any], Any],
        *,
        sqs: SQSClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_delay: float = 1.0,
    ) -> None:
        self.rule = rule
        self._s3 = s3
        self._invoke = invoke
        self._sqs = sqs
        self._clock = clock
        self._retry_delay = retry_delay
        self._pending: list[threading.Thread] = []

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.rule.receives(address):
            return "550 5.1.1 Recipient address rejected: this server does not receive mail for that domain"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        raw: bytes = envelope.original_content or envelope.content or b""
        message_id = ses_message_id()
        key = f"{self.rule.prefix}{message_id}"
        try:
            await asyncio.to_thread(self._s3.put_object, Bucket=self.rule.bucket, Key=key, Body=raw)
        except Exception:
            log.exception("storing a received message failed")
            return "451 4.3.0 Temporary failure storing the message; try again"
        event = ses_event(
            self.rule, raw, str(envelope.mail_from or ""), list(envelope.rcpt_tos), message_id, self._clock()
        )
        worker = threading.Thread(
            target=self._deliver, args=(event,), name=f"ses-{message_id[:8]}", daemon=True
        )
        self._pending = [t for t in self._pending if t.is_alive()] + [worker]
        worker.start()
        return f"250 Ok: queued as {message_id}"

    def _deliver(self, event: Mapping[str, Any]) -> None:
        """Lambda's asynchronous invocation: the first try and two retries, then the on-failure queue."""
        for attempt in range(ASYNC_RETRIES + 1):
            try:
                self._invoke(self.rule.function, event)
                return
            except Exception as exc:
                log.warning(
                    "%s failed (attempt %d of %d): %s",
                    self.rule.function,
                    attempt + 1,
                    ASYNC_RETRIES + 1,
                    type(exc).__name__,
                )
                if attempt < ASYNC_RETRIES:
                    time.sleep(self._retry_delay * (attempt + 1))
        if self._sqs is not None and self.rule.dead_letter_queue_url:
            record = {
                "version": "1.0",
                "timestamp": self._clock().isoformat(),
                "requestContext": {
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": ASYNC_RETRIES + 1,
                },
                "requestPayload": event,
            }
            self._sqs.send_message(QueueUrl=self.rule.dead_letter_queue_url, MessageBody=json.dumps(record))

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for invocations under way (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._pending):
            thread.join(max(0.0, deadline - time.monotonic()))


class SmtpListener:
    """An aiosmtpd server on its own event loop thread; port 0 picks a free port."""

    def __init__(self, handler: SesReceiving, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        from aiosmtpd.smtp import SMTP

        loop = asyncio.new_event_loop()
        self._loop = loop

        def factory() -> SMTP:
            # SES takes messages up to 40 MB; decode_data False keeps the bytes exactly as sent.
            return SMTP(self.handler, data_size_limit=40 * 1024 * 1024, hostname="inbound-smtp.local")

        server = loop.run_until_complete(loop.create_server(factory, self.host, self.requested_port))
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=loop.run_forever, name="smtp", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None:
            return
        if server is not None:

            async def close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
        self._loop = self._server = self._thread = None


def receipt_rule(
    template: Mapping[str, Any],
    resolve: Callable[[Any], Any],
    queue_urls: Mapping[str, str],
    function_arn: Callable[[str], str],
) -> ReceiptRule | None:
    """The template's (first) SES receipt rule with an S3 then a Lambda action, resolved; None without one."""
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::SES::ReceiptRule":
            continue
        props = resource.get("Properties") or {}
        rule = props.get("Rule") or {}
        actions = rule.get("Actions") or []
        store = next((a["S3Action"] for a in actions if "S3Action" in a), None)
        call = next((a["LambdaAction"] for a in actions if "LambdaAction" in a), None)
        if store is None or call is None:
            continue
        target = call["FunctionArn"]
        reference = str(target.get("Ref", "")) if isinstance(target, dict) else ""
        function = reference.split(".", 1)[0]
        if function not in template["Resources"]:
            continue
        failure = (
            ((template["Resources"][function].get("Properties") or {}).get("EventInvokeConfig") or {})
            .get("DestinationConfig", {})
            .get("OnFailure", {})
            .get("Destination")
        )
        dead_letter = failure.get("Fn::GetAtt", [None])[0] if isinstance(failure, dict) else None
        return ReceiptRule(
            recipients=tuple(str(r) for r in resolve(rule.get("Recipients") or [])),
            bucket=str(resolve(store["BucketName"])),
            prefix=str(resolve(store.get("ObjectKeyPrefix", ""))),
            function=function,
            function_arn=function_arn(function),
            dead_letter_queue_url=queue_urls.get(str(dead_letter)) if dead_letter else None,
        )
    return None


__all__ = ["ReceiptRule", "SesReceiving", "SmtpListener", "receipt_rule", "ses_event", "ses_message_id"]
