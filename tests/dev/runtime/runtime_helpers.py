"""Shared helpers for the runtime tests: a runtime with captured logs, process checks."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from warmline.dev.runtime.logs import LogRecord, LogSink
from warmline.dev.runtime.runtime import Runtime
from warmline.dev.runtime.spec import FunctionSpec

T = TypeVar("T")

FIXTURES = Path(__file__).parent / "fixtures"
#: The Python runtime clients the behaviour tests run under: the built-in one, and AWS's
#: awslambdaric over the Runtime API (``runtime_client = "aws"``).
CLIENTS = pytest.mark.parametrize("client", [None, "aws"], ids=["builtin", "awslambdaric"])

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
INIT_START_RE = re.compile(
    r"^INIT_START Runtime Version: python:\d+\.\d+\.v\d+\t"
    r"Runtime Version ARN: arn:aws:lambda:[a-z0-9-]+::runtime:[0-9a-f]{64}$"
)
START_RE = re.compile(rf"^START RequestId: (?P<id>{UUID}) Version: \$LATEST$")
END_RE = re.compile(rf"^END RequestId: (?P<id>{UUID})$")
REPORT_RE = re.compile(
    rf"^REPORT RequestId: (?P<id>{UUID})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\t"
    r"Max Memory Used: (?P<max_memory>\d+) MB"
    r"(?:\tInit Duration: (?P<init>\d+\.\d\d) ms)?"
    r"(?:\tRestore Duration: (?P<restore>\d+\.\d\d) ms\t"
    r"Billed Restore Duration: (?P<billed_restore>\d+) ms)?"
    r"(?:\tStatus: (?P<status>\w+)(?:\tError Type: (?P<error_type>[\w.]+))?)?$"
)
TIMED_OUT_RE = re.compile(
    rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z (?P<id>{UUID}) "
    r"Task timed out after (?P<seconds>\d+\.\d\d) seconds$"
)
INIT_REPORT_RE = re.compile(
    r"^INIT_REPORT Init Duration: (?P<init>\d+\.\d\d) ms\tPhase: (?P<phase>init|invoke)\t"
    r"Status: (?P<status>\w+)(?:\tError Type: (?P<error_type>[\w.]+))?$"
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive one test's coroutine."""
    return asyncio.run(coro)


def spec(handler: str = "basic.handler", **kwargs: Any) -> FunctionSpec:
    """A function named ``f`` (unless given) over the fixtures directory."""
    kwargs.setdefault("name", "f")
    kwargs.setdefault("timeout_s", 3.0)
    return FunctionSpec(handler=handler, code_dir=FIXTURES, **kwargs)


class Captured:
    """The log records a runtime emitted."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def lines(self, function: str | None = None) -> list[str]:
        """Every line, optionally of one function."""
        return [r.line for r in self.records if function is None or r.function == function]

    def matching(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        """The lines matching ``pattern``."""
        return [m for line in self.lines() if (m := pattern.match(line))]

    def for_request(self, request_id: str) -> list[str]:
        """The lines from START to END of one request, both included."""
        lines = self.lines()
        start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
        end = lines.index(f"END RequestId: {request_id}")
        return lines[start : end + 1]


@asynccontextmanager
async def started(*specs: FunctionSpec, **kwargs: Any) -> AsyncIterator[tuple[Runtime, Captured]]:
    """A started runtime whose logs are captured; closed (and checked empty) on exit."""
    captured = Captured()
    sink = LogSink(console=None, on_record=captured.records.append)
    runtime = Runtime(list(specs) or [spec()], log_sink=sink, **kwargs)
    await runtime.start()
    try:
        yield runtime, captured
    finally:
        await runtime.close()
        sink.close()


def alive(pid: int) -> bool:
    """Whether a process (not a zombie) with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
