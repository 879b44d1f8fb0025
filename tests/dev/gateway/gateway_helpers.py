"""Shared helpers for the gateway tests: a started DevServer over the fixture handlers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

T = TypeVar("T")

FIXTURES = Path(__file__).parent / "fixtures"
#: AWS's id format: base64 of 11 bytes (docs/protocols.md §2.2, e.g. ``R1kmxc2VNjMCFIA=``).
AWS_ID_RE = r"^[A-Za-z0-9+/]{15}=$"
#: Short limits so timer tests take about a second.
FAST_LIMITS = {"integration_timeout_s": 29, "async_retry_delays_s": [0.05, 0.1]}


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive one test's coroutine."""
    return asyncio.run(coro)


def base_config(record_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A config table: ``ws`` on every route, ``worker`` for async sources."""
    env = {"RECORD_DIR": str(record_dir)}
    data: dict[str, Any] = {
        "functions": {
            "ws": {"handler": "ws.handler", "code": ".", "timeout": 5, "environment": env},
            "worker": {"handler": "worker.handler", "code": ".", "environment": env},
            "chat": {"handler": "chat.handler", "code": ".", "timeout": 10, "environment": env},
        },
        "websocket": {
            "stage": "dev",
            "routes": {
                "$connect": "ws",
                "$disconnect": "ws",
                "$default": {"function": "ws", "route_response": True},
                "echo": {"function": "ws", "route_response": True},
                "quiet": "ws",
            },
        },
        "limits": dict(FAST_LIMITS),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@asynccontextmanager
async def started(record_dir: Path, **overrides: Any) -> AsyncIterator[DevServer]:
    """A started server on a free port; closed on exit."""
    config = parse_config(base_config(record_dir, **overrides), base_dir=FIXTURES)
    server = DevServer(config, port=0, log_sink=LogSink(console=None))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def records(record_dir: Path, kind: str = "events") -> list[dict[str, Any]]:
    """The events a fixture handler recorded so far."""
    path = record_dir / f"{kind}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def eventually(
    check: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02
) -> T:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def routed(record_dir: Path, route: str) -> list[dict[str, Any]]:
    """Recorded events of one route key."""
    return [e for e in records(record_dir) if e["requestContext"]["routeKey"] == route]
