"""The token vault (design §5): credentials encrypted per tenant, behind one interface, two backends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from integrations.domain.credentials import Credentials
from integrations.store import keys
from integrations.store.dynamo import to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from integrations.domain.connection import Connection

_unavailable = unavailable_on_aws_error("The token vault")


@dataclass(frozen=True, slots=True)
class CredentialRef:
    """Which tenant and connection a credential belongs to; it is also the encryption context."""

    agency_id: str
    client_id: str | None
    connection_id: str

    def encryption_context(self) -> dict[str, str]:
        return {
            "agency_id": self.agency_id,
            "client_id": self.client_id or keys.NONE,
            "connection_id": self.connection_id,
        }


def credential_ref(connection: Connection) -> CredentialRef:
    """The vault reference (and encryption context) of a connection's credentials."""
    return CredentialRef(connection.agency_id, connection.client_id, connection.id)


class TokenVault(Protocol):
    def put(self, ref: CredentialRef, credentials: Credentials) -> None: ...

    def get(self, ref: CredentialRef) -> Credentials | None: ...

    def delete(self, ref: CredentialRef) -> None: ...


class CredentialsUnreadable(RuntimeError):
    """Stored credentials cannot be decrypted for this tenant (wrong context, tampered, or key gone)."""


class KmsTokenVault:
    """Credentials as KMS ciphertext in the connection's CREDENTIALS item.

    The encryption context names agency, client and connection, so ciphertext copied to another
    tenant's item does not decrypt there.
    """

    def __init__(self, dynamodb: DynamoDBClient, kms: KMSClient, table_name: str, key_id: str) -> None:
        self._db = dynamodb
        self._kms = kms
        self._table = table_name
        self._key_id = key_id

    @_unavailable
    def put(self, ref: CredentialRef, credentials: Credentials) -> None:
        plaintext = json.dumps(credentials.reveal(), separators=(",", ":")).encode()
        # Credentials are a few KB at most: within KMS's 4 KB direct-encrypt limit.
        ciphertext = self._kms.encrypt(
            KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=ref.encryption_context()
        )["CiphertextBlob"]
        self._db.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "pk": keys.connection_pk(ref.connection_id),
                    "sk": keys.CREDENTIALS_SK,
                    "agency_id": ref.agency_id,
                    "ciphertext": ciphertext,
                }
            ),
        )

    @_unavailable
    def get(self, ref: CredentialRef) -> Credentials | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=to_values({"pk": keys.connection_pk(ref.connection_id), "sk": keys.CREDENTIALS_SK}),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if not item:
            return None
        try:
            plaintext = self._kms.decrypt(
                CiphertextBlob=item["ciphertext"]["B"], EncryptionContext=ref.encryption_context()
            )["Plaintext"]
        except ClientError as exc:
            raise CredentialsUnreadable("credentials cannot be decrypted for this connection") from exc
        return Credentials.model_validate(json.loads(plaintext))

    @_unavailable
    def delete(self, ref: CredentialRef) -> None:
        self._db.delete_item(
            TableName=self._table,
            Key=to_values({"pk": keys.connection_pk(ref.connection_id), "sk": keys.CREDENTIALS_SK}),
        )


class SecretsManagerTokenVault:
    """One secret per connection, `<stage>/integrations/tokens/<agency>/<client or agency>/<connection>`.

    The secret's name carries the tenant; a reference for another tenant names another secret.
    """

    def __init__(self, client: SecretsManagerClient, stage: str, kms_key_id: str | None = None) -> None:
        self._sm = client
        self._stage = stage
        self._kms_key_id = kms_key_id

    def name(self, ref: CredentialRef) -> str:
        owner = ref.client_id or "agency"
        return f"{self._stage}/integrations/tokens/{ref.agency_id}/{owner}/{ref.connection_id}"

    @_unavailable
    def put(self, ref: CredentialRef, credentials: Credentials) -> None:
        secret = json.dumps(credentials.reveal(), separators=(",", ":"))
        try:
            self._sm.put_secret_value(SecretId=self.name(ref), SecretString=secret)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            kwargs: dict[str, Any] = {
                "Name": self.name(ref),
                "SecretString": secret,
                "Tags": [
                    {"Key": "agency_id", "Value": ref.agency_id},
                    {"Key": "connection_id", "Value": ref.connection_id},
                ],
            }
            if self._kms_key_id:
                kwargs["KmsKeyId"] = self._kms_key_id
            self._sm.create_secret(**kwargs)

    @_unavailable
    def get(self, ref: CredentialRef) -> Credentials | None:
        try:
            answer = self._sm.get_secret_value(SecretId=self.name(ref))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return Credentials.model_validate(json.loads(answer["SecretString"]))

    @_unavailable
    def delete(self, ref: CredentialRef) -> None:
        try:
            self._sm.delete_secret(SecretId=self.name(ref), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
