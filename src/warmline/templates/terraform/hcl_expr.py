"""A small evaluator for the Terraform expressions a local run needs.

python-hcl2 parses ``.tf`` files into dicts but leaves expressions as text: a literal
string keeps its quotes (``'"dev"'``) and anything else is wrapped as ``"${...}"``. A
WebSocket stack's handler, environment, route target and schedule input are usually
literal strings, references (``var.stage``, ``aws_lambda_function.relay.invoke_arn``),
string templates and ``jsonencode({...})``; this module evaluates exactly that subset of
the Terraform language ("Expressions" in the Terraform docs): literals, templates with
``${...}``, lists, objects, references with ``.attr`` and ``[index]``, function calls,
``! - * / % + - < > <= >= == != && ||`` and ``cond ? a : b``. Template directives
(``%{ if }``), ``for`` expressions and splats raise :class:`ExpressionError` naming the
construct; the caller turns that into a ``SourceError`` naming the resource and argument.

References resolve through a callback, so this module knows nothing about resources.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ExpressionError", "Lookup", "evaluate", "evaluate_source"]

#: ``lookup(root, keys)``: the value of ``root.keys[0].keys[1]...``.
Lookup = Callable[[str, list[Any]], Any]
_Node = Callable[[], Any]

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_\-]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||=>|\.\.\.|[-+*/%<>!?:.,()\[\]{}=])|(?P<str>\"))"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class ExpressionError(ValueError):
    """An expression this evaluator does not support or cannot evaluate."""


def _scan_string(text: str, start: int) -> int:
    """Index just past the closing quote of the string opening at ``start``."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
        elif text.startswith("$${", i) or text.startswith("%%{", i):
            i += 3
        elif text.startswith("${", i) or text.startswith("%{", i):
            i = _scan_braces(text, i + 1)
        elif char == '"':
            return i + 1
        else:
            i += 1
    raise ExpressionError(f"unterminated string in {text!r}")


