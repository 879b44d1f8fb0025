"""Call-tied pre-warm in the emulator: a call arriving after idle reclaim meets no cold
WebSocket environment when the TwiML webhook pre-warms it, and meets one when it does not;
``warmline report`` reads both from the emulator's log.

The TwiML endpoint and the WebSocket routes are two functions here (the layout where
pre-warm matters: the TwiML function's own environment does not serve the socket).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer
from warmline.tools.call import fetch_twiml, parse_script, run_call
from warmline.tools.report import parse_lines

AGENT = Path(__file__).resolve().parents[2] / "examples" / "agent"

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, prewarm: bool) -> Any:
    env = {"WARMLINE_SQLITE_PATH": str(tmp_path / "s.sqlite3"), "WARMLINE_ALLOW_UNSIGNED": "1"}
    voice_env = dict(env, WARMLINE_PREWARM_FUNCTIONS="ws") if prewarm else env
    # The pre-warm invokes ws: the voice function's role must allow it, as on AWS.
    invoke_ws = {"action": "lambda:InvokeFunction", "resource": "arn:aws:lambda:*:*:function:ws"}
    voice = {"handler": "app.handler", "code": ".", "environment": voice_env}
    if prewarm:
        voice["statements"] = [invoke_ws]
    return parse_config(
        {
            "functions": {
                "voice": voice,
                "ws": {"handler": "app.handler", "code": ".", "environment": env},
            },
            "websocket": {
                "stage": "dev",
                "routes": {"$connect": "ws", "$disconnect": "ws", "$default": "ws"},
            },
            "http": {"function": "voice"},
            "limits": {"idle_reclaim_s": 0.5},
        },
        base_dir=AGENT,
    )


async def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _call_after_idle(tmp_path: Path, prewarm: bool) -> list[str]:
    from websockets.asyncio.client import connect

    sink = LogSink(console=None, path=tmp_path / f"dev-{prewarm}.log")
    server = DevServer(_config(tmp_path, prewarm), port=0, log_sink=sink)
    await server.start()

    def idle_ws() -> int:
        envs = server.runtime.environments()
        return sum(1 for e in envs if e.function == "ws" and e.state == "idle")

    try:
        # An earlier call left environments behind; they are reclaimed while idle.
        async with connect(server.ws_url, compression=None):
            pass
        await server.drain()
        await _until(lambda: not server.runtime.environments())
        caller = {"CallSid": "CA" + os.urandom(16).hex(), "From": "+15550100"}
        ws_url, params, _ = await asyncio.to_thread(
            fetch_twiml, f"{server.lambda_url}/twiml", caller, None
        )
        if prewarm:
            # Twilio connects about a second after the TwiML; here: once the warm-up ran.
            await _until(lambda: idle_ws() >= 2)
        result = await run_call(
            ws_url,
            parse_script(["What are your support hours?"]),
            custom_parameters=params,
            turn_timeout_s=20,
        )
        assert "7 in the morning" in result.turns[0].answer
        await server.drain()
    finally:
        await server.close()
        sink.close()
    return (tmp_path / f"dev-{prewarm}.log").read_text().splitlines()


def _ws_invocations_after_idle(lines: list[str]) -> list[Any]:
    """The ws function's real (non-warm-up) invocations of the second call."""
    report = parse_lines(lines)
    real = [i for i in report.invocations if i.function == "ws" and not i.warmup]
    connects = [n for n, i in enumerate(real) if any(s["step"] == "connect" for s in i.steps)]
    return real[connects[1] :]


def test_with_call_tied_prewarm_no_websocket_invocation_is_cold(tmp_path: Path) -> None:
    lines = asyncio.run(_call_after_idle(tmp_path, prewarm=True))
    second_call = _ws_invocations_after_idle(lines)
    assert len(second_call) >= 3  # connect, setup, prompt (and disconnect)
    assert [i.cold for i in second_call] == [False] * len(second_call)
    warmups = [i for i in parse_lines(lines).invocations if i.function == "ws" and i.warmup]
    assert len(warmups) == 2 and all(w.cold for w in warmups)


def test_without_prewarm_the_connect_after_idle_is_cold(tmp_path: Path) -> None:
    lines = asyncio.run(_call_after_idle(tmp_path, prewarm=False))
    second_call = _ws_invocations_after_idle(lines)
    assert second_call[0].cold is True
    assert not [i for i in parse_lines(lines).invocations if i.warmup]
