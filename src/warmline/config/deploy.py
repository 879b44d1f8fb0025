"""The deploy-only settings: an optional ``[deploy]`` table beside the ``warmline dev`` config.

``warmline deploy`` reads the same ``warmline.toml`` (or ``[tool.warmline]``) as ``warmline
dev`` — functions, WebSocket routes, schedules, SQS queues, SNS topics — so what runs
locally is what gets deployed. What only matters on AWS lives in ``[deploy]``, parsed here
and removed before the dev parser sees the file (the dev parser rejects unknown tables)::

    [deploy]
    stack_name = "warmline"            # prefix of resource names (Terraform) / stack
    runtime = "python3.12"             # Lambda managed runtime
    architecture = "arm64"             # or "x86_64"
    log_retention_days = 14
    stage = "prod"                     # WebSocket stage on AWS (default: [websocket] stage)
    table = true                       # create the DynamoDB sessions table
    worker = "worker"                  # async Lambda dispatch target (lambda:InvokeFunction)
    twiml = { function = "ws", endpoint = "function_url" }   # or "http_api"; false: none
                                       # (default: the dev config's [http] function)
    artifacts = "build/lambda"         # where `warmline deploy package` writes the zips
    extras = []                        # warmline extras bundled (e.g. ["redis"])
    requirements = []                  # other pip requirements bundled
    budget_mb = 5                      # package size warning threshold (zipped)
    warmline = "pip"                   # how warmline itself is staged: "pip" or "copy"
    python = ""                        # interpreter that compiles the .pyc (default: found)
    alarm_topic_arn = ""               # SNS topic notified by the alarms (default: one
                                       # the template creates)
    observability = {}                 # alarms, dashboard, access logs: see
                                       # warmline.config.observability
    plain_environment = []             # secret-looking env names that are not secrets
    exclude = ["docs/", "*.csv"]       # left out of the zips, beside the built-in excludes
                                       # (.env*, .warmline/, *.tfstate*, tests/, ...)

    [deploy.secrets.TWILIO_AUTH_TOKEN] # never a value: a parameter or secret NAME
    ssm = "/warmline/twilio-auth-token"          # SSM SecureString parameter, or
    # secretsmanager = "warmline/twilio"         # a Secrets Manager secret name
    kms_key_arn = ""                   # only for a customer-managed key
    functions = ["ws"]                 # default: every function

    [deploy.functions.worker]
    extras = ["aws"]                   # replaces the global list for this function
    requirements = []
    exclude = ["fixtures/"]            # added to the [deploy] exclude list for this zip
    p99_ms = 20000                     # p99 Duration alarm threshold

    [deploy.functions.ws]              # start-up options (warmline cost / warmup plan)
    provisioned_concurrency = 2        # environments kept initialised, on the alias "live"
    # snapstart = true                 # or: resume from a snapshot (python3.12+), not both

A function with ``provisioned_concurrency`` or ``snapstart`` is published as a version
behind the alias ``live`` (:data:`PUBLISH_ALIAS`), and every trigger (routes, function
URL, queues, topics, schedules, other functions' invokes) calls the alias: both options
only apply to published versions. Reserved concurrency is the dev config's
``[functions.<name>] reserved_concurrency``, deployed as it runs locally; provisioned
concurrency cannot exceed it.

Every problem raises :class:`ConfigurationError` naming the key, as the dev parser does.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmline.config.keys import allowed
from warmline.config.load import parse_config
from warmline.config.model import DevConfig
from warmline.config.observability import ObservabilitySettings, parse_observability
from warmline.errors import ConfigurationError

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_BUDGET_MB",
    "DEFAULT_LOG_RETENTION_DAYS",
    "DEFAULT_RUNTIME",
    "LOG_RETENTION_DAYS",
    "PUBLISH_ALIAS",
    "SNAPSTART_MIN_PYTHON",
    "DeploySettings",
    "FunctionDeploy",
    "Project",
    "SecretRef",
    "TwimlEndpoint",
    "load_project",
    "parse_deploy",
]

#: Newest Python managed runtime SnapStart supports (docs/protocols.md §3.5: Python 3.12+).
DEFAULT_RUNTIME = "python3.12"
#: Graviton: ~20% cheaper per GB-second than x86_64 (AWS Lambda pricing page, §3 sources).
DEFAULT_ARCHITECTURE = "arm64"
DEFAULT_LOG_RETENTION_DAYS = 14
#: Zipped package size above which ``deploy package`` warns (a fast cold start budget, not
#: an AWS limit; AWS's are in ``package.py``).
DEFAULT_BUDGET_MB = 5.0
#: The values CloudWatch Logs accepts for ``RetentionInDays`` (CloudFormation
#: ``AWS::Logs::LogGroup`` reference).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip
#: The alias a function with provisioned concurrency or SnapStart is published behind.
PUBLISH_ALIAS = "live"
#: SnapStart's first Python runtime (docs/protocols.md §3.5: Python 3.12+).
SNAPSTART_MIN_PYTHON = (3, 12)
_RUNTIME_RE = re.compile(r"^python3\.(\d+)$")
_ARCHITECTURES = ("arm64", "x86_64")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STACK_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
_STAGE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_EXTRA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A secret the functions read at run time: where it lives, never its value.

    Attributes:
        env: the variable the app knows (``TWILIO_AUTH_TOKEN``); the template sets
            ``<env>_PARAMETER`` (SSM) or ``<env>_SECRET_ID`` (Secrets Manager) to the name.
        store: ``"ssm"`` or ``"secretsmanager"``.
        name: the parameter name (``/warmline/twilio-auth-token``) or secret name.
        kms_key_arn: a customer-managed key to grant ``kms:Decrypt`` on ("" = AWS-managed
            key, which needs no grant).
        functions: the functions allowed to read it.
    """

    env: str
    store: str
    name: str
    kms_key_arn: str
    functions: tuple[str, ...]

    @property
    def env_var(self) -> str:
        """The environment variable that carries the name."""
        return f"{self.env}_PARAMETER" if self.store == "ssm" else f"{self.env}_SECRET_ID"


