"""API Gateway's selection expressions for WebSocket route selection, parsed once.

The language (docs/protocols.md §2.1, from the API Gateway guide's "Route selection
expressions" and "Selection expressions" pages):

- ``$request.body.PATH`` is a variable, unwrapped; ``${request.body.PATH}`` the same
  variable wrapped in braces, so that text can follow it
  (``${request.body.service}/${request.body.action}``);
- anything else is static text, and ``\\$`` is a literal dollar (``\\$default``);
- PATH is a JSONPath into the message's JSON body: names joined by dots, each optionally
  indexed (``items[0].type``); a path that is not in the message evaluates to ``""``.

An expression is parsed into :data:`Part` values: a ``str`` is static text, a tuple is a
path (``str`` keys and ``int`` indexes). Parsing happens when the configuration is read, so
routing a message only walks the parts.
"""

from __future__ import annotations

import re

__all__ = ["Part", "parse_selection"]

#: Static text, or a JSON path into the body (``str`` keys, ``int`` indexes).
Part = str | tuple[str | int, ...]

_NAME = r"[A-Za-z0-9_\-]+"
#: One path segment: a name with optional ``[n]`` indexes.
_SEGMENT_RE = re.compile(rf"({_NAME})((?:\[\d+\])*)")
_INDEX_RE = re.compile(r"\[(\d+)\]")
_BODY_PREFIX = "request.body."
#: An unwrapped variable after its ``$``: ``request.body.`` and a dotted path.
_UNWRAPPED_RE = re.compile(rf"request\.body\.{_NAME}(?:\[\d+\])*(?:\.{_NAME}(?:\[\d+\])*)*")


def _path(text: str, expression: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` -> ``("a", "b", 0, "c")``."""
    out: list[str | int] = []
    for segment in text.split("."):
        match = _SEGMENT_RE.fullmatch(segment)
        if match is None:
            raise ValueError(f"{expression!r}: {text!r} is not a JSON path such as 'action'")
        out.append(match.group(1))
        out.extend(int(i) for i in _INDEX_RE.findall(match.group(2)))
    return tuple(out)


def parse_selection(expression: str) -> tuple[Part, ...]:
    """Parse a route selection expression.

    Args:
        expression: e.g. ``$request.body.action`` or ``${request.body.a}/${request.body.b}``.

    Returns:
        The parts in order; adjacent static text is merged.

    Raises:
        ValueError: an empty expression, a variable other than ``request.body.*``, an
            unclosed ``${``, or a bad path (the message quotes the expression).
    """
    if not expression:
        raise ValueError("a route selection expression must not be empty")
    parts: list[Part] = []
    static: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        char = expression[i]
        if char == "\\" and expression.startswith("$", i + 1):
            static.append("$")
            i += 2
            continue
        if char != "$":
            static.append(char)
            i += 1
            continue
        if expression.startswith("{", i + 1):
            end = expression.find("}", i + 2)
            if end < 0:
                raise ValueError(f"{expression!r}: '${{' without a closing '}}'")
            variable, i = expression[i + 2 : end], end + 1
        else:
            found = _UNWRAPPED_RE.match(expression, i + 1)
            if found is None:
                raise ValueError(
                    f"{expression!r}: only $request.body.<path> variables select WebSocket "
                    "routes (write \\$ for a literal dollar)"
                )
            variable, i = found.group(0), found.end()
        if not variable.startswith(_BODY_PREFIX):
            raise ValueError(
                f"{expression!r}: only request.body variables select WebSocket routes, "
                f"got ${{{variable}}}"
            )
        if static:
            parts.append("".join(static))
            static = []
        parts.append(_path(variable[len(_BODY_PREFIX) :], expression))
    if static:
        parts.append("".join(static))
    return tuple(parts)
