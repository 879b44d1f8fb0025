"""The whole point, end to end: a connect after start and after idle reclaim pays a real
cold start (``Init Duration`` in its REPORT line); the same connect after a scheduled
warm-up pays none — and ``warmline report`` reads it back from the emulator's log."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer
from warmline.tools.report import parse_lines

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"

pytestmark = pytest.mark.slow


def _config(tmp_path: Path) -> Any:
    # the echo sample under warmline dev, unsigned: its dev config opts out
    env = {"WARMLINE_SQLITE_PATH": str(tmp_path / "s.sqlite3"), "WARMLINE_ALLOW_UNSIGNED": "1"}
    return parse_config(
        {
            "functions": {"echo": {"handler": "app.handler", "code": ".", "environment": env}},
            "websocket": {
                "stage": "dev",
                "routes": {"$connect": "echo", "$disconnect": "echo", "$default": "echo"},
            },
            "schedules": {"warm": {"expression": "rate(5 minutes)", "targets": ["echo"]}},
            "limits": {"idle_reclaim_s": 0.3},
        },
        base_dir=ECHO,
    )


async def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _scenario(tmp_path: Path) -> list[str]:
    from websockets.asyncio.client import connect

    sink = LogSink(console=None, path=tmp_path / "dev.log")
    server = DevServer(_config(tmp_path), port=0, log_sink=sink)
    await server.start()
    steps: list[str] = []

    def reclaimed() -> bool:
        return not server.runtime.environments()

    async def call() -> None:
        async with connect(server.ws_url, compression=None):
            pass
        await server.drain()  # $disconnect done
        steps.append("call")

    try:
        await call()  # 1. first connect after start
        await _until(reclaimed)
        await call()  # 2. after idle reclaim
        await _until(reclaimed)
        server.trigger_schedule("warm")  # 3. a scheduled warm-up ...
        await server.drain()
        await _until(lambda: bool(server.runtime.environments()))
        await call()  # ... then the same connect
    finally:
        await server.close()
        sink.close()
    return (tmp_path / "dev.log").read_text().splitlines()


def test_cold_after_start_and_reclaim_warm_after_a_scheduled_warmup(tmp_path: Path) -> None:
    lines = asyncio.run(_scenario(tmp_path))
    report = parse_lines(lines)
    connects = [i for i in report.invocations if any(s["step"] == "connect" for s in i.steps)]
    warmups = [i for i in report.invocations if i.warmup]
    assert [c.cold for c in connects] == [True, True, False]
    assert all(c.init_ms and c.init_ms > 0 for c in connects[:2])
    assert connects[2].init_ms is None
    assert len(warmups) == 1 and warmups[0].cold
    reports = [json.loads(line)["line"] for line in lines if '"REPORT RequestId' in line]
    assert sum("Init Duration" in r for r in reports) == 3  # two connects + the warm-up
    (stats,) = report.functions()
    assert (stats.warmups, stats.cold_starts) == (1, 3)
