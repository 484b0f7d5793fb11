"""Read template.yaml and build its stateful resources wherever boto3 points (moto in tests and locally).

The one reader of the template for everything that is not CloudFormation: tests build their tables,
queues, bus, key and secrets from it, and the offline stack reads routes, functions, event sources
and the functions' environment from it, so nothing can drift from what is deployed.
Dev and test code only: it needs PyYAML, a development dependency.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LOCAL_ORIGIN = "http://127.0.0.1:3000"

FUNCTION = "AWS::Serverless::Function"


class TemplateError(ValueError):
    """The template says something this reader cannot build or resolve."""


# --------------------------------------------------------------------------- reading


_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "And",
            "Base64",
            "Cidr",
            "Equals",
            "FindInMap",
            "GetAtt",
            "GetAZs",
            "If",
            "ImportValue",
            "Join",
            "Not",
            "Or",
            "Select",
            "Split",
            "Sub",
            "ToJsonString",
            "Length",
        )
    },
}


def _loader_class() -> Any:
    """A SafeLoader that turns CloudFormation short tags into their long forms and keeps dates as text."""
    import yaml

    # Built with type() so the class need not subclass an untyped base in a typed module.
    loader: Any = type("CfnLoader", (yaml.SafeLoader,), {})
    # CloudFormation reads `2012-10-17` as a string, not a date.
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct(name: str) -> Callable[[Any, Any], dict[str, Any]]:
        def build(ldr: Any, node: Any) -> dict[str, Any]:
            value: Any
            if isinstance(node, yaml.ScalarNode):
                value = ldr.construct_scalar(node)
                if name == "Fn::GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = ldr.construct_sequence(node, deep=True)
            else:
                value = ldr.construct_mapping(node, deep=True)
            return {name: value}

        return build

    for tag, name in _SHORT_TAGS.items():
        loader.add_constructor(f"!{tag}", construct(name))
    return loader


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into plain dicts, lists and scalars (long-form intrinsics)."""
    import yaml

    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader_class())  # noqa: S506 - safe loader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


# --------------------------------------------------------------------------- intrinsics


