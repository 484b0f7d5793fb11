"""The shape of a provider entry: everything the generic OAuth engine, the portal and the rules read."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from integrations.domain.access import Level, Tier


class AuthKind(StrEnum):
    OAUTH2 = "oauth2"
    CALDAV = "caldav"
    INBOUND_EMAIL = "inbound_email"


class Category(StrEnum):
    CRM = "crm"
    CALENDAR = "calendar"
    SCHEDULING = "scheduling"
    CHAT = "chat"
    EMAIL = "email"


class ConfigFieldType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    # One value picked from options the provider lists (pipelines, calendars, channels).
    SELECT = "select"
    # Platform field -> provider property; values picked from provider options.
    MAPPING = "mapping"
    # Several values, each from the field's fixed `choices` or from the provider's options.
    MULTI_SELECT = "multi_select"
    # A whole number within `minimum` and `maximum` (a sync window in days).
    INTEGER = "integer"


class ConfigChoice(BaseModel):
    """One value a field offers without asking the provider (what to push, how events show)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    label: str


class ConfigField(BaseModel):
    """One setting of a connection, validated when the portal PATCHes config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    type: ConfigFieldType
    required: bool = False
    description: str = ""
    # Where the portal fills a dropdown from: `GET /connections/{id}/options/{name}`.
    options_source: str | None = None
    # A select whose options depend on another field (a GHL stage depends on the pipeline).
    depends_on: str | None = None
    # For mapping fields: the platform-side keys that may be mapped.
    mapping_keys: list[str] = Field(default_factory=list)
    # A mapping whose keys are the platform's free-text values (call outcomes) rather than
    # `mapping_keys`: kept lower-case, 1-64 characters each.
    free_keys: bool = False
    max_length: int = 256
    # Values offered by the catalog itself (select and multi_select without an options_source).
    choices: list[ConfigChoice] = Field(default_factory=list)
    # What an unset field means (the portal shows it; the engine reads the same default).
    default: bool | int | str | list[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    # Shown under "Advanced settings" on the configure step rather than with the main settings.
    advanced: bool = False

    @model_validator(mode="after")
    def _choices_fit(self) -> ConfigField:
        if self.choices and self.options_source:
            raise ValueError(f"config field {self.name}: fixed choices or an options_source, not both")
        if self.type is ConfigFieldType.MULTI_SELECT and not (self.choices or self.options_source):
            raise ValueError(f"config field {self.name}: a multi_select needs choices or an options_source")
        if self.free_keys and (self.type is not ConfigFieldType.MAPPING or self.mapping_keys):
            raise ValueError(f"config field {self.name}: free keys belong to a mapping without mapping_keys")
        if self.type is ConfigFieldType.INTEGER and (self.minimum is None or self.maximum is None):
            raise ValueError(f"config field {self.name}: an integer needs a minimum and a maximum")
        return self

    def choice_values(self) -> list[str]:
        return [c.value for c in self.choices]


_POINTER = r"^(/[^/]*)+$"


class PagingStyle(StrEnum):
    # The answer names an opaque token; the next request sends it in `token_param` (Google
    # pageToken, Slack cursor, HubSpot after).
    CURSOR = "cursor"
    # The answer names the next page's complete URL, query included (Graph @odata.nextLink,
    # Calendly pagination.next_page).
    LINK = "link"


class Paging(BaseModel):
    """How a provider's list endpoints page, so one driver (http.paginate) walks them all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: PagingStyle
    # JSON Pointer (RFC 6901) to the page's list of items; a call may name its own (Slack lists
    # under the method's noun: `/channels`, `/members`). Pointers, not dotted paths: Graph's key
    # `@odata.nextLink` has a dot in it.
    items: str | None = Field(default=None, pattern=_POINTER)
    # JSON Pointer to the next token or URL; absent or empty on the last page.
    next: str = Field(pattern=_POINTER)
    # The request parameter that carries the token (cursor style only).
    token_param: str | None = None
    # The request parameter and value that ask for large pages (fewer round trips).
    page_size_param: str | None = None
    page_size: int | None = Field(default=None, ge=1)
    # A dropdown lists at most this many pages (a few thousand options), whatever the provider says.
    max_pages: int = Field(default=20, ge=1, le=100)

    @model_validator(mode="after")
    def _token_has_a_param(self) -> Paging:
        if (self.style is PagingStyle.CURSOR) != bool(self.token_param):
            raise ValueError("token_param is required for, and only for, cursor paging")
        if (self.page_size_param is None) != (self.page_size is None):
            raise ValueError("page_size_param and page_size go together")
        return self


