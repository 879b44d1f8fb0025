"""warmline report: REPORT lines and warmline step lines into per-function and per-call figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmline.cli import main
from warmline.tools.report import parse_lines, percentile


def emu(ts: float, line: str, function: str = "ws", env: str = "e1") -> str:
    return json.dumps({"ts": ts, "function": function, "env": env, "line": line})


def step(**fields: object) -> str:
    return json.dumps({"level": "info", **fields})


def report_line(rid: str, duration: float, init: float | None = None) -> str:
    line = f"REPORT RequestId: {rid}\tDuration: {duration} ms\tBilled Duration: 1 ms"
    line += "\tMemory Size: 128 MB\tMax Memory Used: 40 MB"
    return line + (f"\tInit Duration: {init} ms" if init is not None else "")


LOG = [
    emu(100.0, "INIT_START Runtime Version: python:3.11.v1\tRuntime Version ARN: arn:x"),
    emu(100.0, "START RequestId: r1 Version: $LATEST"),
    emu(100.01, step(step="warmup", source="aws.events", cold=True)),
    emu(100.02, "END RequestId: r1"),
    emu(100.02, report_line("r1", 1.5, init=120.0)),
    emu(200.0, "START RequestId: r2 Version: $LATEST"),
    emu(200.005, step(step="connect", connectionId="C1", cold=False, durationMs=5.0)),
    emu(200.01, report_line("r2", 2.0)),
    emu(200.1, "START RequestId: r3 Version: $LATEST"),
    emu(200.104, step(step="message", route="setup", connectionId="C1", durationMs=4.0)),
    emu(200.11, report_line("r3", 4.0)),
    emu(201.0, "START RequestId: r4 Version: $LATEST", env="e2"),
    emu(
        201.05,
        step(step="message", route="prompt", connectionId="C1", durationMs=50.0, firstSendMs=8.0),
        env="e2",
    ),
    emu(201.06, report_line("r4", 50.0, init=90.0), env="e2"),
    "not a log line at all",
]


def test_warmups_are_counted_apart_and_left_out_of_latencies() -> None:
    stats = parse_lines(LOG).functions()
    assert len(stats) == 1
    ws = stats[0]
    assert (ws.invocations, ws.warmups, ws.cold_starts) == (3, 1, 2)
    assert (ws.init_p50, ws.init_p99) == (90.0, 120.0)
    assert (ws.warm_p50, ws.warm_p99) == (2.0, 4.0)


def test_call_timeline_from_step_lines() -> None:
    (call,) = parse_lines(LOG).calls
    assert call.connection_id == "C1"
    assert call.span_ms(call.connect, call.setup) == pytest.approx(100.0, abs=0.01)
    assert call.span_ms(call.setup, call.first_prompt) == pytest.approx(900.0, abs=0.01)
    assert call.span_ms(call.first_prompt, call.first_token) == pytest.approx(8.0, abs=0.01)


def test_cloudwatch_text_export_is_read_too() -> None:
    lines = [
        "2026-01-20T11:54:57.000Z START RequestId: a Version: $LATEST",
        "2026-01-20T11:54:57.100Z " + report_line("a", 10.0, init=300.0),
        "2026-01-20T11:55:00.000Z 2026/01/20/[$LATEST]abc START RequestId: b Version: $LATEST",
        "2026-01-20T11:55:00.020Z 2026/01/20/[$LATEST]abc " + report_line("b", 3.0),
    ]
    (fn,) = parse_lines(lines, default_function="voice").functions()
    assert (fn.function, fn.invocations, fn.cold_starts, fn.init_p50) == ("voice", 2, 1, 300.0)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_cli_prints_tables_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dev.log"
    log.write_text("\n".join(LOG) + "\n")
    assert main(["report", str(log)]) == 0
    out = capsys.readouterr().out
    assert "ws" in out and "C1" in out
    assert main(["report", str(log), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["functions"][0]["cold_starts"] == 2
    assert main(["report", str(tmp_path / "missing.log")]) == 2


def test_plots_are_png_files(tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    log.write_text("\n".join(LOG) + "\n")
    assert main(["report", str(log), "--plot", str(tmp_path / "plots")]) == 0
    for name in ("durations.png", "first_token.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
