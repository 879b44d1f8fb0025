"""A running ``warmline dev`` for the daily-loop tests: its banner, its log, a client."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from web_helpers import reap

#: How long a started ``warmline dev`` may take to print its banner (a loaded machine).
START_S = 60.0
#: The last banner line.
BANNER_END = "Watch the backend:"

APP_V1 = """
import os, time

def handler(event, context):
    body = event.get("body") or ""
    if body == "slow":
        gate = os.path.join(os.path.dirname(__file__), "gate")
        while not os.path.exists(gate):
            time.sleep(0.01)
    return {"statusCode": 200, "body": "v1:" + body}
"""


def echo_config(code: Path, *, schedule: bool = False, extra: str = "") -> str:
    """A ``warmline.toml`` with one function ``app`` (``app.handler`` in ``code``)."""
    text = f"""
[functions.app]
handler = "app.handler"
code = "{code}"
timeout = 30
{extra}

[websocket]
stage = "local"

[websocket.routes]
"$default" = {{ function = "app", route_response = true }}
"""
    if schedule:
        text += """
[schedules.warm]
expression = "rate(1 day)"
targets = ["app"]
enabled = false
"""
    return text


class DevProcess:
    """``warmline dev --port 0 ARGS`` in ``cwd``; stdout to the banner, stderr collected.

    ``port=None`` passes no ``--port`` (``$WARMLINE_PORT`` or the default applies).
    Use as a context manager: the process is stopped (SIGINT, then killed) on exit.
    """

    def __init__(
        self,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        argv: Sequence[str] | None = None,
        port: str | None = "0",
    ) -> None:
        command = list(argv or [sys.executable, "-m", "warmline"])
        ports = ["--port", port] if port is not None else []
        self.proc = subprocess.Popen(
            [*command, "dev", *ports, "--no-log-file", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.err: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_err, daemon=True)
        self._reader.start()
        self.banner = self._read_banner()
        found = re.search(r"WebSocket:\s+(ws://\S+)", self.banner)
        assert found, self.banner + "".join(self.err)
        self.ws_url = found.group(1)
        self.base_url = self.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.err.append(line)

    def _read_banner(self) -> str:
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith(BANNER_END):
                return "".join(lines)
        self.close()
        raise AssertionError("no banner:\n" + "".join(lines) + "".join(self.err))

    def log_text(self) -> str:
        with self._lock:
            return "".join(self.err)

    def wait_log(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """Poll the stderr log until ``predicate`` holds; the log then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if predicate(text):
                return text
            time.sleep(0.02)
        raise AssertionError("log never matched:\n" + self.log_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        reap(self.proc)
        self._reader.join(5)

    def __enter__(self) -> DevProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def ask(ws: Any, text: str, timeout: float = 30.0) -> str:
    """Send ``text`` on a websockets sync connection; the route response it gets."""
    ws.send(text)
    return str(ws.recv(timeout=timeout))


def post(url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST ``body`` to ``url``; ``(status, parsed JSON body or text)``."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data.decode(errors="replace")


def dev_exits(cwd: Path, *flags: str, env: dict[str, str] | None = None) -> Any:
    """``warmline dev --port 0 FLAGS`` that is expected to stop at once: its result."""
    return subprocess.run(
        [sys.executable, "-m", "warmline", "dev", "--port", "0", *flags],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
