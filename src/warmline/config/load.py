"""Reading ``warmline.toml`` or ``[tool.warmline]`` into a :class:`~.model.DevConfig`.

Every check names the offending key in a :class:`~warmline.errors.ConfigurationError`
(``functions.ws.memory must be 128..10240 MB``), so a bad file stops ``warmline dev`` or
``warmline deploy`` at start with a message instead of failing mid-call. Tables that other
commands read from the same file (``[deploy]``, ``[agent]``, ``[coldstart]``) pass through.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from warmline.config.faults import parse_faults
from warmline.config.iam import FunctionIam, statements_from_toml
from warmline.config.keys import allowed
from warmline.config.model import (
    AUTHORIZATION_TYPES,
    DEFAULT_SQS_BATCH_SIZE,
    DEFAULT_SQS_VISIBILITY_TIMEOUT_S,
    IDENTITY_SOURCE_RE,
    LOCAL_API_ID,
    MAX_SQS_BATCH_SIZE,
    RESERVED_ROUTES,
    STAGE_RE,
    AuthorizerConfig,
    DevConfig,
    FunctionConfig,
    Limits,
    RouteConfig,
    ScheduleConfig,
    SnsTopicConfig,
    SqsQueueConfig,
    WebSocketConfig,
)
from warmline.config.schedule import parse_expression
from warmline.config.selection import parse_selection
from warmline.core import limits
from warmline.core.warmup import WARMUP_INPUTS_ENV
from warmline.errors import ConfigurationError

__all__ = ["find_config", "load_config", "parse_config"]


#: The runtimes ``warmline dev`` runs (docs/runtimes.md).
_RUNTIMES = r"^(python3\.\d+|nodejs(18|20|22)\.x|provided(\.al2|\.al2023)?)$"


def find_config(start: Path) -> Path:
    """The config file for ``start`` (a directory): ``warmline.toml`` or ``pyproject.toml``.

    Raises:
        ConfigurationError: neither exists (or pyproject has no ``[tool.warmline]``).
    """
    candidate = start / "warmline.toml"
    if candidate.is_file():
        return candidate
    pyproject = start / "pyproject.toml"
    if pyproject.is_file() and "warmline" in _read_toml(pyproject).get("tool", {}):
        return pyproject
    raise ConfigurationError(f"no warmline.toml or [tool.warmline] in pyproject.toml in {start}")


def load_config(path: Path) -> DevConfig:
    """Read and validate a config file.

    Args:
        path: ``warmline.toml`` or a ``pyproject.toml`` with ``[tool.warmline]``.

    Raises:
        ConfigurationError: unreadable file or bad contents (the message names the key).
    """
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or "warmline" not in tool:
            raise ConfigurationError(f"{path}: no [tool.warmline] table")
        data = tool["warmline"]
    return parse_config(data, base_dir=path.parent, source=path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:  # TOMLDecodeError, bad UTF-8, a 4300+ digit integer
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses once per nested array or table
        raise ConfigurationError(f"{path} is not valid TOML: nested too deeply") from exc


def parse_config(
    data: Mapping[str, Any], *, base_dir: Path, source: Path | None = None
) -> DevConfig:
    """Validate a parsed config table.

    Args:
        data: the top-level table (``warmline.toml`` or ``[tool.warmline]``).
        base_dir: code directories are relative to it.
        source: the file, for messages.

    Raises:
        ConfigurationError: naming the bad key.
    """
    _only(data, "", allowed(""))
    functions = _functions(_table(data, "functions", required=True), base_dir)
    http_table = _table(data, "http")
    _only(http_table, "http", allowed("http"))
    http_function = _str(http_table, "function", "http", "") or None
    if http_function is not None and http_function not in functions:
        raise ConfigurationError(f"http.function: no function named {http_function!r}")
    websocket = _websocket(_table(data, "websocket"), functions)
    schedules = {
        name: _schedule(name, _as_table(value, f"schedules.{name}"), functions)
        for name, value in _table(data, "schedules").items()
    }
    functions = _with_warmup_inputs(functions, schedules)
    sqs = {
        name: _sqs(name, _as_table(value, f"sqs.{name}"), functions)
        for name, value in _table(data, "sqs").items()
    }
    sns = {
        name: _sns(name, _as_table(value, f"sns.{name}"), functions)
        for name, value in _table(data, "sns").items()
    }
    return DevConfig(
        functions=functions,
        websocket=websocket,
        schedules=schedules,
        sqs=sqs,
        sns=sns,
        limits=_limits(_table(data, "limits")),
        region=_str(data, "region", "", "us-east-1"),
        account=_str(data, "account", "", "123456789012"),
        http_function=http_function,
        faults=parse_faults(_table(data, "faults"), tuple(functions)),
        source=source,
    )


def _functions(table: Mapping[str, Any], base_dir: Path) -> dict[str, FunctionConfig]:
    if not table:
        raise ConfigurationError("functions: at least one function is required")
    out: dict[str, FunctionConfig] = {}
    for name, raw in table.items():
        where = f"functions.{name}"
        fn = _as_table(raw, where)
        _only(fn, where, allowed("functions.<name>"))
        handler = _str(fn, "handler", where, None)
        custom = str(fn.get("runtime", "")).startswith("provided")  # any handler name
        if not custom and ("." not in handler or handler[0] == "." or handler[-1] == "."):
            raise ConfigurationError(f"{where}.handler must be 'module.func', got {handler!r}")
        code = _str(fn, "code", where, ".")
        try:
            code_dir = (base_dir / code).resolve()
            is_dir = code_dir.is_dir()
        except (ValueError, OSError) as exc:  # a NUL byte or lone surrogate in the path
            raise ConfigurationError(f"{where}.code: not a usable path: {code!r}") from exc
        if not is_dir:
            raise ConfigurationError(f"{where}.code: {code_dir} is not a directory")
        memory = _int(fn, "memory", where, 128)
        if not 128 <= memory <= 10_240:
            raise ConfigurationError(f"{where}.memory must be 128..10240 MB, got {memory}")
        timeout = _num(fn, "timeout", where, 3.0)
        if not 0 < timeout <= limits.MAX_FUNCTION_TIMEOUT_S:
            raise ConfigurationError(f"{where}.timeout must be in (0, 900] s, got {timeout}")
        env_raw = _as_table(fn.get("environment", {}), f"{where}.environment")
        environment: dict[str, str] = {}
        for key, value in env_raw.items():
            if not isinstance(value, str | int | float | bool):
                raise ConfigurationError(f"{where}.environment.{key} must be a string")
            environment[key] = str(value).lower() if isinstance(value, bool) else str(value)
        reserved = fn.get("reserved_concurrency")
        if reserved is not None and (not isinstance(reserved, int) or reserved < 1):
            raise ConfigurationError(f"{where}.reserved_concurrency must be a positive integer")
        runtime = fn.get("runtime")
        if runtime is not None and not re.match(_RUNTIMES, str(runtime)):
            raise ConfigurationError(
                f"{where}.runtime must be python3.X, nodejs18.x/20.x/22.x or "
                f"provided.al2023/provided.al2, got {runtime!r}"
            )
        runtime_client = fn.get("runtime_client")
        if runtime_client is not None and (
            runtime_client != "aws" or not str(runtime or "python").startswith("python")
        ):
            raise ConfigurationError(
                f'{where}.runtime_client must be "aws" (awslambdaric, Python functions only)'
            )
        storage = _int(fn, "ephemeral_storage", where, 512)
        if not 512 <= storage <= 10_240:  # EphemeralStorage (docs/protocols.md §8.1)
            raise ConfigurationError(f"{where}.ephemeral_storage must be 512..10240 MB")
        out[name] = FunctionConfig(
            name=name,
            handler=handler,
            code_dir=code_dir,
            memory_mb=memory,
            timeout_s=timeout,
            environment=environment,
            reserved_concurrency=reserved,
            runtime=None if runtime is None else str(runtime),
            runtime_client=runtime_client,
            ephemeral_storage_mb=storage,
            iam=FunctionIam(
                statements=statements_from_toml(fn["statements"], f"{where}.statements")
            )
            if "statements" in fn
            else None,
        )
    return out


def _websocket(table: Mapping[str, Any], functions: Mapping[str, Any]) -> WebSocketConfig:
    where = "websocket"
    _only(table, where, allowed("websocket"))
    stage = _str(table, "stage", where, "dev")
    if not STAGE_RE.match(stage):
        raise ConfigurationError(
            f"{where}.stage must be letters, digits, '-' or '_', got {stage!r}"
        )
    expression = _str(table, "route_selection_expression", where, "$request.body.action")
    try:
        parse_selection(expression)
    except ValueError as exc:
        raise ConfigurationError(f"{where}.route_selection_expression: {exc}") from exc
    authorizers = {
        name: _authorizer(name, _as_table(raw, f"{where}.authorizers.{name}"), functions)
        for name, raw in _as_table(table.get("authorizers", {}), f"{where}.authorizers").items()
    }
    routes: dict[str, RouteConfig] = {}
    for key, raw in _as_table(table.get("routes", {}), f"{where}.routes").items():
        routes[key] = _route(key, raw, functions, authorizers)
    api_id = _str(table, "api_id", where, LOCAL_API_ID)
    return WebSocketConfig(stage, expression, api_id, routes, authorizers)


def _route(
    key: str, raw: Any, functions: Mapping[str, Any], authorizers: Mapping[str, Any]
) -> RouteConfig:
    rwhere = f"websocket.routes.{key}"
    if key.startswith("$") and key not in RESERVED_ROUTES:
        raise ConfigurationError(f"{rwhere}: custom route keys must not start with '$'")
    authorization, authorizer = "NONE", None
    if isinstance(raw, str):
        function, route_response = raw, False
    else:
        route = _as_table(raw, rwhere)
        _only(route, rwhere, allowed("websocket.routes.<route>"))
        function = _str(route, "function", rwhere, None)
        route_response = _bool(route, "route_response", rwhere, False)
        authorizer = _str(route, "authorizer", rwhere, "") or None
        default = "CUSTOM" if authorizer else "NONE"
        authorization = _str(route, "authorization", rwhere, default).upper()
    if function not in functions:
        raise ConfigurationError(f"{rwhere}: unknown function {function!r}")
    if authorization not in AUTHORIZATION_TYPES:
        raise ConfigurationError(
            f"{rwhere}.authorization must be one of {', '.join(AUTHORIZATION_TYPES)}"
        )
    if authorization != "NONE" and key != "$connect":
        # docs/protocols.md §2.1, §8.6: API Gateway refuses authorization on other routes.
        raise ConfigurationError(f"{rwhere}: authorization applies to the $connect route only")
    if (authorization == "CUSTOM") != (authorizer is not None):
        raise ConfigurationError(
            f"{rwhere}: authorizer goes with authorization = 'CUSTOM' (and only with it)"
        )
    if authorizer is not None and authorizer not in authorizers:
        raise ConfigurationError(f"{rwhere}.authorizer: no websocket.authorizers.{authorizer}")
    return RouteConfig(key, function, route_response, authorization, authorizer)


def _authorizer(
    name: str, table: Mapping[str, Any], functions: Mapping[str, Any]
) -> AuthorizerConfig:
    where = f"websocket.authorizers.{name}"
    _only(table, where, allowed("websocket.authorizers.<name>"))
    function = _str(table, "function", where, None)
    if function not in functions:
        raise ConfigurationError(f"{where}.function: unknown function {function!r}")
    sources = table.get("identity_sources", [])
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(v, str) for v in sources):
        raise ConfigurationError(f"{where}.identity_sources must be a list of strings")
    for source in sources:
        if not IDENTITY_SOURCE_RE.match(source):
            raise ConfigurationError(
                f"{where}.identity_sources: {source!r} is not route.request.header.<Name> "
                "or route.request.querystring.<name>"
            )
    return AuthorizerConfig(name, function, tuple(sources))


def _schedule(name: str, table: Mapping[str, Any], functions: Mapping[str, Any]) -> ScheduleConfig:
    where = f"schedules.{name}"
    _only(table, where, allowed("schedules.<name>"))
    expression = _str(table, "expression", where, None)
    try:
        parse_expression(expression)
    except ValueError as exc:
        raise ConfigurationError(f"{where}.expression: {exc}") from exc
    targets = _functions_list(table, "targets", where, functions)
    constant = _constant_input(table.get("input"), f"{where}.input")
    inputs = {
        target: _constant_input(value, f"{where}.inputs.{target}")
        for target, value in _table(table, "inputs").items()
    }
    for target in inputs:
        if target not in targets:
            raise ConfigurationError(f"{where}.inputs.{target}: not one of the targets")
    return ScheduleConfig(
        name,
        expression,
        targets,
        constant,
        _bool(table, "enabled", where, True),
        inputs,
        _bool(table, "warmup", where, False),
    )


def _constant_input(value: Any, where: str) -> Any:
    """A rule's constant input: a table, or JSON text of one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigurationError(f"{where} is not valid JSON: {exc}") from exc
    return value


