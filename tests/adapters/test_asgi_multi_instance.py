"""Two ``warmline serve`` instances behind one (imagined) load balancer, a real redis-server
between them: sessions shared through RedisStore, posts routed through RedisRouter.

The caller's socket is on instance B; the turn is dispatched on instance A (an HTTP request
that lands there, as an offloaded turn or a webhook would): A finds the call's session in
the shared store and posts, and the frame reaches the caller through B.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from serve_harness import running
from websockets.asyncio.client import connect

from warmline.adapters.asgi import AsgiApp
from warmline.adapters.asgi_redis import RedisRouter
from warmline.core.app import App, Context, Response
from warmline.core.events import ConnectionRef, HttpRequest
from warmline.core.relay import Text
from warmline.errors import ConnectionGoneError
from warmline.stores.redis import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
from redis_server import (  # type: ignore[import-not-found,unused-ignore]
    needs_redis,
    redis_server,
)

pytestmark = needs_redis()


def build(url: str, name: str) -> tuple[App, RedisStore]:
    store = RedisStore(url, prefix="calls:")
    app = App(store=store, name=name, allow_unsigned=True)  # unsigned test handshakes

    @app.route("setup")
    def greet(ctx: Context) -> str:
        return f"hello from {name}"

    @app.http("/turn", ("POST",))
    def turn(ctx: Context) -> Response:
        """Answer a call by its CallSid, wherever its socket is."""
        request = ctx.event
        assert isinstance(request, HttpRequest)
        form = request.form()
        session = ctx.store.by_call_sid(form["CallSid"])
        if session is None:
            return Response(404, body="no such call")
        ref = ConnectionRef(session.connection_id)
        try:
            frame = Text(token=form["text"], last=True).to_json()
            ctx.app.connections_for(ref).post(ref.connection_id, frame)
        except ConnectionGoneError as exc:
            return Response(410, body=str(exc))
        return Response(200, body=f"sent by {name}")

    return app, store


def post_turn(port: int, call_sid: str, text: str) -> tuple[int, str]:
    data = urllib.parse.urlencode({"CallSid": call_sid, "text": text}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/turn", data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return int(exc.code), body


def test_a_turn_dispatched_on_one_instance_reaches_a_caller_on_the_other() -> None:
    async def scenario(url: str) -> dict[str, Any]:
        app_a, store_a = build(url, "A")
        app_b, store_b = build(url, "B")
        router_a = RedisRouter(url, prefix="calls:", instance_id="a")
        router_b = RedisRouter(url, prefix="calls:", instance_id="b")
        out: dict[str, Any] = {}
        try:
            async with (
                running(AsgiApp(app_a, router=router_a)) as (_a, port_a),
                running(AsgiApp(app_b, router=router_b)) as (_b, port_b),
            ):
                async with connect(f"ws://127.0.0.1:{port_b}/ws", compression=None) as ws:
                    setup = {"type": "setup", "sessionId": "VX1", "callSid": "CA1"}
                    await ws.send(json.dumps(setup))
                    out["greeting"] = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    out["claim"] = router_a.client.get(router_a._key(_cid(store_a)))
                    out["post"] = await asyncio.to_thread(post_turn, port_a, "CA1", "from A")
                    out["heard"] = json.loads(await asyncio.wait_for(ws.recv(), 5))
                # The caller hung up on B: a post from A is now a 410.
                await _until(lambda: router_a.client.get("calls:ws:" + _cid(store_a)) is None)
                out["after"] = await asyncio.to_thread(post_turn, port_a, "CA1", "late")
                # An instance that died without cleaning up: its claim is stale.
                router_a.client.set("calls:ws:ghost", "dead-instance")
                try:
                    await asyncio.to_thread(router_a.forward, "ghost", "post", b"x")
                except ConnectionGoneError as exc:
                    out["ghost"] = exc.status
                out["ghost_claim"] = router_a.client.get("calls:ws:ghost")
        finally:
            store_a.close()
            store_b.close()
        return out

    with redis_server() as url:
        out = asyncio.run(scenario(url))
    assert out["greeting"]["token"] == "hello from B"
    assert out["claim"] == b"b"
    assert out["post"] == (200, "sent by A")
    assert out["heard"] == {"type": "text", "token": "from A", "last": True}
    assert out["after"][0] == 410
    assert out["ghost"] == 410 and out["ghost_claim"] is None


def _cid(store: RedisStore) -> str:
    record = store.by_call_sid("CA1")
    assert record is not None
    return record.connection_id


async def _until(condition: Any, timeout_s: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)