class GrantLifetime(BaseModel):
    """How long a grant (its refresh token) lives without anyone renewing it, from the provider's docs.

    Access tokens expire hourly and are refreshed on use; these are the longer clocks after which
    the owner has to consent again. Absent from a provider entry: its grants do not lapse by time.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The refresh token lapses after this many days without a refresh (Google 6 months, Microsoft 90 days).
    unused_days: int = Field(ge=1)
    # Grants issued by an OAuth app that is still in testing lapse this many days after consent (Google: 7).
    testing_days: int | None = Field(default=None, ge=1)
    # Where the lifetime is documented.
    source: str


# What the engine itself puts in a token request; catalog data never overrides them.
_GRANT_PARAMS = frozenset(
    {"grant_type", "code", "refresh_token", "redirect_uri", "code_verifier", "client_id", "client_secret"}
)


class OAuthSpec(BaseModel):
    """Endpoints and protocol switches of one provider's OAuth 2.0 authorization server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Which platform app secret holds the client credentials (several providers can share one app).
    app: str
    # The client that runs the authorization-code flow: the generic engine, or a provider's own
    # library where it asks apps to use one (Google's apps: google-auth-oauthlib).
    flow: Literal["generic", "google_auth_oauthlib"] = "generic"
    authorize_url: str
    token_url: str
    revoke_url: str | None = None
    # Scopes to request and the subset that must be granted for the integration to work.
    scopes: list[str]
    required_scopes: list[str]
    scope_separator: str = " "
    # Where the authorize request carries the scopes (Slack: bot scopes in `scope`).
    scope_param: str = "scope"
    # Whether to send PKCE (S256); true wherever the provider accepts the parameters.
    pkce: bool = True
    # What PKCE does at this provider and what defends where it does not (README "Security notes").
    pkce_note: str = ""
    client_auth: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    extra_authorize_params: dict[str, str] = Field(default_factory=dict)
    extra_token_params: dict[str, str] = Field(default_factory=dict)
    # Token-endpoint parameters that depend on the level of the connection being made or refreshed
    # (GoHighLevel's `user_type`: a Company token for an agency, a Location token for a client;
    # provider page §1.2). They are sent with both grants and win over `extra_token_params`.
    token_params_by_level: dict[Level, dict[str, str]] = Field(default_factory=dict)
    # Single-use refresh tokens (GHL, Calendly): a refresh must be single-flight and stored first.
    rotates_refresh_token: bool = False
    # How a grant is revoked: `rfc7009` posts the refresh (else access) token to `revoke_url` with the
    # app's client authentication (the OAuth engine does it, no provider code); `provider` runs the
    # provider folder's revoke hook (Google's ?token=, HubSpot's DELETE, Slack's auth.revoke).
    revocation: Literal["provider", "rfc7009"] = "provider"
    # Where granted scopes come back in the token answer (a dotted path, e.g. Slack's `scope`).
    granted_scopes_field: str = "scope"
    # Whether the token endpoint reports errors with HTTP 200 and `ok: false` (Slack).
    ok_field: str | None = None
    # Resource prefixes the server may put on granted scopes (Microsoft answers
    # `https://graph.microsoft.com/Calendars.ReadWrite` for a requested `Calendars.ReadWrite`).
    granted_scope_prefixes: list[str] = Field(default_factory=list)
    # Other spellings the server may answer for a requested scope, mapped to the catalog's spelling
    # (Google may answer `email` for `.../auth/userinfo.email`, provider page §1.5).
    scope_aliases: dict[str, str] = Field(default_factory=dict)
    # What the provider's consent screen calls each scope (the box a person ticks), by scope.
    scope_labels: dict[str, str] = Field(default_factory=dict)
    # How long a grant lives unused; None when the provider's grants do not lapse by time.
    grant_lifetime: GrantLifetime | None = None

    @model_validator(mode="after")
    def _required_are_requested(self) -> OAuthSpec:
        missing = set(self.required_scopes) - set(self.scopes)
        if missing:
            raise ValueError(f"required_scopes not requested: {sorted(missing)}")
        unknown = set(self.scope_labels) - set(self.scopes)
        if unknown:
            raise ValueError(f"scope_labels for scopes not requested: {sorted(unknown)}")
        for level, params in self.token_params_by_level.items():
            clashing = set(params) & _GRANT_PARAMS
            if clashing:
                raise ValueError(f"token_params_by_level.{level.value} may not set {sorted(clashing)}")
            if not params or not all(params.values()):
                raise ValueError(f"token_params_by_level.{level.value} needs non-empty values")
        return self

    def token_params(self, level: Level | None) -> dict[str, str]:
        """What the token endpoint gets besides the grant: the fixed extras, then the level's own."""
        chosen = self.token_params_by_level.get(level, {}) if level is not None else {}
        return {**self.extra_token_params, **chosen}

    def scope_label(self, scope: str) -> str:
        """The consent screen's words for a scope; the scope itself when the catalog has none."""
        return self.scope_labels.get(scope, scope)


