"""In the local emulator: an answer longer than the route timeout streams completely when
offloaded, while the same answer inline gets API Gateway's timeout frame.

The limits are shortened by config with the ratio kept: a 45 s answer against the 29 s
integration timeout becomes 1.55 s against 1.0 s (docs/protocols.md §2.5, §2.6).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).parent / "emulator"
TIMEOUT_S = 1.0
ANSWER_S = TIMEOUT_S * 45 / 29


def _config(tmp_path: Path, mode: str) -> dict[str, Any]:
    env = {
        "WARMLINE_OFFLOAD_PROMPT": mode,
        "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
        "ANSWER_S": str(ANSWER_S),
        "ANSWER_TOKENS": "30",
    }
    fn = {"handler": "offload_emu_app.handler", "code": ".", "timeout": 20, "environment": env}
    # The router invokes the worker; the worker, no route of its own, posts the answer.
    invoke = {"action": "lambda:InvokeFunction", "resource": "arn:aws:lambda:*:*:function:worker"}
    post = {"action": "execute-api:ManageConnections", "resource": "arn:aws:execute-api:*:*:*/*"}
    return {
        "functions": {
            "router": dict(fn, statements=[invoke]),
            "worker": dict(fn, statements=[post]),
        },
        "websocket": {
            "stage": "dev",
            "route_selection_expression": "$request.body.type",
            "routes": {"$connect": "router", "$disconnect": "router", "$default": "router"},
        },
        "limits": {"integration_timeout_s": TIMEOUT_S, "async_retry_delays_s": [0.05, 0.1]},
    }


async def _call(tmp_path: Path, mode: str) -> tuple[list[dict[str, Any]], float]:
    from websockets.asyncio.client import connect

    from warmline.config import parse_config
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    config = parse_config(_config(tmp_path, mode), base_dir=APP_DIR)
    server = DevServer(config, port=0, log_sink=LogSink(console=None))
    await server.start()
    frames: list[dict[str, Any]] = []
    try:
        async with connect(server.ws_url) as ws:
            setup = {"type": "setup", "sessionId": f"VX-{mode}", "callSid": "CA1"}
            await ws.send(json.dumps(setup))
            start = time.monotonic()
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "long one", "last": True}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                frames.append(frame)
                if frame.get("last") or "message" in frame:
                    break
            elapsed = time.monotonic() - start
    finally:
        await server.close()
    return frames, elapsed


def test_long_answer_streams_completely_offloaded(tmp_path: Path) -> None:
    frames, elapsed = asyncio.run(_call(tmp_path, "offload"))
    assert "".join(f["token"] for f in frames) == "".join(f"t{i} " for i in range(30))
    assert frames[-1]["last"] is True
    assert elapsed > TIMEOUT_S  # it really outlived the route's limit
    assert not any("message" in f for f in frames)


def test_same_answer_inline_gets_the_timeout_frame(tmp_path: Path) -> None:
    frames, _ = asyncio.run(_call(tmp_path, "inline"))
    assert frames[-1]["message"] == "Endpoint request timed out"
    heard = "".join(f.get("token", "") for f in frames)
    assert heard != "".join(f"t{i} " for i in range(30))
