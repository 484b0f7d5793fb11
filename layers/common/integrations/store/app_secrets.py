"""App secrets in Secrets Manager: the one reader for OAuth apps, webhook keys and agencies' own apps.

Platform apps live in `APP_SECRET_PREFIX + <app>`; an agency's registered OAuth client in
`AGENCY_APP_SECRET_PREFIX + <agency>/<app>`. Each is a JSON object read through Powertools Parameters
with a short cache, so a rotation (current + `previous_*` fields) or a newly registered agency app
reaches every warm container within a minute. A secret that does not exist, or is not a JSON object,
reads as `{}`; any other failure raises `DependencyUnavailable`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.domain.errors import DependencyUnavailable
from integrations.store.errors import error_code, unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CACHE_SECONDS = 60
_NOT_FOUND = "ResourceNotFoundException"
_unavailable = unavailable_on_aws_error("App secrets")


class SecretsManagerAppSecrets:
    """Reads (cached) and writes app secrets; values never leave except to their callers."""

    def __init__(
        self,
        client: SecretsManagerClient,
        platform_prefix: str,
        agency_prefix: str,
        *,
        max_age: int = CACHE_SECONDS,
    ) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._sm = client
        self._provider = SecretsProvider(boto3_client=client)
        self._platform_prefix = platform_prefix
        self._agency_prefix = agency_prefix
        self._max_age = max_age
        # Absent secrets are the common case (agency apps); remember a miss as long as a hit is cached.
        self._misses: dict[str, float] = {}

    # --- reads ---

    def fields(self, app: str) -> Mapping[str, Any]:
        """The platform app's secret fields; `{}` when it does not exist or is not a JSON object."""
        return self._read(self._platform_prefix + app)

    def agency_fields(self, agency_id: str, app: str) -> Mapping[str, Any]:
        """The agency's own app's secret fields; `{}` when the agency registered none."""
        return self._read(self.agency_secret_name(agency_id, app))

    # --- agency writes ---

    def agency_secret_name(self, agency_id: str, app: str) -> str:
        return f"{self._agency_prefix}{agency_id}/{app}"

    @_unavailable
    def put_agency_app(self, agency_id: str, app: str, fields: Mapping[str, str]) -> None:
        """Create or replace the agency's secret for `app`."""
        secret = json.dumps(dict(fields), separators=(",", ":"))
        name = self.agency_secret_name(agency_id, app)
        try:
            self._sm.put_secret_value(SecretId=name, SecretString=secret)
        except ClientError as exc:
            if error_code(exc) != _NOT_FOUND:
                raise
            self._sm.create_secret(
                Name=name,
                SecretString=secret,
                Tags=[{"Key": "agency_id", "Value": agency_id}, {"Key": "oauth_app", "Value": app}],
            )
        finally:
            self._forget(name)

    @_unavailable
    def delete_agency_app(self, agency_id: str, app: str) -> bool:
        """Remove the agency's secret for `app`; True when there was one."""
        name = self.agency_secret_name(agency_id, app)
        try:
            self._sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if error_code(exc) != _NOT_FOUND:
                raise
            return False
        finally:
            self._forget(name)
        return True

    # --- internals ---

    def _read(self, name: str) -> Mapping[str, Any]:
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        missed_at = self._misses.get(name)
        if missed_at is not None and time.monotonic() - missed_at < self._max_age:
            return {}
        try:
            value = self._provider.get(name, max_age=self._max_age, transform="json")
        except TransformParameterError:
            return {}
        except GetParameterError as exc:
            # Powertools wraps every SDK error; the original is the cause (or context) of its exception.
            if error_code(exc.__cause__ or exc.__context__ or exc) == _NOT_FOUND:
                self._misses[name] = time.monotonic()
                return {}
            raise DependencyUnavailable("App secrets are unavailable; try again shortly.") from None
        return value if isinstance(value, dict) else {}

    def _forget(self, name: str) -> None:
        self._misses.pop(name, None)
        # The provider caches per (name, transform); clearing all of it is cheap and rare (admin writes).
        self._provider.clear_cache()  # type: ignore[no-untyped-call]
