"""The composition root: every adapter of one process, built on first use, at the edge.

A function's module scope builds one `Container` from validated settings; handlers ask it for the
service they run (`webhook_receiver`, `oauth_service`, ...). Each adapter is built the first time
something needs it, and its module is imported only then: a webhook receiver never imports what
only OAuth needs, and no AWS client is created before the first request. Tests build their own
container (or replace one of its cached adapters) to swap in fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from integrations.config import Settings, TokenStorage
from integrations.domain.clock import utcnow

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.catalog import Catalog, ProviderSpec
    from integrations.connections.apply import ConnectionTransitions, SyncState
    from integrations.connections.connect import Connector
    from integrations.connections.disconnect import Disconnector
    from integrations.connections.served import ServedAccounts
    from integrations.domain.connection import Connection, MailLogged
    from integrations.domain.credentials import AppCredentials, Credentials
    from integrations.events import PlatformEvent
    from integrations.mail.inbound import InboundMail
    from integrations.mail.ports import MailLogger
    from integrations.metrics import Counter
    from integrations.oauth.apps import AppCredentialStore
    from integrations.oauth.revocation import GrantRevoker
    from integrations.oauth.service import OAuthService
    from integrations.oauth.tokens import TokenManager
    from integrations.portal.service import PortalService
    from integrations.store.agencies import AgencyRepository
    from integrations.store.app_secrets import SecretsManagerAppSecrets
    from integrations.store.appointments import AppointmentProjection
    from integrations.store.bus import EventBridgePublisher
    from integrations.store.connections import ConnectionRepository
    from integrations.store.crm import DynamoCrmStore
    from integrations.store.delivery_ledger import DynamoDeliveryLedger
    from integrations.store.due import DynamoDueConnections
    from integrations.store.leases import DynamoLeases
    from integrations.store.mail_contacts import DynamoMailContacts
    from integrations.store.mail_sends import DynamoMailSends
    from integrations.store.mirror import DynamoMirror
    from integrations.store.oauth_sessions import DynamoSessionStore
    from integrations.store.outbox import DynamoOutbox
    from integrations.store.queue import SqsDeadLetters, SqsJobQueue
    from integrations.store.signing_keys import KmsSigningKeyBox
    from integrations.store.vault import TokenVault
    from integrations.sync.appointments import AppointmentPusher
    from integrations.sync.availability import AvailabilityService
    from integrations.sync.booking import BookingService
    from integrations.sync.contacts import CrmSync
    from integrations.sync.controls import SyncControls
    from integrations.sync.crm_sources import ProviderCrms
    from integrations.sync.crm_steps import CrmSteps
    from integrations.sync.jobs import SyncJob
    from integrations.sync.links import SchedulingLinks
    from integrations.sync.mail_send import MailSender
    from integrations.sync.mail_sources import ProviderMailboxes
    from integrations.sync.mail_steps import MailSteps
    from integrations.sync.notifications import Notifier
    from integrations.sync.push_existing import PushExisting
    from integrations.sync.pushing import PushSteps
    from integrations.sync.runner import SyncRunner
    from integrations.sync.scheduler import SyncScheduler
    from integrations.sync.sources import ProviderCalendars
    from integrations.sync.steps import StepContext, StepRunner
    from integrations.sync.worker import SubscriptionRepair, SyncWorker
    from integrations.webhooks.receiver import WebhookReceiver
    from integrations.webhooks.subscriptions import SubscriptionContext


class Container:
    """Every adapter of one process, each built once, on first use (`cached_property`)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    def forget_connections(self) -> None:
        """Drop every AWS client and the adapters holding one; the next use builds them afresh.

        After a SnapStart restore, clients made before the snapshot would share pooled connections
        and the snapshot's credentials across every environment resumed from it.
        """
        from integrations import aws

        aws.reset_clients()
        for name, value in vars(type(self)).items():
            if isinstance(value, cached_property) and name != "catalog":
                self.__dict__.pop(name, None)

    # --- stores (store/) ---

    @cached_property
    def catalog(self) -> Catalog:
        from integrations.catalog import load_catalog

        return load_catalog()

    @cached_property
    def connections(self) -> ConnectionRepository:
        from integrations import aws
        from integrations.store.connections import ConnectionRepository

        return ConnectionRepository(aws.dynamodb(), self.settings.table_name)

    @cached_property
    def agencies(self) -> AgencyRepository:
        from integrations import aws
        from integrations.store.agencies import AgencyRepository

        return AgencyRepository(aws.dynamodb(), self.settings.table_name)

    @cached_property
    def vault(self) -> TokenVault:
        return build_vault(self.settings)

    @cached_property
    def events(self) -> EventBridgePublisher:
        from integrations import aws
        from integrations.store.bus import EventBridgePublisher

        return EventBridgePublisher(aws.events(), self.settings.event_bus_name)

    @cached_property
    def jobs(self) -> SqsJobQueue:
        from integrations import aws
        from integrations.store.queue import SqsJobQueue

        return SqsJobQueue(aws.sqs(), self.settings.sync_queue_url)

    @cached_property
    def app_secrets(self) -> SecretsManagerAppSecrets:
        from integrations import aws
        from integrations.store.app_secrets import SecretsManagerAppSecrets

        return SecretsManagerAppSecrets(
            aws.secretsmanager(), self.settings.app_secret_prefix, self.settings.agency_app_secret_prefix
        )

    @cached_property
    def signing_keys(self) -> KmsSigningKeyBox:
        from integrations import aws
        from integrations.store.signing_keys import KmsSigningKeyBox

        return KmsSigningKeyBox(aws.kms(), self.settings.kms_key_id)

    @cached_property
    def delivery_ledger(self) -> DynamoDeliveryLedger:
        from integrations import aws
        from integrations.store.delivery_ledger import DynamoDeliveryLedger

        return DynamoDeliveryLedger(aws.dynamodb(), self.settings.state_table_name)

    @cached_property
    def oauth_sessions(self) -> DynamoSessionStore:
        from integrations import aws
        from integrations.store.oauth_sessions import DynamoSessionStore

        return DynamoSessionStore(aws.dynamodb(), self.settings.state_table_name, self.clock)

    @cached_property
    def leases(self) -> DynamoLeases:
        from integrations import aws
        from integrations.store.leases import DynamoLeases

        return DynamoLeases(aws.dynamodb(), self.settings.state_table_name)

    def leases_for(self, purpose: str) -> DynamoLeases:
        """Per-connection leases of one purpose ("sync" runs, appointment "push"es)."""
        from integrations import aws
        from integrations.store.leases import DynamoLeases

        return DynamoLeases(aws.dynamodb(), self.settings.state_table_name, purpose)

    @cached_property
    def mirror(self) -> DynamoMirror:
        """Calendar mirrors and pushed-event mappings (SyncTable)."""
        from integrations import aws
        from integrations.store.mirror import DynamoMirror

        return DynamoMirror(aws.dynamodb(), self.settings.sync_table_name)

    @cached_property
    def appointments(self) -> AppointmentProjection:
        from integrations import aws
        from integrations.store.appointments import AppointmentProjection

        return AppointmentProjection(aws.dynamodb(), self.settings.sync_table_name)

    @cached_property
    def crm_store(self) -> DynamoCrmStore:
        """Platform contacts, their CRM copies, the CRM contact mirror and logged calls (SyncTable)."""
        from integrations import aws
        from integrations.store.crm import DynamoCrmStore

        return DynamoCrmStore(aws.dynamodb(), self.settings.sync_table_name)

    @cached_property
    def dead_letters(self) -> SqsDeadLetters | None:
        from integrations import aws
        from integrations.store.queue import SqsDeadLetters

        url = self.settings.sync_dead_letter_queue_url
        return SqsDeadLetters(aws.sqs(), url) if url else None

    @cached_property
    def due_connections(self) -> DynamoDueConnections:
        from integrations import aws
        from integrations.store.due import DynamoDueConnections

        return DynamoDueConnections(aws.dynamodb(), self.settings.table_name)

    @cached_property
    def counter(self) -> Counter:
        """Outcome counts as CloudWatch embedded metrics (the namespace comes from the environment)."""
        from integrations.metrics import EmfCounter

        return EmfCounter()

    # --- what the stores serve ---

    @cached_property
    def apps(self) -> AppCredentialStore:
        from integrations.oauth.apps import AppCredentialStore

        return AppCredentialStore(self.app_secrets, clock=self.clock)

    @cached_property
    def token_manager(self) -> TokenManager:
        from integrations.oauth.tokens import TokenManager

        return TokenManager(
            catalog=self.catalog,
            connections=self.connections,
            vault=self.vault,
            events=self.events,
            apps=self.apps,
            leases=self.leases,
            clock=self.clock,
            counter=self.counter,
        )

    @cached_property
    def subscriptions(self) -> SubscriptionContext:
        from integrations.webhooks.subscriptions import SubscriptionContext

        return SubscriptionContext(
            public_api_url=self.settings.public_api_url,
            signing_keys=self.signing_keys,
            app_secrets=self.app_secrets,
            clock=self.clock,
        )

    @cached_property
    def transitions(self) -> ConnectionTransitions:
        from integrations.connections.apply import ConnectionTransitions

        return ConnectionTransitions(self.connections, self.events, self.clock)

    @cached_property
    def sync_state(self) -> SyncState:
        from integrations.connections.apply import SyncState

        return SyncState(self.connections, self.transitions)

    # Credentials as ports: the token manager and the app store import the HTTP stack, which a
    # request that never needs a token must not pay for, so they are built on the first call.

    def fresh_credentials(self, connection: Connection) -> Credentials:
        """Usable credentials for the connection, refreshed first when they are about to expire."""
        return self.token_manager.credentials(connection)

    def app_credentials(self, spec: ProviderSpec, agency_id: str) -> AppCredentials | None:
        """The OAuth app the agency's connections of `spec` use, None when there is none."""
        return self.apps.for_agency(spec, agency_id)

    # --- the connection lifecycle ---

    @cached_property
    def connector(self) -> Connector:
        from integrations.connections.connect import build_connector

        return build_connector(
            catalog=self.catalog,
            connections=self.connections,
            agencies=self.agencies,
            vault=self.vault,
            transitions=self.transitions,
            jobs=self.jobs,
            subscriptions=self.subscriptions,
            inbound_email_domain=self.settings.inbound_email_domain,
            clock=self.clock,
            revoke=self.revoke_grant,
            retire=lambda connection: self.disconnector.disconnect(connection),  # noqa: PLW0108 - built lazily
        )

    @cached_property
    def disconnector(self) -> Disconnector:
        from integrations.connections.disconnect import Disconnector

        return Disconnector(
            catalog=self.catalog,
            connections=self.connections,
            vault=self.vault,
            events=self.events,
            fresh_credentials=self.fresh_credentials,
            app_credentials=self.app_credentials,
            subscriptions=self.subscriptions,
            revoke=self.revoke_grant,
        )

    @cached_property
    def revoke_grant(self) -> GrantRevoker:
        from integrations.oauth.revocation import GrantRevoker

        return GrantRevoker()

    # --- the services each function runs ---

    @cached_property
    def oauth_service(self) -> OAuthService:
        from integrations.oauth.service import OAuthService

        return OAuthService(
            catalog=self.catalog,
            sessions=self.oauth_sessions,
            apps=self.apps,
            connector=self.connector,
            public_api_url=self.settings.public_api_url,
            allowed_return_origins=self.settings.allowed_return_origins,
            clock=self.clock,
        )

    def portal_service(self, logger: Logger) -> PortalService:
        """The portal's use cases over the shared adapters."""
        from integrations.portal.service import PortalService

        return PortalService(
            catalog=self.catalog,
            connections=self.connections,
            agencies=self.agencies,
            transitions=self.transitions,
            fresh_credentials=self.fresh_credentials,
            disconnector=self.disconnector,
            sync_controls=lambda: self.sync_controls,
            clock=self.clock,
            logger=logger,
            subscriptions=lambda: self.subscriptions,
            served=lambda: self.served_accounts,
            public_api_url=self.settings.public_api_url,
        )

    @cached_property
    def served_accounts(self) -> ServedAccounts:
        from integrations.connections.served import ServedAccounts

        return ServedAccounts(
            catalog=self.catalog,
            connections=self.connections,
            connector=lambda: self.connector,
            disconnector=lambda: self.disconnector,
            fresh_credentials=self.fresh_credentials,
            clock=self.clock,
        )

    def webhook_receiver(self, logger: Logger) -> WebhookReceiver:
        """The receiver over the stores it needs, and nothing of OAuth's."""
        from integrations.webhooks.receiver import WebhookReceiver

        return WebhookReceiver(
            lookups=self.connections,
            ledger=self.delivery_ledger,
            jobs=self.jobs,
            events=self.events,
            app_secrets=self.app_secrets,
            signing_keys=self.signing_keys,
            logger=logger,
            clock=self.clock,
        )

    @cached_property
    def mail_logger(self) -> MailLogger:
        """Logs a mail on the client's CRM contacts once per Message-ID and contact (and announces it)."""
        from integrations import aws
        from integrations.store.mail_log import DynamoMailLog
        from integrations.sync.contacts import client_crms
        from integrations.sync.mail_logging import CrmMailLogger

        return CrmMailLogger(
            contacts=self.mail_contacts,
            ledger=DynamoMailLog(aws.dynamodb(), self.settings.sync_table_name),
            mirror=self.crm_store,
            crm_connections=lambda agency_id, client_id: client_crms(
                self.connections, self.provider_crms.has_crm, agency_id, client_id
            ),
            adapter=self.provider_crms.adapter,
            publish=lambda events: self.announce(*events),
            clock=self.clock,
        )

    def inbound_mail(self, mail_logger: MailLogger | None = None) -> InboundMail:
        """Mail received at BCC logging addresses, routed by their lookup items and logged once."""
        from integrations import aws
        from integrations.catalog.model import AuthKind
        from integrations.mail.inbound import InboundConfig, InboundMail
        from integrations.providers import registry
        from integrations.store.raw_mail import S3RawMail

        # The inbound-address provider is data: the catalog entry whose auth kind says so.
        spec = next(s for s in self.catalog if s.auth is AuthKind.INBOUND_EMAIL)
        lookup_kind = registry.module_for(spec.id).inbound_lookup_kind
        if lookup_kind is None:
            raise RuntimeError(f"{spec.id} names no inbound lookup kind")
        return InboundMail(
            config=InboundConfig(
                domain=self.settings.inbound_email_domain,
                bucket=self.settings.inbound_mail_bucket,
                prefix=self.settings.inbound_mail_prefix,
                provider=spec.id,
                lookup_kind=lookup_kind,
            ),
            routes=self.connections,
            raw_mail=S3RawMail(aws.s3()),
            mail_logger=mail_logger or self.mail_logger,
            record=self._mail_logged,
            mailboxes=self.mailbox_addresses,
            team=self.team_mailbox_addresses,
            counter=self.counter,
            clock=self.clock,
        )

    def _mail_logged(self, connection_id: str, entry: MailLogged) -> None:
        self.transitions.apply(connection_id, lambda c, now: c.mail_logged(entry, now))

    def mailbox_addresses(self, connection: Connection) -> list[str]:
        """The addresses of the mailboxes connected by the same owner (catalog category `email`)."""
        from integrations.domain.authorization import Scope

        scope = Scope(connection.agency_id, connection.level, connection.client_id, connection.user_id)
        return self._mailboxes_among(connection, self.connections.list_for_scope(scope))

    def team_mailbox_addresses(self, connection: Connection) -> list[str]:
        """The addresses of the mailboxes the people of the connection's client connected."""
        if connection.client_id is None:
            return []
        people = self.connections.list_people_of_client(connection.agency_id, connection.client_id)
        return self._mailboxes_among(connection, people)

    def _mailboxes_among(self, connection: Connection, connections: list[Connection]) -> list[str]:
        from integrations.catalog.model import Category

        return [
            c.account.label.lower()
            for c in connections
            if c.id != connection.id
            and c.provider in self.catalog
            and self.catalog.get(c.provider).category is Category.EMAIL
            and "@" in c.account.label
        ]

    def sync_scheduler(self) -> SyncScheduler:
        from integrations.sync.scheduler import SyncScheduler

        return SyncScheduler(self.due_connections, self.jobs)

    # --- the sync engine ---

    def access_token(self, connection: Connection) -> str:
        return self.token_manager.access_token(connection)

    def renew_subscriptions(self, connection: Connection, before: datetime) -> int:
        """Renew the connection's push subscriptions that expire before `before`."""
        from integrations.connections.resubscribe import renew_expiring

        if connection.provider not in self.catalog:
            return 0
        return renew_expiring(
            self.catalog.get(connection.provider),
            connection,
            lambda: self.access_token(connection),
            self.subscriptions,
            self.connections,
            before=before,
        )

    def check_grant(self, connection: Connection) -> bool:
        """Ask the provider whether the grant still works, where its module offers a check."""
        from integrations.providers.registry import module_for

        module = module_for(connection.provider)
        if not module.checks_grant or connection.provider not in self.catalog:
            return False
        module.check_grant(self.catalog.get(connection.provider), self.fresh_credentials(connection))
        return True

    def refresh_grant(self, connection: Connection) -> Credentials:
        """Refresh now, whatever the expiry (maintenance keeps idle grants alive)."""
        return self.token_manager.refresh_now(connection)

    @cached_property
    def provider_calendars(self) -> ProviderCalendars:
        from integrations.sync.sources import ProviderCalendars

        return ProviderCalendars(self.catalog, self.token_manager.credentials, self.clock)

    def announce(self, *events: PlatformEvent) -> None:
        self.events.publish(*events)

    @cached_property
    def appointment_pusher(self) -> AppointmentPusher:
        from integrations.sync.announcements import appointment_pushed
        from integrations.sync.appointments import AppointmentPusher, pushing_connections

        return AppointmentPusher(
            projection=self.appointments,
            pushes=self.mirror,
            pushing_connections=lambda owner: pushing_connections(
                self.connections, self.provider_calendars, owner
            ),
            announce=lambda connection, pushed: self.announce(appointment_pushed(connection, pushed)),
            clock=self.clock,
            takes=self.provider_calendars.takes,
        )

    def stopped_by_agency(self, connection: Connection) -> bool:
        """Whether the agency's settings switched this person's connections off (one read, and only
        for personal connections: no switch touches the others)."""
        from integrations.domain.agency import personal_group

        if personal_group(connection) is None:
            return False
        return self.agencies.get(connection.agency_id).stops(connection)

    @cached_property
    def availability(self) -> AvailabilityService:
        from integrations.sync.availability import AvailabilityService
        from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES

        return AvailabilityService(
            connections=self.connections,
            calendars=self.provider_calendars,
            mirror=self.mirror,
            appointments=self.appointments,
            clock=self.clock,
            default_interval=timedelta(minutes=DEFAULT_INTERVAL_MINUTES),
            stopped_by_agency=self.stopped_by_agency,
        )

    @cached_property
    def bookings(self) -> BookingService:
        from integrations import aws
        from integrations.store.bookings import DynamoBookingLedger, owner_lock_pk, slot_pk
        from integrations.sync.booking import BookingService

        return BookingService(
            connections=self.connections,
            calendars=self.provider_calendars,
            ledger=DynamoBookingLedger(aws.dynamodb(), self.settings.state_table_name),
            pusher=self.appointment_pusher,
            pushes=self.mirror,
            appointments=self.appointments,
            enqueue=self.jobs.send_many,
            slot_key=slot_pk,
            lock_key=owner_lock_pk,
            clock=self.clock,
            publish=self.announce,
        )

    @cached_property
    def push_existing(self) -> PushExisting:
        from integrations.sync.push_existing import PushExisting

        return PushExisting(
            projection=self.appointments,
            pusher=self.appointment_pusher,
            checkpoints=self.sync_state,
            clock=self.clock,
        )

    @cached_property
    def sync_runner(self) -> SyncRunner:
        from integrations.sync.announcements import calendar_event_changed
        from integrations.sync.runner import SyncRunner

        return SyncRunner(
            connections=self.sync_state,
            leases=self.leases_for("sync"),
            mirror=self.mirror,
            pushed=self.mirror,
            publish=lambda connection, changes: self.announce(
                *(calendar_event_changed(connection, change) for change in changes)
            ),
            source=self.provider_calendars,
            clock=self.clock,
        )

    @cached_property
    def push_steps(self) -> PushSteps:
        from integrations.sync.pushing import PushSteps

        return PushSteps(
            connections=self.sync_state,
            leases=self.leases_for("push"),
            calendars=self.provider_calendars,
            pusher=self.appointment_pusher,
            replay=self.push_existing,
            clock=self.clock,
        )

    @cached_property
    def sync_controls(self) -> SyncControls:
        from integrations.sync.controls import SyncControls

        return SyncControls(
            jobs=self.jobs,
            state=self.sync_state,
            replay=self.push_existing,
            calendars=self.provider_calendars,
            clock=self.clock,
        )

    @cached_property
    def provider_crms(self) -> ProviderCrms:
        from integrations.sync.crm_sources import ProviderCrms

        # fresh_credentials builds the token manager (and its HTTP stack) only when an adapter asks.
        return ProviderCrms(self.catalog, self.fresh_credentials, self.clock)

    @cached_property
    def crm_sync(self) -> CrmSync:
        from integrations.sync.contacts import CrmSync, client_crms

        return CrmSync(
            state=self.crm_store,
            crm_connections=lambda agency_id, client_id: client_crms(
                self.connections, self.provider_crms.has_crm, agency_id, client_id
            ),
            publish=lambda changes: self.announce(*changes),
            clock=self.clock,
        )

    @cached_property
    def crm_steps(self) -> CrmSteps:
        from integrations.sync.crm_steps import CrmSteps

        return CrmSteps(
            connections=self.sync_state,
            sync_leases=self.leases_for("sync"),
            write_leases=self.leases_for("push"),
            adapters=self.provider_crms,
            crm=self.crm_sync,
            clock=self.clock,
            publish=lambda events: self.announce(*events),
        )

    def replace_stale_subscriptions(self, connection: Connection) -> int:
        """Replace the connection's push subscriptions its provider stopped delivering to."""
        from integrations.connections.resubscribe import replace_stale
        from integrations.sync.notices import RecreationOnCard

        return replace_stale(
            self.catalog.get(connection.provider),
            connection,
            lambda: self.access_token(connection),
            self.subscriptions,
            self.connections,
            RecreationOnCard(self.sync_state, self.clock),
        )

    @cached_property
    def subscription_repair(self) -> SubscriptionRepair:
        """Work on one subscription a provider named in a lifecycle notification."""
        from integrations.connections.subscription_repair import SubscriptionRepairs
        from integrations.sync.notices import RecreationOnCard

        return SubscriptionRepairs(
            catalog=self.catalog,
            access_token=self.access_token,
            context=lambda: self.subscriptions,
            repository=self.connections,
            notice=RecreationOnCard(self.sync_state, self.clock),
        )

    def step_context(
        self, connection: Connection, spec: ProviderSpec, job: SyncJob, remaining_ms: Callable[[], int]
    ) -> StepContext:
        """The ports a provider step runs with, for one job."""
        from integrations.sync.steps import StepContext

        return StepContext(
            connection=connection,
            spec=spec,
            job=job,
            access_token=lambda: self.access_token(connection),
            publish=lambda events: self.announce(*events),
            ledger=self.delivery_ledger,
            replace_stale_subscriptions=lambda: self.replace_stale_subscriptions(connection),
            save_cursor=lambda key, value: self._save_cursor(connection.id, key, value),
            clock=self.clock,
            outbox=self.outbox,
            remaining_ms=remaining_ms,
        )

    def _save_cursor(self, connection_id: str, key: str, value: object) -> None:
        now = self.clock()
        self.sync_state.apply(connection_id, lambda c: c.cursor_saved(key, value, now))

    @cached_property
    def step_runner(self) -> StepRunner:
        from integrations.sync.steps import StepRunner

        return StepRunner(
            connections=self.sync_state,
            catalog=self.catalog,
            context=self.step_context,
            leases=self.leases_for("deliver"),
            clock=self.clock,
        )

    @cached_property
    def scheduling_links(self) -> SchedulingLinks:
        """Single-use scheduling links for the internal API."""
        from integrations.sync.links import SchedulingLinks

        return SchedulingLinks(
            catalog=self.catalog,
            connections=self.sync_state,
            access_token=self.access_token,
            clock=self.clock,
        )

    @cached_property
    def outbox(self) -> DynamoOutbox:
        """Notifications waiting for delivery (SyncTable)."""
        from integrations import aws
        from integrations.store.outbox import DynamoOutbox

        return DynamoOutbox(aws.dynamodb(), self.settings.sync_table_name)

    @cached_property
    def notifier(self) -> Notifier:
        from integrations.sync.notifications import Notifier
        from integrations.sync.steps import step_for

        return Notifier(
            connections=self.connections,
            outbox=self.outbox,
            step_for=step_for,
            clock=self.clock,
            notices=self.sync_state,
            counter=self.counter,
        )

    # --- mail ---

    @cached_property
    def mail_contacts(self) -> DynamoMailContacts:
        """Who among a mail's addresses is the client's contact (the contacts-by-address directory)."""
        from integrations import aws
        from integrations.store.mail_contacts import DynamoMailContacts

        return DynamoMailContacts(aws.dynamodb(), self.settings.sync_table_name)

    @cached_property
    def provider_mailboxes(self) -> ProviderMailboxes:
        from integrations.sync.mail_sources import ProviderMailboxes

        return ProviderMailboxes(self.catalog, self.fresh_credentials, self.clock)

    @cached_property
    def mail_sends(self) -> DynamoMailSends:
        """One record per Email Send Requested (SyncTable)."""
        from integrations import aws
        from integrations.store.mail_sends import DynamoMailSends

        return DynamoMailSends(aws.dynamodb(), self.settings.sync_table_name)

    @cached_property
    def mail_sender(self) -> MailSender:
        from integrations.sync.mail_attachments import download_all
        from integrations.sync.mail_send import MailSender

        return MailSender(
            records=self.mail_sends,
            connections=self.sync_state,
            scopes=self.connections,
            mailboxes=self.provider_mailboxes,
            contacts=self.mail_contacts,
            logger=self.mail_logger,
            ledger=self.delivery_ledger,
            publish=lambda events: self.announce(*events),
            download=download_all,
            clock=self.clock,
        )

    @cached_property
    def mail_steps(self) -> MailSteps:
        from integrations.sync.mail_steps import MailSteps

        return MailSteps(
            connections=self.sync_state,
            leases=self.leases_for("sync"),
            mailboxes=self.provider_mailboxes,
            contacts=self.mail_contacts,
            logger=self.mail_logger,
            ledger=self.delivery_ledger,
            publish=lambda events: self.announce(*events),
            sender=self.mail_sender,
            clock=self.clock,
        )

    def sync_worker(self, logger: Logger) -> SyncWorker:
        """The worker over the sync engine's adapters."""
        from integrations.sync.maintenance import Maintenance
        from integrations.sync.steps import step_for
        from integrations.sync.worker import SyncWorker

        return SyncWorker(
            connections=self.sync_state,
            runner=self.sync_runner,
            pushes=self.push_steps,
            maintenance=Maintenance(
                refresh=self.refresh_grant,
                renew=self.renew_subscriptions,
                clock=self.clock,
                check_grant=self.check_grant,
                connections=self.sync_state,
            ),
            jobs=self.jobs,
            dead_letters=self.dead_letters,
            clock=self.clock,
            logger=logger,
            crm=self.crm_steps,
            steps=self.step_runner,
            step_for=step_for,
            stopped_by_agency=self.stopped_by_agency,
            mail=self.mail_steps,
            subscriptions=self.subscription_repair,
        )


def build_vault(settings: Settings) -> TokenVault:
    """The token vault the settings choose (KMS-encrypted items, or one secret per connection)."""
    from integrations import aws
    from integrations.store.vault import KmsTokenVault, SecretsManagerTokenVault

    if settings.token_storage is TokenStorage.SECRETS_MANAGER:
        return SecretsManagerTokenVault(aws.secretsmanager(), settings.stage, settings.kms_key_id or None)
    return KmsTokenVault(aws.dynamodb(), aws.kms(), settings.table_name, settings.kms_key_id)


__all__ = ["Container", "build_vault"]
