"""The webhook receiver: verify, route, claim the delivery id, enqueue, answer. No HTTP framework here.

The same steps for every provider; each step that differs asks the provider's plug-in
(`providers/<id>/webhook.py`, `WEBHOOK`, found through the catalog entry's `webhook` section and the
provider registry). Order, per request (design §7):

1. No `webhook` section in the provider's catalog entry: 404. The plug-in's `handshake` (Graph's
   `validationToken`): answered as it says, before anything else, nothing else done.
2. The plug-in's `precheck`: a signature that cannot verify (missing, malformed, stale) -> 401 before
   any key is read or opened (opening a Calendly key costs a KMS Decrypt).
3. Load what verification needs: the app secret the catalog names (current + previous fields), and
   the lookup items the plug-in's `lookup_keys` names. A channel, subscription or location we do not
   know: 2xx and a log line (nothing can be verified, nothing is stored, and the provider stops
   retrying).
4. Verify over the raw bytes (`plugin.verify`): refused -> 401, nothing stored.
5. Parse (`plugin.parse`): not what the provider documents -> 400. A reply (Slack's
   url_verification) is given as is.
6. Per delivery: find its connection (unknown -> skipped and logged), claim its id in the ledger
   (already claimed -> duplicate, skipped), then publish the plug-in's event or queue a job of the
   plug-in's kind. If that fails the claim is released and the answer asks for a redelivery with the
   catalog's `retry_status` (503, or 429 for a provider that redelivers on nothing else). Work done
   for earlier deliveries of the batch stays done; their redelivered copies are duplicates.

Nothing a sender controls produces a 5xx: the only 5xx is 503 when our own stores are failing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from integrations.catalog import load_catalog
from integrations.providers.registry import part
from integrations.sync.jobs import SyncJob
from integrations.webhooks.errors import MalformedPayload, SignatureInvalid
from integrations.webhooks.keyring import AppSecretSource, DependencyUnavailable, JwksSource, SigningKeyBox
from integrations.webhooks.plugin import (
    Delivery,
    Material,
    ParsedWebhook,
    RoutingKey,
    WebhookAnswer,
    WebhookPlugin,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.catalog.model import WebhookSpec
    from integrations.domain.lookup import Lookup
    from integrations.events import PlatformEvent
    from integrations.webhooks.dedupe import DeliveryLedger
    from integrations.webhooks.request import WebhookRequest
    from integrations.webhooks.signatures import VerificationSecrets

__all__ = ["NOT_FOUND", "WebhookAnswer", "WebhookReceiver", "receives_pushes", "webhook_for"]

NOT_FOUND = WebhookAnswer.of_json(404, {"message": "Not Found"})
UNAUTHORIZED = WebhookAnswer.of_json(401, {"message": "Unauthorized"})
BAD_REQUEST = WebhookAnswer.of_json(400, {"message": "Bad Request"})


class LookupSource(Protocol):
    """Reads lookup items (store.connections.ConnectionRepository)."""

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None: ...


class JobSink(Protocol):
    """Queues sync jobs (sync.jobs.JobQueue); raises when the job was not accepted."""

    def send(self, job: SyncJob) -> None: ...


class EventSink(Protocol):
    """Publishes platform events (events.EventPublisher); raises when the bus refused them."""

    def publish(self, *events: PlatformEvent) -> None: ...


def webhook_for(provider: str) -> tuple[WebhookSpec, WebhookPlugin] | None:
    """The catalog's webhook section and the plug-in of a provider that receives pushes, else None."""
    catalog = load_catalog()
    if provider not in catalog:
        return None
    spec = catalog.get(provider).webhook
    if spec is None:
        return None
    module = part(provider, "webhook")
    plugin = getattr(module, "WEBHOOK", None) if module is not None else None
    return (spec, plugin) if isinstance(plugin, WebhookPlugin) else None


def receives_pushes(provider: str) -> bool:
    """Whether `POST /webhooks/{provider}` is a route at all (else 404)."""
    return webhook_for(provider) is not None


@dataclass(frozen=True, slots=True)
class _Push:
    """One request with what handles it: the catalog's webhook section and the provider's plug-in."""

    request: WebhookRequest
    spec: WebhookSpec
    plugin: WebhookPlugin

    @property
    def provider(self) -> str:
        return self.request.provider


@dataclass(frozen=True, slots=True)
class _Keys:
    """The keyring adapters, as the plug-ins' `KeyAccess`."""

    signing_keys: SigningKeyBox | None
    jwks: JwksSource

    def open_signing_key(self, lookup: Lookup, ciphertext: str) -> str | None:
        return self.signing_keys.open(lookup, ciphertext) if self.signing_keys is not None else None

    def key_set(self, fields: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return self.jwks.key_set(fields)


class _Refused(Exception):
    """Stop handling this request and give `answer`."""

    def __init__(self, answer: WebhookAnswer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class WebhookReceiver:
    """One instance per process; `receive` handles one request."""

    def __init__(
        self,
        *,
        lookups: LookupSource,
        ledger: DeliveryLedger,
        jobs: JobSink,
        events: EventSink,
        app_secrets: AppSecretSource,
        signing_keys: SigningKeyBox | None,
        logger: Logger,
        clock: Callable[[], datetime],
        jwks: JwksSource | None = None,
    ) -> None:
        self._lookups = lookups
        self._ledger = ledger
        self._jobs = jobs
        self._events = events
        self._app_secrets = app_secrets
        self._keys = _Keys(signing_keys, jwks or JwksSource())
        self._log = logger
        self._clock = clock

    def receive(self, request: WebhookRequest) -> WebhookAnswer:
        """Handle one push and say what to answer."""
        found = webhook_for(request.provider)
        if found is None:
            return NOT_FOUND
        spec, provider_plugin = found
        push = _Push(request, spec, provider_plugin.for_request(request))
        handshake = push.plugin.handshake(request)
        if handshake is not None:
            return handshake
        try:
            return self._receive(push)
        except _Refused as refused:
            return refused.answer
        except DependencyUnavailable:
            self._log.warning("webhook dependency unavailable", extra={"provider": push.provider})
            return _retry_later(push)

    # ------------------------------------------------------------------ steps

    def _receive(self, push: _Push) -> WebhookAnswer:
        self._verify_with(push, lambda: push.plugin.precheck(push.request, self._clock()))
        material = self._material(push)
        secrets = push.plugin.secrets(material, self._keys)
        if material.lookups and not material.found() and not secrets.has_keys():
            # A channel, subscription or workflow location we do not have (stopped, disconnected,
            # or never ours) and no app-wide key: nothing to verify with, nothing to do; 2xx so the
            # sender stops retrying. Nothing is stored.
            self._log.info("webhook for an unknown channel", extra=_route_log(push, material))
            return WebhookAnswer.of_json(200, {"received": 0, "duplicates": 0, "unrouted": 1})
        self._verify(push, secrets)
        parsed = self._parse(push)
        if parsed.reply is not None:
            return parsed.reply
        received = duplicates = unrouted = 0
        for delivery in parsed.deliveries:
            lookup = self._route(push, delivery.routing, material)
            if lookup is None:
                unrouted += 1
                self._log.info(
                    "webhook for an unknown account",
                    extra={"provider": push.provider, **_routing_log(push, delivery.routing)},
                )
                continue
            if not self._claim(push, delivery, lookup):
                duplicates += 1
                self._log.info(
                    "duplicate webhook dropped",
                    extra={"provider": push.provider, "event_id": delivery.event_id},
                )
                continue
            self._dispatch(push, delivery, lookup)
            self._confirm(push, delivery, lookup)
            received += 1
        self._log.info(
            "webhook accepted",
            extra={
                "provider": push.provider,
                "received": received,
                "duplicates": duplicates,
                "unrouted": unrouted,
            },
        )
        return WebhookAnswer.of_json(
            200, {"received": received, "duplicates": duplicates, "unrouted": unrouted}
        )

    def _material(self, push: _Push) -> Material:
        app_secret = push.spec.app_secret if push.plugin.uses_app_secret else None
        app = self._app_secrets.fields(app_secret) if app_secret else {}
        keys = push.plugin.lookup_keys(push.request)
        return Material(app=app, lookups={key: self._lookup(push, key) for key in keys})

    def _verify(self, push: _Push, secrets: VerificationSecrets) -> None:
        self._verify_with(push, lambda: push.plugin.verify(push.request, secrets, self._clock()))

    def _verify_with(self, push: _Push, check: Callable[[], None]) -> None:
        """Run a verification step: refused -> 401, malformed -> 400, a bug fails closed (401)."""
        try:
            check()
        except SignatureInvalid as refused:
            self._log.info(
                "webhook refused", extra={"provider": push.provider, "reason": refused.failure.value}
            )
            raise _Refused(UNAUTHORIZED) from None
        except MalformedPayload:
            raise _Refused(BAD_REQUEST) from None
        except DependencyUnavailable:
            raise
        except Exception:
            # A verifier bug must fail closed, and a sender must never see it as a 5xx.
            self._log.exception("webhook verification failed unexpectedly", extra={"provider": push.provider})
            raise _Refused(UNAUTHORIZED) from None

    def _parse(self, push: _Push) -> ParsedWebhook:
        try:
            return push.plugin.parse(push.request)
        except MalformedPayload:
            self._log.info("webhook body malformed", extra={"provider": push.provider})
            raise _Refused(BAD_REQUEST) from None
        except Exception:
            self._log.exception("webhook parsing failed unexpectedly", extra={"provider": push.provider})
            raise _Refused(BAD_REQUEST) from None

    def _route(self, push: _Push, key: RoutingKey, material: Material) -> Lookup | None:
        # Reuse what verification read: a delivery must route to the very item that verified it.
        if key in material.lookups:
            return material.lookups[key]
        return self._lookup(push, key)

    def _claim(self, push: _Push, delivery: Delivery, lookup: Lookup) -> bool:
        try:
            return self._ledger.claim(
                push.provider, _once_key(delivery, lookup), self._clock(), lookup.connection_id
            )
        except DependencyUnavailable:
            raise DependencyUnavailable("The delivery ledger is unavailable.") from None

    def _dispatch(self, push: _Push, delivery: Delivery, lookup: Lookup) -> None:
        """Publish the delivery's event or queue its job; on failure undo the claim and refuse."""
        try:
            event = push.plugin.event(push.request, delivery, lookup)
            if event is not None:
                self._events.publish(event)
            else:
                self._jobs.send(_job(push, delivery, lookup))
        except Exception:
            self._log.exception(
                "webhook not queued", extra={"provider": push.provider, "event_id": delivery.event_id}
            )
            try:
                self._ledger.release(push.provider, _once_key(delivery, lookup))
            except Exception:
                # The claim stays: a redelivery would be dropped. Logged with the id so it can be replayed.
                self._log.exception(
                    "webhook claim not released",
                    extra={"provider": push.provider, "event_id": delivery.event_id},
                )
            raise _Refused(_retry_later(push)) from None

    def _confirm(self, push: _Push, delivery: Delivery, lookup: Lookup) -> None:
        try:
            self._ledger.confirm(push.provider, _once_key(delivery, lookup))
        except Exception:
            # The job is queued; an unconfirmed claim only lets a late redelivery queue it once more.
            self._log.warning(
                "webhook claim not confirmed",
                extra={"provider": push.provider, "event_id": delivery.event_id},
            )

    # ------------------------------------------------------------------ helpers

    def _lookup(self, push: _Push, key: RoutingKey) -> Lookup | None:
        try:
            return self._lookups.get_lookup(push.provider, key.kind, key.value)
        except DependencyUnavailable:
            raise DependencyUnavailable("Lookup items are unavailable.") from None


def _retry_later(push: _Push) -> WebhookAnswer:
    # The status this provider redelivers on (the catalog's `webhook.retry_status`).
    return WebhookAnswer.of_json(
        push.spec.retry_status, {"message": "Try again later"}, **{"Retry-After": "5"}
    )


def _route_log(push: _Push, material: Material) -> dict[str, Any]:
    first = next(iter(material.lookups), None)
    extra: dict[str, Any] = {"provider": push.provider}
    if first is not None:
        extra.update(_routing_log(push, first))
    return extra


def _routing_log(push: _Push, key: RoutingKey) -> dict[str, str]:
    # Routing values that are personal data (a mailbox address) are not logged.
    value = "(not logged)" if key.kind in push.plugin.unlogged_kinds else key.value[:256]
    return {"routing_kind": key.kind, "routing_value": value}


def _job(push: _Push, delivery: Delivery, lookup: Lookup) -> SyncJob:
    return SyncJob(
        kind=push.plugin.job_kind(delivery),
        connection_id=lookup.connection_id,
        provider=push.provider,
        hint={
            "source": "webhook",
            "event_type": delivery.event_type,
            "event_id": delivery.event_id,
            **delivery.hint,
        },
        received_at=push.request.received_at,
    )


def _once_key(delivery: Delivery, lookup: Lookup) -> str:
    """A delivery is handled once per connection: two connections subscribed to the same account (two
    clients sharing one scheduling account) each get the provider's one event, and neither drops it
    as the other's duplicate."""
    return f"{lookup.connection_id}:{delivery.event_id}"
