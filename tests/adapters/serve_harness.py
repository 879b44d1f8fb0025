"""Targets for the container-mode tests: ``warmline serve`` (a real process or an in-process
uvicorn server) and ``warmline dev`` (the emulator), behind one shape so one call script runs
against both.

A :class:`Target` knows where Twilio's webhook is (``twiml_url``); the WebSocket URL comes
from the TwiML, as on a real call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmline.adapters.asgi import AsgiApp
from warmline.adapters.asgi_server import bind_socket, make_server

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent"
TOKEN = "e2e-auth-token"
HANDOFF_NUMBER = "+15550123"
#: Bound on a server becoming ready / stopping.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Target:
    """Where a scripted call goes, and the agent's SQLite session file."""

    kind: str
    twiml_url: str
    sessions: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return self.twiml_url.rsplit("/", 1)[0]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET, also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return int(exc.code), body


def wait_ready(base_url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``/readyz`` until it answers 200 (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"warmline serve exited with {process.returncode}")
        try:
            if http_get(base_url + "/readyz", timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)  # polling a condition with a bound
    raise RuntimeError(f"{base_url} was not ready in {START_TIMEOUT_S} s")


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The sample agent's environment, as ``warmline dev`` gives it (warmline.toml)."""
    env = dict(os.environ)
    for name in ("WARMLINE_PUBLIC_URL", "WARMLINE_DEV_WS_URL", "WARMLINE_STORE"):
        env.pop(name, None)
    env.update(
        {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
            "WARMLINE_HANDOFF_NUMBER": HANDOFF_NUMBER,
            **extra,
        }
    )
    return env


@contextmanager
def serve_process(
    env: dict[str, str], *args: str, app: str | None = "app:app", app_dir: Path = AGENT
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m warmline.cli.serve`` on a free port; yields (process, base URL).

    ``app=None`` gives neither APP nor ``--app-dir`` (for ``--config``).

    Its output goes to a file (a pipe nobody reads would fill up and block the server).
    Stopped with SIGTERM (a drain with nothing open), then killed if it does not exit.
    """
    command = [sys.executable, "-m", "warmline.cli.serve"]
    if app is not None:
        command += [app, "--app-dir", str(app_dir)]
    with tempfile.TemporaryDirectory(prefix="warmline-serve-") as workdir:
        log_path = Path(workdir) / "serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [*command, "--port", "0", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            base = _announced(proc, log_path)
            wait_ready(base, proc)
            yield proc, base
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _announced(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    """The base URL from the server's first line (bounded poll)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("warmline serve: http://"):
                return line.split()[2]
        if proc.poll() is not None:
            break
        time.sleep(0.02)  # polling a condition with a bound
    raise RuntimeError(f"warmline serve did not start:\n{log_path.read_text(errors='replace')}")


@asynccontextmanager
async def agent_target(kind: str, tmp_path: Path) -> AsyncIterator[Target]:
    """The sample agent behind ``warmline serve`` or ``warmline dev``."""
    sessions = tmp_path / "sessions.sqlite3"
    if kind == "serve":
        with serve_process(serve_env(tmp_path)) as (proc, base):
            yield Target("serve", f"{base}/twiml", sessions, proc)
        return
    import tomllib

    from warmline.config import parse_config
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    env = dict(data["functions"]["agent"].get("environment", {}))
    env.update({"TWILIO_AUTH_TOKEN": TOKEN, "WARMLINE_SQLITE_PATH": str(sessions)})
    data["functions"]["agent"]["environment"] = env
    data["schedules"] = {}
    config = parse_config(data, base_dir=AGENT)
    sink = LogSink(console=None, path=tmp_path / "dev.log")
    server = DevServer(config, port=0, log_sink=sink)
    await server.start()
    try:
        yield Target("dev", f"{server.lambda_url}/twiml", sessions)
    finally:
        await server.close()
        sink.close()


@asynccontextmanager
async def running(asgi: AsgiApp, **config: Any) -> AsyncIterator[tuple[Any, int]]:
    """An in-process uvicorn server for ``asgi`` on a free port; yields (server, port)."""
    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    server = make_server(asgi, **config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.01)
        yield server, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STOP_TIMEOUT_S)
        sock.close()
