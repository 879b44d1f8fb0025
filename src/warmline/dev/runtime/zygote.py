"""The pre-started runtime process that forks every execution environment.

Why a separate process: forking the emulator itself would copy its event loop, sockets and
threads into every environment; starting a fresh interpreter per environment costs tens of
milliseconds of interpreter start-up. A small single-threaded process that has imported only
the environment-side bootstrap forks a ready runtime in a few milliseconds
(``bench/runtime_coldstart.py``, docs/performance.md), and the child then imports the user's
code itself, so init is still paid per environment.

Protocol on the control socket (``AF_UNIX``/``SOCK_SEQPACKET``: one JSON object per
datagram, file descriptors as ``SCM_RIGHTS``):

* emulator -> here: ``{"t": "spawn", "id": n, "config": {...}}``,
  ``{"t": "kill", "pid": p}``, ``{"t": "ping"}`` (answered ``{"t": "pong"}``; with
  ``"probe": staging directory`` the answer's ``"sandbox"`` is None when environments can
  be isolated here, else the reason, :func:`warmline.dev.runtime.sandbox.probe`);
* here -> emulator: ``{"t": "spawned", "id": n, "pid": p}`` carrying three descriptors
  (the environment's stream socket, its stdout and its stderr read ends),
  ``{"t": "spawn_failed", "id": n, "error": "..."}``, ``{"t": "exit", "pid": p, "code": c}``
  (``code`` as :func:`os.waitstatus_to_exitcode`: negative = killed by that signal).

Children are reaped on ``SIGCHLD`` (through a wakeup pipe, so the loop stays a plain
``select``), each child leads its own process group (a kill takes its subprocesses too), and
end of file on the control socket (the emulator exited, even by ``SIGKILL``) kills every
child and ends this process.

The same loop runs in a snapstart template (:mod:`warmline.dev.runtime.snapstart`), which
forks restored environments from an already initialised handler.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from warmline.dev.runtime import bootstrap
from warmline.dev.runtime.wire import SyncChannel

__all__ = ["ChildMain", "main", "serve", "spawn"]

#: Runs in a forked child with its end of the environment socket, its configuration and
#: the monotonic time it started; never returns.
ChildMain = Callable[[socket.socket, Mapping[str, Any], float], NoReturn]

_CONTROL_BUFSIZE = 1024 * 1024
#: Quiet time after which a used spare is replaced.
_REFILL_AFTER_S = 0.01


def _run_environment(sock: socket.socket, config: Mapping[str, Any], t0: float) -> NoReturn:
    bootstrap.run(SyncChannel(sock), config, t0)


def _send(control: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(control, [data], fds)
    else:
        control.send(data)


def spawn(
    config: Mapping[str, Any], child_main: ChildMain, close_in_child: list[int]
) -> tuple[int, socket.socket, int]:
    """Fork one environment.

    Args:
        config: its configuration; ``config["kind"] == "template"`` asks for a datagram
            (``SOCK_SEQPACKET``) socket, because a template passes descriptors on it.
        child_main: what the child runs.
        close_in_child: descriptors of this process the child must not keep.

    Returns:
        ``(pid, our end of its socket, the read end of its output pipe)``: stdout and
        stderr share one pipe, as they share one log stream on Lambda, so their lines keep
        the order they were written in and one read of the pipe, once the result has
        arrived, takes the rest of an invocation's output.
    """
    kind = socket.SOCK_SEQPACKET if config.get("kind") == "template" else socket.SOCK_STREAM
    ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the environment
        t0 = time.monotonic()
        code = 70
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            # A session of its own (so also a process group: the emulator kills the group).
            # Linux's autogroup scheduling makes each session one scheduling group; in the
            # zygote's session, fifty environments shared one group's CPU share against the
            # emulator's front. Starved, they returned late, and a load scaled out to ~80
            # environments for 50 connections where AWS, every environment on CPU of its
            # own, would use ~50 (bench/emulator_vs_offline.py: 80 -> 48 cold starts).
            os.setsid()
            for fd in [*close_in_child, ours.detach(), out_r]:
                os.close(fd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            for fd in (devnull, out_w):
                os.close(fd)
            child_main(theirs, config, t0)
        except SystemExit as exc:
            bootstrap.exit_for(exc)
        except BaseException:  # report anything, then die
            traceback.print_exc()
            sys.stderr.flush()
        os._exit(code)
    # (No setpgid from here: it would race the child's setsid, which a process group
    # leader may not call. Until the child has its group, _kill falls back to its pid.)
    theirs.close()
    os.close(out_w)
    return pid, ours, out_r


class _Spare:
    """A child forked ahead of need, set up and waiting for its configuration on a pipe."""

    __slots__ = ("config_w", "out_r", "pid", "sock")

    def __init__(self, pid: int, sock: socket.socket, out_r: int, config_w: int) -> None:
        self.pid = pid
        self.sock = sock
        self.out_r = out_r
        self.config_w = config_w

    def fds(self) -> list[int]:
        """Descriptors another child must not inherit (the spare would never see EOF)."""
        return [self.sock.fileno(), self.out_r, self.config_w]

    def release(self) -> None:
        self.sock.close()
        for fd in (self.out_r, self.config_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _fork_spare(close_in_child: list[int]) -> _Spare:
    """Fork an environment that prepares itself, then waits for its configuration.

    Forking and the function-independent set-up then happen between requests, so a cold
    start only pays for its own configuration and the user's import. Init Duration starts
    when the configuration arrives.
    """
    config_r, config_w = os.pipe()

    def spare_main(sock: socket.socket, _config: Mapping[str, Any], _t0: float) -> NoReturn:
        bootstrap.prepare()
        with os.fdopen(config_r, "rb") as pipe:
            data = pipe.read()
        t0 = time.monotonic()
        if not data:
            os._exit(0)
        bootstrap.run(SyncChannel(sock), json.loads(data), t0)

    pid, ours, out_r = spawn({"kind": "env"}, spare_main, [*close_in_child, config_w])
    os.close(config_r)
    return _Spare(pid, ours, out_r, config_w)


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def serve(
    control: socket.socket,
    mains: Mapping[str, ChildMain],
    *,
    spares: bool = False,
) -> NoReturn:
    """Fork environments on request until the control socket closes.

    Args:
        control: the ``SOCK_SEQPACKET`` socket to the emulator.
        mains: child entry point per ``config["kind"]`` (default kind ``"env"``).
        spares: keep one ``"env"`` child forked ahead of need (see :func:`_fork_spare`).
    """
    control.setblocking(True)
    # Everything imported so far is shared with every child; frozen, the children's
    # collector never walks (and so never writes, copy-on-write) those pages. That is
    # less CPU and memory per cold start, which a laptop pays for 50 at once in a load.
    gc.freeze()
    children: set[int] = set()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control_fd = control.fileno()
    close_in_child = [control_fd, wake_r, wake_w]
    spare: _Spare | None = None

    def reap() -> None:
        nonlocal spare
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)
            if spare is not None and pid == spare.pid:
                spare.release()
                spare = None
                continue
            with contextlib.suppress(OSError):
                _send(control, {"t": "exit", "pid": pid, "code": os.waitstatus_to_exitcode(status)})

    def refill() -> None:
        nonlocal spare
        if spares and spare is None:
            with contextlib.suppress(OSError):
                spare = _fork_spare(close_in_child)
                children.add(spare.pid)

    def take_spare() -> _Spare | None:
        nonlocal spare
        taken, spare = spare, None
        if taken is not None and taken.pid not in children:
            taken.release()
            return None
        return taken

    def configure(taken: _Spare, config: Mapping[str, Any]) -> None:
        try:
            data = json.dumps(config, separators=(",", ":")).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(taken.config_w, view) :]
        except OSError:  # it died meanwhile: the emulator sees its socket close
            _kill(taken.pid)
        finally:
            with contextlib.suppress(OSError):
                os.close(taken.config_w)

    refill()
    while True:
        reap()
        # Refill the spare only when no request came for a moment: forking next to a cold
        # start would compete with it for the CPU.
        timeout = _REFILL_AFTER_S if spares and spare is None else None
        ready, _, _ = select.select([control_fd, wake_r], [], [], timeout)
        if not ready:
            refill()
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 4096):
                    pass
        if control_fd not in ready:
            continue
        try:
            data = control.recv(_CONTROL_BUFSIZE)
        except OSError:
            data = b""
        if not data:
            break
        message = json.loads(data)
        kind = message.get("t")
        if kind == "spawn":
            config = message["config"]
            taken = take_spare() if config.get("kind", "env") == "env" else None
            try:
                if taken is not None:
                    made = (taken.pid, taken.sock, taken.out_r)
                else:
                    held = spare.fds() if spare is not None else []
                    main = mains[config.get("kind", "env")]
                    made = spawn(config, main, [*close_in_child, *held])
            except Exception as exc:  # tell the emulator, keep serving
                _send(control, {"t": "spawn_failed", "id": message["id"], "error": repr(exc)})
                continue
            pid, ours, out_r = made
            children.add(pid)
            try:
                _send(
                    control,
                    {"t": "spawned", "id": message["id"], "pid": pid},
                    [ours.fileno(), out_r],
                )
            finally:
                ours.close()
                os.close(out_r)
                if taken is not None:
                    configure(taken, config)
        elif kind == "ping":
            # Answered once this loop serves (its spare child is forked): the emulator
            # starts listening only then, so a first connect does not wait for us. A
            # ping naming a staging directory also asks whether the sandbox works here.
            pong: dict[str, Any] = {"t": "pong"}
            if message.get("probe"):
                pong["sandbox"] = bootstrap.sandbox.probe(str(message["probe"]))
            _send(control, pong)
        elif kind == "kill":
            pid = int(message["pid"])
            if pid in children:
                _kill(pid)
    if spare is not None:
        spare.release()
    for pid in children:
        _kill(pid)
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    os._exit(0)


def main(argv: list[str] | None = None) -> NoReturn:
    """Serve on the inherited control socket whose descriptor is the first argument.

    Started as ``python -c "from warmline.dev.runtime.zygote import main; main()" FD``
    (``python -m warmline.dev.runtime.zygote FD`` works too).
    """
    args = sys.argv[1:] if argv is None else argv
    # ``-c`` / ``-m`` put '' or the launch directory first on sys.path; environments
    # must not see it.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    control = socket.socket(fileno=int(args[0]))
    from warmline.dev.runtime import snapstart

    bootstrap.preload()

    serve(control, {"env": _run_environment, "template": snapstart.run_template}, spares=True)


if __name__ == "__main__":
    main()
