"""AsgiApp under a real in-process uvicorn server: health, the handshake, API Gateway's frame
rules, the socket ConnectionClient (410, 413, order, delete) and draining."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from serve_harness import http_get, running
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from warmline.adapters.asgi import CLOSE_BINARY, CLOSE_TOO_BIG, AsgiApp
from warmline.core.app import App, Context
from warmline.core.limits import MAX_MESSAGE_BYTES, MAX_POST_BYTES
from warmline.errors import ConnectionGoneError, PayloadTooLargeError
from warmline.stores.memory import MemoryStore

TOKENS = 40


def build() -> tuple[App, dict[str, Any]]:
    app = App(store=MemoryStore(), allow_unsigned=True)  # unsigned test handshakes
    seen: dict[str, Any] = {"connected": [], "disconnected": [], "threads": set()}

    @app.connect
    def on_connect(ctx: Context) -> bool:
        assert ctx.connection is not None
        seen["connected"].append(ctx.connection.connection_id)
        return ctx.event.query.get("deny") != "1"  # type: ignore[union-attr]

    @app.disconnect
    def on_disconnect(ctx: Context) -> None:
        assert ctx.connection is not None
        seen["disconnected"].append(ctx.connection.connection_id)

    @app.route("setup")
    def greet(ctx: Context) -> str:
        seen["threads"].add(threading.get_ident())
        assert ctx.connection is not None
        return f"hello {ctx.connection.connection_id}"

    @app.route("prompt")
    def count(ctx: Context) -> Iterator[str]:
        for i in range(TOKENS):
            yield f"{i} "

    @app.http("/hello", ("GET",))
    def hello(ctx: Context) -> dict[str, str]:
        return {"hello": "world"}

    return app, seen


async def open_call(port: int, query: str = "") -> tuple[ClientConnection, str]:
    ws = await connect(f"ws://127.0.0.1:{port}/ws{query}", compression=None)
    await ws.send(json.dumps({"type": "setup", "sessionId": "VX1", "callSid": "CA1"}))
    greeting = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return ws, greeting["token"].split()[-1]


def test_health_http_routes_and_the_handshake() -> None:
    async def scenario() -> dict[str, Any]:
        app, seen = build()
        asgi = AsgiApp(app)
        out: dict[str, Any] = {}
        async with running(asgi) as (_server, port):
            base = f"http://127.0.0.1:{port}"
            out["healthz"] = await asyncio.to_thread(http_get, base + "/healthz")
            out["readyz"] = await asyncio.to_thread(http_get, base + "/readyz")
            out["hello"] = await asyncio.to_thread(http_get, base + "/hello")
            out["missing"] = await asyncio.to_thread(http_get, base + "/nope")
            for path in ("/other", "/ws?deny=1"):
                try:
                    await connect(f"ws://127.0.0.1:{port}{path}")
                except InvalidStatus as exc:
                    out[path] = exc.response.status_code
            ws, cid = await open_call(port)
            out["cid"] = cid
            out["info"] = asgi.registry.get(cid)
            await ws.close()
            await asyncio.wait_for(_until(lambda: cid in seen["disconnected"]), 5)
        out["seen"] = seen
        return out

    out = asyncio.run(scenario())
    assert out["healthz"] == (200, "ok")
    assert out["readyz"] == (200, "ready")
    assert out["hello"] == (200, '{"hello":"world"}')
    assert out["missing"][0] == 404
    assert out["/other"] == 404
    assert out["/ws?deny=1"] == 403
    assert out["info"].source_ip == "127.0.0.1"
    assert out["info"].connected_at.endswith("Z")
    assert out["seen"]["connected"][-1] == out["cid"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [(b"\x00binary", CLOSE_BINARY), ("x" * (MAX_MESSAGE_BYTES + 1), CLOSE_TOO_BIG)],
)
def test_api_gateway_frame_rules_close_the_socket(frame: str | bytes, code: int) -> None:
    async def scenario() -> int | None:
        app, _ = build()
        async with running(AsgiApp(app)) as (_server, port):
            ws, _cid = await open_call(port)
            await ws.send(frame)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed:
                pass
            return ws.close_code

    assert asyncio.run(scenario()) == code


def test_posts_arrive_in_order_and_gone_sockets_answer_410() -> None:
    async def scenario() -> dict[str, Any]:
        app, _ = build()
        asgi = AsgiApp(app)
        out: dict[str, Any] = {}
        async with running(asgi) as (_server, port):
            ws, cid = await open_call(port)
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "count", "last": True}))
            tokens: list[str] = []
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame.get("last"):
                    break
                tokens.append(frame["token"])
            out["tokens"] = tokens
            # Posts from a worker thread, as an offloaded turn does.
            await asyncio.to_thread(asgi.registry.post, cid, '{"type":"text","token":"x"}')
            out["pushed"] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            try:
                asgi.registry.post(cid, b"y" * (MAX_POST_BYTES + 1))
            except PayloadTooLargeError as exc:
                out["too_big"] = exc.status
            await asyncio.to_thread(asgi.registry.delete, cid)
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed:
                out["closed"] = ws.close_code
            await asyncio.wait_for(_until(lambda: not asgi.registry.holds(cid)), 5)
            for target in (cid, "unknown"):
                try:
                    await asyncio.to_thread(asgi.registry.post, target, "late")
                except ConnectionGoneError as exc:
                    out.setdefault("gone", []).append(exc.status)
        return out

    out = asyncio.run(scenario())
    assert out["tokens"] == [f"{i} " for i in range(TOKENS)]
    assert out["pushed"] == {"type": "text", "token": "x"}
    assert out["too_big"] == 413
    assert out["closed"] == 1000
    assert out["gone"] == [410, 410]


def test_drain_refuses_new_calls_flips_readiness_and_waits_for_open_ones() -> None:
    async def scenario() -> dict[str, Any]:
        app, _ = build()
        asgi = AsgiApp(app, handoff=False)  # waits for calls; moving them: test_asgi_calls
        out: dict[str, Any] = {}
        async with running(asgi) as (_server, port):
            base = f"http://127.0.0.1:{port}"
            ws, _cid = await open_call(port)
            bounded = await asgi.drain(0.05)  # the call stays open: the wait is bounded
            out["bounded"] = bounded
            draining = asyncio.create_task(asgi.drain(10.0))
            out["readyz"] = await asyncio.to_thread(http_get, base + "/readyz")
            out["healthz"] = (await asyncio.to_thread(http_get, base + "/healthz"))[0]
            out["http"] = (await asyncio.to_thread(http_get, base + "/hello"))[0]
            try:
                await connect(f"ws://127.0.0.1:{port}/ws")
            except InvalidStatus as exc:
                out["new_call"] = exc.response.status_code
            # The open call still works while draining.
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "count", "last": True}))
            heard = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(TOKENS + 1)]
            out["still_talking"] = "".join(frame["token"] for frame in heard)
            out["waiting"] = not draining.done()
            await ws.close()
            out["left"] = await asyncio.wait_for(draining, 5)
        return out

    out = asyncio.run(scenario())
    assert out["bounded"] == 1
    assert out["readyz"] == (503, "draining")
    assert out["healthz"] == 200 and out["http"] == 200
    assert out["new_call"] == 503
    assert out["still_talking"] == "".join(f"{i} " for i in range(TOKENS))
    assert out["waiting"] is True
    assert out["left"] == 0


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_serve_also_serves_the_softphone_page() -> None:
    async def scenario() -> dict[str, Any]:
        app, _ = build()
        async with running(AsgiApp(app)) as (_server, port):
            base = f"http://127.0.0.1:{port}/_warmline"
            return {
                "page": await asyncio.to_thread(http_get, base + "/"),
                "config": await asyncio.to_thread(http_get, base + "/config.json"),
                "asset": await asyncio.to_thread(http_get, base + "/static/softphone.js"),
                "escape": await asyncio.to_thread(http_get, base + "/static/..%2Fchat.py"),
            }

    out = asyncio.run(scenario())
    assert out["page"][0] == 200 and "softphone" in out["page"][1]
    assert json.loads(out["config"][1])["wsPath"] == "/ws"
    assert out["asset"][0] == 200
    assert out["escape"][0] == 404


@pytest.mark.parametrize(
    ("trusted_proxies", "expected"),
    [(1, "10.0.0.7"), (2, "6.6.6.6"), (0, "127.0.0.1"), (3, "127.0.0.1")],
)
def test_the_callers_address_comes_from_the_trusted_end_of_x_forwarded_for(
    trusted_proxies: int, expected: str
) -> None:
    """A caller may send any X-Forwarded-For; only the entries our own proxies appended
    (counted from the right) can be believed, else the socket's peer is the caller."""

    async def scenario() -> str:
        app, _seen = build()
        asgi = AsgiApp(app, trusted_proxies=trusted_proxies)
        async with running(asgi) as (_server, port):
            ws = await connect(
                f"ws://127.0.0.1:{port}/ws",
                compression=None,
                additional_headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.7"},
            )
            await ws.send(json.dumps({"type": "setup", "sessionId": "VX1", "callSid": "CA1"}))
            greeting = json.loads(await asyncio.wait_for(ws.recv(), 5))
            info = asgi.registry.get(greeting["token"].split()[-1])
            await ws.close()
            return str(info.source_ip)

    assert asyncio.run(scenario()) == expected


def test_a_negative_proxy_count_is_refused() -> None:
    app, _seen = build()
    with pytest.raises(ValueError, match="trusted_proxies"):
        AsgiApp(app, trusted_proxies=-1)
