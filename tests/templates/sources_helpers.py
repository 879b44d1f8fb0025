"""Shared helpers for the stack-translation tests: run a translated config, poll files."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from warmline.config import DevConfig
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

T = TypeVar("T")

FIXTURES = Path(__file__).parent / "fixtures"
#: A fixture run by `warmline dev` keeps its state (dependency builds, linked runtimes,
#: sessions) in a .warmline/ beside its template; a copy of the fixture leaves it behind.
LOCAL_STATE = shutil.ignore_patterns(".warmline")


@asynccontextmanager
async def serving(config: DevConfig) -> AsyncIterator[DevServer]:
    """A started DevServer for ``config`` on a free port; closed on exit."""
    server = DevServer(config, port=0, log_sink=LogSink(console=None))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a fixture handler appended to ``path`` so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def eventually(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
