"""``warmline dev`` against serverless-offline and a bare ``websockets`` floor, side by side.

Absolute numbers drift by around 15 % from run to run on a shared machine, so this script
measures every server in ONE run, one at a time on loopback, and prints ratios
(serverless-offline 13.10.1 on serverless 3.40.0, as pinned in ``bench/echo/package.json``):

* **s-offline (boto3)**: serverless-offline with the boto3 baseline handler
  (``bench/echo/handler_py.py``), installed with ``npm install`` from
  ``bench/echo/package.json`` into ``~/.cache/warmline-bench/`` (reused by later runs).
* **warmline (boto3)**: ``warmline dev`` running the same handler module, boto3 pointed at
  the emulator's ``@connections`` endpoint. Both emulators pay boto3's ~280 ms import per
  environment; this row shows fidelity and the emulator's own overhead.
* **warmline (lean)**: ``warmline dev`` with ``bench/echo/lean_handler.py``, which posts
  over a keep-alive ``http.client`` connection: what a warmline user gets.
* **floor**: a plain ``websockets`` echo server (``bench/echo/floor_server.py``).

Workload, identical for every server: the first connect once the server answers (it pays
the first ``$connect`` cold start); sequential warm connects; one connection echoing
messages one at a time; then 50 connections x 200 awaited echoes at once (msgs/s,
latency, and CPU per echo: the server's whole process tree, its front process alone, and
this client). Cold starts are counted where the server shows them: ``ANCHOR_INIT`` lines
for serverless-offline, ``INIT_START`` lines for warmline. Frames that are not the awaited echo
(API Gateway error frames, late echoes) and echoes that never come are counted as errors.

* **s-offline (node)** / **warmline (node)**: the Node row, the same Node.js handler
  (``bench/echo/handler_node.js``, the AWS SDK v3 ``@connections`` client) on
  serverless-offline (the SDK from ``bench/echo/package.json``) and on ``warmline dev``
  (``nodejs20.x``, the SDK the runtime provides).

Targets: warmline (lean) throughput >= 5x serverless-offline's, p99 <= 1/5 of it; the Node
row: warmline (node) throughput >= 3x s-offline (node)'s, p99 <= 0.3x of it.

Usage: ``python bench/emulator_vs_offline.py [--quick] [--skip-offline] [--skip-warmline]
[--only NAME]... [--rounds N] [--json PATH] [--logs DIR]``. Every wait has a timeout, only
127.0.0.1 is used, and every subprocess (its process group and its descendants) is killed at
the end, also on an error, SIGTERM or Ctrl-C. Exit status 1 when a server failed or lost echoes.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import functools
import hashlib
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ECHO_DIR = BENCH_DIR / "echo"
HOST = "127.0.0.1"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "warmline-bench"
NPM_INSTALL_TIMEOUT_S = 600.0
#: Grace between SIGTERM and SIGKILL when stopping a server, and for its children to exit.
STOP_GRACE_S = 5.0
TARGET_THROUGHPUT_X = 5.0
TARGET_P99_FRACTION = 0.2
#: The Node row: one Node.js handler (bench/echo/handler_node.js) on both emulators.
NODE_RUNTIME = "nodejs20.x"
NODE_HANDLER = "handler_node.handler"
NODE_OFFLINE = "s-offline (node)"
NODE_WARMLINE = "warmline (node)"
NODE_TARGET_THROUGHPUT_X = 3.0
NODE_TARGET_P99_FRACTION = 0.3


@dataclass(frozen=True, slots=True)
class Workload:
    """How much work each server gets; ``QUICK`` is the CI smoke size."""

    warm_connects: int
    seq_warmup: int
    seq_messages: int
    connections: int
    messages_per_connection: int
    ready_timeout_s: float = 90.0
    #: Per message: above API Gateway's 29 s integration timeout, so a reply always comes.
    recv_timeout_s: float = 35.0
    phase_timeout_s: float = 300.0
    #: Quiet time between phases so that one phase's ``$disconnect`` invocations settle.
    settle_s: float = 0.5


FULL = Workload(
    warm_connects=50, seq_warmup=10, seq_messages=500, connections=50, messages_per_connection=200
)
QUICK = Workload(
    warm_connects=5,
    seq_warmup=3,
    seq_messages=30,
    connections=5,
    messages_per_connection=10,
    ready_timeout_s=60.0,
    recv_timeout_s=10.0,
    phase_timeout_s=60.0,
    settle_s=0.1,
)


@dataclass(slots=True)
class Result:
    """One server's numbers (milliseconds unless named otherwise); None = not measured."""

    server: str
    error: str | None = None
    skipped: bool = False
    first_connect_ms: float | None = None
    warm_connect_p50_ms: float | None = None
    warm_connect_p99_ms: float | None = None
    seq_p50_ms: float | None = None
    seq_p99_ms: float | None = None
    load_msgs_per_s: float | None = None
    load_p50_ms: float | None = None
    load_p99_ms: float | None = None
    #: Echoes received in the load run, and how many of the expected ones never came.
    load_messages: int = 0
    load_missing: int = 0
    #: Every phase: frames that were not the awaited echo, plus echoes that timed out.
    errors: int = 0
    timeouts: int = 0
    first_unexpected: str | None = None
    #: CPU per echo in the load run: the server's whole process tree (environments
    #: included), its front process alone, and this benchmark's client.
    load_server_cpu_ms: float | None = None
    load_front_cpu_ms: float | None = None
    load_client_cpu_ms: float | None = None
    cold_starts_load: int | None = None
    cold_starts_total: int | None = None
    notes: list[str] = field(default_factory=list)


