"""Scope arithmetic over a provider's OAuth settings: what a token answer granted, and what is missing.

Pure functions of the catalog entry, so both the OAuth protocol and the connection lifecycle use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integrations.catalog.model import OAuthSpec


def _lookup(answer: dict[str, Any], path: str) -> Any:
    value: Any = answer
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def split_scopes(value: Any, separator: str = " ") -> list[str] | None:
    """A scope value as a list: a delimited string (any of space, comma, the spec's separator) or a list."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.replace(separator, " ").replace(",", " ")
        return [s for s in text.split() if s]
    if isinstance(value, Iterable):
        return [str(s) for s in value if str(s)]
    return None


def granted_scopes(spec: OAuthSpec, answer: dict[str, Any]) -> list[str] | None:
    """Scopes the token answer says were granted (None when the answer does not say)."""
    return split_scopes(_lookup(answer, spec.granted_scopes_field), spec.scope_separator)


def normalize_scope(spec: OAuthSpec, scope: str) -> str:
    """One spelling per scope: the spec's resource prefixes dropped, its aliases resolved, lower case."""
    text = scope.strip()
    for prefix in spec.granted_scope_prefixes:
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix) :]
    text = spec.scope_aliases.get(text, text)
    # Microsoft treats scopes case-insensitively and may change their case in answers.
    return text.lower()


def missing_scopes(
    spec: OAuthSpec, granted: Iterable[str], required: Iterable[str] | None = None
) -> list[str]:
    """Required scopes (the spec's unless named) not granted, in the catalog's spelling and order."""
    have = {normalize_scope(spec, s) for s in granted}
    wanted = spec.required_scopes if required is None else required
    return [s for s in wanted if normalize_scope(spec, s) not in have]
