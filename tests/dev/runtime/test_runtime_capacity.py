"""A bounded emulator (docs/protocols.md §8.4): the account's quota throttles as on AWS, and
past this machine's memory budget invocations wait for an environment instead of forking.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import eventually, run, spec, started
from websockets.asyncio.client import connect

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.runtime.logs import LogRecord
from warmline.dev.server import DevServer

ROOT = Path(__file__).resolve().parents[3]
AGENT = ROOT / "examples" / "agent"
CAP_LINE = "[warmline] local cap reached"


def waiting_spec(name: str = "f", **kwargs: Any) -> Any:
    return spec("probe.handler", name=name, timeout_s=10.0, **kwargs)


def test_past_the_memory_budget_invocations_wait_for_an_environment(tmp_path: Path) -> None:
    release = tmp_path / "release"

    async def main() -> None:
        # Two 128 MB environments fit in 256 MB; the other four invocations wait.
        async with started(waiting_spec(), memory_budget_mb=256) as (rt, logs):
            most = 0

            async def watch() -> None:
                nonlocal most
                while True:
                    most = max(most, len(rt.environments()))
                    await asyncio.sleep(0.002)

            watcher = asyncio.ensure_future(watch())
            calls = [
                asyncio.ensure_future(rt.invoke("f", {"pause": 0, "wait": str(release)}))
                for _ in range(6)
            ]
            assert await eventually(lambda: any(CAP_LINE in line for line in logs.lines()))
            assert len(rt.environments()) == 2
            release.touch()
            results = await asyncio.gather(*calls)
            watcher.cancel()
            warnings = [line for line in logs.lines() if CAP_LINE in line]
        assert [r.status for r in results] == ["ok"] * 6
        assert most == 2
        assert len({r.environment_id for r in results}) == 2
        assert sum(r.cold for r in results) == 2
        assert len(warnings) == 1
        assert "AWS would start a new environment" in warnings[0]
        assert "1000 concurrent executions" in warnings[0]

    run(main())


def test_past_the_account_quota_an_invoke_is_throttled_as_on_aws(tmp_path: Path) -> None:
    release = tmp_path / "release"

    async def main() -> None:
        async with started(waiting_spec(), account_concurrency=2) as (rt, _logs):
            busy = [
                asyncio.ensure_future(rt.invoke("f", {"pause": 0, "wait": str(release)}))
                for _ in range(2)
            ]
            assert await eventually(lambda: len(rt.environments()) == 2)
            throttled = await rt.invoke("f", {"pause": 0})
            release.touch()
            done = await asyncio.gather(*busy)
        assert throttled.status == "throttled"
        assert throttled.error == {
            "errorType": "TooManyRequestsException",
            "errorMessage": "Rate Exceeded.",
            "Reason": "ConcurrentInvocationLimitExceeded",
        }
        assert [r.status for r in done] == ["ok", "ok"]

    run(main())


def test_reserved_concurrency_still_throttles_under_the_local_cap(tmp_path: Path) -> None:
    release = tmp_path / "release"

    async def main() -> None:
        fn = waiting_spec(reserved_concurrency=1)
        async with started(fn, memory_budget_mb=4096) as (rt, _logs):
            busy = asyncio.ensure_future(rt.invoke("f", {"pause": 0, "wait": str(release)}))
            assert await eventually(lambda: len(rt.environments()) == 1)
            throttled = await rt.invoke("f", {"pause": 0})
            release.touch()
            assert (await busy).status == "ok"
        assert throttled.status == "throttled"
        assert throttled.error is not None
        assert throttled.error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"

    run(main())


def test_an_idle_environment_of_another_function_makes_room(tmp_path: Path) -> None:
    async def main() -> None:
        one, two = waiting_spec("one"), waiting_spec("two")
        async with started(one, two, memory_budget_mb=128) as (rt, logs):
            first = await rt.invoke("one", {"pause": 0})
            second = await rt.invoke("two", {"pause": 0})
            functions = [e.function for e in rt.environments()]
            reclaimed = [line for line in logs.lines("one") if "reclaimed early" in line]
        assert (first.status, second.status) == ("ok", "ok")
        assert functions == ["two"]
        assert reclaimed == ["[warmline] environment reclaimed early: local cap reached"]

    run(main())


@pytest.mark.slow
def test_a_flood_of_info_frames_starts_no_more_environments_than_the_cap(tmp_path: Path) -> None:
    """400 ``info`` frames on one call: at most the cap's environments; the prompt after is
    answered (issue: one connection forked an environment per frame)."""
    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    data["schedules"] = {}
    data.pop("deploy", None)
    # Its own session file: the run's .warmline/sessions.sqlite3 outlives the test, and a
    # session set up by an earlier run belongs to that run's connection (refused here).
    agent = data["functions"]["agent"]
    agent["environment"] = agent["environment"] | {
        "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3")
    }
    memory = int(agent["memory"])
    cap = 4
    records: list[LogRecord] = []
    sink = LogSink(console=None, on_record=records.append)
    config = parse_config(data, base_dir=AGENT)
    server = DevServer(
        config, port=0, log_sink=sink, state_dir=tmp_path / "state", memory_budget_mb=cap * memory
    )

    async def main() -> list[dict[str, Any]]:
        await server.start()
        try:
            async with connect(server.ws_url, compression=None) as ws:
                setup = {"type": "setup", "sessionId": "VXflood", "callSid": "CAflood"}
                await ws.send(json.dumps(setup | {"from": "+15550100", "to": "+15550101"}))
                await _answer(ws)  # the greeting
                info = json.dumps({"type": "info", "name": "roundTripDelayMs", "value": "40"})
                for _ in range(400):
                    await ws.send(info)
                prompt = {"type": "prompt", "voicePrompt": "What are your support hours?"}
                await ws.send(json.dumps(prompt | {"lang": "en-US", "last": True}))
                return await _answer(ws)
        finally:
            await server.close()

    answer = run(main())
    starts = [r for r in records if r.line.startswith("INIT_START")]
    assert 1 <= len(starts) <= cap
    assert answer[-1].get("last") is True
    assert "".join(str(f.get("token", "")) for f in answer if f.get("type") == "text")
    assert sum(CAP_LINE in r.line for r in records) == 1


async def _answer(ws: Any) -> list[dict[str, Any]]:
    """Frames until a text frame with ``last: true`` (API Gateway's error frames skipped)."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if frame.get("type") == "text":
            frames.append(frame)
            if frame.get("last") is True:
                return frames
