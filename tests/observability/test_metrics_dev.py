"""A call replayed through a real ``warmline dev``: the function's EMF lines carry the
call's measurements, valid against AWS's schema, and agree with its step lines."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from obs_helpers import emf_lines, validate_emf

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"

pytestmark = pytest.mark.slow

SETUP = {
    "type": "setup",
    "sessionId": "VX" + "1" * 32,
    "callSid": "CA" + "1" * 32,
    "accountSid": "AC" + "0" * 32,
    "from": "+15550100",
    "to": "+15550199",
}


def _config(tmp_path: Path, namespace: str) -> Any:
    env = {
        "WARMLINE_SQLITE_PATH": str(tmp_path / "s.sqlite3"),
        "WARMLINE_ALLOW_UNSIGNED": "1",
        "WARMLINE_METRICS_NAMESPACE": namespace,
    }
    return parse_config(
        {
            "functions": {"echo": {"handler": "app.handler", "code": ".", "environment": env}},
            "websocket": {
                "stage": "dev",
                "routes": {"$connect": "echo", "$disconnect": "echo", "$default": "echo"},
            },
        },
        base_dir=ECHO,
    )


async def replay_call(tmp_path: Path, namespace: str = "warmline") -> list[str]:
    """One call (connect, setup, a prompt, hang up) through ``warmline dev``; the dev log's
    lines."""
    from websockets.asyncio.client import connect

    sink = LogSink(console=None, path=tmp_path / "dev.log")
    seen: list[str] = []
    sink.subscribe(lambda record: seen.append(record.line))
    server = DevServer(_config(tmp_path, namespace), port=0, log_sink=sink)
    await server.start()
    try:
        async with connect(server.ws_url, compression=None) as ws:
            await ws.send(json.dumps(SETUP))
            greeting = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert greeting["type"] == "text"
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "hi", "last": True}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert "hi" in answer["token"]
        await server.drain()
        # The functions' stdout reaches the log through a pipe: wait for the lines of the
        # last invocations (the prompt's step and EMF lines, the $disconnect).
        await _until(lambda: _complete(seen))
    finally:
        await server.close()
        sink.close()
    return (tmp_path / "dev.log").read_text().splitlines()


def _complete(lines: list[str]) -> bool:
    text = "\n".join(lines)
    return all(
        marker in text
        for marker in ('"route":"prompt"', '"FirstTokenMs"', '"ConnectToSetupMs"', '"disconnect"')
    )


async def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the dev log never got the call's lines")
        await asyncio.sleep(0.02)


def _function_lines(lines: list[str]) -> list[str]:
    return [json.loads(line)["line"] for line in lines if line.startswith("{")]


def test_a_dev_call_emits_valid_emf_lines_with_the_calls_measurements(tmp_path: Path) -> None:
    started_ms = int(time.time() * 1000)
    lines = _function_lines(asyncio.run(replay_call(tmp_path, "VoiceTeam")))
    docs = emf_lines(lines)
    assert docs, "no EMF line in the dev log"
    for doc in docs:
        validate_emf(doc)
        assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "VoiceTeam"
        assert doc["function"] == "echo"
        assert doc["_aws"]["Timestamp"] >= started_ms
    steps = [json.loads(x) for x in lines if x.startswith("{") and '"step"' in x]
    by_route = {doc["route"]: doc for doc in docs}
    connect = next(s for s in steps if s["step"] == "connect")
    assert by_route["$connect"]["ColdConnects"] == (1 if connect["cold"] else 0)
    assert by_route["$connect"]["Connects"] == 1
    setup = next(s for s in steps if s.get("route") == "setup")
    prompt = next(s for s in steps if s.get("route") == "prompt")
    assert by_route["setup"]["SetupToGreetingMs"] == setup["firstSendMs"]
    assert by_route["setup"]["ConnectToSetupMs"] == setup["sinceConnectMs"] >= 0
    assert by_route["prompt"]["FirstTokenMs"] == prompt["firstSendMs"]
    assert by_route["prompt"]["TurnMs"] == prompt["durationMs"]
    assert all(doc["connectionId"] == connect["connectionId"] for doc in docs)
    # The emulator gives each invocation a trace header: every line carries its root.
    assert all(s.get("traceId") for s in steps)
