"""EMF lines from the step logger: each metric from its step, valid against AWS's schema,
the off switch and the namespace, and Powertools Metrics writing in the same invocation."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from obs_helpers import emf_lines, validate_emf, voice_app

from warmline import lambda_handler
from warmline.adapters.observe import observers, trace_fields, trace_root
from warmline.log import StepLogger
from warmline.metrics import UNITS, EmfWriter, measure
from warmline.testing import LambdaContext, RelayCall, websocket_event

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _writer() -> EmfWriter:
    return EmfWriter("warmline-test", "voice-ws", clock=lambda: 1_700_000_000.5)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"step": "connect", "cold": True, "durationMs": 3.0}, {"Connects": 1, "ColdConnects": 1}),
        ({"step": "connect", "cold": False}, {"Connects": 1, "ColdConnects": 0}),
        (
            {"step": "message", "route": "prompt", "durationMs": 40.0, "firstSendMs": 12.5},
            {"TurnMs": 40.0, "FirstTokenMs": 12.5},
        ),
        (
            {"step": "message", "route": "setup", "firstSendMs": 2.0, "sinceConnectMs": 310},
            {"SetupToGreetingMs": 2.0, "ConnectToSetupMs": 310},
        ),
        ({"step": "message", "route": "dtmf", "storeRetries": 2}, {"StoreRetries": 2}),
        ({"step": "warmup", "source": "aws.events"}, {"WarmupPings": 1}),
        ({"step": "store_unavailable"}, {"StoreErrors": 1, "Apologies": 1}),
        ({"step": "offload.dispatch_failed"}, {"Apologies": 1}),
        (
            {"step": "offload.turn", "lagMs": 80.0, "firstPostMs": 20.0},
            {"OffloadLagMs": 80.0, "FirstTokenMs": 100.0},
        ),
    ],
)
def test_each_metric_comes_from_its_step(
    record: dict[str, Any], expected: dict[str, float]
) -> None:
    assert measure(record) == expected
    doc = _writer()({**record, "connectionId": "C1"})
    assert doc is not None
    validate_emf(doc)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "warmline-test"
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {k: UNITS[k] for k in expected}
    assert doc["_aws"]["Timestamp"] == 1_700_000_000_500
    assert doc["function"] == "voice-ws" and doc["connectionId"] == "C1"
    assert all(doc[name] == value for name, value in expected.items())


def test_steps_without_a_measurement_write_no_emf_line() -> None:
    for record in ({"step": "disconnect"}, {"step": "gone"}, {"step": "message", "route": "x"}):
        assert _writer()(record) is None


def test_dimensions_are_function_and_function_channel_route_only() -> None:
    doc = _writer()({"step": "message", "route": "prompt", "durationMs": 1.0, "channel": "chat"})
    assert doc is not None
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["function"],
        ["function", "channel", "route"],
    ]
    assert (doc["channel"], doc["route"]) == ("chat", "prompt")
    connect = _writer()({"step": "connect", "cold": True})
    assert connect is not None and (connect["channel"], connect["route"]) == ("default", "$connect")


def test_a_namespace_outside_cloudwatchs_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 255"):
        EmfWriter("")
    with pytest.raises(ValueError, match="1 to 255"):
        EmfWriter("n" * 256)


def test_the_logger_writes_the_emf_line_right_after_its_step_line() -> None:
    out = io.StringIO()
    log = StepLogger(out, also=[_writer()])
    log("connect", cold=True, connectionId="C1")
    log("disconnect", connectionId="C1")
    lines = out.getvalue().splitlines()
    assert [json.loads(line).get("step") for line in lines] == ["connect", None, "disconnect"]
    (doc,) = emf_lines(lines)
    validate_emf(doc)


def test_a_failing_hook_is_logged_and_never_fails_the_step() -> None:
    def broken(record: dict[str, Any]) -> dict[str, Any] | None:
        raise RuntimeError("boom")

    out = io.StringIO()
    StepLogger(out, also=[broken])("connect")
    steps = [json.loads(line)["step"] for line in out.getvalue().splitlines()]
    assert steps == ["connect", "log_hook_failed"]


def test_metrics_are_on_inside_lambda_and_the_switch_turns_them_off() -> None:
    (writer,) = observers("echo", {"AWS_LAMBDA_FUNCTION_NAME": "voice-ws"})
    assert isinstance(writer, EmfWriter)
    assert (writer.namespace, writer.function) == ("warmline", "voice-ws")
    assert observers("echo", {"AWS_LAMBDA_FUNCTION_NAME": "f", "WARMLINE_METRICS": "off"}) == []
    assert observers("echo", {}) == []  # not in Lambda, not asked for
    (local,) = observers("echo", {"WARMLINE_METRICS": "1", "WARMLINE_METRICS_NAMESPACE": "Voice"})
    assert isinstance(local, EmfWriter) and (local.namespace, local.function) == ("Voice", "echo")


def test_the_trace_root_is_read_from_lambdas_header() -> None:
    assert trace_root(TRACE) == "1-5759e988-bd862e3fe1be46a994272793"
    assert trace_root("Parent=1;Sampled=0") == ""
    assert trace_fields({"_X_AMZN_TRACE_ID": TRACE}) == {"traceId": trace_root(TRACE)}
    assert trace_fields({}) == {}


def test_a_call_through_the_lambda_handler_emits_each_wait_and_the_trace_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    app = voice_app()
    call = RelayCall(app)
    out = io.StringIO()
    call.handler = lambda_handler(app, log=StepLogger(out, also=[EmfWriter("t", "ws")]))
    call.connect()
    event = websocket_event("MESSAGE", connection_id=call.connection_id, now_ms=1_000_000)
    event["requestContext"]["connectedAt"] = 1_000_000 - 420
    event["body"] = json.dumps({"type": "setup", "sessionId": "VX1", "callSid": "CA1"})
    call.handler(event, LambdaContext())
    call.prompt("hi")
    lines = out.getvalue().splitlines()
    docs = emf_lines(lines)
    for doc in docs:
        validate_emf(doc)
    by_route = {doc["route"]: doc for doc in docs}
    assert by_route["$connect"]["ColdConnects"] == 1
    assert by_route["setup"]["ConnectToSetupMs"] == 420
    assert by_route["setup"]["SetupToGreetingMs"] >= 0
    assert by_route["prompt"]["FirstTokenMs"] <= by_route["prompt"]["TurnMs"]
    root = trace_root(TRACE)
    assert all(json.loads(line)["traceId"] == root for line in lines)


def test_powertools_metrics_and_warmline_write_in_one_invocation_without_clashing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("aws_lambda_powertools")
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "voice-ws")
    monkeypatch.delenv("WARMLINE_METRICS", raising=False)
    metrics = Metrics(namespace="TeamVoice", service="voice")
    app = voice_app()
    call = RelayCall(app)
    inner = lambda_handler(app)  # the default logger: stdout, hooks from the environment

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> Any:
        metrics.add_metric(name="Bookings", unit=MetricUnit.Count, value=1)
        return inner(event, context)

    call.handler = handler
    assert call.connect() == {"statusCode": 200}
    lines = capsys.readouterr().out.splitlines()
    docs = emf_lines(lines)
    for doc in docs:
        validate_emf(doc)
    spaces = sorted(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in docs)
    assert spaces == ["TeamVoice", "warmline"]
    ours = next(d for d in docs if d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "warmline")
    theirs = next(d for d in docs if d is not ours)
    assert ours["ColdConnects"] == 1 and "Bookings" not in ours
    assert theirs["Bookings"] in (1, [1])
    assert "ColdConnects" not in theirs


def test_the_hot_path_import_loads_no_metrics_code_and_metrics_on_add_one_small_module() -> None:
    from warmline.testing import modules_after

    assert not {"warmline.metrics", "warmline.adapters.observe"} & modules_after(
        "import warmline, warmline.adapters.aws_lambda"
    )
    handler = (
        "import os; os.environ.update(AWS_LAMBDA_FUNCTION_NAME='f', WARMLINE_METRICS='{}')\n"
        "import warmline, warmline.adapters.aws_lambda as a\n"
        "a.lambda_handler(warmline.App(name='x'))\n"
    )
    off = modules_after(handler.format("off"))
    on = modules_after(handler.format("on"))
    assert on - off == {"warmline.metrics"}
