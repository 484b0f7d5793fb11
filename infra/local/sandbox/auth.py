"""Bearer-token checks every provider API in the sandbox shares."""

from __future__ import annotations

from werkzeug.wrappers import Request

from infra.local.sandbox.core import Reply, Sandbox, bearer_token
from infra.local.sandbox.errors import scope_missing, token_refused
from infra.local.sandbox.state import Grant, TokenProblem


def require_token(sb: Sandbox, request: Request, app: str, any_of: set[str] | None = None) -> Grant:
    """The grant behind the call's Bearer token, or the provider's own refusal (raised)."""
    value = bearer_token(request)
    if value is None and app == "slack":
        # Slack still reads a `token` form field on many methods.
        value = request.values.get("token")
    with sb.state.lock:
        checked = sb.state.oauth.check_access(app, value, sb.now())
    if isinstance(checked, TokenProblem):
        raise Reply(token_refused(app, checked))
    grant = checked[1]
    if any_of and not any_of & set(grant.scopes):
        raise Reply(scope_missing(app, sorted(any_of), grant.scopes))
    return grant