#: Lambda's limit on a function's environment variables, all together (Lambda quotas).
MAX_ENVIRONMENT_BYTES = 4 * 1024


def _with_warmup_inputs(
    functions: dict[str, FunctionConfig], schedules: Mapping[str, ScheduleConfig]
) -> dict[str, FunctionConfig]:
    """Each function with ``WARMLINE_WARMUP_INPUTS``: the inputs of its warm-up rules.

    The handlers answer those inputs as pings (:mod:`warmline.core.warmup`); the same
    environment reaches ``warmline dev`` and the deploy templates. A value the function
    sets itself is kept.

    Raises:
        ConfigurationError: the inputs do not fit Lambda's 4 KB of environment.
    """
    out = dict(functions)
    for name, fn in functions.items():
        inputs = [
            s.input_for(name)
            for s in schedules.values()
            if s.warmup and name in s.targets and s.input_for(name) is not None
        ]
        if not inputs or WARMUP_INPUTS_ENV in fn.environment:
            continue
        text = json.dumps(inputs, separators=(",", ":"), sort_keys=True)
        if len(text.encode()) > MAX_ENVIRONMENT_BYTES:
            raise ConfigurationError(
                f"functions.{name}: the warm-up inputs of its schedules take "
                f"{len(text.encode())} bytes; Lambda allows {MAX_ENVIRONMENT_BYTES} for "
                "all environment variables"
            )
        out[name] = replace(fn, environment={**fn.environment, WARMUP_INPUTS_ENV: text})
    return out


