"""``warmline report --cloudwatch``: a ``warmline dev`` call's lines put into moto's
CloudWatch Logs read back to the same report as the local log; the access log group
joined into per-call gateway -> function -> ``@connections`` rows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_metrics_dev import replay_call

from warmline.cli import main
from warmline.tools.cloudwatch_logs import parse_since
from warmline.tools.report import parse_lines, render
from warmline.tools.report_access import join, parse_access, render_timelines

moto = pytest.importorskip("moto", reason="moto is not installed (test extra)")

GROUP = "/warmline/calls/echo"
ACCESS = "/warmline/calls/websocket-access"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        import boto3

        yield boto3.client("logs")


def _put(client: Any, group: str, events: list[tuple[str, int, str]]) -> None:
    """Put (stream, epoch ms, message) events, each stream's in order."""
    client.create_log_group(logGroupName=group)
    streams: dict[str, list[dict[str, Any]]] = {}
    for stream, ms, message in events:
        streams.setdefault(stream, []).append({"timestamp": ms, "message": message})
    for stream, batch in streams.items():
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def _to_cloudwatch(lines: list[str]) -> tuple[list[str], list[tuple[str, int, str]]]:
    """The dev log at CloudWatch's millisecond resolution, and the same as events."""
    local, events = [], []
    for line in lines:
        doc = json.loads(line)
        ms = int(doc["ts"] * 1000)
        local.append(json.dumps({**doc, "ts": ms / 1000}))
        events.append((doc["env"], ms, doc["line"]))
    return local, events


@pytest.mark.slow
def test_the_cloudwatch_report_of_a_dev_call_matches_its_local_report(
    tmp_path: Path, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = asyncio.run(replay_call(tmp_path))
    local, events = _to_cloudwatch(lines)
    _put(aws, GROUP, events)
    expected = parse_lines(local)
    assert expected.calls and expected.invocations
    assert main(["report", "--cloudwatch", GROUP, "--since", "1h", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == json.loads(json.dumps(expected.to_dict()))
    assert main(["report", "--cloudwatch", GROUP, "--since", "1h", "--waterfalls", "1"]) == 0
    assert capsys.readouterr().out.strip() == render(expected, waterfalls=1)


def _access_line(cid: str, route: str, at_ms: int, status: int, latency: int, err: str) -> str:
    return json.dumps({
        "requestId": f"r-{at_ms}", "extendedRequestId": f"r-{at_ms}", "connectionId": cid,
        "eventType": "CONNECT" if route == "$connect" else "MESSAGE", "routeKey": route,
        "messageId": "-", "status": str(status), "integrationLatency": str(latency),
        "requestTimeEpoch": str(at_ms), "connectedAt": "1000", "error": err,
    })  # fmt: skip


def _step(**fields: object) -> str:
    return json.dumps({"level": "info", **fields})


FUNCTION_EVENTS = [
    ("env1", 100_000, "START RequestId: r1 Version: $LATEST"),
    ("env1", 100_130, _step(step="connect", connectionId="C1", durationMs=5.0)),
    ("env1", 100_131, "REPORT RequestId: r1\tDuration: 5.0 ms\tBilled Duration: 5 ms"
                      "\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 120.0 ms"),
    ("env1", 100_300, "START RequestId: r2 Version: $LATEST"),
    ("env1", 100_310, _step(step="message", route="setup", connectionId="C1", durationMs=8.0,
                            firstSendMs=3.0)),
    ("env1", 100_311, "REPORT RequestId: r2\tDuration: 8.0 ms\tBilled Duration: 8 ms"
                      "\tMemory Size: 128 MB\tMax Memory Used: 40 MB"),
]  # fmt: skip
TIMED_OUT = "Endpoint request timed out"
ACCESS_EVENTS = [
    ("stage", 100_000, _access_line("C1", "$connect", 99_998, 200, 131, "-")),
    ("stage", 100_300, _access_line("C1", "setup", 100_300, 200, 10, "-")),
    ("stage", 101_000, _access_line("C1", "prompt", 101_000, 500, 29_000, TIMED_OUT)),
]  # fmt: skip


def test_access_logs_join_function_logs_into_one_timeline_per_call() -> None:
    report = parse_lines(
        json.dumps({"ts": ms / 1000, "function": "ws", "env": stream, "line": message})
        for stream, ms, message in FUNCTION_EVENTS
    )
    access = parse_access(line for _, _, line in ACCESS_EVENTS)
    (hops,) = join(report, access).values()
    assert [h.access.route_key if h.access else None for h in hops] == [
        "$connect",
        "setup",
        "prompt",
    ]
    connect, setup, prompt = hops
    assert connect.span is not None and connect.span.init_ms == 120.0
    assert setup.span is not None and setup.span.first_send_ms == 3.0
    assert prompt.span is None  # the gateway timed out; no invocation logged
    assert prompt.access is not None and prompt.access.error == TIMED_OUT
    text = "\n".join(render_timelines(report, access))
    assert "gateway -> function -> @connections" in text
    assert TIMED_OUT in text and "29,000.0" in text


def test_report_reads_the_access_log_group_from_cloudwatch(
    aws: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    now_ms = int(time.time() * 1000)
    shift = now_ms - 102_000  # the fixtures' times, moved into the last hour

    def moved(events: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
        out = []
        for stream, ms, message in events:
            if '"requestTimeEpoch"' in message:
                doc = json.loads(message)
                doc["requestTimeEpoch"] = str(int(doc["requestTimeEpoch"]) + shift)
                message = json.dumps(doc)
            out.append((stream, ms + shift, message))
        return out

    _put(aws, GROUP, moved(FUNCTION_EVENTS))
    _put(aws, ACCESS, moved(ACCESS_EVENTS))
    argv = ["report", "--cloudwatch", GROUP, "--access-log-group", ACCESS, "--since", "1h"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "echo" in out  # the function named after the group's last part
    rows = out.split("gateway -> function -> @connections", 1)[1].splitlines()
    setup = next(r for r in rows if r.strip().startswith("setup"))
    assert setup.split()[1:4] == ["302.0", "200", "10.0"]  # from the connect at 99.998 s


def test_since_takes_seconds_minutes_hours_days() -> None:
    assert [parse_since(x) for x in ("90s", "15m", "1h", "2d")] == [90, 900, 3600, 172800]
    with pytest.raises(ValueError, match="like 1h"):
        parse_since("yesterday")


def test_report_without_logs_or_a_group_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 2
    assert "--cloudwatch" in capsys.readouterr().err
