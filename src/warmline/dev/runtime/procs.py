"""The emulator's side of making environment processes: the zygote client and a fallback.

:class:`ZygoteSpawner` starts the zygote (:mod:`warmline.dev.runtime.zygote`) once and asks it to
fork each environment; descriptors come back over a ``SOCK_SEQPACKET`` control socket with
``socket.recv_fds``. The same class drives a snapstart template process (a per-function
zygote that has already imported the handler). :class:`SubprocessSpawner` starts a fresh
interpreter per environment, for platforms without ``fork`` or ``SOCK_SEQPACKET``; it is
much slower per cold start (``bench/runtime_coldstart.py`` compares the two; figures in
docs/performance.md).

Both report each process's exit code on :attr:`Spawned.exited` (negative: killed by that
signal), which is how a crash is told apart from a hang and how an idle environment that
died is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import warmline
from warmline.dev.runtime.wire import encode

__all__ = [
    "Spawned",
    "Spawner",
    "SpawnError",
    "SubprocessSpawner",
    "ZygoteSpawner",
    "fork_available",
    "python_env",
]

_CONTROL_BUFSIZE = 1024 * 1024
#: ``python -c`` rather than ``-m``: the module is then imported once, under its own name
#: (the snapstart template imports it again otherwise), and no directory joins sys.path.
_ZYGOTE_MAIN = "from warmline.dev.runtime.zygote import main; main()"
_WAIT_STEP_S = 0.005


class SpawnError(RuntimeError):
    """The runtime process could not make an environment (it died or fork failed)."""


@dataclass(slots=True)
class Spawned:
    """A new environment process, as the emulator holds it.

    Attributes:
        pid: its process id (leader of its own process group).
        sock: the emulator's end of its stream socket (blocking mode, caller sets it).
        stdout_fd: read end of its output pipe (stdout and stderr, as Lambda's one log
            stream).
        exited: resolves to the exit code (negative = signal) when the process is gone.
        hello: the first message for a template (``ready`` / ``init_error``), else unused.
    """

    pid: int
    sock: socket.socket
    stdout_fd: int
    exited: asyncio.Future[int]
    hello: asyncio.Future[dict[str, Any]] | None = field(default=None)


class Spawner(Protocol):
    """Makes environment processes and kills them."""

    async def spawn(self, config: Mapping[str, Any]) -> Spawned:
        """Start one environment with ``config``; the caller waits for its ``ready``."""
        ...

    def kill(self, pid: int) -> None:
        """SIGKILL the environment (and its process group); idempotent."""
        ...

    async def close(self) -> None:
        """Kill everything this spawner started and release its resources."""
        ...


def fork_available() -> bool:
    """Whether the zygote can work here (``fork`` and ``SOCK_SEQPACKET`` unix sockets)."""
    if not hasattr(os, "fork") or not hasattr(socket, "SOCK_SEQPACKET"):
        return False
    try:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return False
    a.close()
    b.close()
    return True


def python_env() -> dict[str, str]:
    """The environment for runtime processes: ours, with warmline importable first."""
    env = dict(os.environ)
    root = str(Path(warmline.__file__).resolve().parent.parent)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root if not path else f"{root}{os.pathsep}{path}"
    return env


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class ZygoteSpawner:
    """Client of a zygote (or snapstart template) over its control socket.

    Args:
        control: the emulator's end of the ``SOCK_SEQPACKET`` control socket.
        process: the zygote's process, when we started it (waited for on close).
        pid: the process id, when it is not ours to wait for (a template).
    """

    def __init__(
        self,
        control: socket.socket,
        *,
        process: subprocess.Popen[bytes] | None = None,
        pid: int | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        control.setblocking(False)
        self._control = control
        self._process = process
        self.pid = process.pid if process is not None else pid
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Spawned]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._closed = False
        self.hello: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pong: asyncio.Future[dict[str, Any]] | None = None
        self._send_lock = asyncio.Lock()
        self._loop.add_reader(control.fileno(), self._on_readable)

    @classmethod
    async def start(cls, python: str | None = None) -> ZygoteSpawner:
        """Start the zygote process and connect to it.

        Args:
            python: the interpreter it runs on (default: this one); a function that
                declares another Python version gets a zygote of that version.

        Returns:
            The spawner; the zygote starts serving as soon as its interpreter is up.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [python or sys.executable, "-c", _ZYGOTE_MAIN, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=python_env(),
                start_new_session=True,
            )
        finally:
            theirs.close()
        return cls(ours, process=process)

    def _on_readable(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._control, _CONTROL_BUFSIZE, 3)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self._on_eof()
                return
            self._dispatch(json.loads(data), fds)

    def _exit_future(self, pid: int) -> asyncio.Future[int]:
        future = self._exits.get(pid)
        if future is None:
            future = self._exits[pid] = self._loop.create_future()
        return future

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        kind = message.get("t")
        if kind == "spawned":
            future = self._pending.pop(int(message["id"]), None)
            pid = int(message["pid"])
            if future is None or future.done() or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                _kill_group(pid)
                if future is not None and not future.done():
                    # Descriptors lost in transit (the emulator is out of file descriptors).
                    future.set_exception(SpawnError("environment descriptors not received"))
                return
            sock = socket.socket(fileno=fds[0])
            future.set_result(Spawned(pid, sock, fds[1], self._exit_future(pid)))
            return
        for fd in fds:
            os.close(fd)
        if kind == "exit":
            exited = self._exit_future(int(message["pid"]))
            if not exited.done():
                exited.set_result(int(message["code"]))
        elif kind == "spawn_failed":
            future = self._pending.pop(int(message["id"]), None)
            if future is not None and not future.done():
                future.set_exception(SpawnError(str(message.get("error"))))
        elif kind in ("ready", "init_error") and not self.hello.done():
            self.hello.set_result(message)
        elif kind == "pong" and self._pong is not None and not self._pong.done():
            self._pong.set_result(message)

    async def ready(self, timeout_s: float = 10.0, *, probe: str | None = None) -> str | None:
        """Wait until the runtime process serves requests (a ping answered).

        Args:
            timeout_s: how long to wait.
            probe: a staging directory: also ask whether environments can be isolated.

        Returns:
            With ``probe``: None when the sandbox works here, else why not.
        """
        self._pong = self._loop.create_future()
        ping: dict[str, Any] = {"t": "ping"}
        if probe is not None:
            ping["probe"] = probe
        try:
            async with self._send_lock:
                await self._loop.sock_sendall(self._control, json.dumps(ping).encode())
        except OSError as exc:
            raise SpawnError("the runtime process exited") from exc
        pong = await asyncio.wait_for(asyncio.shield(self._pong), timeout_s)
        reason = pong.get("sandbox")
        return None if reason is None else str(reason)

    def _on_eof(self) -> None:
        """The runtime process is gone: fail what waits, kill the orphans it left."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._control.fileno())
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SpawnError("the runtime process exited"))
        self._pending.clear()
        if not self.hello.done():
            self.hello.set_exception(SpawnError("the runtime process exited"))
        if self._pong is not None and not self._pong.done():
            self._pong.set_exception(SpawnError("the runtime process exited"))
        for pid, exited in self._exits.items():
            if not exited.done():
                _kill_group(pid)
                exited.set_result(-signal.SIGKILL)

    @property
    def alive(self) -> bool:
        """Whether the runtime process still answers."""
        return not self._closed

    async def spawn(self, config: Mapping[str, Any]) -> Spawned:
        """Ask for one environment.

        Args:
            config: its configuration (JSON-able).

        Returns:
            The new process.

        Raises:
            SpawnError: the runtime process is gone or could not fork.
        """
        if self._closed:
            raise SpawnError("the runtime process exited")
        request_id = next(self._ids)
        future: asyncio.Future[Spawned] = self._loop.create_future()
        self._pending[request_id] = future
        data = json.dumps({"t": "spawn", "id": request_id, "config": config}).encode()
        try:
            # One sender at a time: a full socket makes sock_sendall wait for writability,
            # and the loop keeps one writer callback per descriptor, so concurrent senders
            # would overwrite each other's and hang.
            async with self._send_lock:
                await self._loop.sock_sendall(self._control, data)
        except OSError as exc:
            self._pending.pop(request_id, None)
            raise SpawnError("the runtime process exited") from exc
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled after the environment arrived but before this task resumed: nobody
            # else holds it, so it is killed and its descriptors closed here.
            if future.done() and not future.cancelled() and future.exception() is None:
                spawned = future.result()
                self.kill(spawned.pid)
                spawned.sock.close()
                os.close(spawned.stdout_fd)
            raise

    def kill(self, pid: int) -> None:
        """SIGKILL one environment through the runtime process that owns it."""
        exited = self._exits.get(pid)
        if exited is not None and exited.done():
            return
        if self._closed:
            _kill_group(pid)
            return
        try:
            self._control.send(json.dumps({"t": "kill", "pid": pid}).encode())
        except OSError:
            _kill_group(pid)

    def forget(self, pid: int) -> None:
        """Drop the bookkeeping of an exited process."""
        exited = self._exits.get(pid)
        if exited is not None and exited.done():
            del self._exits[pid]

    async def close(self, timeout_s: float = 2.0) -> None:
        """Close the control socket (the runtime process kills its children and exits)."""
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._control.fileno())
        self._control.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SpawnError("closed"))
        self._pending.clear()
        if not self.hello.done():
            self.hello.cancel()
        if self._process is not None:
            deadline = time.monotonic() + timeout_s
            while self._process.poll() is None:
                if time.monotonic() > deadline:
                    self._process.kill()
                    self._process.wait()
                    break
                await asyncio.sleep(_WAIT_STEP_S)


class SubprocessSpawner:
    """Fallback: a fresh ``python -m warmline.dev.runtime.bootstrap`` per environment."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._waiters: set[asyncio.Task[None]] = set()
        self._env = python_env()

    async def spawn(self, config: Mapping[str, Any]) -> Spawned:
        """Start one interpreter and send it ``config`` as its first frame."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        t0 = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                str(config.get("python") or sys.executable),
                "-m",
                "warmline.dev.runtime.bootstrap",
                str(theirs.fileno()),
                repr(t0),
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                env=self._env,
                cwd=str(config["code_dir"]),
                start_new_session=True,
            )
        except BaseException as exc:  # also cancelled: our ends must not outlive the call
            ours.close()
            os.close(out_r)
            if isinstance(exc, OSError):
                raise SpawnError(f"could not start an interpreter: {exc}") from exc
            raise
        finally:
            theirs.close()
            os.close(out_w)
        ours.sendall(encode(dict(config)))
        exited: asyncio.Future[int] = self._loop.create_future()
        self._processes[process.pid] = process

        async def wait() -> None:
            code = await process.wait()
            self._processes.pop(process.pid, None)
            if not exited.done():
                exited.set_result(code)

        task = self._loop.create_task(wait())
        self._waiters.add(task)
        task.add_done_callback(self._waiters.discard)
        return Spawned(process.pid, ours, out_r, exited)

    def kill(self, pid: int) -> None:
        """SIGKILL one environment's process group."""
        if pid in self._processes:
            _kill_group(pid)

    async def close(self) -> None:
        """Kill every interpreter and wait for them."""
        for pid in list(self._processes):
            _kill_group(pid)
        if self._waiters:
            await asyncio.wait(list(self._waiters), timeout=5.0)