@dataclass(frozen=True, slots=True)
class TwimlEndpoint:
    """The HTTP endpoint Twilio's voice webhook calls (``/twiml``, ``/cr-action``)."""

    function: str
    endpoint: str = "function_url"  # or "http_api"


@dataclass(frozen=True, slots=True)
class FunctionDeploy:
    """Per-function deploy settings (``[deploy.functions.<name>]``)."""

    extras: tuple[str, ...] | None = None
    requirements: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    p99_ms: float | None = None
    provisioned_concurrency: int | None = None
    snapstart: bool = False

    @property
    def published(self) -> bool:
        """True when the function is deployed as a version behind :data:`PUBLISH_ALIAS`."""
        return self.provisioned_concurrency is not None or self.snapstart


@dataclass(frozen=True, slots=True)
class DeploySettings:
    """The ``[deploy]`` table (see the module docstring for every key)."""

    stack_name: str = "warmline"
    runtime: str = DEFAULT_RUNTIME
    architecture: str = DEFAULT_ARCHITECTURE
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    stage: str | None = None
    table: bool = True
    worker: str | None = None
    twiml: TwimlEndpoint | None = None
    artifacts: Path = Path("build/lambda")
    extras: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    budget_mb: float = DEFAULT_BUDGET_MB
    warmline: str = "pip"
    python: str = ""
    alarm_topic_arn: str = ""
    plain_environment: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    functions: Mapping[str, FunctionDeploy] = field(default_factory=dict)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)

    @property
    def python_version(self) -> tuple[int, int]:
        """The runtime's Python version, e.g. ``(3, 12)``."""
        match = _RUNTIME_RE.match(self.runtime)
        assert match is not None  # validated at parse time
        return 3, int(match.group(1))

    def extras_for(self, function: str) -> tuple[str, ...]:
        """The warmline extras bundled with ``function``."""
        own = self.functions.get(function)
        return own.extras if own is not None and own.extras is not None else self.extras

    def exclude_for(self, function: str) -> tuple[str, ...]:
        """The exclude patterns of ``function``'s zip: the project's, then its own."""
        own = self.functions.get(function)
        return self.exclude + (own.exclude if own is not None else ())

    def requirements_for(self, function: str) -> tuple[str, ...]:
        """The other pip requirements bundled with ``function``."""
        own = self.functions.get(function)
        if own is not None and own.requirements is not None:
            return own.requirements
        return self.requirements


@dataclass(frozen=True, slots=True)
class Project:
    """The dev config and the deploy settings of one config file."""

    config: DevConfig
    deploy: DeploySettings
    base_dir: Path


def load_project(path: Path) -> Project:
    """Read ``warmline.toml`` (or ``pyproject.toml``): the dev config plus ``[deploy]``.

    Raises:
        ConfigurationError: unreadable file, bad dev config or bad ``[deploy]`` table.
    """
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or not isinstance(tool.get("warmline"), dict):
            raise ConfigurationError(f"{path}: no [tool.warmline] table")
        data = tool["warmline"]
    data = dict(data)
    raw_deploy = data.pop("deploy", {})
    base_dir = path.parent.resolve()
    config = parse_config(data, base_dir=base_dir, source=path)
    # [agent] offload names its worker: granted and named like [deploy] worker.
    from warmline.agent.settings import offload_worker

    worker = offload_worker(data.get("agent"))
    if worker is not None and worker not in config.functions:
        raise ConfigurationError(f"agent.worker: no function named {worker!r}")
    if worker is not None and isinstance(raw_deploy, dict):
        raw_deploy = {"worker": worker, **raw_deploy}
    return Project(config, parse_deploy(raw_deploy, config), base_dir)


