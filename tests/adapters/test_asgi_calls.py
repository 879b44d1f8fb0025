"""The open calls of ``warmline serve`` (warmline.adapters.asgi_calls): a prompt that
overtakes its setup waits for it (bounded), and a drain moves a busy call once its answer
is done, or anyway at the end of its window."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from serve_harness import running
from websockets.asyncio.client import ClientConnection, connect

from warmline.adapters.asgi import AsgiApp
from warmline.core.app import App, Context
from warmline.core.relay import Prompt, Text
from warmline.core.session import SessionRecord
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore


class SlowSetupStore(MemoryStore):
    """Creating the session of ``VXslow`` waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def put(self, record: SessionRecord) -> SessionRecord:
        if record.session_id == "VXslow" and record.version == 0:
            assert self.release.wait(10), "the test never released the setup"
        return super().put(record)


def build(store: MemoryStore, gate: threading.Event | None = None) -> App:
    app = App(store=store, allow_unsigned=True)  # unsigned test handshakes

    @app.setup
    def greet(ctx: Context[Any]) -> str:
        return "hello"

    @app.prompt
    def answer(ctx: Context[Prompt]) -> Iterator[str]:
        session = ctx.session
        yield Text(token="no session" if session is None else f"turn {session.turn}", last=True)
        if ctx.message.voice_prompt == "block" and gate is not None:
            assert gate.wait(10), "the test never let the answer go on"  # a slow model
            yield " done"

    return app


def logger() -> StepLogger:
    return StepLogger(io.StringIO(), keep=True)


def steps(log: StepLogger) -> list[str]:
    assert log.records is not None
    return [r["step"] for r in list(log.records)]


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)  # polling a condition with a deadline


async def cycle(ws: ClientConnection) -> str:
    tokens: list[str] = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == "end":
            return "end:" + frame["handoffData"]
        tokens.append(frame["token"])
        if frame.get("last"):
            return "".join(tokens)


SETUP = {"type": "setup", "sessionId": "VXslow", "callSid": "CAslow"}
PROMPT = {"type": "prompt", "voicePrompt": "hi", "lang": "en-US", "last": True}


def test_a_prompt_that_overtakes_its_setup_waits_for_the_session() -> None:
    async def scenario() -> dict[str, Any]:
        store = SlowSetupStore()
        log = logger()
        async with running(AsgiApp(build(store), log=log)) as (_server, port):
            async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
                await ws.send(json.dumps(SETUP))
                await ws.send(json.dumps(PROMPT))
                # The prompt reached the server while the session was not stored yet.
                await until(lambda: "setup_wait" in steps(log))
                store.release.set()
                return {"heard": [await cycle(ws), await cycle(ws)], "steps": steps(log)}

    out = asyncio.run(scenario())
    assert out["heard"] == ["hello", "turn 1"]
    assert "no_session" not in out["steps"] and "setup_wait_expired" not in out["steps"]


def test_the_wait_for_the_setup_is_bounded_and_the_stateless_answer_is_logged() -> None:
    async def scenario() -> dict[str, Any]:
        store = SlowSetupStore()
        log = logger()
        async with running(AsgiApp(build(store), log=log, setup_wait_s=0.2)) as (_s, port):
            async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
                await ws.send(json.dumps(SETUP))
                await ws.send(json.dumps(PROMPT))
                first = await cycle(ws)  # the setup is still held: the prompt went on
                store.release.set()
                return {"heard": [first, await cycle(ws)], "log": list(log.records or [])}

    out = asyncio.run(scenario())
    assert out["heard"] == ["no session", "hello"]
    by_step = {r["step"]: r for r in out["log"]}
    assert by_step["setup_wait_expired"]["level"] == "warning"
    assert by_step["no_session"]["level"] == "warning"


def moved_call(drain_s: float, release_on: str) -> dict[str, Any]:
    """A call busy with an answer when the drain moves it; the answer is let go on the
    first log line ``release_on``."""

    async def scenario() -> dict[str, Any]:
        store = MemoryStore()
        log = logger()
        gate = threading.Event()
        asgi = AsgiApp(build(store, gate), log=log, handoff_grace_s=drain_s)
        async with running(asgi) as (_server, port):
            async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
                setup = {"type": "setup", "sessionId": "VXbusy", "callSid": "CAbusy"}
                await ws.send(json.dumps(setup))
                greeting = await cycle(ws)
                await ws.send(json.dumps({**PROMPT, "voicePrompt": "block"}))
                first = await cycle(ws)  # the answer's first words: the call is busy
                draining = asyncio.create_task(asgi.drain(drain_s))
                await until(lambda: release_on in steps(log))
                gate.set()
                heard = [await cycle(ws), await cycle(ws)]
                await ws.close()
                left = await draining
        moved = [r for r in list(log.records or []) if r["step"] == "call_moved"]
        return {"greeting": greeting, "heard": [first, *heard], "left": left, "moved": moved}

    return asyncio.run(scenario())


def test_a_drain_moves_a_busy_call_once_its_answer_is_done() -> None:
    # 2 s window, grace min(2, 1) = 1: moves start at 1 s and wait up to 0.5 s for answers.
    out = moved_call(2.0, release_on="move_waiting")
    assert out["greeting"] == "hello"
    assert out["heard"][:2] == ["turn 1", " done"]  # the answer was not cut
    handoff = json.loads(out["heard"][2].removeprefix("end:"))
    assert handoff == {"reason": "reconnect", "trigger": "drain", "session": "VXbusy"}
    assert out["left"] == 0
    assert [m["forced"] for m in out["moved"]] == [False]


def test_a_call_busy_to_the_end_of_its_window_is_moved_anyway() -> None:
    out = moved_call(0.6, release_on="call_moved")
    assert out["heard"][1].startswith("end:")  # moved mid-answer
    assert [m["forced"] for m in out["moved"]] == [True]