class _NoValue:
    """AWS::NoValue: the enclosing property or list item disappears."""


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass
class _Resolver:
    """Resolves intrinsic functions against parameter values and already-created resources."""

    template: Mapping[str, Any]
    parameters: Mapping[str, Any]
    pseudo: Mapping[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict)
    _handlers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._handlers.update(
            {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Sub": self._sub,
                "Fn::Join": lambda a: str(a[0]).join(str(p) for p in self.resolve(a[1])),
                "Fn::Split": lambda a: str(self.resolve(a[1])).split(a[0]),
                "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
                "Fn::If": lambda a: self.resolve(a[1] if self.condition(a[0]) else a[2]),
                "Fn::Equals": lambda a: self.resolve(a[0]) == self.resolve(a[1]),
                "Fn::Not": lambda a: not self.resolve(a[0]),
                "Fn::And": lambda a: all(self.resolve(c) for c in a),
                "Fn::Or": lambda a: any(self.resolve(c) for c in a),
                "Condition": self.condition,
                "Fn::FindInMap": self._find_in_map,
                "Fn::ToJsonString": lambda a: json.dumps(self.resolve(a), separators=(",", ":")),
            }
        )

    def condition(self, name: str | None) -> bool:
        """Whether a named condition of the template holds (no name: it does)."""
        if name is None:
            return True
        if name not in self._conditions:
            definitions = self.template.get("Conditions") or {}
            if name not in definitions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(definitions[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function replaced by its result."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            handler = self._handlers.get(key)
            if handler is not None:
                return handler(argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in (self.template.get("Parameters") or {}):
            raise TemplateError(f"parameter {name} has no value and no default")
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"cannot resolve Ref {name}: not created locally")

    def _get_att(self, argument: Any) -> str:
        resolved = self.resolve(argument)
        logical_id, attribute = resolved if isinstance(resolved, list) else str(resolved).split(".", 1)
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(
                f"cannot resolve GetAtt {logical_id}.{attribute}: not created locally"
            ) from None

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        local = {name: self.resolve(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                return self._get_att(name)
            value = self._ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return _SUB_VARIABLE.sub(substitute, text)

    def _find_in_map(self, argument: Any) -> Any:
        name, first, second = (self.resolve(part) for part in argument)
        try:
            return self.template["Mappings"][name][first][second]
        except KeyError:
            raise TemplateError(f"no mapping {name}.{first}.{second}") from None


def _parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Each parameter's value (override, else default), lists for CommaDelimitedList parameters."""
    values: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            continue
        if spec.get("Type") == "CommaDelimitedList":
            values[name] = [part.strip() for part in str(raw).split(",")] if raw != "" else []
        else:
            values[name] = str(raw)
    return values


def _pseudo_parameters(region: str, account_id: str, stage: str) -> dict[str, str]:
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": f"integrations-{stage}",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/integrations-{stage}/local",
        "AWS::NotificationARNs": "",
    }


# --------------------------------------------------------------------------- functions and routes


@dataclass(frozen=True, slots=True)
class Route:
    """One HttpApi route and the function behind it."""

    method: str
    path: str
    function: str
    # "iam": AWS_IAM (SigV4-signed calls of the platform); "jwt": the portal's JWT authorizer.
    auth: Literal["jwt", "iam", "none"]
    event: str


@dataclass(frozen=True, slots=True)
class QueueSource:
    """An SQS event source; `queue` is the queue's logical id (or its ARN when not from this template)."""

    event: str
    queue: str
    batch_size: int
    maximum_batching_window_seconds: int
    function_response_types: tuple[str, ...]

    @property
    def reports_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


@dataclass(frozen=True, slots=True)
class ScheduleSource:
    """A schedule event; `rate_seconds` is None for cron expressions."""

    event: str
    expression: str
    rate_seconds: int | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class EventRuleSource:
    """An EventBridge rule on a bus (`bus`: the bus's logical id, or None for the default bus)."""

    event: str
    bus: str | None
    pattern: Mapping[str, Any]
    dead_letter_queue: str | None


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What the local stack needs to run one function the way Lambda would."""

    logical_id: str
    code_uri: str
    handler_module: str
    handler_function: str
    timeout: int
    memory_size: int
    # The function's own variables (raw template values); LocalResources.environment() resolves them.
    environment: Mapping[str, Any]
    routes: tuple[Route, ...]
    queues: tuple[QueueSource, ...]
    schedules: tuple[ScheduleSource, ...]
    event_rules: tuple[EventRuleSource, ...]

    @property
    def directory(self) -> Path:
        """The function's code folder (the import root of its handler)."""
        return REPO_ROOT / self.code_uri

    @property
    def name(self) -> str:
        """The folder name, e.g. `oauth`."""
        return Path(self.code_uri).name


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of an EventBridge `rate(...)` expression; None for cron expressions."""
    match = _RATE.match(expression.strip())
    if match is None:
        if expression.strip().startswith("cron("):
            return None
        raise TemplateError(f"unsupported schedule expression {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def _logical_id(reference: Any) -> str | None:
    """The logical id behind `!Ref X` or `!GetAtt X.Attr`, else None."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
    return None


def _merged_function_properties(template: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """Globals.Function under the function's own properties (Environment.Variables merged, as SAM does)."""
    merged = dict((template.get("Globals") or {}).get("Function") or {})
    for key, value in properties.items():
        if key == "Environment":
            variables = {
                **((merged.get("Environment") or {}).get("Variables") or {}),
                **(value.get("Variables") or {}),
            }
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def _route_auth(template: Mapping[str, Any], properties: Mapping[str, Any]) -> Literal["jwt", "iam", "none"]:
    authorizer = (properties.get("Auth") or {}).get("Authorizer")
    if authorizer == "NONE":
        return "none"
    api_id = _logical_id(properties.get("ApiId"))
    if api_id is not None:
        api = (template["Resources"].get(api_id) or {}).get("Properties") or {}
    else:
        api = (template.get("Globals") or {}).get("HttpApi") or {}
    auth = api.get("Auth") or {}
    name = authorizer or auth.get("DefaultAuthorizer")
    if name is None:
        return "none"
    if name == "AWS_IAM":
        if not auth.get("EnableIamAuthorizer"):
            raise TemplateError(
                f"route {properties.get('Path')} uses AWS_IAM, but the API does not set EnableIamAuthorizer"
            )
        return "iam"
    definition = (auth.get("Authorizers") or {}).get(name)
    if definition is None or "JwtConfiguration" not in definition:
        raise TemplateError(
            f"route {properties.get('Path')} uses authorizer {name}, which is not a JWT authorizer"
        )
    return "jwt"


def functions(template: Mapping[str, Any]) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function by logical id, with its routes and event sources."""
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != FUNCTION:
            continue
        props = _merged_function_properties(template, resource.get("Properties") or {})
        module, _, function_name = str(props.get("Handler", "")).rpartition(".")
        if not module:
            raise TemplateError(f"{logical_id}: Handler must be module.function")
        routes: list[Route] = []
        queues: list[QueueSource] = []
        schedules: list[ScheduleSource] = []
        rules: list[EventRuleSource] = []
        for event_name, event in (props.get("Events") or {}).items():
            kind, ev = event.get("Type"), event.get("Properties") or {}
            if kind == "HttpApi":
                routes.append(
                    Route(
                        method=str(ev.get("Method", "ANY")).upper(),
                        path=str(ev.get("Path", "$default")),
                        function=logical_id,
                        auth=_route_auth(template, ev),
                        event=event_name,
                    )
                )
            elif kind == "SQS":
                queues.append(
                    QueueSource(
                        event=event_name,
                        queue=_logical_id(ev.get("Queue")) or str(ev.get("Queue")),
                        batch_size=int(ev.get("BatchSize", 10)),
                        maximum_batching_window_seconds=int(ev.get("MaximumBatchingWindowInSeconds", 0)),
                        function_response_types=tuple(ev.get("FunctionResponseTypes") or ()),
                    )
                )
            elif kind in ("Schedule", "ScheduleV2"):
                expression = str(ev.get("Schedule") or ev.get("ScheduleExpression"))
                enabled = ev.get("State", "ENABLED") == "ENABLED" and ev.get("Enabled", True) is not False
                schedules.append(ScheduleSource(event_name, expression, rate_seconds(expression), enabled))
            elif kind == "EventBridgeRule":
                dlq = (ev.get("DeadLetterConfig") or {}).get("Arn")
                rules.append(
                    EventRuleSource(
                        event=event_name,
                        bus=_logical_id(ev.get("EventBusName")),
                        pattern=ev.get("Pattern") or {},
                        dead_letter_queue=_logical_id(dlq) if dlq is not None else None,
                    )
                )
            else:
                raise TemplateError(f"{logical_id}.{event_name}: event type {kind} is not run locally")
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=str(props.get("CodeUri", "")),
            handler_module=module,
            handler_function=function_name,
            timeout=int(props.get("Timeout", 3)),
            memory_size=int(props.get("MemorySize", 128)),
            environment=dict(
                ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
            ),
            routes=tuple(routes),
            queues=tuple(queues),
            schedules=tuple(schedules),
            event_rules=tuple(rules),
        )
    return specs


def http_routes(template: Mapping[str, Any]) -> list[Route]:
    """Every HttpApi route of every function, in template order."""
    return [route for spec in functions(template).values() for route in spec.routes]


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class LocalResources:
    """What create_resources built: names, URLs and ARNs by logical id, and the functions' environment."""

    stage: str
    region: str
    account_id: str
    tables: Mapping[str, str]
    queue_urls: Mapping[str, str]
    queue_arns: Mapping[str, str]
    event_buses: Mapping[str, str]
    kms_key_id: str
    kms_key_arn: str
    secrets: Mapping[str, str]
    parameters: Mapping[str, Any] = field(repr=False)
    template: Mapping[str, Any] = field(repr=False, compare=False)
    refs: Mapping[str, str] = field(repr=False, compare=False)
    attributes: Mapping[tuple[str, str], str] = field(repr=False, compare=False)
    # Buckets by logical id -> name (the inbound mail bucket SES receiving writes to).
    buckets: Mapping[str, str] = field(default_factory=dict)

    @property
    def event_bus_name(self) -> str:
        """The name of the template's bus (`EventBus`)."""
        return self.event_buses.get("EventBus") or next(iter(self.event_buses.values()))

    @property
    def main_table(self) -> str:
        return self.tables["IntegrationsTable"]

    @property
    def state_table(self) -> str:
        return self.tables["StateTable"]

    @property
    def sync_queue_url(self) -> str:
        return self.queue_urls["SyncQueue"]

    @property
    def sync_dead_letter_queue_url(self) -> str:
        return self.queue_urls["SyncDeadLetterQueue"]

    def environment(
        self,
        function: str | None = None,
        *,
        public_api_url: str = LOCAL_ORIGIN,
        allowed_return_origins: str = LOCAL_ORIGIN,
        token_storage: str | None = None,
    ) -> dict[str, str]:
        """The template's Globals environment (plus `function`'s own variables), resolved for this account.

        AWS_REGION and AWS_DEFAULT_REGION are added as the Lambda runtime would.
        """
        overrides = {"PublicApiUrl": public_api_url, "AllowedReturnOrigins": allowed_return_origins}
        if token_storage is not None:
            overrides["TokenStorage"] = token_storage
        chosen = _parameter_values(self.template, overrides)
        resolver = _Resolver(
            self.template,
            {**self.parameters, **{name: chosen[name] for name in overrides if name in chosen}},
            _pseudo_parameters(self.region, self.account_id, self.stage),
            dict(self.refs),
            dict(self.attributes),
        )
        globals_env = (
            ((self.template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
        ).get("Variables") or {}
        variables: dict[str, Any] = dict(globals_env)
        if function is not None:
            variables.update(functions(self.template)[function].environment)
        env: dict[str, str] = {}
        for name, raw in variables.items():
            value = resolver.resolve(raw)
            if value is NO_VALUE:
                continue
            if isinstance(value, list | dict):
                raise TemplateError(f"environment variable {name} resolves to a non-string")
            env[name] = "true" if value is True else "false" if value is False else str(value)
        env.setdefault("AWS_REGION", self.region)
        env.setdefault("AWS_DEFAULT_REGION", self.region)
        return env


def create_resources(
    template: Mapping[str, Any],
    *,
    stage: str = "dev",
    session: boto3.Session | None = None,
    secret_values: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create the template's tables, KMS keys and aliases, buses, queues and secrets where boto3 points.

    Safe to run again against the same endpoint: existing resources are reused. `secret_values` maps
    a secret's resolved name to the value to store instead of the template's placeholder.
    """
    import boto3

    session = session or boto3.Session()
    region = session.region_name
    if not region:
        raise TemplateError("no AWS region configured")
    sts: Any = session.client("sts")
    account_id = str(sts.get_caller_identity()["Account"])
    values = _parameter_values(template, {"Stage": stage, **(parameters or {})})
    resolver = _Resolver(template, values, _pseudo_parameters(region, account_id, stage))
    active = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resolver.condition(resource.get("Condition"))
    }

    def of_type(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(lid, res.get("Properties") or {}) for lid, res in active.items() if res.get("Type") == kind]

    # One client per service for the whole run: creating clients is the slow part under moto.
    dynamodb, events = session.client("dynamodb"), session.client("events")
    keys = _create_kms_keys(
        session.client("kms"), resolver, of_type("AWS::KMS::Key"), of_type("AWS::KMS::Alias")
    )
    tables = {
        lid: _create_table(dynamodb, resolver, lid, props) for lid, props in of_type("AWS::DynamoDB::Table")
    }
    buses = {
        lid: _create_event_bus(events, resolver, lid, props)
        for lid, props in of_type("AWS::Events::EventBus")
    }
    queue_urls = _create_queues(session.client("sqs"), resolver, of_type("AWS::SQS::Queue"))
    secretsmanager = session.client("secretsmanager")
    secrets = {
        lid: _create_secret(secretsmanager, resolver, lid, props, secret_values or {})
        for lid, props in of_type("AWS::SecretsManager::Secret")
    }
    s3 = session.client("s3")
    buckets = {lid: _create_bucket(s3, resolver, lid, props) for lid, props in of_type("AWS::S3::Bucket")}
    key_id, key_arn = next(iter(keys.values()), ("", ""))
    return LocalResources(
        stage=stage,
        region=region,
        account_id=account_id,
        tables=tables,
        queue_urls=queue_urls,
        queue_arns={lid: resolver.attributes[(lid, "Arn")] for lid in queue_urls},
        event_buses=buses,
        kms_key_id=key_id,
        kms_key_arn=key_arn,
        secrets=secrets,
        buckets=buckets,
        parameters=values,
        template=template,
        refs=dict(resolver.refs),
        attributes=dict(resolver.attributes),
    )


def _create_kms_keys(
    kms: KMSClient,
    resolver: _Resolver,
    keys: list[tuple[str, dict[str, Any]]],
    aliases: list[tuple[str, dict[str, Any]]],
) -> dict[str, tuple[str, str]]:
    """Keys by logical id -> (key id, ARN); a key whose alias already exists is reused."""
    created: dict[str, tuple[str, str]] = {}
    for logical_id, props in keys:
        alias_names = [
            str(resolver.resolve(alias["AliasName"]))
            for _, alias in aliases
            if _logical_id(alias.get("TargetKeyId")) == logical_id
        ]
        metadata = None
        for alias_name in alias_names:
            try:
                metadata = kms.describe_key(KeyId=alias_name)["KeyMetadata"]
                break
            except kms.exceptions.NotFoundException:
                continue
        if metadata is None:
            metadata = kms.create_key(
                Description=str(resolver.resolve(props.get("Description", logical_id))),
                KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
                KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            )["KeyMetadata"]
            if props.get("EnableKeyRotation"):
                kms.enable_key_rotation(KeyId=metadata["KeyId"])
        created[logical_id] = (metadata["KeyId"], metadata["Arn"])
        resolver.refs[logical_id] = metadata["KeyId"]
        resolver.attributes[(logical_id, "Arn")] = metadata["Arn"]
        resolver.attributes[(logical_id, "KeyId")] = metadata["KeyId"]
    for logical_id, props in aliases:
        name = str(resolver.resolve(props["AliasName"]))
        target = str(resolver.resolve(props["TargetKeyId"]))
        with contextlib.suppress(kms.exceptions.AlreadyExistsException):
            kms.create_alias(AliasName=name, TargetKeyId=target)
        resolver.refs[logical_id] = name
    return created


def _create_bucket(s3: S3Client, resolver: _Resolver, logical_id: str, props: dict[str, Any]) -> str:
    """One bucket with the template's encryption, public access block and lifecycle rules."""
    spec = resolver.resolve(props)
    name = str(spec.get("BucketName") or f"{resolver.pseudo['AWS::StackName']}-{logical_id}".lower())
    region = resolver.pseudo["AWS::Region"]
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass  # Created by an earlier run against the same endpoint.
    encryption = (spec.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
    if encryption:
        # CloudFormation's `ServerSideEncryptionByDefault` is the API's `ApplyServerSideEncryptionByDefault`.
        rules: list[Any] = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False)),
            }
            for rule in encryption
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if spec.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=spec["PublicAccessBlockConfiguration"]
        )
    lifecycle = (spec.get("LifecycleConfiguration") or {}).get("Rules") or []
    if lifecycle:
        translated: list[Any] = [_lifecycle_rule(rule) for rule in lifecycle]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": translated})
    resolver.refs[logical_id] = name
    resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    return name


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule in the S3 API's words."""
    translated: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule.get("Status", "Enabled"),
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        translated["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        translated["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(abort["DaysAfterInitiation"])
        }
    return translated


def _create_table(
    dynamodb: DynamoDBClient, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> str:
    """One DynamoDB table with the template's exact keys, indexes, TTL and encryption."""
    spec = resolver.resolve(props)
    name = str(spec.get("TableName") or f"{resolver.pseudo['AWS::StackName']}-{logical_id}")
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": spec["KeySchema"],
        "AttributeDefinitions": spec["AttributeDefinitions"],
        "BillingMode": spec.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = spec["ProvisionedThroughput"]
    indexes = [
        {
            key: index[key]
            for key in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
            if key in index
        }
        for index in spec.get("GlobalSecondaryIndexes") or []
    ]
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    local_indexes = [
        {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
        for index in spec.get("LocalSecondaryIndexes") or []
    ]
    if local_indexes:
        request["LocalSecondaryIndexes"] = local_indexes
    sse = spec.get("SSESpecification") or {}
    if sse.get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    try:
        dynamodb.create_table(**request)
    except dynamodb.exceptions.ResourceInUseException:
        pass  # Created by an earlier run against the same endpoint.
    else:
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ttl = spec.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        if (spec.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
    arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    resolver.refs[logical_id] = name
    resolver.attributes[(logical_id, "Arn")] = arn
    return name


def _create_event_bus(
    events: EventBridgeClient, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> str:
    name = str(resolver.resolve(props["Name"]))
    try:
        arn = events.create_event_bus(Name=name)["EventBusArn"]
    except events.exceptions.ResourceAlreadyExistsException:
        arn = events.describe_event_bus(Name=name)["Arn"]
    resolver.refs[logical_id] = name
    resolver.attributes[(logical_id, "Arn")] = arn
    resolver.attributes[(logical_id, "Name")] = name
    return name


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _references(value: Any) -> set[str]:
    """Logical ids a property value refers to through Ref or GetAtt."""
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    if isinstance(value, dict):
        target = _logical_id(value)
        if target is not None:
            return {target}
        return set().union(*(_references(item) for item in value.values())) if value else set()
    return set()


def _create_queues(
    sqs: SQSClient, resolver: _Resolver, queues: list[tuple[str, dict[str, Any]]]
) -> dict[str, str]:
    """Queues by logical id -> URL, dead-letter queues before the queues that redrive to them."""
    pending = dict(queues)
    urls: dict[str, str] = {}
    while pending:
        ready = [lid for lid, props in pending.items() if not (_references(props) & (pending.keys() - {lid}))]
        if not ready:
            raise TemplateError(f"queues refer to each other in a cycle: {sorted(pending)}")
        for logical_id in ready:
            spec = resolver.resolve(pending.pop(logical_id))
            name = str(spec.get("QueueName") or f"{resolver.pseudo['AWS::StackName']}-{logical_id}")
            attributes: dict[Any, str] = {
                key: _queue_attribute(spec[key]) for key in _QUEUE_ATTRIBUTES if key in spec
            }
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            urls[logical_id] = url
            resolver.refs[logical_id] = url
            resolver.attributes[(logical_id, "Arn")] = arn
            resolver.attributes[(logical_id, "QueueName")] = name
            resolver.attributes[(logical_id, "QueueUrl")] = url
    return urls


def _queue_attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _create_secret(
    secretsmanager: SecretsManagerClient,
    resolver: _Resolver,
    logical_id: str,
    props: dict[str, Any],
    secret_values: Mapping[str, str],
) -> str:
    """One secret: the given value for its name, else the template's placeholder."""
    spec = resolver.resolve(props)
    name = str(spec.get("Name") or f"{resolver.pseudo['AWS::StackName']}-{logical_id}")
    value = secret_values.get(name)
    template_value = spec.get("SecretString")
    if template_value is None and "GenerateSecretString" in spec:
        raise TemplateError(
            f"{logical_id}: GenerateSecretString is not supported locally; pass secret_values"
        )
    try:
        arn = secretsmanager.create_secret(
            Name=name,
            Description=str(spec.get("Description", "")),
            SecretString=value if value is not None else str(template_value or ""),
        )["ARN"]
    except secretsmanager.exceptions.ResourceExistsException:
        arn = secretsmanager.describe_secret(SecretId=name)["ARN"]
        if value is not None:
            secretsmanager.put_secret_value(SecretId=name, SecretString=value)
    resolver.refs[logical_id] = arn
    resolver.attributes[(logical_id, "Id")] = arn
    return name


def secret_names(template: Mapping[str, Any], stage: str) -> dict[str, str]:
    """Secret names by logical id, resolved for a stage without touching AWS."""
    resolver = _Resolver(
        template, _parameter_values(template, {"Stage": stage}), _pseudo_parameters("", "", stage)
    )
    return {
        lid: str(resolver.resolve((res.get("Properties") or {}).get("Name")))
        for lid, res in template["Resources"].items()
        if res.get("Type") == "AWS::SecretsManager::Secret"
    }
