"""Run the sandbox alone: `python -m infra.local.sandbox [--port 3001] [--gateway-url URL]`."""

from __future__ import annotations

import argparse
import json
import os

from infra.local.sandbox import SandboxConfig, catalog_overrides, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "3001")))
    parser.add_argument("--gateway-url", default="http://127.0.0.1:3000")
    parser.add_argument("--print-overrides", action="store_true", help="print the catalog overrides and exit")
    args = parser.parse_args()
    base = f"http://{args.host}:{args.port}"
    if args.print_overrides:
        print(json.dumps(catalog_overrides(base), indent=2))
        return
    server, thread = serve(args.host, args.port, SandboxConfig(gateway_url=args.gateway_url))
    print(f"provider sandbox on http://{args.host}:{server.server_port}/ (Ctrl-C stops it)")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
        server.server_close()
        server.app.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
