"""What goes wrong: timeouts, crashes, handler exceptions, init failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from runtime_helpers import (
    CLIENTS,
    INIT_REPORT_RE,
    REPORT_RE,
    TIMED_OUT_RE,
    alive,
    eventually,
    run,
    spec,
    started,
)

from warmline.dev.runtime.spec import FunctionSpec


@CLIENTS
def test_timeout_kills_the_environment_and_the_next_invoke_is_cold(client: str | None) -> None:
    async def main() -> None:
        async with started(spec(timeout_s=0.5, runtime_client=client)) as (rt, logs):
            warm = await rt.invoke("f", {})
            pid = warm.payload["pid"]
            timed = await rt.invoke("f", {"action": "sleep", "seconds": 1.5})
            gone = await eventually(lambda: not alive(pid))
            after = await rt.invoke("f", {})
            assert timed.status == "timeout"
            assert timed.error is not None
            assert timed.error["errorType"] == "Sandbox.Timedout"
            assert "Task timed out after 0.50 seconds" in timed.error["errorMessage"]
            assert gone
            assert timed.environment_id == warm.environment_id
            assert after.cold and after.payload["pid"] != pid
            assert after.environment_id != warm.environment_id
            lines = logs.for_request(timed.request_id)
            [timeout_line] = [m for line in lines if (m := TIMED_OUT_RE.match(line))]
            assert timeout_line["id"] == timed.request_id
            assert timeout_line["seconds"] == "0.50"
            [report] = [m for m in logs.matching(REPORT_RE) if m["id"] == timed.request_id]
            assert report["status"] == "timeout"
            # The handler would print after its sleep; it was killed before.
            assert "after sleep" not in logs.lines()

    run(main())


def test_output_before_a_timeout_is_kept_and_logged_before_end(tmp_path: Path) -> None:
    code = tmp_path / "chatty.py"
    code.write_text(
        "import time\n"
        "def handler(event, context):\n"
        "    print('before the hang', flush=True)\n"
        "    time.sleep(5)\n"
        "    print('never')\n"
    )

    async def main() -> None:
        fn = FunctionSpec("f", "chatty.handler", tmp_path, timeout_s=0.4)
        async with started(fn) as (rt, logs):
            result = await rt.invoke("f", {})
            lines = logs.for_request(result.request_id)
            assert result.status == "timeout"
            assert "before the hang" in lines
            assert lines.index("before the hang") < next(
                i for i, line in enumerate(lines) if TIMED_OUT_RE.match(line)
            )
            assert "never" not in logs.lines()

    run(main())


@CLIENTS
def test_a_crash_discards_only_its_environment(tmp_path: Path, client: str | None) -> None:
    release = tmp_path / "go"

    async def main() -> None:
        async with started(spec(runtime_client=client)) as (rt, logs):
            other = asyncio.ensure_future(
                rt.invoke("f", {"action": "wait_file", "path": str(release)})
            )
            assert await eventually(lambda: len(rt.environments()) == 1)
            crash = await rt.invoke("f", {"action": "exit", "code": 3})
            release.touch()
            survivor = await other
            assert crash.status == "crash"
            assert crash.error is not None
            assert crash.error["errorType"] == "Runtime.ExitError"
            assert crash.error["errorMessage"].endswith("Runtime exited with error: exit status 3")
            assert survivor.status == "ok"
            assert [e.environment_id for e in rt.environments()] == [survivor.environment_id]
            assert "Runtime.ExitError" in logs.for_request(crash.request_id)
            [report] = [m for m in logs.matching(REPORT_RE) if m["id"] == crash.request_id]
            assert (report["status"], report["error_type"]) == ("error", "Runtime.ExitError")

    run(main())


def test_a_signal_crash_names_the_signal() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            result = await rt.invoke("f", {"action": "segv"})
            assert result.status == "crash"
            assert result.error is not None
            assert "signal: segmentation fault" in result.error["errorMessage"]
            assert rt.environments() == []

    run(main())


@CLIENTS
def test_a_handler_exception_is_an_error_result_and_keeps_the_environment(
    client: str | None,
) -> None:
    async def main() -> None:
        async with started(spec(runtime_client=client)) as (rt, logs):
            failed = await rt.invoke("f", {"action": "raise"})
            after = await rt.invoke("f", {})
            assert failed.status == "error"
            assert failed.payload is None
            assert failed.error is not None
            assert failed.error["errorType"] == "ValueError"
            assert failed.error["errorMessage"] == "boom"
            trace = failed.error["stackTrace"]
            assert isinstance(trace, list) and trace
            assert "basic.py" in trace[-1] and "raise ValueError" in trace[-1]
            assert not any("bootstrap.py" in entry for entry in trace)
            # one line per log line (built-in), or the whole trace as one event (awslambdaric)
            lines = logs.for_request(failed.request_id)
            assert any(line.startswith("[ERROR] ValueError: boom") for line in lines)
            assert not after.cold
            assert after.environment_id == failed.environment_id

    run(main())


@CLIENTS
def test_an_unserializable_return_value_is_a_marshal_error(client: str | None) -> None:
    async def main() -> None:
        async with started(spec(runtime_client=client)) as (rt, _logs):
            result = await rt.invoke("f", {"action": "unserializable"})
            assert result.status == "error"
            assert result.error is not None
            assert result.error["errorType"] == "Runtime.MarshalError"
            assert "set" in result.error["errorMessage"]

    run(main())


@pytest.mark.parametrize(
    ("handler", "error_type", "message_part"),
    [
        ("bad_import.handler", "Runtime.ImportModuleError", "Unable to import module 'bad_import'"),
        ("basic.not_there", "Runtime.HandlerNotFound", "Handler 'not_there' missing"),
        ("init_raises.handler", "KeyError", "TABLE_NAME"),
        ("no_dot", "Runtime.MalformedHandlerName", "Bad handler 'no_dot'"),
        ("missing_module.handler", "Runtime.ImportModuleError", "No module named"),
    ],
)
@CLIENTS
def test_init_failures_are_init_errors_and_discard_the_environment(
    handler: str, error_type: str, message_part: str, client: str | None
) -> None:
    async def main() -> None:
        async with started(spec(handler, runtime_client=client)) as (rt, logs):
            result = await rt.invoke("f", {})
            assert result.status == "init_error"
            assert result.cold
            assert result.error is not None
            assert result.error["errorType"] == error_type
            assert message_part in result.error["errorMessage"]
            assert rt.environments() == []
            [init_report] = logs.matching(INIT_REPORT_RE)
            assert (init_report["status"], init_report["error_type"]) == ("error", error_type)
            assert any(line.startswith(f"[ERROR] {error_type}") for line in logs.lines())
            # Every line, START/END/REPORT included, is in the failed environment's stream.
            assert {r.env for r in logs.records} == {result.environment_id}

    run(main())


def test_a_syntax_error_is_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def handler(event, context)\n    return 1\n")

    async def main() -> None:
        async with started(FunctionSpec("f", "broken.handler", tmp_path)) as (rt, _logs):
            result = await rt.invoke("f", {})
            assert result.status == "init_error"
            assert result.error is not None
            assert result.error["errorType"] == "Runtime.UserCodeSyntaxError"

    run(main())


def test_an_init_over_the_limit_is_retried_within_the_function_timeout() -> None:
    async def main() -> None:
        fn = spec("slow_init.handler", timeout_s=5.0, environment={"SLOW_INIT_S": "0.5"})
        async with started(fn, init_timeout_s=0.2) as (rt, logs):
            result = await rt.invoke("f", {})
            assert result.status == "ok"
            assert result.cold
            reports = logs.matching(INIT_REPORT_RE)
            assert [(m["phase"], m["status"]) for m in reports] == [("init", "timeout")]
            assert float(reports[0]["init"]) >= 200.0
            assert sum(line.startswith("INIT_START") for line in logs.lines()) == 2
            assert [e.pid for e in rt.environments()] == [result.payload["pid"]]

    run(main())


def test_an_init_that_never_finishes_times_out_the_invoke() -> None:
    async def main() -> None:
        fn = spec("slow_init.handler", timeout_s=0.5, environment={"SLOW_INIT_S": "30"})
        async with started(fn, init_timeout_s=0.5) as (rt, logs):
            result = await rt.invoke("f", {})
            assert result.status == "timeout"
            assert result.error is not None
            assert result.error["errorType"] == "Sandbox.Timedout"
            reports = logs.matching(INIT_REPORT_RE)
            assert [(m["phase"], m["status"]) for m in reports] == [
                ("init", "timeout"),
                ("invoke", "timeout"),
            ]
            assert rt.environments() == []
            # What init printed before it was killed still reached the log.
            assert "slow init starting" in logs.lines()

    run(main())


@CLIENTS
def test_a_response_over_6_mb_is_a_function_error(tmp_path: Path, client: str | None) -> None:
    (tmp_path / "big.py").write_text(
        "def handler(event, context):\n    return 'x' * (6 * 1024 * 1024 + 1)\n"
    )

    async def main() -> None:
        fn = FunctionSpec("f", "big.handler", tmp_path, runtime_client=client)
        async with started(fn) as (rt, _logs):
            result = await rt.invoke("f", {})
            again = await rt.invoke("f", {})
            assert result.status == "error"
            assert result.error is not None
            assert result.error["errorType"] == "Function.ResponseSizeTooLarge"
            assert not again.cold

    run(main())


def test_a_line_without_newline_is_logged_and_huge_lines_are_cut(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text(
        "import sys\n"
        "def handler(event, context):\n"
        "    sys.stdout.write('y' * 300000 + '\\n')\n"
        "    sys.stdout.write('no newline at the end')\n"
    )

    async def main() -> None:
        async with started(FunctionSpec("f", "noisy.handler", tmp_path)) as (rt, logs):
            result = await rt.invoke("f", {})
            lines = logs.for_request(result.request_id)[1:-1]
            assert result.status == "ok"
            assert "no newline at the end" in lines
            long_parts = [line for line in lines if set(line) == {"y"}]
            assert sum(map(len, long_parts)) == 300000
            assert all(len(part) <= 256 * 1024 for part in long_parts)

    run(main())