def _scan_braces(text: str, start: int) -> int:
    """Index just past the ``}`` matching the ``{`` at ``start``."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _scan_string(text, i)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ExpressionError(f"unbalanced braces in {text!r}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected {text[pos:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        if kind == "str":
            begin = match.end() - 1
            end = _scan_string(text, begin)
            out.append(("str", text[begin + 1 : end - 1]))
            pos = end
        else:
            out.append((kind, match.group(kind)))
            pos = match.end()
    out.append(("end", ""))
    return out


class _Parser:
    """Recursive descent over the tokens, building closures evaluated on demand."""

    def __init__(self, text: str, lookup: Lookup, functions: dict[str, Callable[..., Any]]) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.lookup = lookup
        self.functions = functions

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise ExpressionError(f"expected {value!r}, got {tok[1] or 'end'!r} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> _Node:
        node = self.conditional()
        if self.peek()[0] != "end":
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return node

    def conditional(self) -> _Node:
        cond = self.binary(0)
        if self.peek() == ("op", "?"):
            self.take()
            yes = self.conditional()
            self.take(":")
            no = self.conditional()
            return lambda: yes() if _truth(cond()) else no()
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> _Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in self._LEVELS[level]:
            op = self.take()[1]
            right = self.binary(level + 1)
            left = _binary(op, left, right)
        return left

    def unary(self) -> _Node:
        if self.peek() in (("op", "!"), ("op", "-")):
            op = self.take()[1]
            inner = self.unary()
            return (lambda: not _truth(inner())) if op == "!" else (lambda: -_num(inner()))
        return self.postfix(self.primary())

    def postfix(self, node: _Node) -> _Node:
        while True:
            tok = self.peek()
            if tok == ("op", "."):
                self.take()
                kind, name = self.take()
                if kind not in ("ident", "num"):
                    raise ExpressionError(f"splat or bad attribute after '.' in {self.text!r}")
                node = _index(node, _const(name))
            elif tok == ("op", "["):
                self.take()
                if self.peek() == ("op", "*"):
                    raise ExpressionError(f"splat expressions are not supported: {self.text!r}")
                key = self.conditional()
                self.take("]")
                node = _index(node, key)
            else:
                return node

    def primary(self) -> _Node:
        kind, value = self.take()
        if kind == "num":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return lambda: number
        if kind == "str":
            return _template(value, self.lookup, self.functions)
        if kind == "ident":
            if value in ("true", "false"):
                return lambda: value == "true"
            if value == "null":
                return lambda: None
            if value == "for":
                raise ExpressionError(f"for expressions are not supported: {self.text!r}")
            if self.peek() == ("op", "("):
                return self.call(value)
            return self.reference(value)
        if (kind, value) == ("op", "("):
            inner = self.conditional()
            self.take(")")
            return inner
        if (kind, value) == ("op", "["):
            return self.sequence()
        if (kind, value) == ("op", "{"):
            return self.object()
        raise ExpressionError(f"unexpected {value or 'end'!r} in {self.text!r}")

    def reference(self, root: str) -> _Node:
        keys: list[_Node] = []
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                name = self.take()[1]
                if name == "*":
                    raise ExpressionError(f"splat expressions are not supported: {self.text!r}")
                keys.append(_const(name))
            else:
                keys.append(self.conditional())
                self.take("]")
        lookup = self.lookup
        return lambda: lookup(root, [key() for key in keys])

    def call(self, name: str) -> _Node:
        self.take("(")
        args: list[_Node] = []
        while self.peek() != ("op", ")"):
            args.append(self.conditional())
            if self.peek() == ("op", "..."):
                raise ExpressionError(f"argument expansion is not supported: {self.text!r}")
            if self.peek() != ("op", ")"):
                self.take(",")
        self.take(")")
        function = self.functions.get(name)
        if function is None:
            raise ExpressionError(f"function {name}() is not supported locally")
        return lambda: function(*(arg() for arg in args))

    def sequence(self) -> _Node:
        items: list[_Node] = []
        while self.peek() != ("op", "]"):
            if self.peek() == ("ident", "for"):
                raise ExpressionError(f"for expressions are not supported: {self.text!r}")
            items.append(self.conditional())
            if self.peek() != ("op", "]"):
                self.take(",")
        self.take("]")
        return lambda: [item() for item in items]

    def object(self) -> _Node:
        pairs: list[tuple[_Node, _Node]] = []
        while self.peek() != ("op", "}"):
            if self.peek() == ("ident", "for"):
                raise ExpressionError(f"for expressions are not supported: {self.text!r}")
            kind, value = self.peek()
            if kind == "ident" and self.toks[self.i + 1][1] in ("=", ":"):
                self.take()
                key = _const(value)  # a bare key is a string
            else:
                key = self.conditional()
            self.take()  # '=' or ':'
            pairs.append((key, self.conditional()))
            if self.peek() == ("op", ","):
                self.take()
        self.take("}")
        return lambda: {str(k()): v() for k, v in pairs}


def _const(value: Any) -> _Node:
    return lambda: value


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ExpressionError(f"expected a bool, got {value!r}")


def _num(value: Any) -> float | int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        return int(value) if re.fullmatch(r"-?\d+", str(value)) else float(value)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"expected a number, got {value!r}") from exc


def _binary(op: str, left: _Node, right: _Node) -> _Node:
    if op == "||":
        return lambda: _truth(left()) or _truth(right())
    if op == "&&":
        return lambda: _truth(left()) and _truth(right())
    if op == "==":
        return lambda: left() == right()
    if op == "!=":
        return lambda: left() != right()
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "%": lambda a, b: a % b,
    }
    fn = ops[op]
    return lambda: fn(_num(left()), _num(right()))


def _index(node: _Node, key: _Node) -> _Node:
    def get() -> Any:
        value, k = node(), key()
        try:
            return value[int(k)] if isinstance(value, list) else value[k]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ExpressionError(f"no element {k!r} in {value!r}") from exc

    return get


def _template(raw: str, lookup: Lookup, functions: dict[str, Callable[..., Any]]) -> _Node:
    """A quoted string's content: literal parts and ``${...}`` interpolations."""
    parts: list[_Node] = []
    literal: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "u" and i + 5 < len(raw) + 1:
                literal.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 6
                continue
            literal.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        elif raw.startswith("$${", i) or raw.startswith("%%{", i):
            literal.append(raw[i + 1 : i + 3])
            i += 3
        elif raw.startswith("%{", i):
            raise ExpressionError(f"template directives are not supported: {raw!r}")
        elif raw.startswith("${", i):
            end = _scan_braces(raw, i + 1)
            if literal:
                text = "".join(literal)
                parts.append(_const(text))
                literal = []
            source = raw[i + 2 : end - 1].strip().strip("~").strip()
            parts.append(_Parser(source, lookup, functions).parse())
            i = end
        else:
            literal.append(char)
            i += 1
    if literal:
        text = "".join(literal)
        parts.append(_const(text))
    if len(parts) == 1 and raw.strip().startswith("${") and raw.strip().endswith("}"):
        return parts[0]  # "${x}" keeps x's type, as Terraform does
    return lambda: "".join(_to_string(p()) for p in parts)


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise ExpressionError(f"cannot interpolate {value!r} into a string")


