"""A long model answer through ``warmline dev`` and ``warmline serve``, offload ``auto`` from
configuration alone: it arrives whole and in order, a barge-in stops it within one post,
and the next prompt is answered. Both wire formats (OpenAI SSE, Bedrock event stream).

The project is a temp copy of ``examples/llm-agent`` whose ``warmline.toml`` points the
model at the fake (:mod:`fake_model`) and shortens the integration timeout with the ratio
kept: a 40 s answer against API Gateway's 29 s becomes 40/29 x ``TIMEOUT_S`` against
``TIMEOUT_S`` (docs/protocols.md §2.5). Real parts: the emulator's Lambda environments as
processes (the worker is the ``worker`` function, invoked through the emulated Lambda
API, its IAM grant derived from ``[agent] worker``), ``warmline serve`` as a process (the
worker on its in-process queue), the agent's SQLite session store, signed handshakes.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fake_model import FakeModel, Script, fake_model, long_answer, normalized

from warmline.agent.answerers import CONTINUE_PROMPT
from warmline.twilio.signature import compute_signature

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "adapters"))
from serve_harness import ROOT, TOKEN, serve_env, serve_process  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "llm-agent"
SESSION = "VX000000000000000000000000000000e2"
#: The shortened integration timeout; the answer keeps the 40 s : 29 s ratio.
TIMEOUT_S = 2.0
SENTENCES = 20
GAP_S = TIMEOUT_S * 40 / 29 / (3 * SENTENCES)
LONG = Script("internet plans", long_answer(SENTENCES))
SHORT = Script("support hours", ["We answer ", "every day. ", "Anything else?"])
RECV_S = 20.0
#: A chunk of the long answer (the short one has neither word).
OLD = re.compile(r"\b(Point|noted)\b")


def project(tmp_path: Path, provider: str, model_url: str) -> Path:
    """A copy of the example whose settings point at the fake model."""
    folder = tmp_path / "llm-agent"
    folder.mkdir()
    shutil.copy(EXAMPLE / "app.py", folder / "app.py")
    text = (EXAMPLE / "warmline.toml").read_text()
    head, _, _ = text.partition("\n[agent.llm]\n")
    env = (
        f'{{ TWILIO_AUTH_TOKEN = "{TOKEN}", '
        f'WARMLINE_SQLITE_PATH = "{tmp_path / "sessions.sqlite3"}" }}'
    )
    head = head.replace('environment = { WARMLINE_HANDOFF_NUMBER = "+15550123" }', "")
    head = head.replace("timeout = 30\n", f"timeout = 30\nenvironment = {env}\n")
    head = head.replace("timeout = 120 ", f"environment = {env}\ntimeout = 120 ")
    head = head.replace('[schedules.keep-warm]\nexpression = "rate(5 minutes)"\n', "")
    head = head.replace('targets = ["agent"]\n', "")
    where = (
        f'base_url = "{model_url}/v1"' if provider == "openai" else f'endpoint_url = "{model_url}"'
    )
    (folder / "warmline.toml").write_text(
        head
        + f'\n[agent.llm]\nprovider = "{provider}"\nmodel = "fake"\n{where}\ntools = true\n'
        + f"\n[limits]\nintegration_timeout_s = {TIMEOUT_S}\n"
    )
    return folder


@asynccontextmanager
async def target(kind: str, folder: Path, tmp_path: Path) -> AsyncIterator[str]:
    """The WebSocket URL of the project under ``warmline dev`` or ``warmline serve``."""
    if kind == "serve":
        aws = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"}
        env = serve_env(tmp_path, AWS_REGION="us-east-1", **aws)
        env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
        with serve_process(env, app="app:app", app_dir=folder) as (_proc, base):
            yield base.replace("http://", "ws://") + "/ws"
        return
    from warmline.config import load_config
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    sink = LogSink(console=None, path=tmp_path / "dev.log")
    server = DevServer(load_config(folder / "warmline.toml"), port=0, log_sink=sink)
    await server.start()
    try:
        yield server.ws_url
    finally:
        await server.close()
        sink.close()


class Caller:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def frame(self, timeout: float = RECV_S) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except TimeoutError:
            return None
        return data

    async def until_last(self) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.frame()
            assert frame is not None, f"no closing frame after {frames}"
            frames.append(frame)
            if frame.get("last") or "message" in frame:
                return frames


def spoken(frames: list[dict[str, Any]]) -> str:
    return "".join(f.get("token", "") for f in frames if not f.get("preemptible"))


def stored_turn(tmp_path: Path) -> int:
    from warmline.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "sessions.sqlite3")
    try:
        record = store.get(SESSION)
    finally:
        store.close()
    assert record is not None
    return record.turn


def continued(model: FakeModel) -> int:
    return sum(CONTINUE_PROMPT in r.body.decode() for r in model.server.requests)


async def scenario(ws_url: str, model: FakeModel, tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    headers = {"X-Twilio-Signature": compute_signature(ws_url, {}, TOKEN)}
    async with connect(ws_url, additional_headers=headers) as ws:
        caller = Caller(ws)
        await caller.send(type="setup", sessionId=SESSION, callSid="CAe2", customParameters={})
        assert "Brightwave" in spoken(await caller.until_last())

        # 1. The long answer arrives whole and in order, though it outlives the route.
        start = time.monotonic()
        await caller.send(type="prompt", voicePrompt="What internet plans do you offer?", last=True)
        frames = await caller.until_last()
        assert not any("message" in f for f in frames), frames  # no "Endpoint request timed out"
        assert normalized(spoken(frames)) == normalized("".join(LONG.tokens))
        assert time.monotonic() - start > TIMEOUT_S
        assert continued(model) == 1  # the route handed the rest to the worker

        # 2. Barge-in while the worker streams the rest of the same answer.
        await caller.send(type="prompt", voicePrompt="What internet plans do you offer?", last=True)
        heard: list[dict[str, Any]] = []
        from_worker = 0
        deadline = time.monotonic() + RECV_S
        while from_worker < 1:
            assert time.monotonic() < deadline, "the worker never took the second answer over"
            handed = continued(model) >= 2
            frame = await caller.frame(timeout=0.05)
            if frame is not None:
                heard.append(frame)
                from_worker += handed and bool(OLD.search(frame.get("token", "")))
        turn = stored_turn(tmp_path)
        await caller.send(
            type="interrupt", utteranceUntilInterrupt=spoken(heard), durationUntilInterruptMs=900
        )
        deadline = time.monotonic() + RECV_S
        while stored_turn(tmp_path) == turn:  # until the interrupt has moved the fence
            assert time.monotonic() < deadline, "the interrupt was not handled"
            frame = await caller.frame(timeout=0.02)
            if frame is not None:
                heard.append(frame)

        # 3. The next prompt is answered; at most one post of the old answer came after.
        await caller.send(
            type="prompt", voicePrompt="What are your customer support hours?", last=True
        )
        late: list[dict[str, Any]] = []
        while not late or not late[-1].get("last"):
            frame = await caller.frame()
            assert frame is not None, f"the next prompt was not answered: {late}"
            late.append(frame)
        old = [f for f in late if OLD.search(f.get("token", ""))]
        assert len(old) <= 1, old
        assert normalized(spoken([f for f in late if f not in old])) == normalized(
            "".join(SHORT.tokens)
        )
        cut = normalized(spoken(heard + old))
        whole = normalized("".join(LONG.tokens))
        assert whole.startswith(cut) and len(cut) < len(whole)  # in order, and stopped


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
@pytest.mark.parametrize("kind", ["dev", "serve"])
def test_a_long_answer_offloaded_by_configuration(kind: str, provider: str, tmp_path: Path) -> None:
    async def run() -> None:
        with fake_model([LONG, SHORT], gap_s=GAP_S) as model:
            folder = project(tmp_path, provider, model.url)
            async with target(kind, folder, tmp_path) as ws_url:
                await scenario(ws_url, model, tmp_path)

    asyncio.run(run())
