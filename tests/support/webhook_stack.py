"""The webhooks function over moto: app secrets with current and previous keys, known accounts, and
what ended up queued or claimed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3

from infra.local.resources import LocalResources
from infra.local.sandbox.keys import APP_CREDENTIALS, GOOGLE_KEY_ID
from integrations import aws
from integrations.domain.connection import Connection
from integrations.domain.lookup import Lookup
from integrations.providers.calendly import webhook as calendly_webhook
from integrations.providers.ghl import webhook as ghl_webhook
from integrations.providers.gmail import webhook as gmail_webhook
from integrations.providers.google_calendar import webhook as google_calendar_webhook
from integrations.providers.hubspot import webhook as hubspot_webhook
from integrations.providers.outlook_calendar import webhook as outlook_calendar_webhook
from integrations.providers.slack import webhook as slack_webhook
from integrations.store.signing_keys import KmsSigningKeyBox
from integrations.webhooks.routing import Attr, make_lookup
from integrations.webhooks.signatures import secret_digest
from tests.support import seed, signing
from tests.support.functions import load_handler
from tests.support.webhooks import Push

PREVIOUS_KID = "previous-google-kid"


@dataclass(frozen=True)
class Keys:
    """Current (the local stack's), previous (rotated out, still accepted) and wrong keys."""

    ghl_previous: signing.KeyPair
    ghl_wrong: signing.KeyPair
    google_previous: signing.KeyPair
    google_wrong: signing.KeyPair
    slack_previous: str = "previous-slack-signing-secret"
    hubspot_previous: str = "previous-hubspot-client-secret"
    calendly_subscription_key: str = "subscription-signing-key-current"
    calendly_previous_app_key: str = "calendly-app-signing-key-previous"


_KEYS: Keys | None = None


def keys() -> Keys:
    global _KEYS
    if _KEYS is None:
        _KEYS = Keys(
            ghl_previous=signing.generate_ed25519_keypair(),
            ghl_wrong=signing.generate_ed25519_keypair(),
            google_previous=signing.generate_rsa_keypair(),
            google_wrong=signing.generate_rsa_keypair(),
        )
    return _KEYS


def app_secret_values() -> dict[str, dict[str, Any]]:
    """Each app secret as the deployed one looks during a rotation: current and previous keys."""
    k = keys()
    sandbox = APP_CREDENTIALS
    google_public = sandbox["pubsub"]["public_key"]
    return {
        "slack": {
            "signing_secret": sandbox["slack"]["signing_secret"],
            "previous_signing_secret": k.slack_previous,
        },
        "hubspot": {
            "client_id": sandbox["hubspot"]["client_id"],
            "client_secret": sandbox["hubspot"]["client_secret"],
            "previous_client_secret": k.hubspot_previous,
        },
        "calendly": {"webhook_signing_key": "", "previous_webhook_signing_key": k.calendly_previous_app_key},
        "ghl": {
            "webhook_public_key": sandbox["ghl"]["webhook_public_key"],
            "previous_webhook_public_key": k.ghl_previous.public_pem,
            "legacy_webhook_public_key": "",
        },
        "pubsub": {
            "audience": sandbox["pubsub"]["audience"],
            "service_account_email": sandbox["pubsub"]["service_account_email"],
            "jwks": signing.jwks(
                signing.rsa_public_jwk(google_public, GOOGLE_KEY_ID),
                signing.rsa_public_jwk(k.google_previous.public_pem, PREVIOUS_KID),
            ),
            "jwks_url": "",
            "topic_name": "projects/sandbox-project/topics/gmail",
        },
    }


@dataclass
class WebhookStack:
    """The loaded function and its AWS resources."""

    resources: LocalResources
    app: ModuleType
    lambda_context: Any
    connections: dict[str, Connection] = field(default_factory=dict)

    def send(self, push: Push) -> dict[str, Any]:
        answer: dict[str, Any] = self.app.handler(push.event(), self.lambda_context)
        return answer

    def send_event(self, event: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.app.handler(event, self.lambda_context)
        return answer

    # --- what happened ---

    def queued(self) -> list[dict[str, Any]]:
        """Every job on the sync queue (read without consuming: visibility stays 0)."""
        sqs = boto3.client("sqs")
        url = self.resources.sync_queue_url
        count = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        if not count:
            return []
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in found.get("Messages", [])]

    def queued_count(self) -> int:
        sqs = boto3.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.resources.sync_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def claims(self) -> list[str]:
        """Delivery ids claimed in the state table."""
        items = boto3.client("dynamodb").scan(TableName=self.resources.state_table).get("Items", [])
        return sorted(i["pk"]["S"] for i in items if i["pk"]["S"].startswith("WEBHOOK#"))

    def purge(self) -> None:
        boto3.client("sqs").purge_queue(QueueUrl=self.resources.sync_queue_url)
        db = boto3.client("dynamodb")
        for pk in self.claims():
            db.delete_item(TableName=self.resources.state_table, Key={"pk": {"S": pk}})

    # --- known accounts ---

    def connect(self, provider: str, lookups: list[tuple[str, str, dict[str, str]]]) -> Connection:
        """A connection of `provider` with lookup items (kind, value, attributes)."""
        connection = seed.connection(provider=provider)
        items: list[Lookup] = [
            make_lookup(connection, kind, value, **attrs) for kind, value, attrs in lookups
        ]
        repository, _ = seed.repositories()
        repository.put_lookups(connection, items)
        fresh = repository.get(connection.id)
        assert fresh is not None
        self.connections[provider] = fresh
        return fresh

    def sealed(self, connection: Connection, signing_key: str) -> str:
        return KmsSigningKeyBox(aws.kms(), self.resources.kms_key_id).seal(connection, signing_key)


def put_app_secrets(resources: LocalResources) -> None:
    client = boto3.client("secretsmanager")
    prefix = f"{resources.stage}/integrations/apps/"
    for app, fields in app_secret_values().items():
        client.put_secret_value(SecretId=prefix + app, SecretString=json.dumps(fields))


def start(resources: LocalResources, lambda_context: Any) -> WebhookStack:
    """App secrets written, then the function loaded (its clients are built inside the mock)."""
    put_app_secrets(resources)
    return WebhookStack(resources=resources, app=load_handler("webhooks"), lambda_context=lambda_context)


def known_accounts(stack: WebhookStack, ids: dict[str, str]) -> None:
    """One connection per provider, routed by the ids the sample pushes name."""
    k = keys()
    stack.connect("slack", [(slack_webhook.LOOKUP_TEAM, ids["slack_team"], {})])
    stack.connect("hubspot", [(hubspot_webhook.LOOKUP_PORTAL, ids["hubspot_portal"], {})])
    stack.connect("ghl", [(ghl_webhook.LOOKUP_LOCATION, ids["ghl_location"], {})])
    stack.connect("gmail", [(gmail_webhook.LOOKUP_EMAIL, ids["gmail_address"], {})])
    calendly = stack.connect("calendly", [])
    repository, _ = seed.repositories()
    repository.put_lookups(
        calendly,
        [
            make_lookup(
                calendly,
                calendly_webhook.LOOKUP_SUBSCRIPTION,
                ids["calendly_subscription"],
                **{Attr.SIGNING_KEY_CIPHERTEXT: stack.sealed(calendly, k.calendly_subscription_key)},
            )
        ],
    )
    stack.connect(
        "google_calendar",
        [
            (
                google_calendar_webhook.LOOKUP_CHANNEL,
                ids["google_channel"],
                {
                    Attr.TOKEN_SHA256: secret_digest(ids["google_token"]),
                    Attr.PREVIOUS_TOKEN_SHA256: secret_digest("previous-" + ids["google_token"]),
                    Attr.RESOURCE_ID: ids["google_resource"],
                },
            )
        ],
    )
    stack.connect(
        "outlook_calendar",
        [
            (
                outlook_calendar_webhook.LOOKUP_SUBSCRIPTION,
                ids["graph_subscription"],
                {
                    Attr.CLIENT_STATE_SHA256: secret_digest(ids["graph_client_state"]),
                    Attr.PREVIOUS_CLIENT_STATE_SHA256: secret_digest("previous-" + ids["graph_client_state"]),
                },
            )
        ],
    )
