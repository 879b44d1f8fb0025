"""The warm-up seed scenarios through ``warmline dev``, end to end.

- A call with Twilio's timing (TwiML fetch, then ``$connect`` a few hundred milliseconds
  later) is answered when it meets a cold function, and meets no cold ``$connect`` when
  the TwiML webhook pre-warms the WebSocket function: each pinged environment is released
  as soon as its init is done.
- lambda-warmer ``{"warmer": true, "concurrency": 3}`` from a scheduled rule warms three
  environments through the emulator's Invoke API (SigV4, IAM-checked: the grant comes from
  the rule in ``warmline.toml``), and the answer says how many invocations really ran.
- An hourly rule with two targets and a constant input declared a warm-up in
  ``warmline.toml`` is answered as a ping by both targets (the WebSocket agent and the
  Connect handler); the same input undeclared is not.
"""

from __future__ import annotations

import asyncio
import json
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

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.slow

#: Twilio opens the WebSocket a few hundred milliseconds after it fetched the TwiML
#: (docs/protocols.md §1.6); the scenario waits that long, scaled up when this machine's
#: init of the WebSocket function is slower than AWS's (see ``_twilio_gap``).
TWILIO_GAP_S = 0.3


async def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _env(tmp_path: Path) -> dict[str, str]:
    return {"WARMLINE_SQLITE_PATH": str(tmp_path / "s.sqlite3"), "WARMLINE_ALLOW_UNSIGNED": "1"}


def _records(lines: list[str], function: str) -> list[dict[str, Any]]:
    """The JSON step records ``function`` logged."""
    out = []
    for line in lines:
        outer = json.loads(line)
        if outer.get("function") != function:
            continue
        try:
            inner = json.loads(outer.get("line", ""))
        except ValueError:
            continue
        if isinstance(inner, dict) and "step" in inner:
            out.append(inner)
    return out


# --- a call with Twilio's timing -----------------------------------------------------------
def _voice_config(tmp_path: Path) -> Any:
    env = _env(tmp_path)
    invoke_ws = {"action": "lambda:InvokeFunction", "resource": "arn:aws:lambda:*:*:function:ws"}
    voice = {
        "handler": "app.handler",
        "code": "agent",
        "environment": dict(env, WARMLINE_PREWARM_FUNCTIONS="ws"),
        "statements": [invoke_ws],
    }
    return parse_config(
        {
            "functions": {
                "voice": voice,
                "ws": {"handler": "app.handler", "code": "agent", "environment": env},
            },
            "websocket": {
                "stage": "dev",
                "routes": {"$connect": "ws", "$disconnect": "ws", "$default": "ws"},
            },
            "http": {"function": "voice"},
            # short, so the test meets a reclaimed function soon; long enough that no
            # environment of the call itself is reclaimed between its messages
            "limits": {"idle_reclaim_s": 3.0},
        },
        base_dir=EXAMPLES,
    )


async def _twilio_call(server: DevServer, gap_s: float) -> str:
    """TwiML webhook, ``gap_s`` of Twilio's own latency, then the WebSocket call."""
    caller = {"CallSid": "CA" + os.urandom(16).hex(), "From": "+15550100"}
    ws_url, params, _ = await asyncio.to_thread(
        fetch_twiml, f"{server.lambda_url}/twiml", caller, None
    )
    await asyncio.sleep(gap_s)  # Twilio's timing, part of the scenario (not a wait for a result)
    result = await run_call(
        ws_url,
        parse_script(["What are your support hours?"]),
        custom_parameters=params,
        turn_timeout_s=20,
    )
    return result.turns[0].answer


@pytest.fixture(scope="module")
def twilio_calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("twilio")

    async def scenario() -> dict[str, Any]:
        sink = LogSink(console=None, path=tmp_path / "dev.log")
        server = DevServer(_voice_config(tmp_path), port=0, log_sink=sink)
        await server.start()
        out: dict[str, Any] = {}
        try:
            # 1. The first call after start: every function cold, Twilio's timing.
            out["cold_answer"] = await _twilio_call(server, TWILIO_GAP_S)
            await server.drain()
            init_s = (
                max((e.init_ms or 0.0) for e in server.runtime.environments() if e.function == "ws")
                / 1000
            )
            await _until(lambda: not server.runtime.environments())  # idle reclaim
            out["mark"] = (tmp_path / "dev.log").read_text().count("\n")
            # 2. A call after idle: the TwiML webhook pre-warms ws, $connect follows.
            out["gap_s"] = gap = max(TWILIO_GAP_S, 1.5 * init_s)
            out["warm_answer"] = await _twilio_call(server, gap)
            await server.drain()
        finally:
            await server.close()
            sink.close()
        out["lines"] = (tmp_path / "dev.log").read_text().splitlines()
        return out

    return asyncio.run(scenario())


def test_the_first_call_with_twilio_timing_is_answered(twilio_calls: dict[str, Any]) -> None:
    assert "7 in the morning" in twilio_calls["cold_answer"]
    first = [i for i in parse_lines(twilio_calls["lines"]).invocations if i.function == "ws"]
    assert first[0].cold  # it really met a cold function