def parse_deploy(raw: Any, config: DevConfig) -> DeploySettings:
    """Validate the ``[deploy]`` table against the dev config it deploys.

    Raises:
        ConfigurationError: naming the bad key.
    """
    table = _table(raw, "deploy")
    _only(table, "deploy", allowed("deploy"))
    functions = config.functions
    runtime = _str(table, "runtime", DEFAULT_RUNTIME)
    match = _RUNTIME_RE.match(runtime)
    if match is None or int(match.group(1)) < 11:
        raise ConfigurationError(f"deploy.runtime must be python3.11 or newer, got {runtime!r}")
    architecture = _str(table, "architecture", DEFAULT_ARCHITECTURE)
    if architecture not in _ARCHITECTURES:
        raise ConfigurationError(
            f"deploy.architecture must be arm64 or x86_64, got {architecture!r}"
        )
    retention = table.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS)
    if retention not in LOG_RETENTION_DAYS or isinstance(retention, bool):
        raise ConfigurationError(
            f"deploy.log_retention_days must be one of {LOG_RETENTION_DAYS}, got {retention!r}"
        )
    stack = _str(table, "stack_name", "warmline")
    if not _STACK_RE.match(stack):
        raise ConfigurationError(
            "deploy.stack_name must start with a letter and hold only letters, digits and "
            f"'-' (at most 40), got {stack!r}"
        )
    worker = table.get("worker")
    if worker is not None and worker not in functions:
        raise ConfigurationError(f"deploy.worker: unknown function {worker!r}")
    budget = table.get("budget_mb", DEFAULT_BUDGET_MB)
    if not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0:
        raise ConfigurationError("deploy.budget_mb must be a positive number")
    mode = _str(table, "warmline", "pip")
    if mode not in ("pip", "copy"):
        raise ConfigurationError(f"deploy.warmline must be 'pip' or 'copy', got {mode!r}")
    plain = _names(table, "plain_environment", "deploy")
    stage = table.get("stage")
    if stage is not None and (not isinstance(stage, str) or not _STAGE_RE.match(stage)):
        raise ConfigurationError(f"deploy.stage must be letters, digits, '-' or '_', got {stage!r}")
    settings = _function_settings(_table(table.get("functions", {}), "deploy.functions"), functions)
    minor = int(match.group(1))
    for name, own in settings.items():
        if own.snapstart and (3, minor) < SNAPSTART_MIN_PYTHON:
            raise ConfigurationError(
                f"deploy.functions.{name}.snapstart needs python3.12 or newer, "
                f"the runtime is {runtime}"
            )
    return DeploySettings(
        stack_name=stack,
        runtime=runtime,
        architecture=architecture,
        log_retention_days=int(retention),
        stage=stage,
        table=_bool(table, "table", True),
        worker=worker,
        twiml=_twiml(table.get("twiml"), config),
        artifacts=Path(_str(table, "artifacts", "build/lambda")),
        extras=_extras(table, "extras", "deploy"),
        requirements=_names(table, "requirements", "deploy", pattern=None),
        budget_mb=float(budget),
        warmline=mode,
        python=str(table.get("python", "")),
        alarm_topic_arn=str(table.get("alarm_topic_arn", "")),
        plain_environment=plain,
        exclude=_excludes(table, "deploy"),
        secrets=_secrets(_table(table.get("secrets", {}), "deploy.secrets"), functions),
        functions=settings,
        observability=parse_observability(table.get("observability", {})),
    )


def _twiml(raw: Any, config: DevConfig) -> TwimlEndpoint | None:
    """The TwiML endpoint: ``[deploy] twiml``, else the dev config's ``[http] function``
    (a function URL there too), else none."""
    if raw is False:
        return None
    if raw is None:
        http_function: str | None = getattr(config, "http_function", None)
        return TwimlEndpoint(http_function) if http_function else None
    where = "deploy.twiml"
    table = _table(raw, where)
    _only(table, where, allowed("deploy.twiml"))
    function = _str(table, "function", "")
    if function not in config.functions:
        raise ConfigurationError(f"{where}.function: unknown function {function!r}")
    endpoint = _str(table, "endpoint", "function_url")
    if endpoint not in ("function_url", "http_api"):
        raise ConfigurationError(f"{where}.endpoint must be 'function_url' or 'http_api'")
    return TwimlEndpoint(function, endpoint)