def _sqs(name: str, table: Mapping[str, Any], functions: Mapping[str, Any]) -> SqsQueueConfig:
    where = f"sqs.{name}"
    _only(table, where, allowed("sqs.<name>"))
    function = _str(table, "function", where, None)
    if function not in functions:
        raise ConfigurationError(f"{where}.function: unknown function {function!r}")
    batch = _int(table, "batch_size", where, DEFAULT_SQS_BATCH_SIZE)
    if not 1 <= batch <= MAX_SQS_BATCH_SIZE:
        raise ConfigurationError(f"{where}.batch_size must be 1..{MAX_SQS_BATCH_SIZE}, got {batch}")
    visibility = _num(table, "visibility_timeout", where, DEFAULT_SQS_VISIBILITY_TIMEOUT_S)
    if visibility < 0:
        raise ConfigurationError(f"{where}.visibility_timeout must be >= 0")
    max_receive = table.get("max_receive_count")
    if max_receive is not None and (not isinstance(max_receive, int) or max_receive < 1):
        raise ConfigurationError(f"{where}.max_receive_count must be a positive integer")
    return SqsQueueConfig(
        name,
        function,
        batch,
        visibility,
        _bool(table, "report_batch_item_failures", where, False),
        max_receive,
    )


def _sns(name: str, table: Mapping[str, Any], functions: Mapping[str, Any]) -> SnsTopicConfig:
    where = f"sns.{name}"
    _only(table, where, allowed("sns.<name>"))
    return SnsTopicConfig(name, _functions_list(table, "functions", where, functions))