def test_a_prewarmed_call_with_twilio_timing_meets_no_cold_connect(
    twilio_calls: dict[str, Any],
) -> None:
    assert "7 in the morning" in twilio_calls["warm_answer"]
    after = twilio_calls["lines"][twilio_calls["mark"] :]
    invocations = [i for i in parse_lines(after).invocations if i.function == "ws"]
    warmups = [i for i in invocations if i.warmup]
    real = [i for i in invocations if not i.warmup]
    assert len(warmups) == 2 and all(w.cold for w in warmups)
    assert [s["step"] for s in real[0].steps][:1] == ["connect"]
    assert [(i.cold, [s["step"] for s in i.steps][:1]) for i in real] == [
        (False, [s["step"] for s in i.steps][:1]) for i in real
    ]
    # released as soon as ready: the pings ran no hooks and were not held
    hooks = [r.get("hooks") for r in _records(after, "ws") if r["step"] == "warmup"]
    assert hooks == [0, 0]


# --- lambda-warmer fan-out and warm-up inputs from configuration ----------------------------
def _warmup_config(tmp_path: Path) -> Any:
    env = _env(tmp_path)
    agent = {"handler": "app.handler", "code": "agent", "environment": env}
    return parse_config(
        {
            "functions": {
                "ws": agent,
                "plain": agent,
                "connect": {"handler": "handler.handler", "code": "connect", "environment": env},
            },
            "websocket": {"stage": "dev", "routes": {"$default": "ws"}},
            "schedules": {
                "warmer": {
                    "expression": "rate(1 hour)",
                    "targets": ["ws"],
                    "input": {"warmer": True, "concurrency": 3},
                },
                "hourly": {
                    "expression": "rate(1 hour)",
                    "targets": ["ws", "connect"],
                    "input": {"ping": "hourly"},
                    "warmup": True,
                },
                "undeclared": {
                    "expression": "rate(1 hour)",
                    "targets": ["plain"],
                    "input": {"ping": "hourly"},
                },
            },
        },
        base_dir=EXAMPLES,
    )


@pytest.fixture(scope="module")
def warmups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("warmups")

    async def scenario() -> dict[str, Any]:
        sink = LogSink(console=None, path=tmp_path / "dev.log")
        server = DevServer(_warmup_config(tmp_path), port=0, log_sink=sink)
        await server.start()
        out: dict[str, Any] = {}

        def envs(function: str) -> list[Any]:
            return [e for e in server.runtime.environments() if e.function == function]

        try:
            server.trigger_schedule("warmer")
            await server.drain()
            out["after_schedule"] = len(envs("ws"))
            # The same ping, invoked and answered: what really ran, in its own words.
            out["answer"] = (await server.invoke("ws", {"warmer": True, "concurrency": 3})).payload
            out["after_answer"] = len(envs("ws"))
            # A function no rule asks to fan out has no grant to invoke itself.
            denied = await server.invoke("plain", {"warmer": True, "concurrency": 3})
            out["denied"] = denied.payload
            server.trigger_schedule("hourly")
            server.trigger_schedule("undeclared")
            await server.drain()
        finally:
            await server.close()
            sink.close()
        out["lines"] = (tmp_path / "dev.log").read_text().splitlines()
        return out

    return asyncio.run(scenario())


def test_lambda_warmer_concurrency_3_warms_3_environments(warmups: dict[str, Any]) -> None:
    assert warmups["after_schedule"] == 3
    fanouts = [r for r in _records(warmups["lines"], "ws") if r["step"] == "warmup_fanout"]
    assert fanouts[0]["invoked"] == 2 and fanouts[0]["failed"] == 0
    assert fanouts[0]["function"] == "ws:$LATEST"
    pings = [r for r in _records(warmups["lines"], "ws") if r["step"] == "warmup"]
    assert sorted(p["invocation"] for p in pings[:3]) == [1, 2, 3]


def test_the_warmer_answer_tells_the_truth(warmups: dict[str, Any]) -> None:
    answer = warmups["answer"]
    assert (answer["concurrency"], answer["requested"]) == (3, 3)
    assert "failed" not in answer
    assert warmups["after_answer"] == 3  # the warm environments served it
    denied = warmups["denied"]
    assert (denied["concurrency"], denied["requested"], denied["failed"]) == (1, 3, 2)
    assert "AccessDeniedException" in denied["error"]


def test_the_hourly_two_target_rule_is_a_warm_up_from_configuration(
    warmups: dict[str, Any],
) -> None:
    lines = warmups["lines"]
    for function in ("ws", "connect"):
        records = _records(lines, function)
        hourly = [r for r in records if r["step"] == "warmup" and r["source"] == "input"]
        assert len(hourly) == 1, function
        assert not [r for r in records if r["step"] == "invalid_event"], function
    # the control: the same input, not declared a warm-up, is not one
    plain = _records(lines, "plain")
    assert [r["step"] for r in plain if r["step"] in ("warmup", "invalid_event")][-1] == (
        "invalid_event"
    )
