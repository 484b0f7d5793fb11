"""Host every function of template.yaml in this process, the way Lambda runs one instance of each.

Each function folder is an import root in Lambda. Here all of them share one interpreter, so:
- `app.py` of each function is loaded from its path under a unique module name (they all say `app`);
- the folders' own packages (`portal_routes`, `oauth_routes`, ...) must have distinct names, which
  `LambdaHost` checks before importing anything;
- one lock per function serializes its invocations, as one Lambda instance takes one request at a time
  (Powertools' resolvers keep the current event on the module-level app, so this also keeps them correct).
The process environment is shared, so it holds the template's Globals variables; a function's own
variables are applied while its module is imported (they only name its Powertools service).
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from infra.local.resources import FunctionSpec

log = logging.getLogger("infra.local.lambda")

# Folders and files next to app.py that are not the function's own importable code.
_NOT_CODE = {"__pycache__", ".mypy_cache", ".pytest_cache", "app", "requirements"}


class FunctionNotLoaded(Exception):
    """The function's code failed to import (its routes answer 500, as a broken deployment would)."""


class InvocationError(Exception):
    """The handler raised: Lambda reports `errorType` and `errorMessage`."""

    def __init__(self, function: str, error_type: str, message: str) -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.message = message


@dataclass
class LambdaContext:
    """The context object Lambda passes to a handler (the attributes Powertools and boto3 read)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class HostedFunction:
    """One function: its spec, its handler once imported, and the lock standing for its single instance."""

    spec: FunctionSpec
    function_name: str
    handler: Callable[[Any, Any], Any] | None = None
    module_name: str = ""
    load_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: int = 0


def local_packages(folder: Path) -> set[str]:
    """Top-level module and package names a function folder contributes to imports (besides app)."""
    names: set[str] = set()
    if not folder.is_dir():
        return names
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and (entry / "__init__.py").exists():
            names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
    return names - _NOT_CODE


class LambdaHost:
    """Loads every function's handler once and invokes it with a Lambda-like context."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        *,
        function_names: Mapping[str, str],
        function_environment: Mapping[str, Mapping[str, str]],
        region: str,
        account_id: str,
    ) -> None:
        self._region = region
        self._account_id = account_id
        self._function_environment = function_environment
        self.functions: dict[str, HostedFunction] = {
            logical_id: HostedFunction(spec, function_names.get(logical_id, logical_id))
            for logical_id, spec in specs.items()
        }
        self._added_paths: list[str] = []
        self._local_names: set[str] = set()

    # ------------------------------------------------------------------ loading

    def load(self) -> dict[str, str]:
        """Import every function; returns the ones that failed, with why (they stay unloaded)."""
        owners: dict[str, str] = {}
        for logical_id, hosted in self.functions.items():
            for name in local_packages(hosted.spec.directory):
                if name in owners:
                    raise RuntimeError(
                        f"{owners[name]} and {logical_id} both have a top-level module {name!r}: "
                        "rename one, they cannot share one interpreter"
                    )
                owners[name] = logical_id
        self._local_names = set(owners)
        self._forget_modules()
        for hosted in self.functions.values():
            folder = str(hosted.spec.directory)
            if folder not in sys.path:
                sys.path.insert(0, folder)
                self._added_paths.append(folder)
        failures: dict[str, str] = {}
        for logical_id, hosted in self.functions.items():
            try:
                self._load_one(hosted)
            except FunctionNotLoaded as exc:
                hosted.load_error = str(exc)
                failures[logical_id] = hosted.load_error
            except Exception as exc:
                hosted.load_error = f"{type(exc).__name__}: {exc}"
                failures[logical_id] = hosted.load_error
                log.exception("function %s failed to load", logical_id)
        return failures

    def _load_one(self, hosted: HostedFunction) -> None:
        spec = hosted.spec
        path = spec.directory / f"{spec.handler_module.replace('.', '/')}.py"
        if not path.exists():
            raise FunctionNotLoaded(f"{path} does not exist")
        module_name = f"_local_lambda_{spec.name}_{spec.handler_module.replace('.', '_')}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise FunctionNotLoaded(f"cannot import {path}")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            with self._environment(self._function_environment.get(spec.logical_id, {})):
                module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            # app.py pauses the garbage collector while it loads (integrations.coldstart); a module that
            # fails to load never reaches its own `coldstart.loaded()`.
            gc.enable()
            raise
        handler = getattr(module, spec.handler_function, None)
        if not callable(handler):
            raise FunctionNotLoaded(f"{path} has no callable {spec.handler_function}")
        hosted.handler = handler
        hosted.module_name = module_name

    @staticmethod
    @contextmanager
    def _environment(variables: Mapping[str, str]) -> Iterator[None]:
        previous = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def unload(self) -> None:
        """Forget the imported modules and import roots (a later load starts from scratch)."""
        self._forget_modules()
        for hosted in self.functions.values():
            if hosted.module_name:
                sys.modules.pop(hosted.module_name, None)
            hosted.handler = None
        for folder in self._added_paths:
            if folder in sys.path:
                sys.path.remove(folder)
        self._added_paths.clear()

    def _forget_modules(self) -> None:
        for module in list(sys.modules):
            if module.split(".")[0] in self._local_names:
                del sys.modules[module]

    # ------------------------------------------------------------------ invoking

    def status(self) -> dict[str, str]:
        """`loaded` or the import error, by logical id."""
        return {
            logical_id: "loaded" if hosted.handler is not None else f"failed: {hosted.load_error}"
            for logical_id, hosted in self.functions.items()
        }

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Run the handler with `event` and a fresh context; raise InvocationError if it raises."""
        hosted = self.functions[logical_id]
        if hosted.handler is None:
            raise FunctionNotLoaded(f"{logical_id} is not loaded: {hosted.load_error}")
        spec = hosted.spec
        with hosted.lock:
            hosted.invocations += 1
            context = LambdaContext(
                function_name=hosted.function_name,
                invoked_function_arn=(
                    f"arn:aws:lambda:{self._region}:{self._account_id}:function:{hosted.function_name}"
                ),
                memory_limit_in_mb=spec.memory_size,
                aws_request_id=str(uuid.uuid4()),
                log_group_name=f"/aws/lambda/{hosted.function_name}",
                log_stream_name=time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
                deadline=time.monotonic() + spec.timeout,
            )
            started = time.monotonic()
            try:
                return hosted.handler(event, context)
            except Exception as exc:
                log.exception("%s raised (request %s)", logical_id, context.aws_request_id)
                raise InvocationError(logical_id, type(exc).__name__, str(exc)) from exc
            finally:
                elapsed = time.monotonic() - started
                if elapsed > spec.timeout:
                    # A thread cannot be stopped; say loudly that Lambda would have cut it off.
                    log.warning(
                        "%s ran %.1f s, past its %d s timeout: Lambda would have stopped it",
                        logical_id,
                        elapsed,
                        spec.timeout,
                    )
