"""Provider sandbox: offline stand-ins that speak each provider's real OAuth and API protocol.

server, thread = serve("127.0.0.1", 0, SandboxConfig())   # port 0: any free port
base = f"http://127.0.0.1:{server.server_port}"
overrides = catalog_overrides(base)                      # INTEGRATIONS_CATALOG_OVERRIDES content
APP_CREDENTIALS["google"]["client_id"]                   # app secrets the local stack stores
"""

from infra.local.sandbox.app import SandboxApp, create_app, serve
from infra.local.sandbox.config import SandboxConfig
from infra.local.sandbox.dialects import DIALECTS, catalog_overrides
from infra.local.sandbox.keys import APP_CREDENTIALS, google_jwks
from infra.local.sandbox.state import FaultKind

__all__ = [
    "APP_CREDENTIALS",
    "DIALECTS",
    "FaultKind",
    "SandboxApp",
    "SandboxConfig",
    "catalog_overrides",
    "create_app",
    "google_jwks",
    "serve",
]
