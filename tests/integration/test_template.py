"""template.yaml: valid CloudFormation and SAM, least-privilege IAM, and the same resources in moto."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.resources import (
    REPO_ROOT,
    TEMPLATE_PATH,
    LocalResources,
    functions,
    http_routes,
    load_template,
    rate_seconds,
)
from tests.support.aws import aws_resources

PARAMETERS = {"JwtIssuer": "https://auth.example.test/", "JwtAudience": "portal,portal-mobile"}

# The only AWS-managed policies a role may carry, and why each is acceptable.
ALLOWED_MANAGED_POLICIES = {
    # SAM attaches it to every role it generates: CloudWatch Logs for the function's own log stream.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
}

# Exactly the variables every function gets: what integrations.config.Settings reads, plus runtime knobs.
ENVIRONMENT_CONTRACT = {
    "STAGE",
    "TABLE_NAME",
    "STATE_TABLE_NAME",
    "SYNC_TABLE_NAME",
    "EVENT_BUS_NAME",
    "SYNC_QUEUE_URL",
    "SYNC_DEAD_LETTER_QUEUE_URL",
    "KMS_KEY_ID",
    "TOKEN_STORAGE",
    "PUBLIC_API_URL",
    "ALLOWED_RETURN_ORIGINS",
    "APP_SECRET_PREFIX",
    "AGENCY_APP_SECRET_PREFIX",
    "INBOUND_EMAIL_DOMAIN",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "AWS_RETRY_MODE",
    "PYDANTIC_DISABLE_PLUGINS",
}


# --------------------------------------------------------------------------- helpers


class _NoManagedPolicies:
    """Stands in for samtranslator's IAM look-up of managed policy names (the template uses none)."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: Mapping[str, Any], parameters: Mapping[str, str] = PARAMETERS) -> dict[str, Any]:
    """The SAM transform, offline: local code folders become S3 URIs, as `sam package` would make them."""
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(dict(template))
    for resource in document["Resources"].values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://artifacts/{props[key].strip('/')}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        translated: dict[str, Any] = transform(document, dict(parameters), _NoManagedPolicies())
    return translated


_SUB_NAME = re.compile(r"\$\{([^}!][^}]*)\}")


def references(value: Any) -> set[str]:
    """Logical ids (and parameter names) a value refers to through Ref, GetAtt or Sub."""
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    if len(value) == 1:
        (key, argument), *_ = value.items()
        if key == "Ref":
            return {argument}
        if key == "Fn::GetAtt":
            return {argument[0] if isinstance(argument, list) else argument.split(".")[0]}
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            names = {m.split(".")[0] for m in _SUB_NAME.findall(text)} - set(variables)
            return names | references(list(variables.values()))
    return set().union(*(references(v) for v in value.values())) if value else set()


def dependency_cycle(template: Mapping[str, Any]) -> list[str] | None:
    """A circular dependency between resources (as CloudFormation rejects it), or None."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn") or []
        explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        graph[logical_id] = (references(resource.get("Properties") or {}) | explicit) & resources.keys()
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def statements(document: Any, token_storage: str | None = None) -> Iterator[dict[str, Any]]:
    """A policy document's statements; under Fn::If both branches count, except the token-storage one."""
    items = document.get("Statement", []) if isinstance(document, dict) else document
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and "Fn::If" in item:
            condition, when_true, when_false = item["Fn::If"]
            if condition == "UseSecretsManagerTokens" and token_storage is not None:
                branches = [when_true if token_storage == "secretsmanager" else when_false]
            else:
                branches = [when_true, when_false]
            for branch in branches:
                if branch != {"Ref": "AWS::NoValue"}:
                    yield from statements([branch], token_storage)
        else:
            yield item


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of(translated: Mapping[str, Any], function: str) -> dict[str, Any]:
    role_ref = translated["Resources"][function]["Properties"]["Role"]
    role: dict[str, Any] = translated["Resources"][role_ref["Fn::GetAtt"][0]]["Properties"]
    return role


def role_statements(
    translated: Mapping[str, Any], function: str, token_storage: str | None = None
) -> list[dict[str, Any]]:
    role = role_of(translated, function)
    return [
        s for policy in role.get("Policies", []) for s in statements(policy["PolicyDocument"], token_storage)
    ]


