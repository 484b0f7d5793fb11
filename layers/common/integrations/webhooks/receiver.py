"""The webhook receiver: verify, route, claim the delivery id, enqueue, answer. No HTTP framework here.

Order, per request (design §7):

1. Unknown provider: 404. Graph's `validationToken` handshake: echo it as text/plain, nothing else.
2. Load what verification needs: app secrets (current + previous), and for per-channel schemes the
   lookup items the request names. A channel, subscription or location we do not know: 2xx and a log
   line (nothing can be verified, nothing is stored, and the provider stops retrying).
3. Verify over the raw bytes (`verification`): refused -> 401, nothing stored.
4. Parse (`parsing`): not what the provider documents -> 400. Slack's url_verification -> echo.
5. Per delivery: find its connection (unknown -> skipped and logged), claim its id in the ledger
   (already claimed -> duplicate, skipped), then queue a job (or publish `Call Requested`). If
   queueing fails the claim is released and the answer asks for a redelivery: 503, or 429 for GHL,
   which redelivers on nothing else. Work done for earlier deliveries of the batch stays done; their
   redelivered copies are duplicates.

Nothing a sender controls produces a 5xx: the only 5xx is 503 when our own stores are failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from integrations.events import CallRequested
from integrations.sync.jobs import JobKind, SyncJob
from integrations.webhooks import parsing
from integrations.webhooks.errors import MalformedPayload, SignatureInvalid
from integrations.webhooks.keyring import (
    AppSecretSource,
    DependencyUnavailable,
    JwksSource,
    SigningKeyBox,
    text_values,
)
from integrations.webhooks.parsing import Delivery, RoutingKey, RoutingKind
from integrations.webhooks.request import WebhookRequest, WebhookScheme
from integrations.webhooks.routing import Attr, lookup_kind
from integrations.webhooks.verification import (
    VERIFIERS,
    VerificationSecrets,
    Verifier,
    graph_validation_token,
    verify_request,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.domain.lookup import Lookup
    from integrations.events import PlatformEvent
    from integrations.webhooks.dedupe import DeliveryLedger


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What to answer the provider."""

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, payload: Any, **headers: str) -> WebhookAnswer:
        return cls(status=status, body=json.dumps(payload, separators=(",", ":")), headers=headers)


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


# Schemes whose keys are the app's: the app secret (`APP_SECRET_PREFIX + name`) that holds them.
APP_SECRET_OF_SCHEME: Mapping[WebhookScheme, str] = {
    WebhookScheme.SLACK: "slack",
    WebhookScheme.HUBSPOT: "hubspot",
    WebhookScheme.GHL: "ghl",
    WebhookScheme.PUBSUB_PUSH: "pubsub",
    # Calendly signs with the subscription's own key, or with the app's key when none was set.
    WebhookScheme.CALENDLY: "calendly",
}
# Providers that redeliver only on a particular answer (GHL: only 429; provider page §1.7).
RETRY_STATUS: Mapping[str, int] = {"ghl": 429}
DEFAULT_RETRY_STATUS = 503
# Event types that ask for something other than an incremental sync.
JOB_KINDS: Mapping[str, JobKind] = {
    "lifecycle.reauthorizationRequired": JobKind.RENEW_SUBSCRIPTION,
    "lifecycle.subscriptionRemoved": JobKind.RENEW_SUBSCRIPTION,
}
# Routing values that are personal data are not logged (a mailbox address).
_UNLOGGED_VALUES = frozenset({RoutingKind.GMAIL_ADDRESS})


