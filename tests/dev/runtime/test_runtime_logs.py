"""CloudWatch-shaped log lines, the console format and the JSON-lines file."""

from __future__ import annotations

import io
import json
from pathlib import Path

from runtime_helpers import (
    CLIENTS,
    END_RE,
    INIT_START_RE,
    REPORT_RE,
    START_RE,
    run,
    spec,
    started,
)

from warmline.dev.runtime.logs import LogSink, report_line


def test_platform_lines_have_cloudwatch_shape_and_order() -> None:
    async def main() -> None:
        async with started(region="eu-south-1") as (rt, logs):
            cold = await rt.invoke("f", {"action": "print"})
            warm = await rt.invoke("f", {})
            lines = logs.lines()
            assert INIT_START_RE.match(lines[0])
            assert "arn:aws:lambda:eu-south-1::runtime:" in lines[0]
            cold_lines = logs.for_request(cold.request_id)
            assert START_RE.match(cold_lines[0])
            assert cold_lines[1:-1] == ["hello from stdout", "hello from stderr"]
            end = END_RE.match(cold_lines[-1])
            assert end is not None and end["id"] == cold.request_id
            reports = {m["id"]: m for m in logs.matching(REPORT_RE)}
            cold_report, warm_report = reports[cold.request_id], reports[warm.request_id]
            assert cold_report["init"] is not None and warm_report["init"] is None
            assert float(cold_report["init"]) == round(cold.init_ms or 0, 2)
            assert cold_report["memory"] == "128"
            assert int(cold_report["max_memory"]) > 0
            assert int(cold_report["billed"]) == cold.billed_ms
            assert float(warm_report["duration"]) == round(warm.duration_ms, 2)
            # Billed Duration covers the INIT phase on the cold invoke (docs/protocols.md §3.1).
            assert cold.billed_ms >= (cold.init_ms or 0) + cold.duration_ms
            assert lines.index(cold_lines[-1]) + 1 == lines.index(
                next(
                    line
                    for line in lines
                    if line.startswith(f"REPORT RequestId: {cold.request_id}")
                )
            )

    run(main())


@CLIENTS
def test_every_print_lands_between_its_start_and_end(client: str | None) -> None:
    """The result arrives on the socket, the prints on the pipe: prints still come first.

    Each invocation prints ~500 lines (more than the pipe holds, so the environment waits
    for the emulator to read), one line through ``os.write`` and a last one without a
    newline; back-to-back invocations must not lend each other lines.
    """

    async def main() -> None:
        async with started(spec(runtime_client=client)) as (rt, logs):
            results = []
            for n in range(4):
                event = {"action": "print_many", "tag": f"inv{n}", "lines": 500}
                results.append(await rt.invoke("f", event))
            for n, result in enumerate(results):
                assert result.status == "ok"
                body = logs.for_request(result.request_id)[1:-1]
                tag = f"inv{n}"
                assert len(body) == 502
                assert all(line.startswith(tag + " ") for line in body)
                assert body[-2:] == [f"{tag} raw write", f"{tag} no newline"]
                assert body[:500] == [f"{tag} line {i} " + "x" * 200 for i in range(500)]

    run(main())


def test_root_logger_writes_lambdas_format() -> None:
    async def main() -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp) / "logger.py"
            code.write_text(
                "import logging\n"
                "def handler(event, context):\n"
                "    logging.getLogger().warning('careful %s', 1)\n"
                "    logging.getLogger().info('hidden at the default level')\n"
            )
            from warmline.dev.runtime.spec import FunctionSpec

            async with started(FunctionSpec("f", "logger.handler", Path(tmp))) as (rt, logs):
                result = await rt.invoke("f", {})
                [line] = logs.for_request(result.request_id)[1:-1]
                level, stamp, request_id, message = line.split("\t")
                assert level == "[WARNING]"
                assert stamp.endswith("Z") and "T" in stamp
                assert request_id == result.request_id
                assert message == "careful 1"

    run(main())


def test_report_line_for_snapstart_carries_restore_duration() -> None:
    line = report_line(
        "4d1f6c0e-5c35-4b5e-9d51-1bb3e7e1a2b3",
        duration_ms=15.744,
        billed=16,
        memory_mb=128,
        max_memory_mb=56,
        restore_ms=12.301,
    )
    match = REPORT_RE.match(line)
    assert match is not None
    assert (match["restore"], match["billed_restore"], match["init"]) == ("12.30", "13", None)


def test_sink_writes_console_prefix_and_json_lines(tmp_path: Path) -> None:
    console = io.StringIO()
    records: list[str] = []
    path = tmp_path / "logs.jsonl"
    sink = LogSink(console=console, path=path, on_record=lambda r: records.append(r.line))
    sink.emit("ws", "0123456789abcdef", "START RequestId: x Version: $LATEST\n")
    sink.emit("ws", "0123456789abcdef", "a\tb")
    sink.close()
    assert console.getvalue() == (
        "[ws 01234567] START RequestId: x Version: $LATEST\n[ws 01234567] a\tb\n"
    )
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["function"], r["env"], r["line"]) for r in rows] == [
        ("ws", "0123456789abcdef", "START RequestId: x Version: $LATEST"),
        ("ws", "0123456789abcdef", "a\tb"),
    ]
    assert all(isinstance(r["ts"], float) for r in rows)
    assert records == ["START RequestId: x Version: $LATEST", "a\tb"]


def test_sink_colors_the_prefix_per_function_when_asked() -> None:
    console = io.StringIO()
    sink = LogSink(console=console, color=True)
    sink.emit("a", "e" * 32, "x")
    sink.emit("b", "e" * 32, "y")
    first, second = console.getvalue().splitlines()
    assert first.startswith("\x1b[") and first.endswith("\x1b[0m x")
    assert first.split("m", 1)[0] != second.split("m", 1)[0]
    plain = io.StringIO()
    LogSink(console=plain).emit("a", "e" * 32, "x")
    assert "\x1b" not in plain.getvalue()


def test_file_lines_are_exactly_json_dumps_of_the_record(tmp_path: Path) -> None:
    """The file's lines are written out by hand (per line, under load): they must be the
    very text json.dumps gives, for quotes, backslashes, control and non-ASCII characters."""
    path = tmp_path / "log.jsonl"
    sink = LogSink(console=io.StringIO(), path=path, color=True)
    lines = ["REPORT\tDuration: 1 ms", 'h\u00e9llo "q" \\ \x00 \u2028 \U0001f600', ""]
    for line in lines:
        sink.emit('fn"x', "0123456789abcdef", line)
    sink.close()
    written = path.read_text().splitlines()
    assert len(written) == len(lines)
    for text, line in zip(written, lines, strict=True):
        ts = json.loads(text)["ts"]
        assert text == json.dumps(
            {"ts": ts, "function": 'fn"x', "env": "0123456789abcdef", "line": line}
        )
