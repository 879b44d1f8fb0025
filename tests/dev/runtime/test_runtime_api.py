"""The Lambda Runtime API of ``warmline dev`` (docs/protocols.md §3.10), driven by custom runtimes.

A ``provided.al2023`` function's ``bootstrap`` talks HTTP to ``AWS_LAMBDA_RUNTIME_API`` as on
Lambda: these tests run real bootstraps (bash and curl; a Python probe) under the emulated
runtime and check what Lambda's Runtime API documents: the ``Lambda-Runtime-*`` headers,
init errors, the 6 MB response limit, one answer per invocation, the function timeout and
the runtime's exit, with the same START/END/REPORT bookkeeping as the built-in runtime.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path

import pytest
from runtime_helpers import FIXTURES, REPORT_RE, TIMED_OUT_RE, run, started

from warmline.dev.runtime.spec import FunctionSpec

API_FIXTURES = FIXTURES / "runtime_api"


def _custom(
    tmp_path: Path, source: Path, *, shebang: str | None = None, **kwargs: object
) -> FunctionSpec:
    """A ``provided.al2023`` function whose executable ``bootstrap`` is ``source``."""
    root = tmp_path / "task"
    root.mkdir(exist_ok=True)
    text = source.read_text(encoding="utf-8")
    if shebang is not None:
        text = f"#!{shebang}\n{text}"
    bootstrap = root / "bootstrap"
    bootstrap.write_text(text, encoding="utf-8")
    bootstrap.chmod(0o755)
    kwargs.setdefault("timeout_s", 5.0)
    return FunctionSpec(
        name="custom", handler="function.handler", code_dir=root, runtime="provided.al2023",
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def _probe(tmp_path: Path, **kwargs: object) -> FunctionSpec:
    return _custom(tmp_path, API_FIXTURES / "probe_bootstrap.py", shebang=sys.executable, **kwargs)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the shell bootstrap needs curl")
def test_a_shell_script_bootstrap_echoes_through_the_runtime_api(tmp_path: Path) -> None:
    async def go() -> None:
        function = _custom(tmp_path, API_FIXTURES / "echo.sh")
        async with started(function, state_dir=tmp_path / ".warmline") as (runtime, logs):
            first = await runtime.invoke("custom", {"say": "hello"})
            second = await runtime.invoke("custom", {"say": "again"})
            assert first.status == "ok", first.error
            assert first.payload == {"echo": {"say": "hello"}, "requestId": first.request_id}
            assert second.payload["echo"] == {"say": "again"}
            assert first.cold and first.init_ms is not None and first.init_ms > 0
            assert not second.cold
            assert second.environment_id == first.environment_id
            lines = logs.lines()
            assert lines[0].startswith("INIT_START Runtime Version: provided:al2023.v1\t")
            root = function.code_dir.resolve()
            assert f"echo runtime up: handler function.handler in {root}" in lines
            assert logs.for_request(first.request_id)[1] == 'echoing {"say":"hello"}'
            reports = logs.matching(REPORT_RE)
            assert reports[0]["id"] == first.request_id and reports[0]["init"] is not None
            assert reports[1]["init"] is None

    run(go())


def test_next_carries_the_lambda_runtime_headers_and_answers_are_checked(tmp_path: Path) -> None:
    async def go() -> None:
        async with started(_probe(tmp_path), state_dir=tmp_path / ".warmline") as (runtime, _):
            before_ms = time.time() * 1000
            result = await runtime.invoke("custom", {"n": 1}, client_context={"custom": {"k": "v"}})
            again = await runtime.invoke("custom", {"n": 2})
        assert result.status == "ok", result.error
        headers = result.payload["headers"]
        assert headers["Lambda-Runtime-Aws-Request-Id"] == result.request_id
        assert headers["Lambda-Runtime-Invoked-Function-Arn"] == (
            "arn:aws:lambda:us-east-1:123456789012:function:custom"
        )
        deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
        assert before_ms + 4000 < deadline < time.time() * 1000 + 5000  # the 5 s timeout
        assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
        assert '"custom": {"k": "v"}' in headers["Lambda-Runtime-Client-Context"]
        assert result.payload["event"] == {"n": 1}
        # an unknown request id is refused; a second answer to an invocation too
        assert result.payload["wrong_id"] == 400
        assert again.payload["previous_again"] == 403

    run(go())


def test_an_invocation_error_is_the_function_error_and_keeps_the_environment(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with started(_probe(tmp_path), state_dir=tmp_path / ".warmline") as (runtime, _):
            failed = await runtime.invoke("custom", {"action": "error"})
            after = await runtime.invoke("custom", {"action": "text"})
        assert failed.status == "error"
        assert failed.error == {
            "errorType": "Probe.Failed", "errorMessage": "asked to", "stackTrace": ["here"],
        }  # fmt: skip
        assert after.status == "ok" and after.environment_id == failed.environment_id
        assert after.payload == "plain text"  # a response that is not JSON comes back as text

    run(go())


@pytest.mark.parametrize(
    ("mode", "error_type", "message"),
    [
        ("error", "Probe.InitFailed", "no config"),
        ("exit", "Runtime.ExitError", "Runtime exited with error: exit status 4"),
    ],
)
def test_init_errors_fail_the_invoke_and_discard_the_environment(
    tmp_path: Path, mode: str, error_type: str, message: str
) -> None:
    async def go() -> None:
        function = _probe(tmp_path, environment={"PROBE_INIT": mode})
        async with started(function, state_dir=tmp_path / ".warmline") as (runtime, _):
            result = await runtime.invoke("custom", {})
            assert runtime.environments() == []
        assert result.status == "init_error"
        assert result.error is not None
        assert result.error["errorType"] == error_type
        assert result.error["errorMessage"] == message

    run(go())


def test_a_missing_bootstrap_is_an_invalid_entrypoint(tmp_path: Path) -> None:
    async def go() -> None:
        function = _probe(tmp_path)
        (function.code_dir / "bootstrap").unlink()
        async with started(function, state_dir=tmp_path / ".warmline") as (runtime, _):
            result = await runtime.invoke("custom", {})
        assert result.status == "init_error"
        assert result.error is not None and result.error["errorType"] == "Runtime.InvalidEntrypoint"

    run(go())


def test_a_response_over_6_mb_is_refused_with_413_and_fails_the_invocation(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with started(_probe(tmp_path), state_dir=tmp_path / ".warmline") as (runtime, logs):
            result = await runtime.invoke("custom", {"action": "big"})
            after = await runtime.invoke("custom", {"n": 3})
        assert result.status == "error"
        assert result.error is not None
        assert result.error["errorType"] == "Function.ResponseSizeTooLarge"
        assert "probe big 413 RequestEntityTooLarge" in logs.lines()
        assert after.status == "ok"

    run(go())


def test_the_function_timeout_kills_the_runtime_and_the_next_invoke_is_cold(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        function = _probe(tmp_path, timeout_s=1.0)
        async with started(function, state_dir=tmp_path / ".warmline") as (runtime, logs):
            slow = await runtime.invoke("custom", {"action": "sleep", "seconds": 30})
            assert slow.status == "timeout"
            assert logs.matching(TIMED_OUT_RE)[0]["id"] == slow.request_id
            bootstrap = str(function.code_dir / "bootstrap").encode()
            assert await asyncio.wait_for(_none_running(bootstrap), 10)
            after = await runtime.invoke("custom", {"n": 4})
        assert after.status == "ok" and after.cold

    run(go())


async def _none_running(script: bytes) -> bool:
    """No process runs ``script`` any more (the kill took the runtime, the relay's child)."""
    while True:
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if script in cmdline.split(b"\0"):
                found = True
                break
        if not found:
            return True
        await asyncio.sleep(0.02)


def test_the_runtime_exiting_mid_invocation_is_a_runtime_exit_error(tmp_path: Path) -> None:
    async def go() -> None:
        async with started(_probe(tmp_path), state_dir=tmp_path / ".warmline") as (runtime, logs):
            result = await runtime.invoke("custom", {"action": "exit"})
            after = await runtime.invoke("custom", {"n": 5})
        assert result.status == "crash"
        assert result.error is not None
        assert result.error["errorType"] == "Runtime.ExitError"
        assert "exit status 3" in result.error["errorMessage"]
        assert after.cold

    run(go())


def test_one_invocation_at_a_time_per_environment(tmp_path: Path) -> None:
    async def go() -> None:
        async with started(_probe(tmp_path), state_dir=tmp_path / ".warmline") as (runtime, _):
            results = await asyncio.gather(
                *(runtime.invoke("custom", {"action": "sleep", "seconds": 0.3}) for _ in range(3))
            )
        assert [r.status for r in results] == ["ok"] * 3
        # three at once: three environments, each ran exactly one of them
        assert len({r.environment_id for r in results}) == 3
        assert len({r.payload["pid"] for r in results}) == 3

    run(go())
