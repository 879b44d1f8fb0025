"""A DevServer on its own event-loop thread, and a slow fake LLM, for the browser tests.

Playwright's sync API runs its own loop on the test's thread, so the emulator runs on a
second thread; start and close are marshalled onto that loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import socket
import struct
import subprocess
import threading
from collections.abc import Coroutine, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

#: Linux's ioctl that reads an interface's IPv4 address.
SIOCGIFADDR = 0x8915
AGENT = Path(__file__).resolve().parents[2] / "examples" / "agent"
T = TypeVar("T")


def agent_config(tmp_path: Path, env: Mapping[str, str] | None = None) -> Any:
    """The sample agent's warmline.toml, with its own SQLite file and extra environment."""
    environment = {
        "WARMLINE_HANDOFF_NUMBER": "+15550123",
        "WARMLINE_ALLOW_UNSIGNED": "1",  # as the sample's warmline.toml: the softphone is unsigned
        "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
        **(env or {}),
    }
    return parse_config(
        {
            "region": "us-east-1",
            "functions": {
                "agent": {
                    "handler": "app.handler",
                    "code": ".",
                    "memory": 512,
                    "timeout": 30,
                    "environment": environment,
                }
            },
            "websocket": {
                "stage": "dev",
                "route_selection_expression": "$request.body.type",
                "routes": {"$connect": "agent", "$disconnect": "agent", "$default": "agent"},
            },
            "http": {"function": "agent"},
            # Fired by the tests only (enabled, it would warm the agent at start-up).
            "schedules": {
                "keep-warm": {
                    "expression": "rate(5 minutes)",
                    "targets": ["agent"],
                    "enabled": False,
                }
            },
        },
        base_dir=AGENT,
    )


class ThreadedDevServer:
    """``DevServer`` running on a background thread's event loop."""

    def __init__(self, config: Any, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        options.setdefault("port", 0)
        # TLS as under `warmline dev`: the agent posts to https://{domainName}/{stage} and
        # offloads through lambda.{region}.amazonaws.com, which environments reach through
        # the emulator's AWS proxy, as on AWS.
        self.server = DevServer(config, log_sink=LogSink(console=None), **options)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> ThreadedDevServer:
        self.run(self.server.start())
        return self

    @property
    def url(self) -> str:
        return self.server.web_url

    def close(self) -> None:
        try:
            self.run(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class GatedLLM:
    """An OpenAI-compatible chat-completions server that streams a long answer in two
    parts: ``first`` at once, the rest only after :meth:`release` (a slow model whose
    pace the test controls, so a barge-in lands mid-answer without timing games)."""

    def __init__(self, first: list[str], rest: list[str]) -> None:
        self.first, self.rest = first, rest
        self.gate = threading.Event()
        self.finished = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for token in outer.first:
                    self._event(token)
                outer.gate.wait(20)
                for token in outer.rest:
                    self._event(token)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                outer.finished.set()
                self.close_connection = True

            def _event(self, token: str) -> None:
                chunk = {"choices": [{"index": 0, "delta": {"content": token}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)


def own_non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (None: there is none).

    A client bound to it reaches 127.0.0.1 as a peer off loopback, and a server bound to
    it is reached through the loopback interface: no packet leaves the machine.
    """
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(
                    probe.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode())
                )
            except OSError:
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, wait for it and close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
