"""A small HCL (Terraform) writer: blocks, attributes, literals, templates and expressions.

Three kinds of strings, because Terraform gives ``${`` a meaning inside quotes:

- a plain ``str`` is a literal: ``${`` and ``%{`` are escaped (``$${``), so a value from
  the config (a route selection expression, a JSON input) can never become an
  interpolation;
- :class:`Tpl` is a quoted template whose ``${...}`` the renderer wrote on purpose;
- :class:`Expr` is written bare (``aws_lambda_function.ws.arn``, ``jsonencode(...)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Block", "Expr", "Tpl", "render", "value"]

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INDENT = "  "


class Expr(str):
    """An HCL expression written as is."""

    __slots__ = ()


class Tpl(str):
    """A quoted HCL template string; its ``${...}`` are interpolations."""

    __slots__ = ()


@dataclass
class Block:
    """``type "label" ... { body }``; body items are ``(name, value)`` pairs or blocks."""

    type: str
    labels: tuple[str, ...] = ()
    body: list[tuple[str, Any] | Block] = field(default_factory=list)

    def set(self, name: str, val: Any) -> Block:
        """Append an attribute (``None`` is skipped); returns self for chaining."""
        if val is not None:
            self.body.append((name, val))
        return self

    def add(self, block: Block) -> Block:
        """Append a nested block; returns the nested block."""
        self.body.append(block)
        return block


def _quote(text: str, *, template: bool) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out = out.replace("\r", "\\r").replace("\t", "\\t")
    if not template:
        out = out.replace("${", "$${").replace("%{", "%%{")
    return f'"{out}"'


def value(val: Any, level: int = 0) -> str:
    """The HCL text of a value (lists and maps span lines when they hold anything)."""
    if isinstance(val, Expr):
        return str(val)
    if isinstance(val, Tpl):
        return _quote(val, template=True)
    if isinstance(val, str):
        return _quote(val, template=False)
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, int | float):
        return repr(val) if isinstance(val, float) and not val.is_integer() else str(int(val))
    pad, inner = _INDENT * level, _INDENT * (level + 1)
    if isinstance(val, Mapping):
        if not val:
            return "{}"
        lines = []
        for key, item in val.items():
            name = key if _IDENT_RE.match(key) else _quote(key, template=False)
            lines.append(f"{inner}{name} = {value(item, level + 1)}")
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    if isinstance(val, Sequence):
        if not val:
            return "[]"
        items = ",\n".join(f"{inner}{value(item, level + 1)}" for item in val)
        return "[\n" + items + f",\n{pad}]"
    raise TypeError(f"no HCL form for {type(val).__name__}")


def _block(block: Block, level: int) -> str:
    pad = _INDENT * level
    head = " ".join([block.type, *(_quote(label, template=False) for label in block.labels)])
    if not block.body:
        return f"{pad}{head} {{}}\n"
    lines = [f"{pad}{head} {{\n"]
    for item in block.body:
        if isinstance(item, Block):
            lines.append(_block(item, level + 1))
        else:
            name, val = item
            lines.append(f"{pad}{_INDENT}{name} = {value(val, level + 1)}\n")
    lines.append(f"{pad}}}\n")
    return "".join(lines)


def render(blocks: Sequence[Block], header: str = "") -> str:
    """A ``.tf`` file: an optional ``#`` comment header, then the blocks."""
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + ("\n" if comment else "") + "\n".join(_block(b, 0) for b in blocks)
