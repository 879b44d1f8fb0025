"""warmline report: REPORT lines and warmline step lines into per-function and per-call
figures, setup -> greeting, waterfalls, and plots with percentile and budget lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmline.cli import main
from warmline.tools.report import parse_lines, percentile, render, summary, waterfall
from warmline.tools.report_plots import marks


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
    emu(
        200.104,
        step(step="message", route="setup", connectionId="C1", durationMs=4.0, firstSendMs=3.0),
    ),
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
    # The setup handler began at 200.100 and spoke 3 ms later.
    assert call.setup_to_greeting_ms == pytest.approx(3.0, abs=0.01)
    # The prompt's environment was cold (Init Duration 90 ms): its frame arrived at
    # 201.000 - 0.090, and the caller waited for the INIT and the first 8 ms of the handler.
    assert call.span_ms(call.setup, call.first_prompt) == pytest.approx(810.0, abs=0.01)
    assert call.prompt_to_token_ms == pytest.approx(98.0, abs=0.01)
    assert [s.route for s in call.spans] == ["$connect", "setup", "prompt"]
    assert [s.init_ms for s in call.spans] == [0.0, 0.0, 90.0]


def invocation(
    rid: str, start: float, end: float, env: str, init: float, **fields: object
) -> list[str]:
    """START, one step line and REPORT of a cold invocation in environment ``env``."""
    duration = round((end - start) * 1000, 3)
    return [
        emu(start, f"START RequestId: {rid} Version: $LATEST", env=env),
        emu(end, step(durationMs=duration, **fields), env=env),
        emu(end, report_line(rid, duration, init=init), env=env),
    ]


def test_a_cold_setup_puts_its_init_into_the_greeting_wait() -> None:
    log = [
        *invocation("s1", 300.0, 300.02, "e1", 400.0, step="connect", connectionId="C2"),
        *invocation(
            "s2",
            300.5,
            300.6,
            "e9",
            250.0,
            step="message",
            route="setup",
            connectionId="C2",
            firstSendMs=60,
        ),
    ]
    (call,) = parse_lines(log).calls
    assert call.cold
    assert call.setup_to_greeting_ms == pytest.approx(310.0, abs=0.01)
    # $connect began at 300.000 after a 400 ms INIT; setup's frame arrived at 300.25.
    assert call.span_ms(call.connect, call.setup) == pytest.approx(650.0, abs=0.01)
    assert [s.init_ms for s in call.spans] == [400.0, 250.0]


def test_the_table_has_a_setup_to_greeting_column_and_percentiles() -> None:
    report = parse_lines(LOG)
    text = render(report, waterfalls=0)
    header = next(line for line in text.splitlines() if line.startswith("call (connectionId)"))
    assert "setup>greeting" in header
    row = next(line for line in text.splitlines() if line.startswith("C1"))
    # No step line says cold, but the prompt's invocation had an INIT: a cold call.
    assert row.split() == ["C1", "yes", "100.0", "3.0", "810.0", "98.0"]
    assert "waterfall" not in text and "|" not in text
    lines = summary(report, budget_ms=50.0)
    assert (
        "prompt -> first token, cold calls: p50 98.0 ms, p95 98.0 ms, p99 98.0 ms (1 calls); "
        "1 over the 50 ms budget"
    ) in lines
    assert any(line.startswith("setup -> greeting, cold calls: p50 3.0 ms") for line in lines)


def test_a_waterfall_draws_each_invocation_on_one_time_axis() -> None:
    (call,) = parse_lines(LOG).calls
    head, columns, connect, setup, prompt = waterfall(call, width=40)
    assert head.startswith("call C1 (cold start): 0 to 1,050.0 ms")
    assert columns.split() == ["invocation", "at", "ms", "init", "ms", "run", "ms"]
    bars = [line[line.index("|") + 1 : line.rindex("|")] for line in (connect, setup, prompt)]
    assert all(len(bar) == 40 for bar in bars)
    assert bars[0].startswith("#")  # $connect at 0
    assert setup.split()[:4] == ["setup", "100.0", "-", "4.0"]
    assert "^" in bars[1] and "first words 3.0 ms after the frame" in setup
    # The cold prompt: INIT (=) from 910 ms, then the handler, its first words at 998 ms.
    assert prompt.split()[:4] == ["prompt", "910.0", "90.0", "50.0"]
    assert bars[2].index("=") == int(910 / 1050 * 40)
    assert bars[2].index("^") == int(998 / 1050 * 40)
    assert "first words 98.0 ms after the frame" in prompt
    assert "call C1" in render(parse_lines(LOG), waterfalls=1)


def test_spans_are_in_arrival_order_whatever_order_the_lines_come_in() -> None:
    # A cold prompt ends in the same millisecond as the $disconnect that follows it; the
    # two environments' lines can come back from CloudWatch in either order.
    prompt = [
        emu(300.0, "START RequestId: p1 Version: $LATEST", env="e3"),
        emu(
            300.2,
            step(step="message", route="prompt", connectionId="C2", durationMs=100.0),
            env="e3",
        ),
        emu(300.2, report_line("p1", 100.0, init=50.0), env="e3"),
    ]
    disconnect = [
        emu(300.2, "START RequestId: d1 Version: $LATEST", env="e4"),
        emu(300.2, step(step="disconnect", connectionId="C2", durationMs=0.0), env="e4"),
        emu(300.2, report_line("d1", 0.0), env="e4"),
    ]
    for lines in (prompt + disconnect, disconnect + prompt):
        (call,) = parse_lines(lines).calls
        assert [span.route for span in call.spans] == ["prompt", "$disconnect"]
        assert waterfall(call)[2].split()[:2] == ["prompt", "0.0"]


def test_plot_marks_are_the_percentiles_and_the_budget() -> None:
    values = [float(v) for v in range(1, 101)]
    assert marks(values, 80.0) == [
        ("p50 50.0 ms", 50.0),
        ("p95 95.0 ms", 95.0),
        ("p99 99.0 ms", 99.0),
        ("budget 80 ms", 80.0),
    ]
    assert marks([], None) == []


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


def test_plots_are_png_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dev.log"
    log.write_text("\n".join(LOG) + "\n")
    argv = ["report", str(log), "--plot", str(tmp_path / "plots"), "--budget-ms", "500"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "over the 500 ms budget" in out and "call C1" in out
    for name in ("durations.png", "greeting.png", "first_token.png", "waterfalls.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