@dataclass(frozen=True, slots=True)
class _Material:
    """What one request's verification needs, before it is turned into VerificationSecrets."""

    app: Mapping[str, Any]
    lookups: Mapping[RoutingKey, Lookup | None]

    def found(self) -> list[Lookup]:
        return [lookup for lookup in self.lookups.values() if lookup is not None]

    def digests(self, *names: str) -> tuple[str, ...]:
        return tuple(v for lookup in self.found() for v in text_values(lookup.attributes, *names))


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
        verifiers: Mapping[WebhookScheme, Verifier] = VERIFIERS,
    ) -> None:
        self._lookups = lookups
        self._ledger = ledger
        self._jobs = jobs
        self._events = events
        self._app_secrets = app_secrets
        self._signing_keys = signing_keys
        self._log = logger
        self._clock = clock
        self._jwks = jwks or JwksSource()
        self._verifiers = verifiers

    def receive(self, request: WebhookRequest) -> WebhookAnswer:
        """Handle one push and say what to answer."""
        scheme = request.scheme
        if scheme is None:
            return NOT_FOUND
        if scheme is WebhookScheme.GRAPH:
            token = graph_validation_token(request)
            if token is not None:
                # Proves nothing about the caller: answered before anything else, and never queued.
                return WebhookAnswer(
                    200, token, "text/plain; charset=utf-8", {"X-Content-Type-Options": "nosniff"}
                )
        try:
            return self._receive(request, scheme)
        except _Refused as refused:
            return refused.answer
        except DependencyUnavailable:
            self._log.warning("webhook dependency unavailable", extra={"provider": request.provider})
            return self._retry_later(request)

    # ------------------------------------------------------------------ steps

    def _receive(self, request: WebhookRequest, scheme: WebhookScheme) -> WebhookAnswer:
        material = self._material(request, scheme)
        secrets = self._secrets(scheme, material)
        if material.lookups and not material.found() and not _has_keys(secrets):
            # A channel, subscription or workflow location we do not have (stopped, disconnected,
            # or never ours) and no app-wide key: nothing to verify with, nothing to do; 2xx so the
            # sender stops retrying. Nothing is stored.
            self._log.info("webhook for an unknown channel", extra=self._route_log(request, material))
            return WebhookAnswer.of_json(200, {"received": 0, "duplicates": 0, "unrouted": 1})
        self._verify(request, secrets)
        parsed = self._parse(request)
        if parsed.challenge is not None:
            return WebhookAnswer.of_json(200, {"challenge": parsed.challenge})
        received = duplicates = unrouted = 0
        for delivery in parsed.deliveries:
            lookup = self._route(request, delivery.routing, material)
            if lookup is None:
                unrouted += 1
                self._log.info(
                    "webhook for an unknown account",
                    extra={"provider": request.provider, **_routing_log(delivery.routing)},
                )
                continue
            if not self._claim(delivery, lookup, request):
                duplicates += 1
                self._log.info(
                    "duplicate webhook dropped",
                    extra={"provider": request.provider, "event_id": delivery.event_id},
                )
                continue
            self._dispatch(request, delivery, lookup)
            self._confirm(request, delivery)
            received += 1
        self._log.info(
            "webhook accepted",
            extra={
                "provider": request.provider,
                "received": received,
                "duplicates": duplicates,
                "unrouted": unrouted,
            },
        )
        return WebhookAnswer.of_json(
            200, {"received": received, "duplicates": duplicates, "unrouted": unrouted}
        )

    def _material(self, request: WebhookRequest, scheme: WebhookScheme) -> _Material:
        app_name = APP_SECRET_OF_SCHEME.get(scheme)
        app = self._app_secrets.fields(app_name) if app_name else {}
        lookups = {key: self._lookup(request, key) for key in parsing.secret_lookup_keys(request)}
        return _Material(app=app, lookups=lookups)

    def _secrets(self, scheme: WebhookScheme, material: _Material) -> VerificationSecrets:
        app = material.app
        if scheme in (WebhookScheme.GOOGLE_CHANNEL, WebhookScheme.GHL_WORKFLOW):
            return VerificationSecrets(
                channel_token_hashes=material.digests(Attr.TOKEN_SHA256, Attr.PREVIOUS_TOKEN_SHA256),
                resource_ids=material.digests(Attr.RESOURCE_ID),
            )
        if scheme is WebhookScheme.GRAPH:
            return VerificationSecrets(
                client_state_hashes={
                    lookup.value: text_values(
                        lookup.attributes, Attr.CLIENT_STATE_SHA256, Attr.PREVIOUS_CLIENT_STATE_SHA256
                    )
                    for lookup in material.found()
                }
            )
        if scheme is WebhookScheme.CALENDLY:
            own = [self._open_signing_key(lookup) for lookup in material.found()]
            app_keys = text_values(app, "webhook_signing_key", "previous_webhook_signing_key")
            return VerificationSecrets(hmac_keys=(*(k for k in own if k), *app_keys))
        if scheme is WebhookScheme.SLACK:
            return VerificationSecrets(
                hmac_keys=text_values(app, "signing_secret", "previous_signing_secret")
            )
        if scheme is WebhookScheme.HUBSPOT:
            return VerificationSecrets(hmac_keys=text_values(app, "client_secret", "previous_client_secret"))
        if scheme is WebhookScheme.GHL:
            return VerificationSecrets(
                ed25519_public_keys=text_values(app, "webhook_public_key", "previous_webhook_public_key"),
                rsa_public_keys=text_values(
                    app, "legacy_webhook_public_key", "previous_legacy_webhook_public_key"
                ),
            )
        if scheme is WebhookScheme.PUBSUB_PUSH:
            return VerificationSecrets(
                jwks=self._jwks.key_set(app),
                audiences=text_values(app, "audience", "previous_audience"),
                service_account_emails=text_values(
                    app, "service_account_email", "previous_service_account_email"
                ),
            )
        return VerificationSecrets()

    def _verify(self, request: WebhookRequest, secrets: VerificationSecrets) -> None:
        try:
            verify_request(request, secrets, self._clock(), self._verifiers)
        except SignatureInvalid as refused:
            self._log.info(
                "webhook refused", extra={"provider": request.provider, "reason": refused.failure.value}
            )
            raise _Refused(UNAUTHORIZED) from None
        except MalformedPayload:
            raise _Refused(BAD_REQUEST) from None
        except DependencyUnavailable:
            raise
        except Exception:
            # A verifier bug must fail closed, and a sender must never see it as a 5xx.
            self._log.exception(
                "webhook verification failed unexpectedly", extra={"provider": request.provider}
            )
            raise _Refused(UNAUTHORIZED) from None

    def _parse(self, request: WebhookRequest) -> parsing.ParsedWebhook:
        try:
            return parsing.parse_request(request)
        except MalformedPayload:
            self._log.info("webhook body malformed", extra={"provider": request.provider})
            raise _Refused(BAD_REQUEST) from None
        except Exception:
            self._log.exception("webhook parsing failed unexpectedly", extra={"provider": request.provider})
            raise _Refused(BAD_REQUEST) from None

    def _route(self, request: WebhookRequest, key: RoutingKey, material: _Material) -> Lookup | None:
        # Reuse what verification read: a delivery must route to the very item that verified it.
        if key in material.lookups:
            return material.lookups[key]
        return self._lookup(request, key)

    def _claim(self, delivery: Delivery, lookup: Lookup, request: WebhookRequest) -> bool:
        try:
            return self._ledger.claim(
                request.provider, delivery.event_id, self._clock(), lookup.connection_id
            )
        except DependencyUnavailable:
            raise DependencyUnavailable("The delivery ledger is unavailable.") from None

    def _dispatch(self, request: WebhookRequest, delivery: Delivery, lookup: Lookup) -> None:
        """Queue the delivery's job (or publish its event); on failure undo the claim and refuse."""
        try:
            if delivery.event_type == "call_requested" and request.scheme is WebhookScheme.GHL_WORKFLOW:
                self._events.publish(_call_requested(request, delivery, lookup))
            else:
                self._jobs.send(_job(request, delivery, lookup))
        except Exception:
            self._log.exception(
                "webhook not queued", extra={"provider": request.provider, "event_id": delivery.event_id}
            )
            try:
                self._ledger.release(request.provider, delivery.event_id)
            except Exception:
                # The claim stays: a redelivery would be dropped. Logged with the id so it can be replayed.
                self._log.exception(
                    "webhook claim not released",
                    extra={"provider": request.provider, "event_id": delivery.event_id},
                )
            raise _Refused(self._retry_later(request)) from None

    def _confirm(self, request: WebhookRequest, delivery: Delivery) -> None:
        try:
            self._ledger.confirm(request.provider, delivery.event_id)
        except Exception:
            # The job is queued; an unconfirmed claim only lets a late redelivery queue it once more.
            self._log.warning(
                "webhook claim not confirmed",
                extra={"provider": request.provider, "event_id": delivery.event_id},
            )

    # ------------------------------------------------------------------ helpers

    def _lookup(self, request: WebhookRequest, key: RoutingKey) -> Lookup | None:
        try:
            return self._lookups.get_lookup(request.provider, lookup_kind(key.kind), key.value)
        except DependencyUnavailable:
            raise DependencyUnavailable("Lookup items are unavailable.") from None

    def _open_signing_key(self, lookup: Lookup) -> str | None:
        ciphertext = lookup.attributes.get(Attr.SIGNING_KEY_CIPHERTEXT)
        if not ciphertext or self._signing_keys is None:
            return None
        return self._signing_keys.open(lookup, ciphertext)

    @staticmethod
    def _retry_later(request: WebhookRequest) -> WebhookAnswer:
        status = RETRY_STATUS.get(request.provider, DEFAULT_RETRY_STATUS)
        return WebhookAnswer.of_json(status, {"message": "Try again later"}, **{"Retry-After": "5"})

    @staticmethod
    def _route_log(request: WebhookRequest, material: _Material) -> dict[str, Any]:
        first = next(iter(material.lookups), None)
        extra: dict[str, Any] = {"provider": request.provider}
        if first is not None:
            extra.update(_routing_log(first))
        return extra