def _secrets(table: Mapping[str, Any], functions: Mapping[str, Any]) -> dict[str, SecretRef]:
    out: dict[str, SecretRef] = {}
    for env, raw in table.items():
        where = f"deploy.secrets.{env}"
        if not _ENV_NAME_RE.match(env):
            raise ConfigurationError(f"{where}: not an environment variable name")
        spec = _table(raw, where)
        _only(spec, where, allowed("deploy.secrets.<ENV>"))
        stores = [s for s in ("ssm", "secretsmanager") if s in spec]
        if len(stores) != 1:
            raise ConfigurationError(f"{where}: give exactly one of 'ssm' or 'secretsmanager'")
        store = stores[0]
        name = spec[store]
        if not isinstance(name, str) or not name or name.startswith("arn:"):
            raise ConfigurationError(
                f"{where}.{store} must be the parameter or secret NAME (not a value, not an ARN)"
            )
        targets = _names(spec, "functions", where) or tuple(functions)
        for fn in targets:
            if fn not in functions:
                raise ConfigurationError(f"{where}.functions: unknown function {fn!r}")
        kms = str(spec.get("kms_key_arn", ""))
        if kms and not kms.startswith("arn:"):
            raise ConfigurationError(f"{where}.kms_key_arn must be a key ARN")
        out[env] = SecretRef(env, store, name, kms, targets)
    return out


def _function_settings(
    table: Mapping[str, Any], functions: Mapping[str, Any]
) -> dict[str, FunctionDeploy]:
    out: dict[str, FunctionDeploy] = {}
    for name, raw in table.items():
        where = f"deploy.functions.{name}"
        if name not in functions:
            raise ConfigurationError(f"{where}: unknown function {name!r}")
        spec = _table(raw, where)
        _only(spec, where, allowed("deploy.functions.<name>"))
        p99 = spec.get("p99_ms")
        if p99 is not None and (
            not isinstance(p99, int | float) or isinstance(p99, bool) or p99 <= 0
        ):
            raise ConfigurationError(f"{where}.p99_ms must be a positive number")
        out[name] = FunctionDeploy(
            extras=_extras(spec, "extras", where) if "extras" in spec else None,
            requirements=(
                _names(spec, "requirements", where, pattern=None)
                if "requirements" in spec
                else None
            ),
            exclude=_excludes(spec, where),
            p99_ms=float(p99) if p99 is not None else None,
            **_startup_options(spec, where, functions[name]),
        )
    return out


def _startup_options(spec: Mapping[str, Any], where: str, function: Any) -> dict[str, Any]:
    """``provisioned_concurrency`` and ``snapstart`` of one function, checked as AWS would.

    Lambda refuses provisioned concurrency above the function's reserved concurrency
    (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html), and
    SnapStart does not support provisioned concurrency
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html, supported features and
    limitations; docs/protocols.md §3.5).
    """
    provisioned = spec.get("provisioned_concurrency")
    if provisioned is not None and (
        not isinstance(provisioned, int) or isinstance(provisioned, bool) or provisioned < 1
    ):
        raise ConfigurationError(f"{where}.provisioned_concurrency must be a positive integer")
    snapstart = spec.get("snapstart", False)
    if not isinstance(snapstart, bool):
        raise ConfigurationError(f"{where}.snapstart must be true or false")
    if snapstart and provisioned is not None:
        raise ConfigurationError(
            f"{where}: snapstart and provisioned_concurrency cannot both apply to one version"
        )
    reserved = getattr(function, "reserved_concurrency", None)
    if provisioned is not None and reserved is not None and provisioned > reserved:
        raise ConfigurationError(
            f"{where}.provisioned_concurrency ({provisioned}) exceeds the function's "
            f"reserved_concurrency ({reserved})"
        )
    return {"provisioned_concurrency": provisioned, "snapstart": snapstart}


# --- small typed readers ------------------------------------------------------------------


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a table")
    return value


def _only(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigurationError(f"unknown key '{where}.{key}'")


def _str(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (not value and default):
        raise ConfigurationError(f"deploy.{key} must be a non-empty string")
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"deploy.{key} must be true or false")
    return value


def _names(
    table: Mapping[str, Any], key: str, where: str, *, pattern: re.Pattern[str] | None = None
) -> tuple[str, ...]:
    raw = table.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ConfigurationError(f"{where}.{key} must be a list of strings")
    if pattern is not None:
        for value in raw:
            if not pattern.match(value):
                raise ConfigurationError(f"{where}.{key}: bad entry {value!r}")
    return tuple(raw)


def _extras(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    return _names(table, key, where, pattern=_EXTRA_RE)


def _excludes(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """Exclude patterns, as ``.gitignore`` writes them, relative to the code directory."""
    patterns = _names(table, "exclude", where)
    for pattern in patterns:
        if not pattern.strip("/"):
            raise ConfigurationError(f"{where}.exclude: an empty pattern")
        parts = pattern.split("/")
        if pattern.startswith(("/", "!")) or ".." in parts:
            raise ConfigurationError(
                f"{where}.exclude: {pattern!r} must be relative to the code directory "
                "(no leading '/', no '..', no '!')"
            )
    return patterns