def actions(found: list[dict[str, Any]]) -> set[str]:
    return {action for statement in found for action in as_list(statement["Action"])}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(template)


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[LocalResources, boto3.Session]]:
    """The template's resources in one moto account, shared by the read-only checks below."""
    with mock_aws():
        yield aws_resources(stage="test"), boto3.Session(region_name="us-east-1")


# --------------------------------------------------------------------------- validity


def test_cfn_lint_reports_no_errors() -> None:
    from cfnlint.api import lint
    from cfnlint.config import ManualArgs

    matches = lint(TEMPLATE_PATH.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    for match in matches:
        if not match.rule.id.startswith("E"):
            print(f"cfn-lint {match.rule.id} line {match.linenumber}: {match.message}")
    errors = [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_sam_translates_functions_routes_and_event_sources(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    kinds = {logical_id: resource["Type"] for logical_id, resource in resources.items()}

    lambdas = {lid for lid, kind in kinds.items() if kind == "AWS::Lambda::Function"}
    assert lambdas == {
        "OAuthFunction",
        "ConnectorsFunction",
        "InternalFunction",
        "WebhooksFunction",
        "SyncSchedulerFunction",
        "SyncWorkerFunction",
        "InboundMailFunction",
    }
    assert kinds["HttpApi"] == "AWS::ApiGatewayV2::Api"
    permissions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    # One invoke permission per route, plus the schedule, the platform-events rule, the rule for
    # our own events that chat channels are told about, and SES receiving's.
    assert len(permissions) == len(http_routes(load_template())) + 4

    (mapping,) = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SyncQueue", "Arn"]}
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumBatchingWindowInSeconds"] > 0

    rules = {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    assert rules["SyncSchedulerFunctionEveryMinute"]["ScheduleExpression"] == "rate(1 minute)"
    platform = rules["SyncWorkerFunctionPlatformEvents"]
    assert platform["EventBusName"] == {"Ref": "EventBus"}
    assert platform["EventPattern"]["source"] == ["platform"]
    assert set(platform["EventPattern"]["detail-type"]) == {
        "Agency Plan Changed",
        "Appointment Upserted",
        "Appointment Deleted",
        "Contact Upserted",
        "Contact Deleted",
        "Call Completed",
        "Email Send Requested",
    }
    (target,) = platform["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["PlatformEventsDeadLetterQueue", "Arn"]}


def test_every_function_resumes_from_a_snapshot_and_is_called_through_its_alias(
    translated: dict[str, Any],
) -> None:
    resources = translated["Resources"]
    functions_ = {lid for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    aliases = {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"}
    alias_of = {props["FunctionName"]["Ref"]: lid for lid, props in aliases.items()}

    for lid in functions_:
        assert resources[lid]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}, lid
        assert aliases[alias_of[lid]]["Name"] == "live", lid
    alias_refs = [{"Ref": alias} for alias in aliases]
    # Every invoker (routes, schedule, bus rule, queue) reaches a published version, never $LATEST.
    for r in resources.values():
        if r["Type"] == "AWS::Lambda::Permission":
            assert r["Properties"]["FunctionName"] in alias_refs, r
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            assert r["Properties"]["FunctionName"] in alias_refs, r
        if r["Type"] == "AWS::Events::Rule":
            assert all(target["Arn"] in alias_refs for target in r["Properties"]["Targets"]), r


def test_translated_template_has_no_circular_dependency(translated: dict[str, Any]) -> None:
    assert dependency_cycle(translated) is None


def test_cycle_check_catches_an_integration_that_references_its_function(template: dict[str, Any]) -> None:
    # Without the explicit integrations, SAM points the API at ${Function.Arn} while every function's
    # PUBLIC_API_URL points at the API: CloudFormation refuses such a stack. The check must see it.
    without_body = copy.deepcopy(template)
    del without_body["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]

    cycle = dependency_cycle(translate(without_body))

    assert cycle is not None
    assert "HttpApi" in cycle


def test_api_integrations_match_the_route_events(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    body = translated["Resources"]["HttpApi"]["Properties"]["Body"]
    specs = functions(template)
    function_names = {
        lid: template["Resources"][lid]["Properties"]["FunctionName"]["Fn::Sub"] for lid in specs
    }

    declared = {(method.upper(), path) for path, item in body["paths"].items() for method in item}
    assert declared == {(route.method, route.path) for route in http_routes(template)}
    for route in http_routes(template):
        operation = body["paths"][route.path][route.method.lower()]
        uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        # SnapStart runs published versions only: the API calls the alias, never $LATEST.
        assert uri.endswith(f":function:{function_names[route.function]}:live/invocations"), route
        scheme = {"none": "NONE", "iam": "AWS_IAM", "jwt": "PortalJwt"}[route.auth]
        expected_security: list[dict[str, list[str]]] = [{scheme: []}]
        assert operation["security"] == expected_security, route


def test_only_oauth_redirects_webhooks_and_the_openapi_document_are_public(template: dict[str, Any]) -> None:
    public = {(r.method, r.path) for r in http_routes(template) if r.auth == "none"}

    assert public == {
        ("GET", "/oauth/{provider}/authorize"),
        ("GET", "/oauth/{provider}/callback"),
        ("POST", "/webhooks/{provider}"),
        ("GET", "/openapi.json"),
    }


def test_only_the_platforms_internal_routes_take_iam_signatures(template: dict[str, Any]) -> None:
    iam = {(r.method, r.path) for r in http_routes(template) if r.auth == "iam"}

    assert iam == {
        ("POST", "/internal/availability"),
        ("POST", "/internal/bookings"),
        ("POST", "/internal/scheduling-links"),
    }
    assert {r.function for r in http_routes(template) if r.auth == "iam"} == {"InternalFunction"}


def test_jwt_authorizer_and_cors_come_from_parameters(translated: dict[str, Any]) -> None:
    body = translated["Resources"]["HttpApi"]["Properties"]["Body"]
    authorizer = body["components"]["securitySchemes"]["PortalJwt"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }

    condition, cors, otherwise = body["x-amazon-apigateway-cors"]["Fn::If"]
    assert condition == "HasReturnOrigins"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert cors["allowOrigins"] == {"Fn::Split": [",", "http://127.0.0.1:3000"]}
    assert cors["allowCredentials"] is True
    assert cors["allowHeaders"] == ["authorization", "content-type"]


def test_every_function_has_its_code_folder_and_app_handler(template: dict[str, Any]) -> None:
    specs = functions(template)

    assert {spec.name for spec in specs.values()} == {
        "oauth",
        "connectors",
        "internal",
        "webhooks",
        "sync_scheduler",
        "sync_worker",
        "inbound_mail",
    }
    for spec in specs.values():
        assert spec.code_uri == f"functions/{spec.name}/"
        assert (REPO_ROOT / spec.code_uri).is_dir(), spec.code_uri
        assert (spec.handler_module, spec.handler_function) == ("app", "handler")


def test_functions_get_exactly_the_environment_contract(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    assert set(variables) == ENVIRONMENT_CONTRACT
    for spec in functions(template).values():
        own = dict(spec.environment)
        if spec.name == "inbound_mail":
            # Only it reads raw mail: where SES receiving stores it.
            assert own.pop("INBOUND_MAIL_BUCKET") == {"Ref": "InboundMailBucket"}
            assert own.pop("INBOUND_MAIL_PREFIX") == "inbound/"
        assert own == {"POWERTOOLS_SERVICE_NAME": spec.name}


def test_sync_queue_outlasts_six_worker_timeouts(template: dict[str, Any]) -> None:
    worker = functions(template)["SyncWorkerFunction"]
    (source,) = worker.queues
    queue = template["Resources"][source.queue]["Properties"]

    assert queue["VisibilityTimeout"] >= 6 * worker.timeout + source.maximum_batching_window_seconds
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SyncDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }


def test_every_function_and_dead_letter_queue_has_an_alarm(template: dict[str, Any]) -> None:
    alarms = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    watched = {
        (alarm["MetricName"], json.dumps(alarm["Dimensions"][0]["Value"], sort_keys=True)) for alarm in alarms
    }

    for function in functions(template):
        assert ("Errors", json.dumps({"Ref": function})) in watched, function
    for queue in ("SyncDeadLetterQueue", "PlatformEventsDeadLetterQueue", "InboundMailDeadLetterQueue"):
        dimension = json.dumps({"Fn::GetAtt": [queue, "QueueName"]})
        assert ("ApproximateNumberOfMessagesVisible", dimension) in watched, queue


# --------------------------------------------------------------------------- IAM


def test_no_policy_grants_every_action_or_every_resource_beyond_what_aws_requires(
    translated: dict[str, Any],
) -> None:
    offending = []
    for logical_id, resource in translated["Resources"].items():
        props = resource.get("Properties") or {}
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        documents += [props[k] for k in ("PolicyDocument", "KeyPolicy") if k in props]
        for document in documents:
            for statement in statements(document):
                if statement.get("Effect") == "Deny":
                    continue  # A refusal of everything (TLS only) grants nothing.
                acts = as_list(statement.get("Action", []))
                wildcard_action = any(a == "*" or a.endswith(":*") for a in acts)
                wildcard_resource = "*" in as_list(statement.get("Resource", []))
                if not (wildcard_action or wildcard_resource):
                    continue
                # Allowed: a KMS key policy must name Resource "*" (it means the key itself) and the
                # account's administration of its own key; X-Ray has no resource-level permissions.
                key_policy = resource["Type"] == "AWS::KMS::Key"
                xray_only = not wildcard_action and all(a.startswith("xray:") for a in acts)
                if not (key_policy or xray_only):
                    offending.append((logical_id, statement.get("Sid")))
    assert offending == []


def test_roles_carry_only_documented_managed_policies(translated: dict[str, Any]) -> None:
    for logical_id, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            assert set(resource["Properties"].get("ManagedPolicyArns", [])) <= ALLOWED_MANAGED_POLICIES, (
                logical_id
            )


def test_webhooks_cannot_decrypt_tokens_or_write_connections(translated: dict[str, Any]) -> None:
    found = role_statements(translated, "WebhooksFunction")

    # The receiver opens Calendly signing keys (KMS-encrypted in lookup items), so it may decrypt, but
    # only under purpose=webhook_signing_key: the vault's token context never carries that purpose.
    kms = [s for s in found if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert actions(kms) == {"kms:Decrypt"}
    assert [s["Condition"] for s in kms] == [
        {"StringEquals": {"kms:EncryptionContext:purpose": "webhook_signing_key"}}
    ]
    main_table = [s for s in found if "IntegrationsTable" in json.dumps(s["Resource"])]
    assert actions(main_table) == {"dynamodb:GetItem", "dynamodb:Query"}
    state_table = [s for s in found if "StateTable" in json.dumps(s["Resource"])]
    assert actions(state_table) == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def test_scheduler_has_no_secrets_and_no_keys(translated: dict[str, Any]) -> None:
    granted = actions(role_statements(translated, "SyncSchedulerFunction"))

    assert granted == {"dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage"}


def test_sync_worker_polls_only_its_own_queue(translated: dict[str, Any]) -> None:
    found = role_statements(translated, "SyncWorkerFunction")
    polling = [s for s in found if "sqs:ReceiveMessage" in as_list(s["Action"])]

    assert [s["Resource"] for s in polling] == [{"Fn::GetAtt": ["SyncQueue", "Arn"]}]
    assert "ManagedPolicyArns" not in role_of(translated, "SyncWorkerFunction")


@pytest.mark.parametrize(
    ("token_storage", "may_touch_token_secrets"),
    [
        ("kms", set()),
        (
            "secretsmanager",
            {
                "OAuthFunction",
                "ConnectorsFunction",
                "InternalFunction",
                "SyncWorkerFunction",
                "InboundMailFunction",
            },
        ),
    ],
)
def test_token_secrets_are_reachable_only_with_the_secrets_manager_backend(
    translated: dict[str, Any], token_storage: str, may_touch_token_secrets: set[str]
) -> None:
    reach = {
        function
        for function in functions(load_template())
        if any(
            "/integrations/tokens/" in json.dumps(s["Resource"])
            for s in role_statements(translated, function, token_storage)
        )
    }

    assert reach == may_touch_token_secrets


def test_secret_access_is_scoped_to_the_stage_prefixes(translated: dict[str, Any]) -> None:
    allowed = re.compile(r":secret:\$\{Stage\}/integrations/(apps|agency-apps|tokens)/\*$")
    for function in functions(load_template()):
        for statement in role_statements(translated, function):
            if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"])):
                for resource in as_list(statement["Resource"]):
                    assert allowed.search(resource["Fn::Sub"]), (function, resource)


# --------------------------------------------------------------------------- inbound mail (SES receiving)


INBOUND_RULE_ARN = (
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:receipt-rule-set/"
    "integrations-${Stage}-inbound:receipt-rule/integrations-${Stage}-bcc"
)


def test_ses_receives_the_inbound_domain_scans_requires_tls_stores_then_invokes(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    rule = template["Resources"]["InboundMailRule"]
    spec = rule["Properties"]["Rule"]
    rule_set = template["Resources"]["InboundMailRuleSet"]["Properties"]

    assert rule["Properties"]["RuleSetName"] == {"Ref": "InboundMailRuleSet"}
    assert rule_set["RuleSetName"] == {"Fn::Sub": "integrations-${Stage}-inbound"}
    assert spec["Name"] == {"Fn::Sub": "integrations-${Stage}-bcc"}
    assert spec["Recipients"] == [{"Ref": "InboundEmailDomain"}]
    assert (spec["Enabled"], spec["ScanEnabled"], spec["TlsPolicy"]) == (True, True, "Require")
    # The message is stored before the function hears of it, and the function is invoked
    # asynchronously (its alias: SnapStart), so the sender never waits on or sees our failure.
    store, invoke = spec["Actions"]
    assert store["S3Action"] == {"BucketName": {"Ref": "InboundMailBucket"}, "ObjectKeyPrefix": "inbound/"}
    actions_ = translated["Resources"]["InboundMailRule"]["Properties"]["Rule"]["Actions"]
    assert actions_[1]["LambdaAction"] == {
        "FunctionArn": {"Ref": "InboundMailFunctionAliaslive"},
        "InvocationType": "Event",
    }
    assert set(rule["DependsOn"]) == {"InboundMailBucketPolicy", "InboundMailSesPermission"}
    assert invoke["LambdaAction"]["InvocationType"] == "Event"


def test_only_this_accounts_receipt_rule_may_invoke_the_inbound_function(template: dict[str, Any]) -> None:
    permission = template["Resources"]["InboundMailSesPermission"]["Properties"]

    assert permission["Principal"] == "ses.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission["SourceArn"] == {"Fn::Sub": INBOUND_RULE_ARN}


def test_raw_mail_bucket_is_private_encrypted_expiring_and_writable_only_by_our_rule(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["InboundMailBucket"]["Properties"]
    policy = template["Resources"]["InboundMailBucketPolicy"]["Properties"]["PolicyDocument"]

    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (expiry,) = bucket["LifecycleConfiguration"]["Rules"]
    assert expiry["Status"] == "Enabled" and 1 <= expiry["ExpirationInDays"] <= 30
    assert expiry["Prefix"] == "inbound/"
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert [(s["Principal"], s["Action"]) for s in allow] == [
        ({"Service": "ses.amazonaws.com"}, "s3:PutObject")
    ]
    (ses,) = allow
    assert ses["Resource"] == {"Fn::Sub": "${InboundMailBucket.Arn}/inbound/*"}
    assert ses["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": INBOUND_RULE_ARN}},
    }
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in deny] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_failed_async_invocations_go_to_a_dead_letter_queue_after_two_retries(
    translated: dict[str, Any],
) -> None:
    resources = translated["Resources"]
    (config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]

    assert config["FunctionName"] == {"Ref": "InboundMailFunction"}
    assert config["Qualifier"] == "live"
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["InboundMailDeadLetterQueue", "Arn"]
    }
    found = role_statements(translated, "InboundMailFunction")
    senders = [s for s in found if "sqs:SendMessage" in as_list(s["Action"])]
    assert [s["Resource"] for s in senders] == [{"Fn::GetAtt": ["InboundMailDeadLetterQueue", "Arn"]}]


def test_inbound_function_reads_raw_mail_only_and_never_writes_it(translated: dict[str, Any]) -> None:
    found = role_statements(translated, "InboundMailFunction")

    s3 = [s for s in found if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert actions(s3) == {"s3:GetObject"}
    assert [s["Resource"] for s in s3] == [{"Fn::Sub": "${InboundMailBucket.Arn}/inbound/*"}]


def test_the_inbound_bucket_is_built_locally_private_and_expiring(
    built: tuple[LocalResources, boto3.Session],
) -> None:
    resources, session = built
    s3 = session.client("s3")
    name = resources.buckets["InboundMailBucket"]

    encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    blocked = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]

    assert name == f"integrations-test-inbound-mail-{resources.account_id}-us-east-1"
    assert encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(blocked.values())
    assert rule["Expiration"]["Days"] == 7
    assert resources.environment("InboundMailFunction")["INBOUND_MAIL_BUCKET"] == name


# --------------------------------------------------------------------------- resources in moto


def test_tables_have_the_template_keys_indexes_and_ttl(
    template: dict[str, Any], built: tuple[LocalResources, boto3.Session]
) -> None:
    resources, session = built
    dynamodb = session.client("dynamodb")
    declared = {
        lid: r["Properties"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table"
    }

    assert set(resources.tables) == set(declared) == {"IntegrationsTable", "StateTable", "SyncTable"}
    for logical_id, spec in declared.items():
        table = dynamodb.describe_table(TableName=resources.tables[logical_id])["Table"]
        assert table["TableName"] == spec["TableName"]["Fn::Sub"].replace("${Stage}", "test")
        assert table["KeySchema"] == spec["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(spec["AttributeDefinitions"], key=str)
        indexes = {
            i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in table.get("GlobalSecondaryIndexes", [])
        }
        expected = {
            i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in spec.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == expected
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
        assert ttl == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": spec["TimeToLiveSpecification"]["AttributeName"],
        }
    main = dynamodb.describe_table(TableName=resources.main_table)["Table"]
    projections = {i["IndexName"]: i["Projection"]["ProjectionType"] for i in main["GlobalSecondaryIndexes"]}
    # DueForSync is sparse and read only for keys: the scheduler claims each item by key anyway.
    assert projections == {"ByOwner": "ALL", "ByAgencyHealth": "ALL", "DueForSync": "KEYS_ONLY"}


def test_sync_queue_redrives_to_its_dead_letter_queue(built: tuple[LocalResources, boto3.Session]) -> None:
    resources, session = built
    sqs = session.client("sqs")

    attributes = sqs.get_queue_attributes(QueueUrl=resources.sync_queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    dead_letter = sqs.get_queue_attributes(
        QueueUrl=resources.sync_dead_letter_queue_url, AttributeNames=["All"]
    )["Attributes"]

    assert (
        redrive["deadLetterTargetArn"]
        == resources.queue_arns["SyncDeadLetterQueue"]
        == dead_letter["QueueArn"]
    )
    assert int(redrive["maxReceiveCount"]) == 5
    assert attributes["VisibilityTimeout"] == "750"
    assert dead_letter["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert set(resources.queue_urls) == {
        "SyncQueue",
        "SyncDeadLetterQueue",
        "PlatformEventsDeadLetterQueue",
        "InboundMailDeadLetterQueue",
    }


def test_bus_and_token_key_exist_and_work(built: tuple[LocalResources, boto3.Session]) -> None:
    resources, session = built
    kms = session.client("kms")

    bus = session.client("events").describe_event_bus(Name=resources.event_bus_name)
    by_alias = kms.describe_key(KeyId="alias/integrations-test-tokens")["KeyMetadata"]
    sealed = kms.encrypt(KeyId=resources.kms_key_id, Plaintext=b"token", EncryptionContext={"agency": "a1"})

    assert bus["Name"] == "integrations-test"
    assert by_alias["KeyId"] == resources.kms_key_id
    assert kms.get_key_rotation_status(KeyId=resources.kms_key_id)["KeyRotationEnabled"] is True
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={"agency": "a1"})
    assert opened["Plaintext"] == b"token"


def test_app_secrets_hold_documented_placeholders(built: tuple[LocalResources, boto3.Session]) -> None:
    resources, session = built
    secretsmanager = session.client("secretsmanager")

    fields = {
        logical_id: set(json.loads(secretsmanager.get_secret_value(SecretId=name)["SecretString"]))
        for logical_id, name in resources.secrets.items()
    }

    assert resources.secrets["SlackAppSecret"] == "test/integrations/apps/slack"
    oauth_app = {"client_id", "client_secret", "previous_client_secret"}
    assert fields == {
        "GoogleAppSecret": oauth_app,
        "HubspotAppSecret": oauth_app,
        "CalendlyAppSecret": oauth_app | {"webhook_signing_key", "previous_webhook_signing_key"},
        "MicrosoftAppSecret": oauth_app,
        "SlackAppSecret": oauth_app | {"signing_secret", "previous_signing_secret"},
        "GhlAppSecret": oauth_app
        | {"webhook_public_key", "previous_webhook_public_key", "legacy_webhook_public_key"},
        "PubsubPushSecret": {"audience", "service_account_email", "jwks_url", "topic_name"},
    }


def test_environment_is_what_settings_reads(
    built: tuple[LocalResources, boto3.Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.config import Settings, TokenStorage

    resources, _ = built
    environment = resources.environment("WebhooksFunction", public_api_url="http://127.0.0.1:3000")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    settings = Settings.from_env()

    assert ENVIRONMENT_CONTRACT | {"POWERTOOLS_SERVICE_NAME"} <= set(environment)
    assert environment["POWERTOOLS_SERVICE_NAME"] == "webhooks"
    assert settings.stage == "test"
    assert settings.table_name == resources.main_table
    assert settings.state_table_name == resources.state_table
    assert settings.event_bus_name == resources.event_bus_name
    assert settings.sync_queue_url == resources.sync_queue_url
    assert settings.kms_key_id == resources.kms_key_id
    assert settings.token_storage is TokenStorage.KMS
    assert settings.public_api_url == "http://127.0.0.1:3000"
    assert settings.allowed_return_origins == ("http://127.0.0.1:3000",)
    assert settings.app_secret_prefix == "test/integrations/apps/"
    assert settings.agency_app_secret_prefix == "test/integrations/agency-apps/"


def test_environment_follows_overrides(built: tuple[LocalResources, boto3.Session]) -> None:
    resources, _ = built

    environment = resources.environment(
        public_api_url="https://api.example.test",
        allowed_return_origins="https://portal.example.test,https://app.example.test",
        token_storage="secretsmanager",
    )

    assert environment["PUBLIC_API_URL"] == "https://api.example.test"
    assert environment["ALLOWED_RETURN_ORIGINS"] == "https://portal.example.test,https://app.example.test"
    assert environment["TOKEN_STORAGE"] == "secretsmanager"


def test_secret_values_replace_placeholders_and_a_second_run_reuses_everything() -> None:
    with mock_aws():
        first = aws_resources(stage="local")
        name = first.secrets["SlackAppSecret"]

        again = aws_resources(stage="local", secret_values={name: '{"signing_secret":"s3cr3t"}'})

        stored = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(SecretId=name)
        assert json.loads(stored["SecretString"]) == {"signing_secret": "s3cr3t"}
        assert again.kms_key_id == first.kms_key_id
        assert again.queue_urls == first.queue_urls
        assert again.tables == first.tables


# --------------------------------------------------------------------------- deployment settings


def test_each_function_logs_to_its_own_log_group_with_retention(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for logical_id in functions(template):
        props = resources[logical_id]["Properties"]
        group = resources[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        function_name = props["FunctionName"]["Fn::Sub"]
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{function_name}"}
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_gives_every_required_parameter_and_only_known_ones(
    template: dict[str, Any], environment: str
) -> None:
    import shlex
    import tomllib

    config = tomllib.loads((REPO_ROOT / "infra" / "samconfig.toml").read_text())
    deploy = config[environment]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in shlex.split(deploy["parameter_overrides"]))
    declared = template["Parameters"]
    required = {name for name, spec in declared.items() if "Default" not in spec}

    assert set(overrides) <= set(declared)
    assert required <= set(overrides)
    assert overrides["Stage"] == environment.replace("default", "dev")
    assert deploy["capabilities"] == "CAPABILITY_IAM"


# --------------------------------------------------------------------------- the reader itself


def test_reader_turns_short_tags_into_long_forms_and_keeps_dates_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Version: 2012-10-17\nResources:\n  A:\n    Type: X\n    Properties:\n"
        "      Name: !Sub '${Stage}-a'\n      Arn: !GetAtt B.Arn\n      Items: !Split [',', !Ref P]\n"
    )

    parsed = load_template(path)

    assert parsed["Version"] == "2012-10-17"
    assert parsed["Resources"]["A"]["Properties"] == {
        "Name": {"Fn::Sub": "${Stage}-a"},
        "Arn": {"Fn::GetAtt": ["B", "Arn"]},
        "Items": {"Fn::Split": [",", {"Ref": "P"}]},
    }


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("cron(0 3 * * ? *)", None)],
)
def test_schedule_rates_are_read_in_seconds(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds
