"""``warmline serve`` as a real process gets SIGTERM (what ECS sends on a deploy or a scale-in)
while a call is open: it refuses new calls, reports not ready, lets the open call finish,
then exits 0; with a short ``--drain-timeout`` (and ``--no-handoff``) it stops waiting and
exits anyway."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from serve_harness import STOP_TIMEOUT_S, TOKEN, http_get, serve_env, serve_process
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from warmline.twilio.signature import compute_signature

pytestmark = pytest.mark.slow


async def signed_call(ws_url: str) -> tuple[ClientConnection, str]:
    headers = {"X-Twilio-Signature": compute_signature(ws_url, {}, TOKEN)}
    ws = await connect(ws_url, additional_headers=headers, compression=None)
    await ws.send(json.dumps({"type": "setup", "sessionId": "VXdrain", "callSid": "CAdrain"}))
    return ws, await answer(ws)


async def answer(ws: ClientConnection) -> str:
    tokens: list[str] = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame.get("type") != "text":
            continue
        tokens.append(frame["token"])
        if frame.get("last"):
            return "".join(tokens)


async def until_status(url: str, status: int) -> None:
    deadline = time.monotonic() + 10
    while (await asyncio.to_thread(http_get, url))[0] != status:
        assert time.monotonic() < deadline, f"{url} never answered {status}"
        await asyncio.sleep(0.02)


async def exited(proc: subprocess.Popen[bytes]) -> int:
    return await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)


def test_sigterm_drains_the_open_call_before_exiting(tmp_path: Path) -> None:
    async def scenario(proc: subprocess.Popen[bytes], base: str) -> dict[str, Any]:
        ws_url = base.replace("http://", "ws://") + "/ws"
        out: dict[str, Any] = {}
        ws, out["greeting"] = await signed_call(ws_url)
        proc.send_signal(signal.SIGTERM)
        await until_status(base + "/readyz", 503)
        try:
            await signed_call(ws_url)
        except InvalidStatus as exc:
            out["new_call"] = exc.response.status_code
        out["alive_while_call_open"] = proc.poll() is None
        await ws.send(json.dumps({"type": "prompt", "voicePrompt": "What are your support hours?"}))
        out["answer"] = await answer(ws)
        await ws.close()
        out["code"] = await exited(proc)
        return out

    with serve_process(serve_env(tmp_path), "--drain-timeout", "30") as (proc, base):
        out = asyncio.run(scenario(proc, base))
    assert "Brightwave" in out["greeting"]
    assert out["new_call"] == 503
    assert out["alive_while_call_open"] is True
    assert "7 in the morning" in out["answer"]
    assert out["code"] == 0


def test_the_drain_is_bounded(tmp_path: Path) -> None:
    async def scenario(proc: subprocess.Popen[bytes], base: str) -> tuple[int, int | None]:
        ws, _greeting = await signed_call(base.replace("http://", "ws://") + "/ws")
        proc.send_signal(signal.SIGTERM)
        code = await exited(proc)  # the call never hangs up
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed:
            pass
        await ws.close()
        return code, ws.close_code

    # --no-handoff: the call is not moved (test_asgi_serve_reconnect.py), so it is cut.
    with serve_process(serve_env(tmp_path), "--drain-timeout", "0.3", "--no-handoff") as (
        proc,
        base,
    ):
        code, close_code = asyncio.run(scenario(proc, base))
    assert code == 0
    assert close_code == 1012  # uvicorn's "service restart" once the drain gave up
