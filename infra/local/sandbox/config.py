"""Settings of one sandbox instance: registered redirect URIs, token lifetimes, push delivery, clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

DEFAULT_GATEWAY_URL = "http://127.0.0.1:3000"


@cache
def providers_by_app() -> dict[str, tuple[str, ...]]:
    """Catalog OAuth providers grouped by the app whose credentials they use (google → 3 providers)."""
    from integrations.catalog.loader import load_catalog

    grouped: dict[str, list[str]] = {}
    # An explicit empty path: the sandbox describes the real catalog, never an overridden one.
    for spec in load_catalog(overrides_path=""):
        if spec.oauth is not None:
            grouped.setdefault(spec.oauth.app, []).append(spec.id)
    return {app: tuple(ids) for app, ids in grouped.items()}


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How a sandbox behaves; every field has a default that suits `make dev`."""

    # Where the product's HTTP gateway listens: default redirect URIs and webhook targets hang off it.
    gateway_url: str = DEFAULT_GATEWAY_URL
    # app -> redirect URIs registered for that app's client; None = `<gateway>/oauth/<provider>/callback`
    # for every catalog provider of the app.
    redirect_uris: Mapping[str, tuple[str, ...]] | None = None
    # app -> access-token lifetime in seconds (tests shorten it); unset apps use the provider's own.
    access_token_ttl: Mapping[str, int] = field(default_factory=dict)
    # Authorization codes live 10 minutes at every provider modelled here.
    code_ttl: int = 600
    # Google calendar sync tokens older than this answer 410 (real ones last much longer).
    sync_token_ttl: int = 30 * 24 * 3600
    # Push notifications (Google channels, signed webhooks): on/off and the per-delivery timeout.
    push_enabled: bool = True
    push_timeout: float = 3.0
    # Graph's subscription validation handshake: the receiver must echo the token within this (10 s at
    # Microsoft; tests shorten it to prove the timeout without waiting).
    graph_validation_timeout: float = 10.0
    # provider -> webhook URL the sandbox delivers to; None = `<gateway>/webhooks/<provider>`.
    webhook_urls: Mapping[str, str] | None = None
    # Seconds since the epoch; tests inject a fake clock, people use `POST /_sandbox/clock`.
    clock: Callable[[], float] = time.time
    # Bounded request log (`GET /_sandbox/requests`).
    max_log_entries: int = 5000

    def registered_redirect_uris(self, app: str) -> tuple[str, ...]:
        """The redirect URIs the app's sandbox client accepts, compared exactly."""
        if self.redirect_uris is not None and app in self.redirect_uris:
            return tuple(self.redirect_uris[app])
        base = self.gateway_url.rstrip("/")
        return tuple(f"{base}/oauth/{provider}/callback" for provider in providers_by_app().get(app, ()))

    def webhook_url(self, provider: str) -> str:
        """Where deliveries for `provider` go (the gateway's `/webhooks/<provider>`)."""
        if self.webhook_urls is not None and provider in self.webhook_urls:
            return self.webhook_urls[provider]
        return f"{self.gateway_url.rstrip('/')}/webhooks/{provider}"
