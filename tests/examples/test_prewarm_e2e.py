"""Call-tied pre-warm in the emulator: a call arriving after idle reclaim meets no cold
WebSocket environment when the TwiML webhook pre-warms it, and meets one when it does not;
``warmline report`` reads both from the emulator's log. With Twilio's timing (TwiML fetch,
then ``$connect`` a few hundred milliseconds later) the first call after start is answered,
and a pre-warmed call meets no cold ``$connect``: each pinged environment is released as
soon as its init is done.

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

from dev_scenario import dev_server
from warmline.config import parse_config
from warmline.dev.server import DevServer
from warmline.tools.call import fetch_twiml, parse_script, run_call
from warmline.tools.report import parse_lines

AGENT = Path(__file__).resolve().parents[2] / "examples" / "agent"

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, prewarm: bool, idle_reclaim_s: float = 0.5) -> Any:
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
            "limits": {"idle_reclaim_s": idle_reclaim_s},
        },
        base_dir=AGENT,
    )


async def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _call_after_idle(tmp_path: Path, prewarm: bool) -> list[str]:
    from websockets.asyncio.client import connect

    log = tmp_path / f"dev-{prewarm}.log"
    async with dev_server(_config(tmp_path, prewarm), log) as server:

        def idle_ws() -> int:
            envs = server.runtime.environments()
            return sum(1 for e in envs if e.function == "ws" and e.state == "idle")

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
    return log.read_text().splitlines()


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


#: Twilio opens the WebSocket a few hundred milliseconds after it fetched the TwiML
#: (docs/protocols.md §1.6); the scenario waits that long, longer only when this machine's
#: init of the WebSocket function is slower than that.
TWILIO_GAP_S = 0.3


# --- a call with Twilio's timing -----------------------------------------------------------
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
        # idle reclaim: short, so the test meets a reclaimed function soon; long enough
        # that no environment of the call itself is reclaimed between its messages
        config = _config(tmp_path, True, idle_reclaim_s=3.0)
        out: dict[str, Any] = {}
        async with dev_server(config, tmp_path / "dev.log") as server:
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
    hooks = [s.get("hooks") for i in warmups for s in i.steps if s["step"] == "warmup"]
    assert hooks == [0, 0]
