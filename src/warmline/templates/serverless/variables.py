"""Serverless Framework variables: ``${env:X}``, ``${self:a.b}``, ``${opt:stage, 'dev'}``...

Resolution is lazy, per value read, because a serverless.yml commonly holds variables a
local run never needs (``${ssm:...}`` in an IAM statement, ``${cf:...}`` in resources) and
those must not stop ``warmline dev``. Inner variables resolve first, so
``${env:A, ${self:custom.b}}`` works; a value that is exactly one variable keeps the
referenced value's type (a ``${self:custom.obj}`` mapping stays a mapping). Sources follow
the Serverless Framework "Variables" documentation: ``self``, ``env``, ``opt``, ``sls``,
``aws`` and ``file(...)`` resolve locally; ``ssm``, ``cf``, ``s3`` and ``param`` use their
fallback if one is written, and are otherwise an error naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warmline.templates.report import SourceError

__all__ = ["Variables"]

#: An innermost variable: no ``${`` or ``}`` inside.
_INNER_RE = re.compile(r"\$\{((?:(?!\$\{)[^}])*)\}")
_FILE_RE = re.compile(r"^file\(([^)]+)\)(?::(.+))?$")
_REMOTE_SOURCES = ("ssm:", "cf:", "cf(", "s3:", "param:", "ssm(")
_MAX_DEPTH = 20


class Variables:
    """Resolves variables in values of one serverless.yml.

    Args:
        document: the parsed file.
        source: its path (``file(...)`` is relative to its directory).
        options: ``--stage``, ``--region``... (``${opt:NAME}``).
        env: the environment (``${env:NAME}``).
        account: ``${aws:accountId}``.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        source: Path,
        options: Mapping[str, str],
        env: Mapping[str, str],
        account: str,
    ) -> None:
        self.document = document
        self.source = source
        self.options = options
        self.env = env
        self.account = account
        self._depth = 0

    def error(self, message: str, where: str) -> SourceError:
        """A :class:`SourceError` for this file."""
        return SourceError(message, where=where, source=self.source)

    # --- stage and region (used by sls:/aws: and the translator) ---------------------------

    def stage(self) -> str:
        """``--stage``, else ``provider.stage``, else ``dev``."""
        if "stage" in self.options:
            return self.options["stage"]
        return str(self.get("provider.stage", "dev"))

    def region(self) -> str:
        """``--region``, else ``provider.region``, else ``us-east-1``."""
        if "region" in self.options:
            return self.options["region"]
        return str(self.get("provider.region", "us-east-1"))

    # --- lookups -----------------------------------------------------------------------------

    def get(self, dotted: str, default: Any = None) -> Any:
        """The resolved value at ``a.b.c`` in the document (``default`` if absent)."""
        found, value = self._walk(self.document, dotted)
        return self.resolve(value, dotted) if found else default

    @staticmethod
    def _walk(root: Any, dotted: str) -> tuple[bool, Any]:
        value = root
        for part in dotted.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return False, None
        return True, value

    def resolve(self, value: Any, where: str) -> Any:
        """``value`` with every variable resolved (recursively into lists and dicts).

        Raises:
            SourceError: an unresolvable variable, naming ``where``.
        """
        if isinstance(value, dict):
            return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}.{i}") for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                raise self.error(f"variables nest too deeply (a cycle?) in {value!r}", where)
            return self._resolve_string(value, where)
        finally:
            self._depth -= 1

    def _resolve_string(self, text: str, where: str) -> Any:
        while True:
            match = _INNER_RE.search(text)
            if match is None:
                return text
            value = self._variable(match.group(1), where)
            if match.span() == (0, len(text)):
                return value
            if isinstance(value, dict | list):
                raise self.error(f"${{{match.group(1)}}} is not a string inside {text!r}", where)
            if isinstance(value, bool):
                value = "true" if value else "false"
            text = text[: match.start()] + str(value) + text[match.end() :]

    def _variable(self, body: str, where: str) -> Any:
        parts = _split_fallbacks(body)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            found, value = self._source(part.strip(), where, allow_missing=not last)
            if found and value is not None:
                return value
        raise self.error(f"${{{body}}} has no value", where)

    def _source(self, part: str, where: str, *, allow_missing: bool) -> tuple[bool, Any]:
        literal = _literal(part)
        if literal is not None:
            return True, literal[0]
        if part.startswith("self:"):
            found, value = self._walk(self.document, part[5:])
            return found, self.resolve(value, part[5:]) if found else None
        if part.startswith("env:"):
            name = part[4:]
            return name in self.env, self.env.get(name)
        if part.startswith("opt:"):
            name = part[4:]
            return name in self.options, self.options.get(name)
        if part == "sls:stage":
            return True, self.stage()
        if part == "sls:instanceId":
            return True, "local"
        if part == "aws:region":
            return True, self.region()
        if part == "aws:accountId":
            return True, self.account
        file_match = _FILE_RE.match(part)
        if file_match is not None:
            return self._file(file_match.group(1).strip(), file_match.group(2), where)
        if part.startswith(_REMOTE_SOURCES):
            if allow_missing:
                return False, None
            raise self.error(
                f"${{{part}}} is read from AWS, which is not reachable locally; "
                f"write a fallback: ${{{part}, 'local-value'}}",
                where,
            )
        raise self.error(f"unknown variable source in ${{{part}}}", where)

    def _file(self, name: str, key: str | None, where: str) -> tuple[bool, Any]:
        from warmline.templates.cloudformation.document import load_document

        path = (self.source.parent / name).resolve()
        if not path.is_file():
            raise self.error(f"${{file({name})}}: no file {path}", where)
        data = load_document(path)
        if key is None:
            return True, data
        found, value = self._walk(data, key.strip())
        return found, value


def _split_fallbacks(body: str) -> list[str]:
    """``"env:A, 'x, y'"`` -> ``["env:A", "'x, y'"]`` (commas inside quotes stay)."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in body:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _literal(part: str) -> tuple[Any] | None:
    """A fallback literal: a quoted string, a number, true/false; else None."""
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
        return (part[1:-1],)
    if re.fullmatch(r"-?\d+", part):
        return (int(part),)
    if re.fullmatch(r"-?\d+\.\d+", part):
        return (float(part),)
    if part in ("true", "false"):
        return (part == "true",)
    if part and ":" not in part and "(" not in part:
        return (part,)  # an already-substituted inner value
    return None
