"""OAuth sessions on the StateTable: the DynamoDB adapter behind oauth.sessions.SessionStore.

Items are keyed by the SHA-256 of the session's random state (the state itself is never stored).
DynamoDB's TTL deletes late (and moto never does), so expiry is checked in code against
`session_expires_at`; the TTL attribute only tidies up.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.domain.access import Level, Role
from integrations.domain.connection import utcnow
from integrations.domain.oauth_session import (
    SESSION_LIFETIME,
    BindOutcome,
    OAuthSession,
    UsedSession,
    hash_secret,
)
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import AWS_ERRORS, unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Items stay readable a while after they stop being valid, so a late callback can be told
# "expired" (with a redirect to return_to) instead of "unknown"; TTL removes them afterwards.
_TTL_GRACE = timedelta(hours=1)
_USED_MARKER_LIFETIME = timedelta(hours=1)
_unavailable = unavailable_on_aws_error("The OAuth session store")


def _session_pk(state_hash: str) -> str:
    return f"OAUTH#{state_hash}"


def _used_pk(state_hash: str) -> str:
    return f"OAUTHUSED#{state_hash}"


class DynamoSessionStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock

    @_unavailable
    def create(self, session: OAuthSession) -> str:
        """Store the session and return its random state (the only copy of it)."""
        state = secrets.token_urlsafe(32)
        item = _to_item(session)
        item["pk"] = _session_pk(hash_secret(state))
        self._db.put_item(
            TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
        )
        return state

    def new_session(self, **fields: Any) -> OAuthSession:
        """An OAuthSession expiring SESSION_LIFETIME from now."""
        return OAuthSession(expires_at=self._clock() + SESSION_LIFETIME, **fields)

    @_unavailable
    def get(self, state: str) -> OAuthSession | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=to_values({"pk": _session_pk(hash_secret(state))}),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return _from_item(from_item(item)) if item else None

    @_unavailable
    def bind_cookie(self, state: str, cookie_value: str, confirm_token: str | None = None) -> BindOutcome:
        """Bind the session to the browser holding `cookie_value`; only the first browser wins.

        With `confirm_token`, binds only if it is the token last offered for this session, and spends it.
        """
        condition = "attribute_exists(pk) AND attribute_not_exists(cookie_hash)"
        values = {":hash": hash_secret(cookie_value)}
        update = "SET cookie_hash = :hash"
        if confirm_token is not None:
            condition += " AND confirm_hash = :confirm"
            values[":confirm"] = hash_secret(confirm_token)
            update += " REMOVE confirm_hash"
        return self._conditional_update(state, update, condition, values)

    @_unavailable
    def offer_confirmation(self, state: str, confirm_token: str) -> BindOutcome:
        """Remember the hash of the token a confirmation page offers; BOUND means it was stored."""
        return self._conditional_update(
            state,
            "SET confirm_hash = :confirm",
            "attribute_exists(pk) AND attribute_not_exists(cookie_hash)",
            {":confirm": hash_secret(confirm_token)},
        )

    def _conditional_update(
        self, state: str, update: str, condition: str, values: dict[str, str]
    ) -> BindOutcome:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=to_values({"pk": _session_pk(hash_secret(state))}),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_values(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            old: Any = exc.response.get("Item")
            if not old:
                return BindOutcome.UNKNOWN
            return BindOutcome.ALREADY_BOUND if "cookie_hash" in old else BindOutcome.CONFIRM_MISMATCH
        return BindOutcome.BOUND

    @_unavailable
    def consume(self, state: str) -> OAuthSession | None:
        """Delete the session and return it; None if it does not exist (never did, or already used).

        The conditional delete is the single-use guarantee: of two concurrent callbacks with the
        same state exactly one gets the item back.
        """
        state_hash = hash_secret(state)
        try:
            answer = self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": _session_pk(state_hash)}),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        session = _from_item(from_item(answer["Attributes"]))
        self._remember_used(state_hash, session)
        return session

    @_unavailable
    def used(self, state: str) -> UsedSession | None:
        """The marker a consumed session left behind, if it is still there."""
        answer = self._db.get_item(TableName=self._table, Key=to_values({"pk": _used_pk(hash_secret(state))}))
        item = answer.get("Item")
        if not item:
            return None
        data = from_item(item)
        return UsedSession(provider=str(data["provider"]), return_to=str(data["return_to"]))

    def _remember_used(self, state_hash: str, session: OAuthSession) -> None:
        # Lets a replayed callback redirect to the portal with `session_used` instead of a dead end.
        # Carries no secret; losing it only downgrades that answer to the plain error page.
        expires = self._clock() + _USED_MARKER_LIFETIME
        with contextlib.suppress(*AWS_ERRORS):
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": _used_pk(state_hash),
                        "provider": session.provider,
                        "return_to": session.return_to,
                        "expires_at": int(expires.timestamp()),
                    }
                ),
            )


def _to_item(session: OAuthSession) -> dict[str, Any]:
    return {
        "kind": "oauth_session",
        "provider": session.provider,
        "level": session.level.value,
        "agency_id": session.agency_id,
        "client_id": session.client_id,
        "user_id": session.user_id,
        "requested_by": session.requested_by,
        "return_to": session.return_to,
        "verifier": session.verifier,
        "app_client_id": session.app_client_id,
        "cookie_hash": session.cookie_hash,
        "requested_by_label": session.requested_by_label,
        "owner_role": session.owner_role.value if session.owner_role else None,
        "session_expires_at": int(session.expires_at.timestamp()),
        # The table's TTL attribute.
        "expires_at": int((session.expires_at + _TTL_GRACE).timestamp()),
    }


def _from_item(data: dict[str, Any]) -> OAuthSession:
    session = OAuthSession(
        provider=str(data["provider"]),
        level=Level(str(data["level"])),
        agency_id=str(data["agency_id"]),
        client_id=_opt(data.get("client_id")),
        user_id=_opt(data.get("user_id")),
        requested_by=str(data["requested_by"]),
        return_to=str(data["return_to"]),
        expires_at=datetime.fromtimestamp(int(data["session_expires_at"]), UTC),
        verifier=_opt(data.get("verifier")),
        app_client_id=str(data.get("app_client_id", "")),
        requested_by_label=str(data.get("requested_by_label") or ""),
        confirm_hash=_opt(data.get("confirm_hash")),
        owner_role=Role(str(data["owner_role"])) if data.get("owner_role") else None,
    )
    cookie_hash = _opt(data.get("cookie_hash"))
    return replace(session, cookie_hash=cookie_hash) if cookie_hash else session


def _opt(value: Any) -> str | None:
    return str(value) if value is not None else None