def _format(spec: str, *args: Any) -> str:
    values = iter(args)

    def verb(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        value = next(values)
        if match.group(1) == "d":
            return str(int(_num(value)))
        if match.group(1) in ("q",):
            return json.dumps(_to_string(value))
        if match.group(1) == "v" and not isinstance(value, str | int | float | bool):
            return json.dumps(value)
        return _to_string(value)

    return re.sub(r"%%|%([sdvqtf])", verb, spec)


def _functions(base_dir: Path) -> dict[str, Callable[..., Any]]:
    """The Terraform built-ins supported here (Terraform docs, "Functions")."""

    def read(name: str) -> str:
        path = Path(name) if Path(name).is_absolute() else base_dir / name
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ExpressionError(f"file({name!r}): {exc}") from exc

    return {
        "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
        "jsondecode": json.loads,
        "tostring": _to_string,
        "tonumber": _num,
        "tobool": _truth,
        "tolist": list,
        "toset": list,
        "tomap": dict,
        "lower": lambda s: str(s).lower(),
        "upper": lambda s: str(s).upper(),
        "title": lambda s: str(s).title(),
        "trimspace": lambda s: str(s).strip(),
        "format": _format,
        "join": lambda sep, items: str(sep).join(_to_string(i) for i in items),
        "split": lambda sep, s: str(s).split(str(sep)),
        "replace": lambda s, old, new: str(s).replace(str(old), str(new)),
        "substr": lambda s, off, n: str(s)[int(off) : int(off) + int(n) if n >= 0 else None],
        "startswith": lambda s, p: str(s).startswith(str(p)),
        "endswith": lambda s, p: str(s).endswith(str(p)),
        "contains": lambda items, v: v in items,
        "length": len,
        "keys": lambda m: sorted(m),
        "values": lambda m: [m[k] for k in sorted(m)],
        "lookup": lambda m, k, *d: m.get(k, d[0]) if d else m[k],
        "merge": lambda *ms: {k: v for m in ms for k, v in (m or {}).items()},
        "concat": lambda *ls: [v for items in ls for v in items],
        "coalesce": lambda *vs: next(v for v in vs if v not in (None, "")),
        "element": lambda items, i: items[int(i) % len(items)],
        "min": min,
        "max": max,
        "abs": abs,
        "file": read,
        "base64encode": lambda s: base64.b64encode(str(s).encode()).decode(),
        "base64decode": lambda s: base64.b64decode(str(s)).decode(),
        "abspath": lambda p: str((base_dir / str(p)).resolve()),
        "basename": lambda p: Path(str(p)).name,
        "dirname": lambda p: str(Path(str(p)).parent),
    }


def evaluate_source(text: str, lookup: Lookup, base_dir: Path) -> Any:
    """Evaluate Terraform expression source text (``var.x``, ``"a-${b}"``...).

    Raises:
        ExpressionError: unsupported syntax or function, or a failing operation.
    """
    try:
        return _Parser(text, lookup, _functions(base_dir)).parse()()
    except ExpressionError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, StopIteration, ZeroDivisionError) as exc:
        raise ExpressionError(f"cannot evaluate {text!r}: {exc}") from exc


def evaluate(value: Any, lookup: Lookup, base_dir: Path) -> Any:
    """Evaluate a python-hcl2 value: quoted literals, ``${...}`` strings, lists, dicts.

    Raises:
        ExpressionError: as :func:`evaluate_source`.
    """
    if isinstance(value, list):
        return [evaluate(v, lookup, base_dir) for v in value]
    if isinstance(value, dict):
        return {
            _unquote(k): evaluate(v, lookup, base_dir)
            for k, v in value.items()
            if not k.startswith("__")
        }
    if not isinstance(value, str):
        return value
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return evaluate_source(value, lookup, base_dir)
    if value.startswith("${") and value.endswith("}"):
        return evaluate_source(value[2:-1], lookup, base_dir)
    return value


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] == '"':
        return key[1:-1]
    return key