class WebhookSpec(BaseModel):
    """How a provider's pushes to `POST /webhooks/{provider}` are received; what data cannot say lives
    in the provider folder's `webhook.py`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The app secret (`APP_SECRET_PREFIX + name`) whose fields verify pushes; None when every key is
    # per channel (held, as digests, by lookup items).
    app_secret: str | None = None
    # What to answer when a push cannot be taken now: the status that makes the provider redeliver
    # (GoHighLevel redelivers only on 429; crm-scheduling-chat.md §1.7).
    retry_status: int = Field(default=503, ge=400, le=599)


class ProviderSpec(BaseModel):
    """A catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str
    logo_url: str
    category: Category
    min_tier: Tier
    levels: frozenset[Level]
    auth: AuthKind
    oauth: OAuthSpec | None = None
    # Base URL of the provider's API (the sandbox stands in through overrides).
    api_base_url: str | None = None
    # Other provider URLs the module uses, by name (identity, Pub/Sub issuer, CalDAV server…).
    urls: dict[str, str] = Field(default_factory=dict)
    config_schema: list[ConfigField] = Field(default_factory=list)
    conflicts_with: list[str] = Field(default_factory=list)
    # Several accounts of this provider for one owner (several Google accounts for one person).
    multiple_accounts: bool = False
    # Whether the provider has a revoke hook (called on disconnect, best effort).
    revocable: bool = False
    # The plug-in folder under integrations/providers/ that implements this entry (default: the id);
    # entries that differ only as data (Google Calendar one-way) share their sibling's folder.
    module: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    # Whether the service reads changes from the provider; push-only entries (a one-way calendar)
    # never subscribe to changes and never read the account.
    reads_changes: bool = True
    # Whether the platform's appointments are written to this calendar (two-way and one-way calendars).
    pushes_appointments: bool = False
    # Pushes this entry receives at `POST /webhooks/{id}`; without it that route answers 404.
    webhook: WebhookSpec | None = None
    # How the provider's list endpoints page (dropdown options); None when nothing is listed in pages.
    paging: Paging | None = None

    @model_validator(mode="after")
    def _auth_matches(self) -> ProviderSpec:
        if (self.auth is AuthKind.OAUTH2) != (self.oauth is not None):
            raise ValueError("oauth settings are required for, and only for, auth kind oauth2")
        names = [f.name for f in self.config_schema]
        if len(names) != len(set(names)):
            raise ValueError("config field names must be unique")
        for field in self.config_schema:
            if field.depends_on and field.depends_on not in names:
                raise ValueError(f"config field {field.name} depends on unknown field {field.depends_on}")
        if self.oauth is not None:
            stray = set(self.oauth.token_params_by_level) - set(self.levels)
            if stray:
                raise ValueError(
                    f"token_params_by_level names levels the provider lacks: {sorted(s.value for s in stray)}"
                )
        return self

    @field_validator("levels")
    @classmethod
    def _some_level(cls, value: frozenset[Level]) -> frozenset[Level]:
        if not value:
            raise ValueError("a provider needs at least one level")
        return value

    def config_field(self, name: str) -> ConfigField | None:
        return next((f for f in self.config_schema if f.name == name), None)

    def public_card(self) -> dict[str, Any]:
        return {
            "provider": self.id,
            "name": self.name,
            "description": self.description,
            "logo_url": self.logo_url,
            "category": self.category.value,
            "min_tier": self.min_tier.value,
        }
