"""Variables for the functions from the developer's side: ``.env``, ``--env-vars``, ``--pass-env``.

Each function's environment starts with what its configuration declares (``warmline.toml``'s
``environment``, a template's ``Environment.Variables``); then, later ones winning:

1. ``.env`` beside the configuration file (python-dotenv's syntax), for every function;
2. ``--env-vars FILE``: SAM CLI's format, ``{"Parameters": {...}}`` for every function and
   ``{"FunctionName": {...}}`` for one (the per-function object wins over ``Parameters``);
3. ``--pass-env NAME``: the variable as this shell has it, for every function.

Nothing else of the shell reaches a function (Lambda has none of it): the start-up text
lists, per function, each variable with where it came from, secret-looking values masked
(:func:`describe`).

SAM CLI overrides only variables the template declares and ignores the others; here an
undeclared variable is added, and the listing shows it, so a ``.env`` works with a
``warmline.toml`` that declares nothing (docs/dev.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.config import DevConfig

__all__ = ["EnvSources", "apply", "describe", "masked"]

#: The file next to the configuration that ``warmline dev`` reads when it exists.
DOTENV_NAME = ".env"
#: Variable names whose values are not printed.
_SECRET_NAME = re.compile(
    r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL|AUTH|PRIVATE|SESSION|SIGNATURE|COOKIE|DSN", re.I
)
#: Values that are secrets whatever their name (API keys' well-known prefixes).
_SECRET_VALUE = re.compile(r"^(sk-|sk_|rk_|AKIA|ASIA|ghp_|gho_|xox[abp]-|AIza)")


@dataclasses.dataclass(frozen=True, slots=True)
class EnvSources:
    """Where a function's variables came from: ``origin[function][NAME]`` is a label."""

    origin: Mapping[str, Mapping[str, str]]


def masked(name: str, value: str) -> str:
    """``value`` as the start-up text shows it: ``****`` for a secret-looking one."""
    if _SECRET_NAME.search(name) or _SECRET_VALUE.match(value):
        return "****" if value else "(empty)"
    return value


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigurationError(f"{where}: a variable's value must be a string or a number")


def read_env_vars(path: Path, functions: Iterable[str]) -> dict[str, dict[str, str]]:
    """SAM CLI's ``--env-vars`` file: ``{"Parameters": {...}, "Function": {...}}``.

    Returns:
        ``{"Parameters": {...}, function: {...}}`` with every value a string.

    Raises:
        ConfigurationError: unreadable, not that shape, or a function that does not exist.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"--env-vars {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"--env-vars {path}: expected a JSON object")
    known = set(functions)
    out: dict[str, dict[str, str]] = {}
    for key, table in data.items():
        where = f"--env-vars {path}: {key}"
        if key != "Parameters" and key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigurationError(
                f"{where}: no function has this name (functions: {names}; "
                '"Parameters" applies to every function)'
            )
        if not isinstance(table, dict):
            raise ConfigurationError(f"{where}: expected an object of NAME: value")
        out[key] = {str(name): _text(value, f"{where}.{name}") for name, value in table.items()}
    return out


def read_dotenv(path: Path) -> dict[str, str]:
    """``.env``'s variables (python-dotenv; a line without ``=`` sets nothing).

    Raises:
        MissingExtraError: python-dotenv is not installed.
    """
    try:
        from dotenv import dotenv_values
    except ImportError as exc:
        from warmline.errors import MissingExtraError

        raise MissingExtraError("python-dotenv", "dev") from exc
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def apply(
    config: DevConfig,
    *,
    env_vars: Path | None = None,
    pass_env: Sequence[str] = (),
    environ: Mapping[str, str],
    dotenv: bool = True,
) -> tuple[DevConfig, EnvSources]:
    """``config`` with ``.env``, ``--env-vars`` and ``--pass-env`` merged in.

    Args:
        config: the loaded configuration.
        env_vars: the ``--env-vars`` file.
        pass_env: the ``--pass-env`` names.
        environ: this shell's environment.
        dotenv: read ``.env`` beside the configuration when it exists.

    Raises:
        ConfigurationError: a bad file, or a ``--pass-env`` name the shell does not set.
    """
    layers: list[tuple[str, Mapping[str, str], str | None]] = []
    source_dir = config.source.absolute().parent if config.source else Path.cwd()
    dotenv_path = source_dir / DOTENV_NAME
    if dotenv and dotenv_path.is_file():
        layers.append((DOTENV_NAME, read_dotenv(dotenv_path), None))
    if env_vars is not None:
        table = read_env_vars(env_vars, config.functions)
        layers.append(("--env-vars", table.pop("Parameters", {}), None))
        layers += [(f"--env-vars {fn}", values, fn) for fn, values in table.items()]
    passed = {}
    for name in pass_env:
        if name not in environ:
            raise ConfigurationError(f"--pass-env {name}: this shell does not set {name}")
        passed[name] = environ[name]
    layers.append(("--pass-env", passed, None))
    label = _config_label(config)
    functions = {}
    origin: dict[str, dict[str, str]] = {}
    for name, function in config.functions.items():
        values = dict(function.environment)
        where = dict.fromkeys(values, label)
        for source, layer, only in layers:
            if only is not None and only != name:
                continue
            values.update(layer)
            where.update(dict.fromkeys(layer, source))
        functions[name] = dataclasses.replace(function, environment=values)
        origin[name] = where
    return dataclasses.replace(config, functions=functions), EnvSources(origin)


def _config_label(config: DevConfig) -> str:
    return config.source.name if config.source is not None else "the configuration"


def describe(
    function: str, env: Mapping[str, str], sources: EnvSources, inherited: Iterable[str]
) -> list[str]:
    """The start-up lines for one function's variables: every name, each one's origin.

    Args:
        function: its name.
        env: every variable an environment of it gets.
        sources: where the developer's variables came from.
        inherited: the names taken from this shell as Lambda-like defaults (``PATH``...).
    """
    own = sources.origin.get(function, {})
    shell = set(inherited)
    lines = [f"variables of {function}:"]
    for name in sorted(own):
        if name in env:
            lines.append(f"  {name}={masked(name, env[name])}  ({own[name]})")
    platform = sorted(n for n in env if n not in own and n not in shell)
    here = sorted(n for n in env if n in shell and n not in own)
    if not own:
        lines.append("  (none of yours: .env, --env-vars and --pass-env add them)")
    lines.append(f"  Lambda's and the emulator's: {', '.join(platform)}")
    if here:
        lines.append(f"  from this shell (as Lambda's own): {', '.join(here)}")
    return lines