def _limits(table: Mapping[str, Any]) -> Limits:
    where = "limits"
    default = Limits()
    _only(table, where, allowed("limits"))
    values: dict[str, Any] = {}
    for key in Limits.__slots__:
        if key not in table:
            continue
        current = getattr(default, key)
        if isinstance(current, tuple):
            raw = table[key]
            if not isinstance(raw, list) or not all(_is_num(v) and v >= 0 for v in raw):
                raise ConfigurationError(f"{where}.{key} must be a list of seconds")
            values[key] = tuple(float(v) for v in raw)
        elif isinstance(current, int):
            value = _int(table, key, where, current)
            if value <= 0:
                raise ConfigurationError(f"{where}.{key} must be positive")
            values[key] = value
        else:
            number = _num(table, key, where, current)
            if number <= 0:
                raise ConfigurationError(f"{where}.{key} must be positive")
            values[key] = number
    return Limits(**values)


# --- small typed readers ------------------------------------------------------------------


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _only(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigurationError(f"unknown key {_key(where, key)!r}")


def _table(data: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    if key not in data:
        if required:
            raise ConfigurationError(f"missing table {key!r}")
        return {}
    return _as_table(data[key], key)


def _as_table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a table")
    return value


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None) -> str:
    if key not in table:
        if default is None:
            raise ConfigurationError(f"missing key {_key(where, key)!r}")
        return default
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{_key(where, key)} must be a non-empty string")
    return value


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if not _is_num(value):
        raise ConfigurationError(f"{_key(where, key)} must be a number")
    return float(value)


def _int(table: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"{_key(where, key)} must be an integer")
    return value


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{_key(where, key)} must be true or false")
    return value


def _functions_list(
    table: Mapping[str, Any], key: str, where: str, functions: Mapping[str, Any]
) -> tuple[str, ...]:
    raw = table.get(key)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise ConfigurationError(f"{_key(where, key)} must be a non-empty list of function names")
    for name in raw:
        if name not in functions:
            raise ConfigurationError(f"{_key(where, key)}: unknown function {name!r}")
    return tuple(raw)
