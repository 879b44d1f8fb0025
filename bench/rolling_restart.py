"""Calls across a rolling restart: ``python bench/load.py --rolling-restart``.

Two ``warmline serve`` instances of the sample agent share a real redis-server (sessions in
RedisStore, sockets claimed through RedisRouter) behind a small TCP load balancer that
health-checks ``/readyz`` as an ALB target group does: new connections go only to ready
instances, open ones stay where they are. Calls come from this process and behave as
Twilio does (``tests/adapters/relay_caller.py``): they follow each ``end`` through the
``<Connect action>`` answer to whichever instance is ready.

While the calls talk, each instance in turn gets SIGTERM (a deploy), drains (its calls are
moved to the other one), exits, and is replaced by a new instance on a new port. Printed:
turns asked, answered, lost (no answer: a timeout or a call that ended), repeated (said
again after a dropped socket: there should be none on a graceful restart), moves, and the
restart durations. A run passes with 0 lost and 0 repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "examples" / "agent"
TOKEN = "rolling-restart-token"
QUESTION = "What are your support hours?"
#: How often the balancer checks ``/readyz`` (an ALB's fastest interval is 5 s; this run
#: is compressed in time, as are the drain settings below).
HEALTH_EVERY_S = 0.2
DRAIN = ("--drain-timeout", "8", "--handoff-grace", "4")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return int(r.status) == 200
    except (OSError, urllib.error.HTTPError):
        return False


@dataclass
class Balancer:
    """A TCP load balancer: each new connection goes to the next ready backend."""

    backends: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    port: int = 0
    _turn: int = 0

    async def serve(self) -> None:
        server = await asyncio.start_server(self._proxy, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            checker = asyncio.create_task(self._check())
            try:
                await server.serve_forever()
            finally:
                checker.cancel()

    def deregister(self, port: int) -> None:
        """Send no new connection to ``port``; the ones it has carry on."""
        self.backends.remove(port)
        if port in self.ready:
            self.ready.remove(port)

    async def _check(self) -> None:
        while True:
            backends = list(self.backends)
            states = await asyncio.gather(*(asyncio.to_thread(_ready, p) for p in backends))
            checked = dict(zip(backends, states, strict=True))
            # A backend deregistered while the check ran stays out.
            self.ready = [p for p in self.backends if checked.get(p)]
            await asyncio.sleep(HEALTH_EVERY_S)  # the health check's interval

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.ready:
            writer.close()
            return
        self._turn += 1
        port = self.ready[self._turn % len(self.ready)]
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass
class Tally:
    asked: int = 0
    answered: int = 0
    lost: int = 0
    repeated: int = 0
    moves: int = 0
    calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def _call(url: str, turns: int, pause_s: float, tally: Tally) -> None:
    from relay_caller import RelayCaller  # type: ignore[import-not-found]

    caller = RelayCaller(url, TOKEN, timeout_s=20)
    try:
        await caller.start()
        for _ in range(turns):
            tally.asked += 1
            try:
                answer = await caller.ask(QUESTION)
            except Exception as exc:  # a lost turn; the call is over
                tally.lost += 1
                name = type(exc).__name__
                tally.errors[name] = tally.errors.get(name, 0) + 1
                return
            if answer.strip():
                tally.answered += 1
            else:
                tally.lost += 1
            await asyncio.sleep(pause_s)  # the caller listens, then speaks again
        await caller.hang_up()
        tally.calls += 1
    finally:
        tally.repeated += caller.repeated
        tally.moves += len(caller.sessions)


def _start(port: int, env: dict[str, str], redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "warmline", "serve", "app:app", "--app-dir", str(AGENT),
        "--port", str(port), "--redis", redis_url, *DRAIN,
    ]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not _ready(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"instance on {port} did not become ready")
        time.sleep(0.05)


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    sys.path.insert(0, str(ROOT / "tests" / "stores"))
    from redis_server import redis_server  # type: ignore[import-not-found]

    with redis_server() as url:
        yield url


async def _run(calls: int, turns: int, pause_s: float, workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests" / "adapters"))
    balancer = Balancer()
    lb = asyncio.create_task(balancer.serve())
    while not balancer.port:
        await asyncio.sleep(0.01)
    restarts: list[float] = []
    with _redis() as redis_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARMLINE_")}
        env.update(
            TWILIO_AUTH_TOKEN=TOKEN,
            WARMLINE_STORE="redis",
            WARMLINE_REDIS_URL=redis_url,
            WARMLINE_PUBLIC_URL=f"ws://127.0.0.1:{balancer.port}/ws",
        )
        log = workdir / "serve.log"
        procs: dict[int, subprocess.Popen[bytes]] = {}
        for _ in range(2):
            port = _free_port()
            procs[port] = _start(port, env, redis_url, log)
            await asyncio.to_thread(_wait_ready, port, procs[port])
            balancer.backends.append(port)
        while len(balancer.ready) < 2:
            await asyncio.sleep(0.05)
        tally = Tally()
        url = f"http://127.0.0.1:{balancer.port}/twiml"
        load = asyncio.gather(*(_call(url, turns, pause_s, tally) for _ in range(calls)))
        try:
            await asyncio.sleep(2.0)  # the calls are under way before the first deploy
            for old in list(procs):
                began = time.monotonic()
                new = _free_port()
                procs[new] = _start(new, env, redis_url, log)
                await asyncio.to_thread(_wait_ready, new, procs[new])
                balancer.backends.append(new)
                while new not in balancer.ready:  # the balancer has seen it healthy
                    await asyncio.sleep(0.05)
                # As ECS stops a task behind a load balancer: the target is deregistered
                # (no new connection goes to it; open ones carry on), then SIGTERM.
                balancer.deregister(old)
                procs[old].send_signal(signal.SIGTERM)
                await asyncio.to_thread(procs[old].wait, 60)
                restarts.append(round(time.monotonic() - began, 1))
            await load
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
            lb.cancel()
    return {
        "calls": calls,
        "completed": tally.calls,
        "turns": tally.asked,
        "answered": tally.answered,
        "lost": tally.lost,
        "repeated": tally.repeated,
        "moves": tally.moves,
        "restartS": restarts,
        "errors": tally.errors,
    }


def rolling_restart(calls: int, turns: int, pause_s: float) -> dict[str, Any]:
    """Run the scenario; the summary (see the module docstring)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="warmline-rolling-") as tmp:
        return asyncio.run(_run(calls, turns, pause_s, Path(tmp)))