class Skip(Exception):
    """A server cannot run here (no npm, install failed, emulator not built yet)."""


# --------------------------------------------------------------------------- processes

_PROCS: list[subprocess.Popen[bytes]] = []


@dataclass(slots=True)
class Server:
    """A started server: its process, where it logs and how to count its cold starts."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    output: Path
    url: str
    count_cold: Callable[[], int | None]


def _spawn(
    cmd: Sequence[str], *, env: dict[str, str], cwd: Path, output: Path
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a new session (own process group), stdout+stderr to ``output``.

    Every server runs without ``PYTHONDONTWRITEBYTECODE`` (CI and some shells set it): a
    deployed function has its bytecode, so a cold start should not mean compiling every
    module from source, for serverless-offline's Python handler as for warmline's.
    """
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _PROCS.append(proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server: SIGTERM its process group, SIGKILL after a grace, then its descendants.

    The descendants are listed first because ``warmline dev`` starts its runtime process and
    environments in sessions of their own (so that it can kill them one by one), so they are
    outside our process group; any still alive after the server is gone are killed by pid.
    """
    tree = _descendants(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # pgid == pid: started with start_new_session
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=STOP_GRACE_S)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # group members that outlived the leader
    deadline = time.monotonic() + STOP_GRACE_S
    while (alive := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)  # they exit by themselves once the server's sockets close
    for pid, _ in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if proc in _PROCS:
        _PROCS.remove(proc)


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """``(parent pid, start time)`` of a live Linux process from ``/proc``, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # exited, only waiting to be reaped
        return None
    return int(fields[1]), fields[19]


def _tree_cpu_s(root: int) -> tuple[float, float] | None:
    """CPU seconds used so far by ``root`` alone, and by it and all its descendants.

    The tree's figure sums user+system time of every live process plus the time of the
    children each one has already reaped (a killed environment is counted by the process
    that waited for it). None without ``/proc``.
    """
    if not Path(f"/proc/{root}/stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    own = total = 0
    for pid in [root, *(pid for pid, _ in _descendants(root))]:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        if pid == root:
            own = int(fields[11]) + int(fields[12])
    return own / ticks, total / ticks


def _descendants(root: int) -> list[tuple[int, str]]:
    """Every descendant of ``root`` as ``(pid, start time)``; [] without ``/proc``."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        info = _proc_stat(int(entry.name))
        if info is not None:
            children.setdefault(info[0], []).append((int(entry.name), info[1]))
    found: list[tuple[int, str]] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _alive(process: tuple[int, str]) -> bool:
    """Still running and still the same process (its pid not reused)."""
    info = _proc_stat(process[0])
    return info is not None and info[1] == process[1]


def _stop_all() -> None:
    for proc in list(_PROCS):
        _stop(proc)


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _count_in(path: Path, needle: str) -> int | None:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return None


async def _wait_serving(server: Server, timeout_s: float) -> None:
    """Poll until the server answers an HTTP request on its port; fail fast if it exits.

    An answer, not an accepted TCP connection: ``warmline dev`` listens before its runtime
    has started, and the first connect must not include the server's own start-up. Every
    server answers a plain GET (404, 426, ...) without invoking any handler.
    """
    deadline = time.monotonic() + timeout_s
    request = f"GET /warmline-bench-ready HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n\r\n"
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode} before serving: "
                + _tail(server.output, 1).strip()
            )
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, server.port), 1)
            try:
                writer.write(request.encode())
                status = await asyncio.wait_for(reader.readline(), 1)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if status.startswith(b"HTTP/"):
                return
        except (OSError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{server.name} not serving on {HOST}:{server.port} after {timeout_s:.0f} s"
            )
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- client


def _pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def _connect(url: str, timeout_s: float) -> Any:
    from websockets.asyncio.client import connect

    return await asyncio.wait_for(
        connect(
            url,
            compression=None,
            ping_interval=None,
            open_timeout=timeout_s,
            close_timeout=2,
            max_size=None,
        ),
        timeout_s,
    )


async def _close_all(conns: Sequence[Any], timeout_s: float) -> None:
    if conns:
        await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in conns], timeout=timeout_s)


async def _echo_once(ws: Any, message: str, timeout_s: float, result: Result) -> float | None:
    """Send ``message`` and wait for its echo; the latency in ms, or None on timeout.

    Frames that are not the echo (an API Gateway error frame such as ``Endpoint request
    timed out``, or a late echo of an earlier message) are counted as errors and skipped,
    so one late reply does not make every later reply look wrong.
    """
    start = time.perf_counter()
    await ws.send(message)
    # asyncio.timeout, not wait_for: wait_for wraps each recv in a Task of its own (~10 %
    # of this client's CPU per echo, measured against warmline dev); the client shares
    # the machine's cores with every server it measures.
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                reply = await ws.recv()
                if reply == message:
                    return (time.perf_counter() - start) * 1000
                result.errors += 1
                if result.first_unexpected is None:
                    result.first_unexpected = str(reply)[:200]
    except TimeoutError:
        result.errors += 1
        result.timeouts += 1
        return None


async def _run_workload(server: Server, w: Workload, result: Result) -> None:
    """Drive every phase against ``server``, filling ``result``."""
    url = server.url
    await _wait_serving(server, w.ready_timeout_s)

    start = time.perf_counter()
    ws = await _connect(url, w.recv_timeout_s)
    result.first_connect_ms = (time.perf_counter() - start) * 1000
    await _close_all([ws], w.recv_timeout_s)
    await asyncio.sleep(w.settle_s)

    connects: list[float] = []
    for _ in range(w.warm_connects):
        start = time.perf_counter()
        ws = await _connect(url, w.recv_timeout_s)
        connects.append((time.perf_counter() - start) * 1000)
        await _close_all([ws], w.recv_timeout_s)
    result.warm_connect_p50_ms = _pct(connects, 50)
    result.warm_connect_p99_ms = _pct(connects, 99)
    await asyncio.sleep(w.settle_s)

    ws = await _connect(url, w.recv_timeout_s)
    try:
        seq: list[float] = []
        for i in range(w.seq_warmup + w.seq_messages):
            ms = await _echo_once(ws, f"seq-{i}", w.recv_timeout_s, result)
            if i >= w.seq_warmup and ms is not None:
                seq.append(ms)
    finally:
        await _close_all([ws], w.recv_timeout_s)
    result.seq_p50_ms = _pct(seq, 50)
    result.seq_p99_ms = _pct(seq, 99)
    await asyncio.sleep(w.settle_s)

    cold_before = server.count_cold()
    cpu_before, client_before = _tree_cpu_s(server.proc.pid), time.process_time()
    await _load(url, w, result)
    cpu_after, client_after = _tree_cpu_s(server.proc.pid), time.process_time()
    if result.load_messages:
        per_echo = 1000 / result.load_messages
        if cpu_before is not None and cpu_after is not None:
            result.load_front_cpu_ms = (cpu_after[0] - cpu_before[0]) * per_echo
            result.load_server_cpu_ms = (cpu_after[1] - cpu_before[1]) * per_echo
        result.load_client_cpu_ms = (client_after - client_before) * per_echo
    await asyncio.sleep(w.settle_s)
    cold_after = server.count_cold()
    if cold_before is not None and cold_after is not None:
        result.cold_starts_load = cold_after - cold_before
    result.cold_starts_total = cold_after


async def _load(url: str, w: Workload, result: Result) -> None:
    """``connections`` clients at once, each sending ``messages_per_connection`` awaited echoes."""
    opened = await asyncio.gather(
        *(_connect(url, w.recv_timeout_s) for _ in range(w.connections)), return_exceptions=True
    )
    conns = [ws for ws in opened if not isinstance(ws, BaseException)]
    failures = [exc for exc in opened if isinstance(exc, BaseException)]
    if failures:
        result.notes.append(
            f"{len(failures)} of {w.connections} load connections failed to open, "
            f"first: {failures[0]!r}"
        )
    latencies: list[float] = []

    async def client(index: int, ws: Any) -> None:
        for i in range(w.messages_per_connection):
            ms = await _echo_once(ws, f"m-{index}-{i}", w.recv_timeout_s, result)
            if ms is not None:
                latencies.append(ms)

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(client(i, ws)) for i, ws in enumerate(conns)]
    try:
        done, pending = await asyncio.wait(tasks, timeout=w.phase_timeout_s)
        elapsed = time.perf_counter() - start
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
            result.notes.append(f"{len(pending)} load clients still running at the phase timeout")
        crashed = [t.exception() for t in done if not t.cancelled() and t.exception()]
        if crashed:
            result.notes.append(f"{len(crashed)} load clients failed, first: {crashed[0]!r}")
    finally:
        await _close_all(conns, 10)
    expected = w.connections * w.messages_per_connection
    result.load_messages = len(latencies)
    result.load_missing = expected - len(latencies)
    result.load_msgs_per_s = len(latencies) / elapsed if elapsed > 0 else None
    result.load_p50_ms = _pct(latencies, 50)
    result.load_p99_ms = _pct(latencies, 99)


# --------------------------------------------------------------------------- servers


def _start_floor(workdir: Path) -> Server:
    port = _free_port()
    output = workdir / "floor.log"
    cmd = [sys.executable, str(ECHO_DIR / "floor_server.py"), "--host", HOST, "--port", str(port)]
    proc = _spawn(cmd, env=dict(os.environ), cwd=ECHO_DIR, output=output)
    return Server("floor", proc, port, output, f"ws://{HOST}:{port}", lambda: None)


def _install_offline() -> Path:
    """serverless + serverless-offline from bench/echo/package.json, cached per its hash."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Skip("node/npm not found on PATH")
    package = (ECHO_DIR / "package.json").read_bytes()
    target = CACHE_DIR / f"offline-{hashlib.sha256(package).hexdigest()[:12]}"
    entry = target / "node_modules" / "serverless" / "bin" / "serverless.js"
    if (target / ".installed").exists() and entry.exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="installing-", dir=CACHE_DIR))
    try:
        (staging / "package.json").write_bytes(package)
        print(f"  npm install into {staging} (once; cached as {target}) ...", flush=True)
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund"],
                cwd=staging,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=NPM_INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise Skip(f"npm install took over {NPM_INSTALL_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-8:]
            raise Skip(f"npm install failed (exit {done.returncode}): " + " | ".join(tail))
        (staging / ".installed").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _start_offline(
    workdir: Path, runtime: str = "python3.11", handler: str = "handler_py.handler",
    name: str = "s-offline (boto3)",
) -> Server:  # fmt: skip
    python = runtime.startswith("python")
    if python and importlib.util.find_spec("boto3") is None:
        raise Skip(f"boto3 is not importable from {sys.executable} (the handler needs it)")
    if python and not (Path(sys.prefix) / "bin" / "python3").exists():
        raise Skip(f"{sys.prefix}/bin/python3 missing: serverless-offline runs `python3`")
    service = _install_offline()
    for file in ("serverless.yml", "handler_py.py", "handler_node.js"):
        shutil.copyfile(ECHO_DIR / file, service / file)
    http_port, ws_port, lambda_port = _free_port(), _free_port(), _free_port()
    env = dict(os.environ)
    env.update(
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        ANCHOR_RUNTIME=runtime,
        ANCHOR_HANDLER=handler,
        WS_MGMT_ENDPOINT=f"http://{HOST}:{ws_port}",
        AWS_ACCESS_KEY_ID="offline",
        AWS_SECRET_ACCESS_KEY="offline",
        VIRTUAL_ENV=sys.prefix,  # serverless-offline puts $VIRTUAL_ENV/bin first on PATH
    )
    cmd = [
        "node",
        str(service / "node_modules" / "serverless" / "bin" / "serverless.js"),
        "offline",
        "start",
        "--host",
        HOST,
        "--httpPort",
        str(http_port),
        "--websocketPort",
        str(ws_port),
        "--lambdaPort",
        str(lambda_port),
        "--noSponsor",
    ]
    output = workdir / f"offline-{handler.split('.')[0]}.log"
    proc = _spawn(cmd, env=env, cwd=service, output=output)
    return Server(
        name,
        proc,
        ws_port,
        output,
        f"ws://{HOST}:{ws_port}",
        lambda: _count_in(output, "ANCHOR_INIT"),
    )


def _render_warmline_config(
    workdir: Path, port: int, handler: str, runtime: str | None = None
) -> tuple[Path, str]:
    """``bench/echo/warmline.toml`` with this run's port, an absolute ``code`` and ``handler``.

    The functions' environment is not inherited from the emulator's (as on AWS), so the
    boto3 handler's endpoint has to be written into the config, with the port chosen now.

    Returns:
        The rendered file and the API's stage (the WebSocket URL's path).
    """
    text = (ECHO_DIR / "warmline.toml").read_text()
    stage = str(tomllib.loads(text).get("websocket", {}).get("stage", "dev"))
    swaps = {
        '"http://127.0.0.1:3001/': f'"http://{HOST}:{port}/',
        'handler = "handler_py.handler"': f"handler = {json.dumps(handler)}",
        'code = "."': f"code = {json.dumps(str(ECHO_DIR))}"
        + (f"\nruntime = {json.dumps(runtime)}" if runtime else ""),
    }
    for old, new in swaps.items():
        if text.count(old) != 1:
            raise RuntimeError(f"bench/echo/warmline.toml changed: expected one {old!r}")
        text = text.replace(old, new)
    path = workdir / f"warmline-{handler.split('.')[0]}.toml"
    path.write_text(text)
    return path, stage


def _start_warmline(workdir: Path, handler: str, name: str, runtime: str | None = None) -> Server:
    missing = [
        module
        for module in ("warmline.cli.dev", "warmline.dev.server", "warmline.config")
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise Skip(f"warmline dev is not built yet (missing {', '.join(missing)})")
    if handler.startswith("handler_py.") and importlib.util.find_spec("boto3") is None:
        raise Skip(f"boto3 is not importable from {sys.executable} (the handler needs it)")
    port = _free_port()
    if runtime is not None and runtime.startswith("nodejs") and shutil.which("node") is None:
        raise Skip("node not found on PATH")
    config, stage = _render_warmline_config(workdir, port, handler, runtime)
    output = workdir / f"warmline-{handler.split('.')[0]}.log"
    # `python -m warmline` is the `warmline` console script without needing it installed.
    cmd = [sys.executable, "-m", "warmline", "dev", "--config", str(config)]
    cmd += ["--host", HOST, "--port", str(port)]
    # Its JSON-lines log, as a user's `warmline dev` writes one, in this run's folder.
    cmd += ["--log-file", str(workdir / f"warmline-{handler.split('.')[0]}.jsonl")]
    proc = _spawn(cmd, env=dict(os.environ), cwd=ECHO_DIR, output=output)

    def cold() -> int | None:
        # One INIT_START per environment (CloudWatch format); Init Duration as a fallback.
        starts = _count_in(output, "INIT_START")
        return starts if starts else _count_in(output, "Init Duration")

    # API Gateway serves the API at /{stage}, as wss://{api}.execute-api.../{stage}.
    return Server(name, proc, port, output, f"ws://{HOST}:{port}/{stage}", cold)


# --------------------------------------------------------------------------- report

ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("first connect after start (ms)", ("first_connect_ms",), "{:.1f}"),
    ("warm connect p50 / p99 (ms)", ("warm_connect_p50_ms", "warm_connect_p99_ms"), "{:.2f}"),
    ("sequential echo p50 / p99 (ms)", ("seq_p50_ms", "seq_p99_ms"), "{:.2f}"),
    ("load: msgs/s", ("load_msgs_per_s",), "{:,.0f}"),
    ("load: latency p50 / p99 (ms)", ("load_p50_ms", "load_p99_ms"), "{:.1f}"),
    (
        "load: CPU ms/echo: server / front / client",
        ("load_server_cpu_ms", "load_front_cpu_ms", "load_client_cpu_ms"),
        "{:.2f}",
    ),
    ("load: echoes received / missing", ("load_messages", "load_missing"), "{:d}"),
    ("wrong frames + timeouts / timeouts (all)", ("errors", "timeouts"), "{:d}"),
    ("cold starts: load run / whole run", ("cold_starts_load", "cold_starts_total"), "{:g}"),
]


def _cell(result: Result, keys: tuple[str, ...], fmt: str) -> str:
    if result.error is not None:
        if keys == ROWS[0][1]:
            return "skipped" if result.skipped else "failed"
        return ""
    values = [getattr(result, key) for key in keys]
    return " / ".join("–" if v is None else fmt.format(v) for v in values)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _ratios(results: dict[str, Result]) -> dict[str, dict[str, float | None]]:
    """Throughput and p99 of every emulator against serverless-offline and the floor."""
    ok = {name: r for name, r in results.items() if r.error is None}
    out: dict[str, dict[str, float | None]] = {}
    for base_name in ("s-offline (boto3)", NODE_OFFLINE, "floor"):
        base = ok.get(base_name)
        if base is None:
            continue
        for name, r in ok.items():
            if name == base_name or name == "floor" or name.startswith("s-offline"):
                continue
            if base_name == NODE_OFFLINE and name != NODE_WARMLINE:
                continue  # the Node row compares the same Node.js handler only
            out[f"{name} vs {base_name}"] = {
                "throughput_x": _ratio(r.load_msgs_per_s, base.load_msgs_per_s),
                "p99_x": _ratio(r.load_p99_ms, base.load_p99_ms),
            }
    return out


def _print_report(results: dict[str, Result], ratios: dict[str, dict[str, float | None]]) -> None:
    names = list(results)
    width = max(22, *(len(n) + 2 for n in names))
    print()
    print(f"{'metric':<40}" + "".join(f"{n:>{width}}" for n in names))
    for label, keys, fmt in ROWS:
        cells = "".join(f"{_cell(results[n], keys, fmt):>{width}}" for n in names)
        print(f"{label:<40}{cells}")
    for name, r in results.items():
        if r.error is not None:
            print(f"\n{name}: not measured: {r.error}")
        for note in r.notes:
            print(f"{name}: {note}")
        if r.first_unexpected is not None:
            print(f"{name}: first frame that was not the echo: {r.first_unexpected!r}")
    if ratios:
        print(f"\n{'ratio (load run)':<44}{'throughput':>12}{'p99':>10}")
        for label, values in ratios.items():
            tput, p99 = values["throughput_x"], values["p99_x"]
            t_txt = "–" if tput is None else f"{tput:.2f}x"
            p_txt = "–" if p99 is None else f"{p99:.3f}x"
            print(f"{label:<44}{t_txt:>12}{p_txt:>10}")
    for label, key, throughput_x, p99_fraction in (
        ("warmline lean vs serverless-offline", "warmline (lean) vs s-offline (boto3)",
         TARGET_THROUGHPUT_X, TARGET_P99_FRACTION),
        ("warmline node vs serverless-offline node", f"{NODE_WARMLINE} vs {NODE_OFFLINE}",
         NODE_TARGET_THROUGHPUT_X, NODE_TARGET_P99_FRACTION),
    ):  # fmt: skip
        ratio = ratios.get(key)
        if ratio and ratio["throughput_x"] is not None and ratio["p99_x"] is not None:
            t_ok = ratio["throughput_x"] >= throughput_x
            p_ok = ratio["p99_x"] <= p99_fraction
            print(
                f"\ntargets ({label}): throughput {ratio['throughput_x']:.2f}x >= "
                f"{throughput_x:.0f}x {'MET' if t_ok else 'MISSED'}; p99 "
                f"{ratio['p99_x']:.3f}x <= {p99_fraction:.1f}x {'MET' if p_ok else 'MISSED'}"
            )


# --------------------------------------------------------------------------- main

Starter = Callable[[Path], Server]


async def _measure(name: str, start: Starter, workdir: Path, w: Workload) -> Result:
    result = Result(server=name)
    print(f"[{name}] starting ...", flush=True)
    try:
        server = start(workdir)
    except Skip as exc:
        result.error, result.skipped = str(exc), True
        print(f"[{name}] skipped: {exc}", flush=True)
        return result
    try:
        await asyncio.wait_for(
            _run_workload(server, w, result), w.ready_timeout_s + 4 * w.phase_timeout_s
        )
    except Exception as exc:  # a broken server must not stop the other measurements
        result.error = f"{type(exc).__name__}: {exc}".strip()
        print(f"[{name}] failed: {result.error}\n{_tail(server.output)}", flush=True)
    finally:
        _stop(server.proc)
    if result.error is None:
        print(
            f"[{name}] {result.load_msgs_per_s or 0:,.0f} msgs/s, "
            f"load p99 {result.load_p99_ms or 0:.1f} ms",
            flush=True,
        )
    return result


def _servers(args: argparse.Namespace) -> list[tuple[str, Starter]]:
    servers: list[tuple[str, Starter]] = [("floor", _start_floor)]
    if not args.skip_offline:
        servers.append(("s-offline (boto3)", _start_offline))
    if not args.skip_warmline:
        for name, handler in (
            ("warmline (boto3)", "handler_py.handler"),
            ("warmline (lean)", "lean_handler.handler"),
        ):
            servers.append((name, functools.partial(_start_warmline, handler=handler, name=name)))
    # The Node row: the same Node.js handler on both emulators.
    if not args.skip_offline:
        node_offline = functools.partial(
            _start_offline, runtime=NODE_RUNTIME, handler=NODE_HANDLER, name=NODE_OFFLINE
        )
        servers.append((NODE_OFFLINE, node_offline))
    if not args.skip_warmline:
        node_warmline = functools.partial(
            _start_warmline, handler=NODE_HANDLER, name=NODE_WARMLINE, runtime=NODE_RUNTIME
        )
        servers.append((NODE_WARMLINE, node_warmline))
    if args.only:
        servers = [(name, start) for name, start in servers if name in args.only]
    return servers


def _combine(name: str, rounds: list[Result]) -> Result:
    """One row from several rounds: medians of the figures, sums of messages and errors."""
    if len(rounds) == 1:
        return rounds[0]
    ok = [r for r in rounds if r.error is None]
    combined = Result(server=name)
    combined.notes = [f"round {i + 1}: {n}" for i, r in enumerate(rounds) for n in r.notes]
    failed = [r for r in rounds if r.error is not None]
    if not ok:
        combined.error, combined.skipped = failed[0].error, all(r.skipped for r in failed)
        return combined
    if failed:
        combined.notes.append(f"{len(failed)} of {len(rounds)} rounds failed: {failed[0].error}")
    for key in _MEDIAN_FIELDS:
        values = [getattr(r, key) for r in ok if getattr(r, key) is not None]
        setattr(combined, key, statistics.median(values) if values else None)
    for key in ("load_messages", "load_missing", "errors", "timeouts"):
        setattr(combined, key, sum(getattr(r, key) for r in ok))
    combined.first_unexpected = next((r.first_unexpected for r in ok if r.first_unexpected), None)
    return combined


_MEDIAN_FIELDS = (
    "first_connect_ms",
    "warm_connect_p50_ms",
    "warm_connect_p99_ms",
    "seq_p50_ms",
    "seq_p99_ms",
    "load_msgs_per_s",
    "load_p50_ms",
    "load_p99_ms",
    "load_server_cpu_ms",
    "load_front_cpu_ms",
    "load_client_cpu_ms",
    "cold_starts_load",
    "cold_starts_total",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every server's workload, print the table and ratios; 1 if a measured run failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workload (CI smoke)")
    parser.add_argument("--skip-offline", action="store_true", help="no serverless-offline")
    parser.add_argument("--skip-warmline", action="store_true", help="no warmline dev")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every server N times, interleaved; medians"
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="measure this server only (repeatable)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--logs", metavar="DIR", help="keep the servers' output here")
    args = parser.parse_args(argv)
    workload = QUICK if args.quick else FULL
    # Import the client stack now, so that no first-connect figure pays for it.
    import websockets.asyncio.client  # noqa: F401

    atexit.register(_stop_all)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    servers = _servers(args)
    rounds: dict[str, list[Result]] = {name: [] for name, _ in servers}
    try:
        with contextlib.ExitStack() as stack:
            if args.logs:
                workdir = Path(args.logs)
                workdir.mkdir(parents=True, exist_ok=True)
            else:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="warmline-bench-"))
                workdir = Path(tmp)
            for index in range(max(1, args.rounds)):
                for name, start in servers:
                    if rounds[name] and rounds[name][0].skipped:
                        continue  # e.g. no npm: do not try again every round
                    if args.rounds > 1:
                        print(f"round {index + 1}/{args.rounds}: ", end="")
                    rounds[name].append(asyncio.run(_measure(name, start, workdir, workload)))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        _stop_all()
        signal.signal(signal.SIGTERM, previous)
    results = {name: _combine(name, runs) for name, runs in rounds.items() if runs}
    ratios = _ratios(results)
    _print_report(results, ratios)
    if args.quick:
        print("(--quick: a smoke run; its ratios are not a measurement, run without it)")
    if args.json:
        payload = {
            "workload": asdict(workload),
            "rounds": args.rounds,
            "results": {name: asdict(r) for name, r in results.items()},
            "ratios": ratios,
            "each_round": {name: [asdict(r) for r in runs] for name, runs in rounds.items()},
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    broken = [
        r for r in results.values() if (r.error and not r.skipped) or r.errors or r.load_missing
    ]
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
