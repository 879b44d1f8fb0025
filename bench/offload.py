"""First-token latency and @connections posts per answer: inline vs offload vs coalesced.

One process, real parts: an App with the relay protocol, a session store (memory or a
SQLite file), and either LocalConnections or a local HTTP ``@connections`` server reached
through :class:`~warmline.connections.apigw.ApiGatewayConnections` (real SigV4, real
``http.client`` keep-alive, loopback). The answer is a simulated model: ``--first-ms`` to
the first token, then ``--tokens`` tokens ``--gap-ms`` apart.

Modes, each over ``--turns`` turns (medians printed):

* ``inline``: the ``prompt`` route streams every token itself (one post per token).
* ``offload``: the route dispatches to a :class:`LocalDispatcher` worker thread, which
  claims the turn, fences before every post and records progress after it; one post per
  token.
* ``offload+coalesce``: the same with coalescing (``--max-chars``, ``--max-delay-ms``).

First-token latency is measured from the moment the prompt reaches ``App.handle`` to the
moment the first answer frame is posted. Targets: offload adds <= 20 ms over
inline; coalescing cuts posts >= 5x.

Usage: ``python bench/offload.py [--turns 10] [--tokens 200] [--transport http|local]
[--store memory|sqlite]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from warmline.connections.local import LocalConnections
from warmline.core.app import App, Invocation
from warmline.core.events import ConnectionRef, Message
from warmline.log import StepLogger
from warmline.offload import LocalDispatcher, StreamPolicy, TurnContext, TurnWorker, offload

CID = "R1kmxc2VNjMCFIA="
REF = ConnectionRef(CID, "127.0.0.1", "bench")
TARGET_ADDED_MS = 20.0
TARGET_POST_RATIO = 5.0


class Timeline:
    """Times of the posts made to the caller, per turn."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[tuple[float, dict[str, Any]]] = []
        self.done = threading.Event()

    def record(self, data: bytes | str) -> None:
        frame = json.loads(data)
        with self.lock:
            self.posts.append((time.perf_counter(), frame))
        if frame.get("last"):
            self.done.set()

    def reset(self) -> None:
        with self.lock:
            self.posts = []
        self.done.clear()


class TimedLocal(LocalConnections):
    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self.timeline = timeline

    def post(self, connection_id: str, data: bytes | str) -> None:
        super().post(connection_id, data)
        self.timeline.record(data)


def _http_connections(timeline: Timeline) -> tuple[Callable[[], None], Callable[..., Any]]:
    """A local @connections server; returns (stop, factory of ApiGatewayConnections)."""
    from warmline.aws.credentials import Credentials
    from warmline.connections.apigw import ApiGatewayConnections

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            timeline.record(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{httpd.server_address[1]}/bench"
    creds = Credentials("AKIDBENCH", "secret", "token")
    clients: dict[int, ApiGatewayConnections] = {}

    def factory(ref: ConnectionRef) -> ApiGatewayConnections:
        # One keep-alive client per thread, as one per Lambda environment.
        key = threading.get_ident()
        if key not in clients:
            clients[key] = ApiGatewayConnections(endpoint, credentials=creds, region="us-east-1")
        return clients[key]

    def stop() -> None:
        for client in clients.values():
            client.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)

    return stop, factory


