"""Our `/webhooks/<graph provider>` in miniature for tests against the sandbox's Graph: the plugin's
validationToken handshake, what Graph delivered, and the jobs the receiver would queue for it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from integrations.providers.graph_notifications import GraphWebhook
from integrations.sync.jobs import SyncJob
from integrations.webhooks.request import Headers, WebhookRequest


class Receiver:
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.webhook = GraphWebhook()
        self.received: list[WebhookRequest] = []

        def app(environ: Any, start_response: Any) -> Any:
            request = Request(environ)
            got = WebhookRequest(
                provider=provider,
                method=request.method,
                raw_body=request.get_data(),
                headers=Headers(dict(request.headers.items())),
                query=dict(request.args.items()),
                path=request.path,
                url=request.url,
                received_at=datetime.now(UTC),
            )
            answer = self.webhook.handshake(got)
            if answer is not None:
                return Response(answer.body, status=answer.status, mimetype="text/plain")(
                    environ, start_response
                )
            self.received.append(got)
            return Response("", status=202)(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def jobs(self, connection_id: str = "") -> list[SyncJob]:
        """The jobs webhooks.receiver queues for what Graph delivered."""
        return [
            SyncJob(
                kind=self.webhook.job_kind(delivery),
                connection_id=connection_id,
                provider=self.provider,
                hint={"source": "webhook", "event_type": delivery.event_type, **delivery.hint},
            )
            for note in self.received
            for delivery in self.webhook.parse(note).deliveries
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
