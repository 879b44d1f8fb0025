"""OpenTelemetry spans from the step log: the ``otel`` extra, on with ``WARMLINE_OTEL=1``.

The spans are written after the fact, from what an invocation already measures: when its
final step line arrives (``connect``, ``message``, ``disconnect``, ``warmup``,
``offload.turn``) the handler's span is created with its real start (the line's time
minus ``durationMs``) and end, with children for the first token (start to the first
post), the last token (the first post to the end) and each ``@connections`` post (timed by
:meth:`SpanWriter.traced_connections`). Nothing is timed twice and the handler's code
path gets no tracer calls.

Spans join the invocation's X-Ray trace: Lambda's ``_X_AMZN_TRACE_ID`` ``Root`` (``1-``
+ 8 + 24 hex digits) is the 32-hex-digit W3C trace id, and its ``Parent`` the remote
parent span (AWS X-Ray developer guide, "Tracing header";
https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader).
An offloaded turn's span takes the dispatcher's trace id from the payload
(``dispatchTraceId``), so a turn's two functions show as one trace.

Export is OTLP over HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, read by the exporter), batched and flushed once per
invocation, at its final step: Lambda may freeze the environment right after the handler
returns, so nothing is left in a queue.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from warmline.core.events import ConnectionRef
    from warmline.core.ports import ConnectionClient

__all__ = ["SpanWriter", "xray_parent"]

#: The step lines that end an invocation's work, and the span each becomes.
_FINAL = {
    "connect": "warmline.connect",
    "disconnect": "warmline.disconnect",
    "warmup": "warmline.warmup",
    "offload.turn": "warmline.offload",
}
#: Message routes with a span name of their own; other routes are ``warmline.message``.
_ROUTES = {"setup": "warmline.setup", "prompt": "warmline.turn"}
#: Step fields copied onto the span as attributes.
_ATTRIBUTES = ("connectionId", "callSid", "sessionId", "turn", "route", "channel", "cold",
               "intent", "sends", "statusCode", "traceId", "dispatchTraceId", "lagMs")  # fmt: skip


def xray_parent(header: str) -> tuple[int, int] | None:
    """(trace id, parent span id) as integers from an X-Ray trace header, or None."""
    parts = dict(p.strip().partition("=")[::2] for p in header.split(";") if "=" in p)
    return _ids(parts.get("Root", ""), parts.get("Parent", ""))


def _ids(root: str, parent: str) -> tuple[int, int] | None:
    pieces = root.split("-")
    if len(pieces) != 3 or pieces[0] != "1":
        return None
    try:
        trace_id = int(pieces[1] + pieces[2], 16)
        span_id = int(parent, 16) if parent else int.from_bytes(os.urandom(8), "big")
    except ValueError:
        return None
    return (trace_id, span_id) if trace_id and span_id else None


class SpanWriter:
    """A :class:`warmline.log.StepLogger` hook that turns step lines into spans.

    Args:
        provider: the SDK tracer provider (its processors decide where spans go).
        environ: where the invocation's trace header is read (Lambda updates it per
            invocation).
        clock_ns: epoch nanoseconds (the time a step line is written is its span's end).
    """

    def __init__(
        self,
        provider: TracerProvider,
        environ: Mapping[str, str] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("warmline")
        self._environ = os.environ if environ is None else environ
        self._clock_ns = clock_ns
        #: the current invocation's ``@connections`` posts: (start ns, end ns, ok).
        self._posts: list[tuple[int, int, bool]] = []

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], *, service: str) -> SpanWriter:
        """Export over OTLP/HTTP in batches, the service named ``service``.

        Raises:
            ConfigurationError: the ``otel`` extra is not installed.
        """
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            from warmline.errors import ConfigurationError

            raise ConfigurationError(
                "WARMLINE_OTEL is set but OpenTelemetry is not installed: "
                "pip install 'warmline[otel]'"
            ) from exc
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider, environ)

    def traced_connections(
        self, factory: Callable[[ConnectionRef, Any], ConnectionClient]
    ) -> Callable[[ConnectionRef, Any], ConnectionClient]:
        """Wrap a ``@connections`` client factory so each post is timed for its span."""
        writer = self

        class _Timed:
            def __init__(self, inner: ConnectionClient) -> None:
                self._inner = inner

            def post(self, connection_id: str, data: bytes | str) -> None:
                start, ok = writer._clock_ns(), False
                try:
                    self._inner.post(connection_id, data)
                    ok = True
                finally:
                    writer._posts.append((start, writer._clock_ns(), ok))

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

        def make(ref: ConnectionRef, log: Any = None) -> ConnectionClient:
            client: ConnectionClient = _Timed(factory(ref, log))
            return client

        return make

    def __call__(self, record: dict[str, Any]) -> None:
        """See a step line; on an invocation's final one, write its spans and flush."""
        step = str(record.get("step") or "")
        if step == "message":
            name = _ROUTES.get(str(record.get("route") or ""), "warmline.message")
        elif step in _FINAL:
            name = _FINAL[step]
        else:
            return None
        end = self._clock_ns()
        posts, self._posts = self._posts, []
        duration_ms = _number(record.get("durationMs"))
        start = end - int(duration_ms * 1e6) if duration_ms is not None else (
            min((p[0] for p in posts), default=end))  # fmt: skip
        span = self._tracer.start_span(name, context=self._parent(record), start_time=start)
        for key in _ATTRIBUTES:
            value = record.get(key)
            if isinstance(value, str | bool | int | float):
                span.set_attribute(f"warmline.{key}", value)
        if record.get("level") == "error" or record.get("state") == "failed":
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))
        self._children(span, record, start, end, posts)
        span.end(end_time=end)
        self.provider.force_flush()
        return None

    def _children(
        self, span: Span, record: dict[str, Any], start: int, end: int,
        posts: list[tuple[int, int, bool]],
    ) -> None:  # fmt: skip
        from opentelemetry import trace

        ctx = trace.set_span_in_context(span)
        first_ms = _number(record.get("firstSendMs"))
        if first_ms is None:
            first_ms = _number(record.get("firstPostMs"))
        if first_ms is not None:
            first = min(end, start + int(first_ms * 1e6))
            self._tracer.start_span("warmline.first_token", context=ctx, start_time=start).end(
                end_time=first
            )
            self._tracer.start_span("warmline.last_token", context=ctx, start_time=first).end(
                end_time=end
            )
        for n, (post_start, post_end, ok) in enumerate(posts):
            child = self._tracer.start_span(
                "warmline.connections.post", context=ctx, start_time=post_start,
                attributes={"warmline.post": n, "warmline.ok": ok},
            )  # fmt: skip
            child.end(end_time=post_end)

    def _parent(self, record: Mapping[str, Any]) -> Any:
        """The remote parent: the dispatcher's trace for an offloaded turn, else this
        invocation's X-Ray trace (None: a new trace)."""
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        dispatch = record.get("dispatchTraceId")
        ids = _ids(dispatch, "") if isinstance(dispatch, str) else None
        if ids is None:
            ids = xray_parent(self._environ.get("_X_AMZN_TRACE_ID", ""))
        if ids is None:
            return None
        parent = SpanContext(
            ids[0], ids[1], is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
        return trace.set_span_in_context(NonRecordingSpan(parent))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
