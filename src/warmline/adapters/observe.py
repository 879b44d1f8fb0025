"""What the step logger does besides logging, as the environment says: EMF metrics, traces.

Read once when a handler is made (:func:`observers`), and per invocation for the trace
header (:func:`trace_fields`). Nothing is imported for a switched-off feature: the
OpenTelemetry SDK only with ``WARMLINE_OTEL`` set (docs/observability.md).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from warmline.core.app import App

    Hook = Callable[[dict[str, Any]], dict[str, Any] | None]

__all__ = ["TRACE_ENV", "compose_observed", "observers", "trace_fields", "trace_root"]

#: Lambda sets the invocation's X-Ray trace header here, per invocation (docs/protocols.md
#: §8.2): ``Root=1-...;Parent=...;Sampled=1``.
TRACE_ENV = "_X_AMZN_TRACE_ID"
_OFF = ("0", "off", "false", "no")


def observers(app_name: str, environ: Mapping[str, str] | None = None) -> list[Hook]:
    """The step logger's hooks: the EMF writer unless ``WARMLINE_METRICS`` is off (on by
    default inside Lambda, where ``AWS_LAMBDA_FUNCTION_NAME`` is set; off elsewhere unless
    asked for), and the OpenTelemetry span writer when ``WARMLINE_OTEL`` is set."""
    env = os.environ if environ is None else environ
    hooks: list[Hook] = []
    function = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
    switch = env.get("WARMLINE_METRICS", "").strip().lower()
    if switch not in _OFF and (function or switch):
        from warmline.metrics import DEFAULT_NAMESPACE, EmfWriter

        namespace = env.get("WARMLINE_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
        hooks.append(EmfWriter(namespace, function or app_name))
    if env.get("WARMLINE_OTEL", "").strip().lower() not in ("", *_OFF):
        from warmline.adapters.otel import SpanWriter

        hooks.append(SpanWriter.from_environment(env, service=function or app_name))
    return hooks


def compose_observed(app: App, hooks: list[Hook]) -> None:
    """Compose ``app`` from the environment; with a span writer among ``hooks``, its
    ``@connections`` client is the traced one, so every post becomes a span."""
    from warmline.adapters.compose import compose, from_environment

    traced = next((getattr(h, "traced_connections", None) for h in hooks
                   if hasattr(h, "traced_connections")), None)  # fmt: skip
    if traced is None or app.composed:
        compose(app)
        return
    wiring = from_environment()
    if wiring.connections is not None:
        wiring = wiring.replace(connections=traced(wiring.connections))
    app.compose(wiring)


def trace_root(header: str) -> str:
    """The ``Root=`` id of an X-Ray trace header (``""`` when it has none)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root":
            return value
    return ""


def trace_fields(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The log fields of this invocation's trace: ``{"traceId": root}`` or ``{}``."""
    env = os.environ if environ is None else environ
    root = trace_root(env.get(TRACE_ENV, ""))
    return {"traceId": root} if root else {}
