"""`make dev`: the whole product offline on this machine, until Ctrl-C.

Environment:
  PORT=3000            the gateway (API, portal page, /dev routes)
  SANDBOX_PORT=3001    the provider sandbox
  SMTP_PORT=2525       SES receiving for the BCC logging domain (a real SMTP listener on 127.0.0.1)
  STAGE=dev            the stage the resources are named for
  AWS_ENDPOINT_URL     use this AWS endpoint instead of the embedded one (moto's server on 127.0.0.1)
  AWS=real             use real AWS with the ambient credentials (creates `integrations-<STAGE>-*`)
  MOTO_PORT=0          the embedded AWS's port (0: any free port)
  INTEGRATIONS_CATALOG_OVERRIDES  a JSON file deep-merged over the catalog, after the sandbox's own overrides
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from infra.local.stack import LocalStack, StartError, wait_forever


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # boto3 says where it found credentials and endpoints on every client; that is not news here.
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    port = int(os.environ.get("PORT", "3000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", "3001"))
    smtp_port = int(os.environ.get("SMTP_PORT", "2525"))
    real_aws = os.environ.get("AWS", "").lower() == "real"
    endpoint = None if real_aws else (os.environ.get("AWS_ENDPOINT_URL") or None)
    stack = LocalStack(
        stage=os.environ.get("STAGE", "dev"),
        aws_endpoint_url=endpoint,
        real_aws=real_aws,
        log_requests=True,
        catalog_overrides=os.environ.get("INTEGRATIONS_CATALOG_OVERRIDES") or None,
    )
    started = time.monotonic()
    try:
        urls = stack.start(port=port, sandbox_port=sandbox_port, smtp_port=smtp_port)
    except OSError as exc:
        print(
            f"could not start: {exc} (is another `make dev` running? set PORT / SANDBOX_PORT / SMTP_PORT)",
            file=sys.stderr,
        )
        return 1
    except StartError as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    aws = urls.aws or "real AWS (ambient credentials)"
    lines = [
        "",
        f"integrations is running ({time.monotonic() - started:.1f} s to start):",
        f"  portal           {urls.portal}",
        f"  API              {urls.gateway}",
        f"  health           {urls.health}",
        f"  token            POST {urls.token}  {{sub, agency_id, client_id?, role, permissions, email?}}",
        f"  provider sandbox {urls.sandbox}/",
        f"  AWS              {aws}",
    ]
    if urls.smtp:
        domain = os.environ.get("INBOUND_EMAIL_DOMAIN", "")
        lines += [
            f"  inbound mail     {urls.smtp}  SES receiving for *@{domain} (others: 550)",
            "                   send: python -m smtplib / swaks --server "
            f"{urls.smtp.removeprefix('smtp://')} --to <your BCC address>;"
            " header X-Sandbox-Spam: FAIL simulates a spam verdict",
        ]
    for logical_id, error in stack.load_failures.items():
        lines.append(f"  ! {logical_id} did not load; its routes answer 500: {error}")
    lines += ["Ctrl-C stops it.", ""]
    print("\n".join(lines), flush=True)
    try:
        wait_forever(stop)
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
