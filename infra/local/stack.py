"""The whole product on one machine: embedded AWS, the gateway, the event sources and the provider sandbox.

    stack = LocalStack()
    urls = stack.start(port=0, sandbox_port=0)   # 0: any free port (tests); `make dev` uses 3000/3001
    ...
    stack.stop()

Everything is read from template.yaml through infra.local.resources: tables, queues, the bus, the key
and the secrets are created from it, the gateway serves its routes, the event sources run its SQS
mappings, schedules and bus rules. Where AWS lives is a choice: moto's server on 127.0.0.1 (default),
any endpoint (`aws_endpoint_url`), or real AWS with the ambient credentials (`real_aws=True`).

The functions run in this process and read the process environment, so start() sets the environment
Lambda would give them (and stop() puts the previous values back): one stack per process at a time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from infra.local import resources as template_resources
from infra.local.authorizer import DevCredentials, JwtAuthorizer, SigV4Verifier
from infra.local.dev_bus import EventLog, PlatformEvents, create_tap, platform_detail_types
from infra.local.dev_internal import PlatformSigner
from infra.local.event_sources import (
    EventSources,
    QueueConsumer,
    RuleConsumer,
    ScheduleTicker,
    create_rule_target,
)
from infra.local.gateway import CorsConfig, Gateway, HealthState, bind, serve_in_thread
from infra.local.http_server import DEFAULT_REQUEST_TIMEOUT
from infra.local.lambda_host import LambdaHost
from infra.local.resources import (
    REPO_ROOT,
    TEMPLATE_PATH,
    FunctionSpec,
    LocalResources,
    create_resources,
    functions,
    http_routes,
    load_template,
)
from infra.local.seed import app_secret_values, describe, seed_agencies
from infra.local.smtp import SmtpListener

if TYPE_CHECKING:
    from collections.abc import Iterable

    import boto3
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from infra.local.sandbox import SandboxApp, SandboxConfig

log = logging.getLogger("infra.local")

PORTAL_DIR = REPO_ROOT / "infra" / "portal"
LOCAL_AUDIENCE = "integrations-portal"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
# Who may call the AWS_IAM routes (/internal/*) locally: a SigV4 signature by the dev credentials,
# service `execute-api`, the stack's region (acting as the platform).
DEV_CREDENTIALS = DevCredentials(
    access_key=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], secret_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
)


class StartError(RuntimeError):
    """The stack cannot start as configured; the message says what to fix."""


def merged_catalog_overrides(sandbox: Mapping[str, Any], person_file: str | None) -> dict[str, Any]:
    """The sandbox's catalog overrides with the person's overrides file (if any) deep-merged over them.

    Read and merged by the catalog loader's own functions, so a value in the person's file wins over the
    sandbox's exactly as it would over the catalog itself (objects key by key, anything else replaced).
    """
    from integrations.catalog.loader import OVERRIDES_ENV, CatalogError
    from integrations.catalog.loader import _deep_merge as deep_merge
    from integrations.catalog.loader import _read_overrides as read_overrides

    if not person_file:
        return dict(sandbox)
    try:
        person = read_overrides(person_file)
    except CatalogError as exc:
        raise StartError(f"{OVERRIDES_ENV}={person_file}: {exc}") from None
    return deep_merge(dict(sandbox), person)


class _Server(Protocol):
    """What stop() needs of a server: werkzeug's (the embedded AWS) and LocalServer both have it."""

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StackUrls:
    """Where each part listens."""

    gateway: str
    portal: str
    sandbox: str
    aws: str | None
    health: str
    token: str
    # SES receiving for the BCC logging domain (None when the template has no receipt rule).
    smtp: str | None = None


class _Switch:
    """The gateway socket's WSGI app: 503 "starting" until the gateway is in place."""

    def __init__(self) -> None:
        self.target: Gateway | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.target is not None:
            return self.target(environ, start_response)
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"status":"starting"}']