def _has_keys(secrets: VerificationSecrets) -> bool:
    """Whether anything at all could verify a request (any key, token, digest or key set)."""
    return bool(
        secrets.hmac_keys
        or secrets.channel_tokens
        or secrets.channel_token_hashes
        or any(secrets.client_states.values())
        or any(secrets.client_state_hashes.values())
        or secrets.ed25519_public_keys
        or secrets.rsa_public_keys
        or secrets.jwks
    )


def _routing_log(key: RoutingKey) -> dict[str, str]:
    value = "(not logged)" if key.kind in _UNLOGGED_VALUES else key.value[:256]
    return {"routing_kind": key.kind.value, "routing_value": value}


def _job(request: WebhookRequest, delivery: Delivery, lookup: Lookup) -> SyncJob:
    return SyncJob(
        kind=JOB_KINDS.get(delivery.event_type, JobKind.SYNC),
        connection_id=lookup.connection_id,
        provider=request.provider,
        hint={
            "source": "webhook",
            "event_type": delivery.event_type,
            "event_id": delivery.event_id,
            **delivery.hint,
        },
        received_at=request.received_at,
    )


def _call_requested(request: WebhookRequest, delivery: Delivery, lookup: Lookup) -> CallRequested:
    call = parsing.CallRequested.model_validate(delivery.hint)
    return CallRequested(
        connection_id=lookup.connection_id,
        provider=request.provider,
        agency_id=lookup.agency_id,
        client_id=lookup.client_id,
        contact_id=call.contact_id,
        phone=call.phone,
        name=call.name,
        email=call.email,
        workflow_id=call.workflow_id,
        received_at=request.received_at,
    )
