"""``warmline serve`` bounds what one caller can take from the others: a flood of frames
cannot hold up another caller's greeting, a trickled request head is cut off, API
Gateway's 32 KB frame limit holds, and forwarded headers are believed only from declared
proxies and only when they hold an IP address."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import pytest
from serve_harness import running
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from warmline.adapters.asgi import CLOSE_TOO_BIG, DEFAULT_TRUSTED_PROXIES, AsgiApp
from warmline.core.app import App, Context
from warmline.core.limits import MAX_FRAME_BYTES
from warmline.stores.memory import MemoryStore

#: Work each flooded prompt stands for (an LLM call, a store round trip).
PROMPT_WORK_S = 0.05
#: Frames the flooding caller sends: with the pool's 64 workers, 3,000 x 50 ms is ~2.3 s
#: of work queued ahead of anyone who comes later, if the flood may take every worker.
FLOOD = 3000
#: How long another caller may wait for its greeting while the flood goes on.
GREETING_BOUND_S = 1.0


def build(working: threading.Event | None = None) -> App:
    app = App(store=MemoryStore(), allow_unsigned=True)  # unsigned test handshakes

    @app.route("setup")
    def greet(ctx: Context) -> str:
        assert ctx.connection is not None
        return f"hello {ctx.connection.connection_id}"

    @app.route("prompt")
    def answer(ctx: Context) -> str:
        if working is not None and working.is_set():
            time.sleep(PROMPT_WORK_S)  # the work a real prompt does, released by the test
        return "ok"

    return app


async def setup_call(port: int, call: str = "1", **headers: str) -> tuple[ClientConnection, str]:
    """Connect and set up call ``call`` (its own sessionId and callSid: a session is
    bound to the connection and call that set it up)."""
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws", compression=None, additional_headers=headers or None
    )
    await ws.send(json.dumps({"type": "setup", "sessionId": f"VX{call}", "callSid": f"CA{call}"}))
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 30))
    return ws, greeting["token"].split()[-1]


async def closed_with(ws: ClientConnection) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed:
        pass
    return ws.close_code


def test_a_flooding_caller_does_not_hold_up_another_callers_greeting() -> None:
    """One caller sends thousands of prompts as fast as TCP takes them; a second caller
    connects meanwhile and is greeted within the bound, because a call has at most
    ``per_call`` events in the worker pool and its socket is not read beyond that."""
    working = threading.Event()
    working.set()

    async def scenario() -> float:
        async with running(AsgiApp(build(working))) as (_server, port):
            flooder, _ = await setup_call(port)
            prompt = json.dumps({"type": "prompt", "voicePrompt": "x", "last": True})

            async def flood() -> None:
                for _ in range(FLOOD):
                    await flooder.send(prompt)

            sending = asyncio.create_task(flood())
            await asyncio.sleep(0.3)  # let the flood reach the server first
            started = time.monotonic()
            caller, _ = await setup_call(port, call="2")  # another call than the flood's
            waited = time.monotonic() - started
            working.clear()  # the rest of the flood is answered at once
            await caller.close()
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            await flooder.close()
            return waited

    waited = asyncio.run(scenario())
    print(f"\nsecond caller greeted after {waited * 1000:.0f} ms during a flood")
    assert waited < GREETING_BOUND_S


def test_a_trickled_request_head_is_cut_off_and_a_call_is_not() -> None:
    """A client sending one header byte at a time (each byte resets uvicorn's keep-alive
    timer) is closed once the head deadline passes; a WebSocket call idle past the same
    deadline stays open and is answered."""

    def trickle(port: int) -> float:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            sock.settimeout(0.2)
            while time.monotonic() - started < 8:
                try:
                    if sock.recv(1024) == b"":
                        return time.monotonic() - started
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    return time.monotonic() - started
                try:
                    sock.sendall(b"X")  # never a complete header line
                except OSError:
                    return time.monotonic() - started
        return float("inf")

    def silent(port: int) -> float:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            return time.monotonic() - started if sock.recv(1024) == b"" else float("inf")

    async def scenario() -> tuple[float, float, dict[str, Any]]:
        async with running(AsgiApp(build()), header_timeout_s=1.0) as (_server, port):
            ws, _ = await setup_call(port)
            trickled, quiet = await asyncio.gather(
                asyncio.to_thread(trickle, port), asyncio.to_thread(silent, port)
            )
            # The call has now been idle longer than the head deadline: still served.
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "x", "last": True}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.close()
            return trickled, quiet, answer

    trickled, quiet, answer = asyncio.run(scenario())
    assert 0.5 < trickled < 4.0
    assert quiet < 4.0
    assert answer == {"type": "text", "token": "ok", "last": True}


def test_a_frame_over_32_kb_closes_1009_and_a_fragmented_message_under_128_kb_passes() -> None:
    """API Gateway's limits (docs/protocols.md §2.1, §2.5): each frame at most 32 KB, a
    message of several frames up to 128 KB."""

    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with running(AsgiApp(build())) as (_server, port):
            ws, _ = await setup_call(port)
            text = json.dumps({"type": "prompt", "voicePrompt": "y" * 90_000, "last": True})
            parts = [text[i : i + 30_000] for i in range(0, len(text), 30_000)]
            await ws.send(iter(parts))  # one message in 4 frames of <= 30,000 bytes
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send("z" * (MAX_FRAME_BYTES + 1024))  # one 33 KB frame
            return answer, await closed_with(ws)

    answer, code = asyncio.run(scenario())
    assert answer == {"type": "text", "token": "ok", "last": True}
    assert code == CLOSE_TOO_BIG


@pytest.mark.parametrize(
    ("trusted_proxies", "forwarded", "expected"),
    [
        (DEFAULT_TRUSTED_PROXIES, "6.6.6.6, 10.0.0.7", "127.0.0.1"),  # nothing declared
        (1, "6.6.6.6, not-an-ip", "127.0.0.1"),
        (1, "6.6.6.6, <script>", "127.0.0.1"),
        (1, "6.6.6.6, 10.0.0.7:443", "127.0.0.1"),
        (1, "6.6.6.6, [2001:db8::1]", "2001:db8::1"),
        (1, "6.6.6.6, 2001:DB8:0::7", "2001:db8::7"),
        (2, "not-an-ip, 10.0.0.7", "127.0.0.1"),
    ],
)
def test_forwarded_addresses_need_a_declared_proxy_and_an_ip(
    trusted_proxies: int, forwarded: str, expected: str
) -> None:
    async def scenario() -> str:
        asgi = AsgiApp(build(), trusted_proxies=trusted_proxies)
        async with running(asgi) as (_server, port):
            ws, cid = await setup_call(port, **{"X-Forwarded-For": forwarded})
            info = asgi.registry.get(cid)
            await ws.close()
            return str(info.source_ip)

    assert asyncio.run(scenario()) == expected


def test_forwarded_proto_is_ignored_without_a_declared_proxy() -> None:
    """The webhook URL (what the signature is checked against) keeps the socket's scheme
    unless a proxy is declared to have set X-Forwarded-Proto."""
    seen: list[str] = []
    app = App(store=MemoryStore())

    @app.http("/hook", ("GET",))
    def hook(ctx: Context) -> dict[str, str]:
        seen.append(ctx.event.url)  # type: ignore[union-attr]
        return {}

    def get(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"GET /hook HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-Proto: https\r\n"
                b"Connection: close\r\n\r\n"
            )
            while sock.recv(4096):
                pass

    async def scenario(trusted: int) -> None:
        async with running(AsgiApp(app, trusted_proxies=trusted)) as (_server, port):
            await asyncio.to_thread(get, port)

    asyncio.run(scenario(0))
    asyncio.run(scenario(1))
    assert seen == ["http://h.example/hook", "https://h.example/hook"]


def test_a_request_body_that_never_finishes_gets_408() -> None:
    app = App(store=MemoryStore())

    @app.http("/hook", ("POST",))
    def hook(ctx: Context) -> dict[str, str]:
        return {}

    def post(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            return sock.recv(4096)

    async def scenario() -> bytes:
        async with running(AsgiApp(app, body_timeout_s=0.5)) as (_server, port):
            return await asyncio.to_thread(post, port)

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 408")