class LocalStack:
    """Start and stop the offline product in this process."""

    def __init__(
        self,
        *,
        stage: str = "dev",
        host: str = "127.0.0.1",
        aws_endpoint_url: str | None = None,
        real_aws: bool = False,
        template_path: Path = TEMPLATE_PATH,
        portal_dir: Path = PORTAL_DIR,
        sandbox_config: SandboxConfig | None = None,
        batching_window: float | None = None,
        run_schedules: bool = True,
        log_requests: bool = False,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        catalog_overrides: str | None = None,
    ) -> None:
        if real_aws and aws_endpoint_url:
            raise ValueError("choose real AWS or an endpoint, not both")
        self.stage = stage
        self.bind_host = host
        self.aws_endpoint_url = aws_endpoint_url
        self.real_aws = real_aws
        self.template_path = template_path
        self.portal_dir = portal_dir
        self._sandbox_config = sandbox_config
        self.batching_window = batching_window
        self.run_schedules = run_schedules
        self.log_requests = log_requests
        # Seconds a client has to send a whole request to the gateway or the sandbox.
        self.request_timeout = request_timeout
        # The person's own overrides file, merged over the sandbox's (`make dev` passes the env variable's).
        self.catalog_overrides = catalog_overrides

        self.template: dict[str, Any] = {}
        self.urls: StackUrls | None = None
        self.resources: LocalResources | None = None
        self.session: boto3.Session | None = None
        self.authorizer: JwtAuthorizer | None = None
        self.lambdas: LambdaHost | None = None
        self.gateway: Gateway | None = None
        self.event_sources = EventSources()
        self.health = HealthState()
        self.load_failures: dict[str, str] = {}
        self.sandbox_app: SandboxApp | None = None
        # What `GET /dev/events` lists: events this service published, and platform events sent by hand.
        self.dev_events = EventLog()
        self.platform_events: PlatformEvents | None = None
        self._servers: list[tuple[str, _Server]] = []
        self.smtp: SmtpListener | None = None
        self._saved_env: dict[str, str | None] = {}
        self._work_dir: Path | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: int = 0, sandbox_port: int = 0, smtp_port: int = 0) -> StackUrls:
        """Bring everything up; returns the URLs once `/dev/health` answers 200."""
        if self._started:
            raise RuntimeError("this stack is already started")
        self._started = True
        try:
            return self._start(port, sandbox_port, smtp_port)
        except BaseException:
            self.stop()
            raise

    def _start(self, port: int, sandbox_port: int, smtp_port: int) -> StackUrls:
        from infra.local.sandbox import APP_CREDENTIALS, SandboxConfig, catalog_overrides, serve

        self.template = load_template(self.template_path)
        # Before anything starts: a bad overrides file stops here, with a message naming it.
        merged_catalog_overrides({}, self.catalog_overrides)
        switch = _Switch()
        gateway_server = bind(self.bind_host, port, switch, request_timeout=self.request_timeout)
        self._servers.append(("gateway", gateway_server))
        serve_in_thread(gateway_server, "gateway")
        gateway_url = f"http://{self.bind_host}:{gateway_server.server_port}"

        aws_url = self._start_aws()
        self.session = self._new_session()

        config = dataclasses.replace(self._sandbox_config or SandboxConfig(), gateway_url=gateway_url)
        sandbox_server, _ = serve(self.bind_host, sandbox_port, config, request_timeout=self.request_timeout)
        self._servers.append(("sandbox", sandbox_server))
        self.sandbox_app = sandbox_server.app  # type: ignore[assignment]
        sandbox_url = f"http://{self.bind_host}:{sandbox_server.server_port}"

        parameters = self._parameters(gateway_url)
        self.resources = create_resources(
            self.template,
            stage=self.stage,
            session=self.session,
            secret_values=app_secret_values(self.template, self.stage, APP_CREDENTIALS),
            parameters=parameters,
        )
        self._work_dir = Path(tempfile.mkdtemp(prefix="integrations-local-"))
        overrides_path = self._work_dir / "catalog-overrides.json"
        overrides = merged_catalog_overrides(catalog_overrides(sandbox_url), self.catalog_overrides)
        overrides_path.write_text(json.dumps(overrides, indent=2), encoding="utf-8")
        self._check_catalog(overrides_path)

        environment = self.resources.environment(
            public_api_url=gateway_url, allowed_return_origins=gateway_url
        )
        environment["INTEGRATIONS_CATALOG_OVERRIDES"] = str(overrides_path)
        self._set_env(environment)
        # No X-Ray daemon here, and calls to the sandbox and moto must never go through a proxy.
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
        self._set_env({"POWERTOOLS_TRACE_DISABLED": "1", "NO_PROXY": no_proxy, "no_proxy": no_proxy})
        self._reset_process_caches()

        seed_agencies(self.session.client("dynamodb"), self.resources.main_table)

        specs = functions(self.template)
        self.lambdas = LambdaHost(
            specs,
            function_names={lid: self._function_name(lid) for lid in specs},
            function_environment={
                lid: {
                    name: value
                    for name, value in self.resources.environment(
                        lid, public_api_url=gateway_url, allowed_return_origins=gateway_url
                    ).items()
                    if environment.get(name) != value
                }
                for lid in specs
            },
            region=self.resources.region,
            account_id=self.resources.account_id,
        )
        self.load_failures = self.lambdas.load()
        for logical_id, error in self.load_failures.items():
            log.warning("%s is not running (its routes answer 500): %s", logical_id, error)
        self._build_event_sources()
        self.platform_events = self._act_as_platform(specs)

        self.authorizer = JwtAuthorizer(
            issuer=str(parameters["JwtIssuer"]), audience=parameters["JwtAudience"].split(",")
        )
        api_properties = self.template["Resources"]["HttpApi"].get("Properties") or {}
        self.gateway = Gateway(
            http_routes(self.template),
            self.lambdas.invoke,
            self.authorizer,
            cors=CorsConfig.from_template(self._resolve(api_properties.get("CorsConfiguration"))),
            portal_dir=self.portal_dir,
            account_id=self.resources.account_id,
            api_id=f"local-{self.stage}",
            health=self.health,
            log_requests=self.log_requests,
            platform_events=self.platform_events,
            sigv4=SigV4Verifier(
                [DEV_CREDENTIALS], region=self.resources.region, account_id=self.resources.account_id
            ),
            # The developer panel's `/dev/internal/*`: calls signed as the platform with the same credentials.
            platform_signer=PlatformSigner(DEV_CREDENTIALS, self.resources.region),
        )
        switch.target = self.gateway
        self.event_sources.start()
        smtp_url = self._start_smtp(smtp_port)
        self.urls = StackUrls(
            gateway=gateway_url,
            portal=f"{gateway_url}/portal/",
            sandbox=sandbox_url,
            aws=aws_url,
            health=f"{gateway_url}/dev/health",
            token=f"{gateway_url}/dev/token",
            smtp=smtp_url,
        )
        self.health.details = {
            "urls": dataclasses.asdict(self.urls),
            "stage": self.stage,
            "functions": self.lambdas.status(),
            "seed": describe(),
        }
        self.health.ready = True
        return self.urls

    def stop(self) -> None:
        """Stop everything started so far and restore the process environment (safe to call twice)."""
        self.health.ready = False
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp.handler.wait_idle(timeout=5)
            self.smtp = None
        self.event_sources.stop()
        for name, server in reversed(self._servers):
            try:
                server.shutdown()
                server.server_close()
            except Exception:
                log.exception("stopping %s failed", name)
        self._servers.clear()
        if self.sandbox_app is not None:
            self.sandbox_app.close()
            self.sandbox_app = None
        if self.lambdas is not None:
            self.lambdas.unload()
        self._restore_env()
        self._reset_process_caches()
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None
        self._started = False

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ for tests and tools

    def token(
        self,
        *,
        sub: str,
        agency_id: str,
        role: str,
        permissions: list[str],
        client_id: str | None = None,
        expires_in: int | None = None,
    ) -> str:
        """A token as `POST /dev/token` would issue (expires_in may be negative here, for tests)."""
        assert self.authorizer is not None, "start() first"
        claims: dict[str, Any] = {
            "sub": sub,
            "agency_id": agency_id,
            "client_id": client_id,
            "role": role,
            "permissions": permissions,
        }
        if expires_in is None:
            return self.authorizer.issue(claims)
        return self.authorizer.issue(claims, expires_in=expires_in)

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke one function directly (as `aws lambda invoke` would)."""
        assert self.lambdas is not None, "start() first"
        return self.lambdas.invoke(logical_id, event)

    # ------------------------------------------------------------------ parts

    def _check_catalog(self, overrides_path: Path) -> None:
        """Load the catalog with the merged overrides once, so a mistake stops the start, not a request."""
        from integrations.catalog.loader import OVERRIDES_ENV, CatalogError, load_catalog

        try:
            load_catalog(str(overrides_path))
        except CatalogError as exc:
            source = f"{OVERRIDES_ENV}={self.catalog_overrides}" if self.catalog_overrides else "the sandbox"
            raise StartError(f"{source}: the catalog with these overrides is invalid: {exc}") from None

    def _start_aws(self) -> str | None:
        """Point boto3 at moto's server, another endpoint, or real AWS; returns the endpoint used."""
        if self.real_aws:
            self._set_env({"AWS_ENDPOINT_URL": None})
            return None
        if self.aws_endpoint_url:
            self._set_env({"AWS_ENDPOINT_URL": self.aws_endpoint_url, "AWS_EC2_METADATA_DISABLED": "true"})
            for name, value in FAKE_CREDENTIALS.items():
                if not os.environ.get(name):
                    self._set_env({name: value})
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            return self.aws_endpoint_url
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietMotoHandler(MotoRequestHandler):
            def log(self, type: str, message: str, *args: Any) -> None:
                if type == "error":
                    super().log(type, message, *args)

        # 127.0.0.1 only: the embedded AWS holds tokens and must never be reachable from elsewhere.
        server = make_server(
            "127.0.0.1",
            int(os.environ.get("MOTO_PORT", "0")),
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=QuietMotoHandler,
        )
        self._servers.append(("aws", server))
        threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
        self._set_env(
            {
                **FAKE_CREDENTIALS,
                "AWS_ENDPOINT_URL": url,
                "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region,
                "AWS_PROFILE": None,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        return url

    @staticmethod
    def _new_session() -> boto3.Session:
        import boto3

        return boto3.Session()

    def _parameters(self, gateway_url: str) -> dict[str, str]:
        """Template parameters for the local run: the gateway is the public URL and the allowed origin."""
        declared = self.template.get("Parameters") or {}

        def default(name: str, local: str) -> str:
            value = (declared.get(name) or {}).get("Default")
            return str(value) if value not in (None, "") else local

        return {
            "PublicApiUrl": gateway_url,
            "AllowedReturnOrigins": gateway_url,
            "JwtIssuer": default("JwtIssuer", f"{gateway_url}/dev"),
            "JwtAudience": default("JwtAudience", LOCAL_AUDIENCE),
        }

    def _resolve(self, value: Any) -> Any:
        """A template value with its intrinsics resolved against what this stack created."""
        assert self.resources is not None
        resolver = template_resources._Resolver(
            self.template,
            self.resources.parameters,
            template_resources._pseudo_parameters(
                self.resources.region, self.resources.account_id, self.stage
            ),
            dict(self.resources.refs),
            dict(self.resources.attributes),
        )
        return resolver.resolve(value)

    def _function_name(self, logical_id: str) -> str:
        properties = self.template["Resources"][logical_id].get("Properties") or {}
        name = properties.get("FunctionName")
        return str(self._resolve(name)) if name is not None else f"integrations-{self.stage}-{logical_id}"

    def _build_event_sources(self) -> None:
        assert self.resources is not None and self.lambdas is not None and self.session is not None
        resources = self.resources
        invoke = self.lambdas.invoke
        for logical_id, spec in functions(self.template).items():
            for queue in spec.queues:
                if queue.queue not in resources.queue_urls:
                    log.warning(
                        "%s.%s: queue %s is not in this template", logical_id, queue.event, queue.queue
                    )
                    continue
                self.event_sources.queues.append(
                    QueueConsumer(
                        self.session.client("sqs"),
                        function=logical_id,
                        source=queue,
                        queue_url=resources.queue_urls[queue.queue],
                        queue_arn=resources.queue_arns[queue.queue],
                        region=resources.region,
                        invoke=invoke,
                        batching_window=self.batching_window,
                    )
                )
            for schedule in spec.schedules:
                if not schedule.enabled or schedule.rate_seconds is None:
                    log.warning(
                        "%s.%s: %s is not run locally", logical_id, schedule.event, schedule.expression
                    )
                    continue
                ticker = ScheduleTicker(
                    function=logical_id,
                    source=schedule,
                    rule_arn=(
                        f"arn:aws:events:{resources.region}:{resources.account_id}:rule/"
                        f"{self._function_name(logical_id)}-{schedule.event}"
                    ),
                    region=resources.region,
                    account_id=resources.account_id,
                    invoke=invoke,
                )
                self.event_sources.schedules.append(ticker)
                if not self.run_schedules:
                    ticker.stop()  # Kept for fire_schedules(); its thread ends at once.
            for rule in spec.event_rules:
                bus = resources.event_buses.get(rule.bus, "default") if rule.bus else "default"
                target = create_rule_target(
                    self.session, stage=self.stage, function=logical_id, source=rule, bus_name=bus
                )
                self.event_sources.rules.append(
                    RuleConsumer(
                        self.session.client("sqs"),
                        function=logical_id,
                        source=rule,
                        target=target,
                        invoke=invoke,
                    )
                )

    def _start_smtp(self, port: int) -> str | None:
        """SES receiving for the template's receipt rule, on a real SMTP port (None without a rule)."""
        from infra.local.smtp import SesReceiving, SmtpListener, receipt_rule

        assert self.resources is not None and self.lambdas is not None and self.session is not None
        resources = self.resources
        rule = receipt_rule(
            self.template,
            self._resolve,
            resources.queue_urls,
            lambda lid: (
                f"arn:aws:lambda:{resources.region}:{resources.account_id}:function:"
                f"{self._function_name(lid)}:live"
            ),
        )
        if rule is None:
            return None
        handler = SesReceiving(
            rule, self.session.client("s3"), self.lambdas.invoke, sqs=self.session.client("sqs")
        )
        self.smtp = SmtpListener(handler, host=self.bind_host, port=port)
        self.smtp.start()
        return f"smtp://{self.bind_host}:{self.smtp.port}"

    def _act_as_platform(self, specs: Mapping[str, FunctionSpec]) -> PlatformEvents:
        """The dev routes' two halves: a bus tap feeding the event log, and the platform's publisher."""
        assert self.resources is not None and self.session is not None
        bus = self.resources.event_bus_name
        tap = create_tap(self.session, stage=self.stage, bus_name=bus, events=self.dev_events)
        self.event_sources.taps.append(tap)
        return PlatformEvents(
            self.session.client("events"), bus, self.dev_events, platform_detail_types(specs.values())
        )

    # ------------------------------------------------------------------ process state

    def _set_env(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if name not in self._saved_env:
                self._saved_env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    @staticmethod
    def _reset_process_caches() -> None:
        """Forget boto3 clients and catalogs built for another environment (tests run several)."""
        from integrations import aws
        from integrations.catalog.loader import clear_cache

        aws.reset_clients()
        clear_cache()


def wait_forever(stop: threading.Event) -> None:
    """Block until `stop` is set, waking up regularly so Ctrl-C is handled promptly."""
    while not stop.wait(0.5):
        pass
