"""The part every translator shares: collect functions, routes and schedules, check them.

Each translator (SAM, Serverless, Terraform) reads its own syntax and calls
:class:`StackBuilder`; the builder checks what a local run needs with the resource and
property named in the message (the code directory exists, the handler's module file is in
it, the runtime is Python, the numbers are in AWS's ranges), turns routes and schedules
aimed at a function that cannot run into notes, and finally produces the
:class:`~warmline.config.DevConfig` through :func:`~warmline.config.parse_config`,
so a translated stack is validated by exactly the rules a ``warmline.toml`` is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmline.config import parse_config
from warmline.config.iam import FunctionIam
from warmline.config.services import (
    Bucket,
    Parameter,
    Queue,
    Secret,
    ServiceResources,
    Table,
    Topic,
)
from warmline.core import limits
from warmline.errors import ConfigurationError
from warmline.templates.report import Note, NoteKind, SourceError, Translation

__all__ = ["StackBuilder", "code_directory", "unpack_zip"]

#: Lambda memory range in MB: 128-10,240 (docs/protocols.md §3.7).
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
_RUNTIME_RE = re.compile(r"^(python3\.\d+|nodejs(18|20|22)\.x|provided(\.al2|\.al2023)?)$")
#: API Gateway stage names the emulator serves in its URL path.
_STAGE_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_RESERVED_ROUTES = ("$connect", "$disconnect", "$default")
_IDENTITY_SOURCE_RE = re.compile(r"^route\.request\.(header|querystring)\..+$")
#: What the gateway does when a route has no integration (docs/protocols.md §2.1, §2.3).
_ROUTE_FALLBACK = {
    "$connect": "connections are accepted without running it",
    "$disconnect": "disconnects run nothing",
    "$default": "unmatched messages get API Gateway's Forbidden frame",
}
_UNPACK_DIR = "warmline-sources"


def unpack_zip(path: Path, where: str, source: Path) -> Path:
    """Unpack a deployment zip once into a cache directory keyed by its content.

    Raises:
        SourceError: the file is not a readable zip.
    """
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
        target = Path(tempfile.gettempdir()) / _UNPACK_DIR / digest
        if not target.is_dir():
            partial = target.with_name(digest + ".partial")
            with zipfile.ZipFile(path) as archive:
                archive.extractall(partial)  # extract() drops absolute and '..' parts
            partial.replace(target)
        return target
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceError(
            f"{path} is not a readable zip: {exc}", where=where, source=source
        ) from exc


def code_directory(path: Path, where: str, source: Path) -> Path:
    """A function's code directory: a directory as is, a ``.zip`` unpacked.

    Raises:
        SourceError: missing, or neither a directory nor a zip.
    """
    if path.is_dir():
        return path.resolve()
    if path.is_file() and path.suffix.lower() == ".zip":
        return unpack_zip(path, where, source)
    raise SourceError(f"code {path} is not a directory or a .zip file", where=where, source=source)


def _number(value: Any, where: str, source: Path, *, integer: bool) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value) if not integer else int(str(value))
    except (TypeError, ValueError) as exc:
        kind = "an integer" if integer else "a number"
        raise SourceError(f"must be {kind}, got {value!r}", where=where, source=source) from exc
    return number


@dataclass(slots=True)
class StackBuilder:
    """Collects one stack's runnable parts and its notes.

    Attributes:
        source: the template file or Terraform directory.
        format: ``sam``, ``cloudformation``, ``serverless`` or ``terraform``.
    """

    source: Path
    format: str
    region: str = "us-east-1"
    account: str = "123456789012"
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    websocket: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, Any] = field(default_factory=dict)
    authorizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    sqs: dict[str, dict[str, Any]] = field(default_factory=dict)
    sns: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    #: functions that exist in the stack but do not run locally, with the reason.
    skipped: dict[str, str] = field(default_factory=dict)
    #: tables, queues, topics, buckets, parameters, secrets for the local services.
    resources: list[Table | Queue | Topic | Bucket | Parameter | Secret] = field(
        default_factory=list
    )
    #: each function's execution role as the reader found it (``warmline.config.iam``).
    iam: dict[str, FunctionIam] = field(default_factory=dict)

    def error(self, message: str, where: str) -> SourceError:
        """A :class:`SourceError` for this source."""
        return SourceError(message, where=where, source=self.source)

    def note(self, resource: str, kind: NoteKind, type_: str, message: str) -> None:
        """Record a note (printed at start-up)."""
        self.notes.append(Note(resource, kind, type_, message))

    # --- functions ----------------------------------------------------------------------

    def add_function(
        self,
        name: str,
        *,
        resource: str,
        type_: str,
        where: str,
        handler: Any,
        code: Path | None,
        runtime: Any,
        memory: Any = None,
        timeout: Any = None,
        environment: Any = None,
        reserved_concurrency: Any = None,
        ephemeral_storage: Any = None,
    ) -> bool:
        """Add a function if it can run locally; otherwise note why and return False.

        Raises:
            SourceError: a missing/bad handler, code directory, handler file or number.
        """
        if name in self.functions or name in self.skipped:
            raise self.error(f"two functions are named {name!r}", where)
        if not isinstance(runtime, str) or not runtime:
            raise self.error("missing Runtime (a Python runtime such as python3.12)", where)
        if not _RUNTIME_RE.match(runtime):
            self.skipped[name] = f"runtime {runtime}"
            self.note(
                resource,
                "unsupported",
                type_,
                f"runtime {runtime} is not run (warmline dev runs Python, Node.js 18/20/22 and "
                "provided.al2/al2023 functions); its routes, schedules and queues are dropped "
                "(listed below)",
            )
            return False
        custom = runtime.startswith("provided")
        if not isinstance(handler, str) or (not custom and "." not in handler.strip(".")):
            raise self.error(f"handler must be 'module.function', got {handler!r}", where)
        if code is None:
            raise self.error("no code location (a directory or .zip)", where)
        code_dir = code_directory(code, where, self.source)
        missing = _missing_handler_file(runtime, handler, code_dir)
        if missing is not None:
            raise self.error(f"handler {handler!r}: no {missing} in {code_dir}", where)
        # The runtime picks the interpreter environments run on (warmline.dev.runtime).
        table: dict[str, Any] = {"handler": handler, "code": str(code_dir), "runtime": runtime}
        if ephemeral_storage is not None:
            size = (
                (ephemeral_storage or {}).get("Size")
                if isinstance(ephemeral_storage, dict)
                else ephemeral_storage
            )
            table["ephemeral_storage"] = int(
                _number(size, f"{where} ephemeral storage", self.source, integer=True)
            )
        if memory is not None:
            mb = int(_number(memory, f"{where} memory", self.source, integer=True))
            if not MIN_MEMORY_MB <= mb <= MAX_MEMORY_MB:
                raise self.error(
                    f"memory must be {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB, got {mb}", where
                )
            table["memory"] = mb
        if timeout is not None:
            seconds = _number(timeout, f"{where} timeout", self.source, integer=False)
            if not 0 < seconds <= limits.MAX_FUNCTION_TIMEOUT_S:
                raise self.error(f"timeout must be in (0, 900] s, got {seconds:g}", where)
            table["timeout"] = seconds
        if environment:
            table["environment"] = self._environment(environment, where)
        if reserved_concurrency is not None:
            reserved = int(_number(reserved_concurrency, where, self.source, integer=True))
            if reserved < 1:
                self.note(
                    resource, "info", type_, "reserved concurrency 0 (throttled) is not emulated"
                )
            else:
                table["reserved_concurrency"] = reserved
        self.functions[name] = table
        return True

    def _environment(self, environment: Any, where: str) -> dict[str, str]:
        if not isinstance(environment, dict):
            raise self.error("environment variables must be a mapping", where)
        out: dict[str, str] = {}
        for key, value in environment.items():
            if isinstance(value, bool):
                out[str(key)] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                out[str(key)] = str(value)
            elif value is None:
                out[str(key)] = ""
            else:
                raise self.error(
                    f"environment variable {key} must be a string, got {value!r}", where
                )
        return out

    # --- the WebSocket API, routes, schedules, queues ---------------------------------------

    def set_websocket(
        self, *, stage: str, selection: str, where: str, selection_where: str | None = None
    ) -> None:
        """Set the stage and route selection expression, each checked with its own ``where``.

        Args:
            stage: the stage name (``where`` names its property).
            selection: the route selection expression.
            where: the stage's property, for messages.
            selection_where: the expression's property (default ``where``).
        """
        from warmline.config.selection import parse_selection

        if not _STAGE_RE.match(stage):
            raise self.error(
                f"stage name must be letters, digits, '-' or '_', got {stage!r}", where
            )
        try:
            parse_selection(selection)
        except ValueError as exc:
            raise self.error(
                f"route selection expression: {exc} (API Gateway's forms: "
                "'$request.body.action', '${request.body.action}', static text)",
                selection_where or where,
            ) from exc
        self.websocket = {"stage": stage, "route_selection_expression": selection}

    def add_authorizer(
        self, name: str, function: str, identity_sources: list[str], *, resource: str, type_: str
    ) -> bool:
        """Add a Lambda REQUEST authorizer; False (with a note) when it cannot run."""
        if function in self.skipped:
            self.note(
                resource,
                "unsupported",
                type_,
                f"authorizer {name} -> {function} ({self.skipped[function]}) is not run: "
                "its $connect route lets every connection in",
            )
            return False
        readable = [s for s in identity_sources if _IDENTITY_SOURCE_RE.match(s)]
        for source in identity_sources:
            if source not in readable:
                self.note(
                    resource,
                    "unsupported",
                    type_,
                    f"identity source {source} is not checked (route.request.header.* and "
                    "route.request.querystring.* are)",
                )
        self.authorizers[name] = {"function": function, "identity_sources": readable}
        return True

    def add_route(
        self,
        key: str,
        function: str,
        *,
        route_response: bool,
        resource: str,
        type_: str,
        where: str,
        authorization: str = "NONE",
        authorizer: str | None = None,
    ) -> None:
        """Add a route to a function (a note instead if that function does not run).

        ``authorization`` and ``authorizer`` are the route's AuthorizationType and the name
        of an authorizer added with :meth:`add_authorizer` (``$connect`` only, as on AWS).
        """
        if key.startswith("$") and key not in _RESERVED_ROUTES:
            raise self.error(f"route key {key!r}: custom route keys must not start with '$'", where)
        if function in self.skipped:
            fallback = _ROUTE_FALLBACK.get(key, "its messages go to $default if there is one")
            self.note(
                resource,
                "unsupported",
                type_,
                f"route {key} -> {function} ({self.skipped[function]}) is not run: {fallback}",
            )
            return
        if function not in self.functions:
            raise self.error(f"route {key!r} targets unknown function {function!r}", where)
        if key in self.routes:
            raise self.error(f"route {key!r} is defined twice", where)
        if authorization != "NONE" and key != "$connect":
            raise self.error(
                f"route {key!r}: authorization applies to the $connect route only", where
            )
        if authorizer is not None and authorizer not in self.authorizers:
            authorization, authorizer = "NONE", None  # noted by add_authorizer
        table: dict[str, Any] = {"function": function, "route_response": route_response}
        if authorization != "NONE":
            table["authorization"] = authorization
        if authorizer is not None:
            table["authorizer"] = authorizer
        self.routes[key] = table

    def add_schedule(
        self,
        name: str,
        *,
        expression: Any,
        targets: list[str],
        input_: Any,
        enabled: bool,
        resource: str,
        type_: str,
        where: str,
    ) -> None:
        """Add a schedule; targets that do not run become notes."""
        from warmline.config.schedule import parse_expression

        if not isinstance(expression, str):
            raise self.error(f"schedule expression must be a string, got {expression!r}", where)
        try:
            parse_expression(expression)
        except ValueError as exc:
            raise self.error(f"schedule expression {expression!r}: {exc}", where) from exc
        runnable = []
        for target in targets:
            if target in self.skipped:
                self.note(
                    resource,
                    "unsupported",
                    type_,
                    f"target {target} ({self.skipped[target]}) is not run by this schedule",
                )
            elif target not in self.functions:
                raise self.error(
                    f"schedule target {target!r} is not a function of this stack", where
                )
            else:
                runnable.append(target)
        if not runnable:
            return
        if isinstance(input_, str):
            try:
                input_ = json.loads(input_)
            except ValueError as exc:
                raise self.error(f"input is not valid JSON: {exc}", where) from exc
        if name in self.schedules:
            raise self.error(f"two schedules are named {name!r}", where)
        table: dict[str, Any] = {"expression": expression, "targets": runnable, "enabled": enabled}
        if input_ is not None:
            table["input"] = input_
        self.schedules[name] = table

    def add_sqs(
        self,
        name: str,
        function: str,
        *,
        options: dict[str, Any],
        resource: str,
        type_: str,
        where: str,
    ) -> None:
        """Add an SQS queue feeding ``function`` (one function per queue, as the config)."""
        if function in self.skipped:
            self.note(resource, "unsupported", type_, f"queue {name} -> {function} is not run")
            return
        if name in self.sqs:
            self.note(
                resource,
                "unsupported",
                type_,
                f"queue {name} already feeds {self.sqs[name]['function']}; only one consumer runs",
            )
            return
        self.sqs[name] = {"function": function, **options}

    def add_sns(self, topic: str, function: str, *, resource: str, type_: str) -> None:
        """Subscribe ``function`` to an SNS topic."""
        if function in self.skipped:
            self.note(resource, "unsupported", type_, f"topic {topic} -> {function} is not run")
            return
        entry = self.sns.setdefault(topic, {"functions": []})
        if function not in entry["functions"]:
            entry["functions"].append(function)

    # --- result -------------------------------------------------------------------------

    def build(self) -> Translation:
        """The validated :class:`Translation`.

        Raises:
            SourceError: nothing runnable, or a rule of the config is broken.
        """
        if not self.functions:
            skipped = ", ".join(f"{n} ({why})" for n, why in self.skipped.items())
            raise self.error(
                "no Lambda function to run" + (f"; not run: {skipped}" if skipped else ""),
                "",
            )
        for name in self.sqs:
            self.note(
                name,
                "info",
                "SQS queue",
                "feeds its function locally from DevServer.send_sqs; SendMessage calls from "
                "handlers reach the local SQS (moto), whose messages feed no function",
            )
        for name in self.sns:
            self.note(
                name,
                "info",
                "SNS topic",
                "feeds its functions locally from DevServer.publish_sns; Publish calls from "
                "handlers reach the local SNS (moto), whose messages feed no function",
            )
        data: dict[str, Any] = {
            "functions": self.functions,
            "websocket": {**self.websocket, "routes": self.routes, "authorizers": self.authorizers},
            "schedules": self.schedules,
            "sqs": self.sqs,
            "sns": self.sns,
            "region": self.region,
            "account": self.account,
        }
        try:
            config = parse_config(data, base_dir=self.source.parent, source=self.source)
        except ConfigurationError as exc:
            raise self.error(f"translated config is invalid: {exc}", "") from exc
        config = dataclasses.replace(config, services=self.service_resources())
        if self.iam:
            functions = {
                name: dataclasses.replace(fn, iam=self.iam.get(name, fn.iam))
                for name, fn in config.functions.items()
            }
            config = dataclasses.replace(config, functions=functions)
        return Translation(config, self.source, self.format, tuple(self.notes))

    def add_resource(self, resource: Table | Queue | Topic | Bucket | Parameter | Secret) -> None:
        """Create ``resource`` in the local services (one per kind and name)."""
        if not any(type(r) is type(resource) and r.name == resource.name for r in self.resources):
            self.resources.append(resource)

    def service_resources(self) -> ServiceResources:
        """The resources added so far, grouped by service."""

        def of(kind: type[Any]) -> tuple[Any, ...]:
            return tuple(r for r in self.resources if isinstance(r, kind))

        return ServiceResources(
            tables=of(Table),
            queues=of(Queue),
            topics=of(Topic),
            buckets=of(Bucket),
            parameters=of(Parameter),
            secrets=of(Secret),
        )


def _missing_handler_file(runtime: str, handler: str, code_dir: Path) -> str | None:
    """The file the handler names that the code directory lacks (None: it is there).

    Python ``pkg.mod.func``: ``pkg/mod.py`` or its package; Node.js ``path/index.handler``:
    ``path/index.js``, ``.mjs`` or ``.cjs``; ``provided``: the ``bootstrap`` file.
    """
    if runtime.startswith("provided"):
        return None if (code_dir / "bootstrap").is_file() else "bootstrap"
    if runtime.startswith("nodejs"):
        folder, _, tail = handler.rpartition("/")
        stem = code_dir / folder / tail.split(".", 1)[0]
        if any(stem.with_name(stem.name + ext).is_file() for ext in (".js", ".mjs", ".cjs")):
            return None
        return f"{stem.relative_to(code_dir)}.js"
    module = handler.rsplit(".", 1)[0].replace("/", ".")
    module_path = code_dir.joinpath(*module.split("."))
    if module_path.with_suffix(".py").is_file() or (module_path / "__init__.py").is_file():
        return None
    return f"{module_path.relative_to(code_dir)}.py"