def _answer(first_ms: float, gap_ms: float, count: int) -> Callable[[TurnContext], Any]:
    async def answer(turn: TurnContext) -> AsyncIterator[str]:
        await asyncio.sleep(first_ms / 1000)
        for i in range(count):
            if i:
                await asyncio.sleep(gap_ms / 1000)
            yield f"word{i} "

    return answer


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, float]:
    timeline = Timeline()
    stop: Callable[[], None] | None = None
    if args.transport == "http":
        stop, connections = _http_connections(timeline)
    else:
        local = TimedLocal(timeline)
        local.open(CID)

        def connections(ref: ConnectionRef) -> Any:
            return local

    tmp = tempfile.TemporaryDirectory()
    if args.store == "sqlite":
        from warmline.stores.sqlite import SQLiteStore

        store: Any = SQLiteStore(os.path.join(tmp.name, "bench.sqlite3"))
    else:
        from warmline.stores.memory import MemoryStore

        store = MemoryStore()
    log = StepLogger(io.StringIO())
    app = App(store=store, connections=connections)
    coalesce = mode == "offload+coalesce"
    policy = StreamPolicy(
        coalesce=coalesce,
        max_chars=args.max_chars,
        max_delay_s=args.max_delay_ms / 1000,
        filler_after_s=None,
    )
    worker = TurnWorker(_answer(args.first_ms, args.gap_ms, args.tokens), policy=policy)
    bus = LocalDispatcher(app, threaded=True, log=log)
    offload(app, bus, worker=worker, mode="inline" if mode == "inline" else "offload")
    setup = {"type": "setup", "sessionId": f"VX-{mode}", "callSid": "CA1"}
    app.handle(Message(REF, json.dumps(setup)), Invocation(log=log))
    first: list[float] = []
    route: list[float] = []
    posts: list[float] = []
    for turn in range(args.turns):
        timeline.reset()
        body = json.dumps({"type": "prompt", "voicePrompt": f"q{turn}", "last": True})
        start = time.perf_counter()
        app.handle(Message(REF, body), Invocation(log=log, clock=time.perf_counter))
        route.append((time.perf_counter() - start) * 1000)
        if not timeline.done.wait(60):
            raise SystemExit(f"{mode}: turn {turn} never finished")
        with timeline.lock:
            frames = list(timeline.posts)
        first.append((frames[0][0] - start) * 1000)
        posts.append(len(frames))
    bus.close()
    app.close()
    if stop is not None:
        stop()
    if hasattr(store, "close"):
        store.close()
    tmp.cleanup()
    return {
        "first_token_ms": statistics.median(first),
        "route_ms": statistics.median(route),
        "posts": statistics.median(posts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--first-ms", type=float, default=30.0)
    parser.add_argument("--gap-ms", type=float, default=2.0)
    parser.add_argument("--max-chars", type=int, default=160)
    parser.add_argument("--max-delay-ms", type=float, default=250.0)
    parser.add_argument("--transport", choices=("http", "local"), default="http")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {mode: run_mode(mode, args) for mode in ("inline", "offload", "offload+coalesce")}
    base = results["inline"]
    print(
        f"{args.turns} turns, {args.tokens} tokens, first token after {args.first_ms:g} ms, "
        f"{args.gap_ms:g} ms apart; transport={args.transport}, store={args.store}"
    )
    print(f"{'mode':<18} {'first token ms':>15} {'route returns ms':>17} {'posts/answer':>13}")
    for mode, r in results.items():
        print(f"{mode:<18} {r['first_token_ms']:>15.2f} {r['route_ms']:>17.2f} {r['posts']:>13.0f}")
    added = results["offload"]["first_token_ms"] - base["first_token_ms"]
    added_c = results["offload+coalesce"]["first_token_ms"] - base["first_token_ms"]
    ratio = results["offload"]["posts"] / results["offload+coalesce"]["posts"]
    met = max(added, added_c) <= TARGET_ADDED_MS
    print(
        f"offload adds {added:+.2f} ms to the first token (coalesced {added_c:+.2f} ms); "
        f"target <= {TARGET_ADDED_MS:g} ms: {'met' if met else 'MISSED'}"
    )
    print(
        f"coalescing: {ratio:.1f}x fewer posts ({results['offload']['posts']:.0f} -> "
        f"{results['offload+coalesce']['posts']:.0f}); target >= {TARGET_POST_RATIO:g}x: "
        f"{'met' if ratio >= TARGET_POST_RATIO else 'MISSED'}"
    )
    speedup = base["route_ms"] / results["offload"]["route_ms"]
    print(
        f"route returns in {results['offload']['route_ms']:.2f} ms offloaded vs "
        f"{base['route_ms']:.0f} ms inline ({speedup:.0f}x)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
