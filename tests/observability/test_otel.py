"""The ``otel`` extra: spans for connect, setup, each turn, first and last token and each
``@connections`` post, in the invocation's X-Ray trace; exported over OTLP/HTTP to an
in-process collector; nothing imported with it off."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from obs_helpers import voice_app  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from warmline import lambda_handler  # noqa: E402
from warmline.adapters.compose import from_environment  # noqa: E402
from warmline.adapters.observe import observers  # noqa: E402
from warmline.adapters.otel import SpanWriter, xray_parent  # noqa: E402
from warmline.connections.local import LocalConnections  # noqa: E402
from warmline.log import StepLogger  # noqa: E402
from warmline.stores.memory import MemoryStore  # noqa: E402
from warmline.testing import LambdaContext, modules_after, websocket_event  # noqa: E402

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TRACE_ID = 0x5759E988BD862E3FE1BE46A994272793


def _call(writer: SpanWriter) -> None:
    """connect, setup, one prompt through the Lambda handler, posts traced."""
    app = voice_app()
    conns = LocalConnections()
    app.compose(
        from_environment(
            {},
            store=MemoryStore(),
            connections=writer.traced_connections(lambda ref, log: conns),
            allow_unsigned=True,
        )
    )
    handler = lambda_handler(app, log=StepLogger(io.StringIO(), also=[writer]))
    conns.open("C1")
    handler(websocket_event("CONNECT", connection_id="C1"), LambdaContext())
    for frame in (
        {"type": "setup", "sessionId": "VX1", "callSid": "CA1"},
        {"type": "prompt", "voicePrompt": "hi", "lang": "en-US", "last": True},
    ):
        event = websocket_event("MESSAGE", body=json.dumps(frame), connection_id="C1")
        handler(event, LambdaContext())


def _memory_writer(environ: dict[str, str]) -> tuple[SpanWriter, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return SpanWriter(provider, environ), exporter


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[str]:
    assert parent.context is not None
    return [s.name for s in spans if s.parent and s.parent.span_id == parent.context.span_id]


def test_a_call_becomes_connect_setup_and_turn_spans_in_the_xray_trace() -> None:
    writer, exporter = _memory_writer({"_X_AMZN_TRACE_ID": TRACE})
    _call(writer)
    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}
    assert {"warmline.connect", "warmline.setup", "warmline.turn"} <= set(by_name)
    assert all(s.context is not None and s.context.trace_id == TRACE_ID for s in spans)
    turn = by_name["warmline.turn"]
    assert turn.parent is not None and turn.parent.span_id == 0x53995C3F42CD8AD8
    kids = _children(spans, turn)
    # three tokens and the closing {"token": "", "last": true}: four posts
    assert kids.count("warmline.connections.post") == 4
    assert {"warmline.first_token", "warmline.last_token"} <= set(kids)
    assert turn.context is not None
    turn_id = turn.context.span_id
    first = next(
        s for s in spans
        if s.name == "warmline.first_token" and s.parent and s.parent.span_id == turn_id
    )  # fmt: skip
    assert turn.start_time is not None and turn.end_time is not None
    assert first.start_time == turn.start_time
    assert first.end_time is not None and first.end_time <= turn.end_time
    posts = [
        s for s in spans
        if s.name == "warmline.connections.post" and s.parent.span_id == turn.context.span_id
    ]  # fmt: skip
    assert len(posts) == 4
    assert all(p.start_time is not None and p.start_time >= turn.start_time for p in posts)
    assert turn.attributes is not None and turn.attributes["warmline.route"] == "prompt"
    assert _children(spans, by_name["warmline.setup"]).count("warmline.connections.post") == 1


def test_an_offloaded_turn_joins_the_dispatchers_trace() -> None:
    writer, exporter = _memory_writer(
        {"_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000001"}
    )
    writer({"step": "offload.turn", "dispatchTraceId": "1-5759e988-bd862e3fe1be46a994272793",
            "lagMs": 40.0, "firstPostMs": 12.0, "durationMs": 30.0})  # fmt: skip
    spans = {s.name: s for s in exporter.get_finished_spans()}
    offload = spans.pop("warmline.offload")
    assert offload.context is not None and offload.context.trace_id == TRACE_ID
    assert offload.attributes is not None and offload.attributes["warmline.lagMs"] == 40.0
    assert sorted(spans) == ["warmline.first_token", "warmline.last_token"]
    first = spans["warmline.first_token"]
    assert first.end_time is not None and first.start_time is not None
    assert first.end_time - first.start_time == 12_000_000


def test_trace_headers_without_a_root_start_a_new_trace() -> None:
    assert xray_parent(TRACE) == (TRACE_ID, 0x53995C3F42CD8AD8)
    assert xray_parent("Parent=53995c3f42cd8ad8") is None
    assert xray_parent("Root=2-x-y") is None
    writer, exporter = _memory_writer({})
    writer({"step": "connect", "durationMs": 2.0})
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


class _Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_spans_are_exported_over_otlp_http_once_per_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
        env = {"WARMLINE_OTEL": "1", "_X_AMZN_TRACE_ID": TRACE}
        (writer,) = observers("voice", env)
        assert isinstance(writer, SpanWriter)
        _call(writer)
        writer.provider.shutdown()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    names = []
    for body in _Collector.received:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert service["service.name"] == "voice"
            names += [s.name for scope in resource.scope_spans for s in scope.spans]
    assert {"warmline.connect", "warmline.setup", "warmline.turn"} <= set(names)
    assert names.count("warmline.connections.post") == 5  # 1 greeting + 4 for the turn
    # flushed at each invocation's final step: one export per invocation, none queued
    assert len(_Collector.received) == 3


def test_with_otel_off_nothing_of_opentelemetry_is_imported() -> None:
    code = (
        "import warmline, warmline.adapters.aws_lambda as a\n"
        "app = warmline.App(name='x')\n"
        "a.lambda_handler(app)\n"
    )
    loaded = modules_after(code)
    assert not {m for m in loaded if m.startswith("opentelemetry")}
    assert "warmline.adapters.otel" not in loaded
