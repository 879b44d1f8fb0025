"""CloudFormation ``Parameters``: defaults, ``--parameter-overrides`` and their checks.

``sam deploy --parameter-overrides`` accepts ``Key=Value`` pairs separated by spaces and
the long ``ParameterKey=Key,ParameterValue=Value`` form (AWS SAM CLI reference); both are
read here so a team's existing ``samconfig.toml`` line can be pasted as is. A parameter
without a default and without an override is an error naming it, as ``sam deploy`` makes
it one; an SSM-typed parameter cannot be looked up offline, so it needs an override too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from warmline.templates.report import SourceError

__all__ = ["parse_overrides", "resolve_parameters"]

_LONG_FORM_RE = re.compile(r"^ParameterKey=([^,]+),ParameterValue=(.*)$")


def parse_overrides(items: Iterable[str], *, source: Path | None = None) -> dict[str, str]:
    """``["A=1 B='x y'", "ParameterKey=C,ParameterValue=3"]`` -> ``{"A": "1", ...}``.

    Raises:
        SourceError: an item without ``=``.
    """
    out: dict[str, str] = {}
    for item in items:
        try:
            words = shlex.split(item)
        except ValueError as exc:
            raise SourceError(f"--parameter-overrides {item!r}: {exc}", source=source) from exc
        for word in words:
            long_form = _LONG_FORM_RE.match(word)
            if long_form:
                out[long_form.group(1)] = long_form.group(2)
                continue
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise SourceError(
                    f"--parameter-overrides: {word!r} is not KEY=VALUE", source=source
                )
            out[key] = value
    return out


def resolve_parameters(
    declared: Any, overrides: Mapping[str, str], *, source: Path
) -> dict[str, Any]:
    """Each declared parameter's value: the override, else the default.

    Args:
        declared: the template's ``Parameters`` section.
        overrides: from :func:`parse_overrides`.
        source: the template, for messages.

    Returns:
        Strings, or lists of strings for ``CommaDelimitedList`` / ``List<...>`` types.

    Raises:
        SourceError: an unknown override, a parameter with no value, or a value outside
            ``AllowedValues`` / ``AllowedPattern`` / ``MinValue``..``MaxValue``.
    """
    if declared is None:
        declared = {}
    if not isinstance(declared, dict):
        raise SourceError("must be a mapping", where="Parameters", source=source)
    for key in overrides:
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise SourceError(
                f"--parameter-overrides: the template has no parameter {key!r} (it has: {known})",
                source=source,
            )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        where = f"Parameters.{name}"
        if not isinstance(spec, dict):
            raise SourceError("must be a mapping with a Type", where=where, source=source)
        kind = str(spec.get("Type", "String"))
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        elif kind.startswith("AWS::SSM::Parameter"):
            raise SourceError(
                f"is read from SSM ({kind}), which is not reachable locally: "
                f"pass --parameter-overrides {name}=VALUE",
                where=where,
                source=source,
            )
        else:
            raise SourceError(
                f"has no Default: pass --parameter-overrides {name}=VALUE",
                where=where,
                source=source,
            )
        values[name] = _check(name, kind, raw, spec, where, source)
    return values


def _check(name: str, kind: str, raw: Any, spec: dict[str, Any], where: str, source: Path) -> Any:
    is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
    if isinstance(raw, list):
        raw = ",".join(str(v) for v in raw)
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    items = [part.strip() for part in text.split(",")] if is_list else [text]
    allowed = spec.get("AllowedValues")
    pattern = spec.get("AllowedPattern")
    for item in items:
        if isinstance(allowed, list) and item not in [str(a) for a in allowed]:
            raise SourceError(
                f"value {item!r} is not one of AllowedValues {allowed}", where=where, source=source
            )
        if isinstance(pattern, str) and not re.fullmatch(pattern, item):
            raise SourceError(
                f"value {item!r} does not match AllowedPattern {pattern!r}",
                where=where,
                source=source,
            )
        if kind == "Number" or kind == "List<Number>":
            try:
                number = float(item)
            except ValueError as exc:
                raise SourceError(
                    f"value {item!r} is not a Number", where=where, source=source
                ) from exc
            low, high = spec.get("MinValue"), spec.get("MaxValue")
            if (low is not None and number < float(low)) or (
                high is not None and number > float(high)
            ):
                raise SourceError(
                    f"value {item} is outside MinValue..MaxValue", where=where, source=source
                )
    return items if is_list else text
