"""Route selection, as API Gateway does it (docs/protocols.md §2.1).

API Gateway evaluates the API's ``routeSelectionExpression`` — ``$request.body.<path>`` —
on each JSON message, stringifies the result and matches it exactly against the route
keys; anything else (non-JSON, no such field, no such route) goes to ``$default``.

warmline applies the same rule inside the function, because many deployments map every
message to one ``$default`` integration and let the code route. For ConversationRelay the
default expression is ``$request.body.type``, so ``setup``, ``prompt``, ``interrupt``,
``dtmf``, ``info`` and ``error`` each get a route.
"""

from __future__ import annotations

import json

from warmline.errors import ConfigurationError

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CONNECT",
    "DEFAULT",
    "DISCONNECT",
    "RESERVED_ROUTES",
    "RouteSelector",
    "check_route_key",
]

CONNECT = "$connect"
DISCONNECT = "$disconnect"
DEFAULT = "$default"
#: Reserved route keys; custom keys must not start with ``$`` (docs/protocols.md §2.1).
RESERVED_ROUTES = frozenset({CONNECT, DISCONNECT, DEFAULT})

_PREFIX = "$request.body."


def check_route_key(key: str) -> str:
    """Return ``key`` if it is a valid route key, else raise ConfigurationError."""
    if not isinstance(key, str) or not key:
        raise ConfigurationError("a route key must be a non-empty string")
    if key.startswith("$") and key not in RESERVED_ROUTES:
        raise ConfigurationError(
            f"route key {key!r}: custom route keys must not start with '$' "
            f"(reserved: {', '.join(sorted(RESERVED_ROUTES))})"
        )
    return key


class RouteSelector:
    """Evaluates a ``$request.body.<path>`` route selection expression.

    Args:
        expression: e.g. ``$request.body.type`` or ``$request.body.meta.action``.

    Raises:
        ConfigurationError: the expression is not of that form.
    """

    __slots__ = ("expression", "_path")

    def __init__(self, expression: str = "$request.body.type") -> None:
        if not expression.startswith(_PREFIX) or len(expression) == len(_PREFIX):
            raise ConfigurationError(
                f"route selection expression {expression!r} must look like "
                f"'$request.body.<field>' (API Gateway's syntax)"
            )
        path = tuple(expression[len(_PREFIX) :].split("."))
        if any(not part for part in path):
            raise ConfigurationError(f"route selection expression {expression!r} has an empty part")
        self.expression = expression
        self._path = path

    def select(self, body: str | None, routes: Any) -> str:
        """The route key for ``body``: the selected value if it is in ``routes``, else $default.

        Args:
            body: the raw message text.
            routes: a container of registered route keys.
        """
        key = self.evaluate(body)
        if key is not None and key in routes and key not in RESERVED_ROUTES:
            return key
        return DEFAULT

    def evaluate(self, body: str | None) -> str | None:
        """The stringified value at the expression's path, or None (non-JSON, missing)."""
        if not body or body[0] not in "{ \t\r\n":
            return None
        try:
            value: Any = json.loads(body)
        except (ValueError, RecursionError):
            return None
        for part in self._path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if value is None or isinstance(value, dict | list):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
