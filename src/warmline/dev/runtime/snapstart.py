"""Snapstart mode, environment side: the per-function template and its restored children.

AWS SnapStart (docs/protocols.md §3.5) initialises a function once, runs the before-snapshot
hooks, snapshots the microVM, and resumes each new environment from that snapshot, running
the after-restore hooks; REPORT then shows ``Restore Duration`` instead of
``Init Duration``. The emulator's equivalent of the snapshot is a *template* process: forked
from the zygote, it imports the handler and runs the before-snapshot hooks once, then serves
the zygote protocol itself, so every environment of the function is a fork of the
initialised template that only runs the after-restore hooks.

This module runs in the zygote and its children: standard library only, nothing asynchronous.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from warmline.dev.runtime import bootstrap, snapshot_hooks, zygote
from warmline.dev.runtime.wire import SyncChannel

__all__ = ["run_restored", "run_template"]


def _hook_error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": bootstrap._user_trace(exc.__traceback__),
    }


def run_template(sock: socket.socket, config: Mapping[str, Any], t0: float) -> NoReturn:
    """Initialise the function once, then fork restored environments on request.

    Args:
        sock: a ``SOCK_SEQPACKET`` socket to the emulator (the template's control socket).
        config: the function's configuration.
        t0: when this process started (the Init Duration starts there).
    """
    bootstrap.apply_environment(config)
    handler, error = bootstrap.load_handler(str(config["handler"]))
    if handler is None:
        _hello(sock, {"t": "init_error", "error": error, "init_ms": _ms(t0)})
        os._exit(1)
    for hook, args, kwargs in snapshot_hooks.get_before_snapshot():
        try:
            hook(*args, **kwargs)
        except Exception as exc:  # a failing hook fails the init
            _hello(sock, {"t": "init_error", "error": _hook_error(exc), "init_ms": _ms(t0)})
            os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    _hello(sock, {"t": "ready", "init_ms": _ms(t0), "pid": os.getpid()})

    def restored(child: socket.socket, child_config: Mapping[str, Any], t1: float) -> NoReturn:
        assert handler is not None
        run_restored(handler, child, child_config, t1)

    zygote.serve(sock, {"restore": restored})


def run_restored(
    handler: bootstrap.Handler, sock: socket.socket, config: Mapping[str, Any], t0: float
) -> NoReturn:
    """A new environment forked from the template: after-restore hooks, then serve.

    Args:
        handler: the template's already imported handler.
        sock: this environment's stream socket.
        config: its configuration (its own log stream name).
        t0: when the fork happened (the Restore Duration starts there).
    """
    channel = SyncChannel(sock)
    bootstrap.apply_environment(config, clear=False)
    for hook, args, kwargs in snapshot_hooks.get_after_restore():
        try:
            hook(*args, **kwargs)
        except Exception as exc:  # a failing hook fails the restore
            channel.send({"t": "init_error", "error": _hook_error(exc), "init_ms": _ms(t0)})
            os._exit(1)
    channel.send({"t": "ready", "init_ms": _ms(t0), "pid": os.getpid()})
    bootstrap.serve(channel, handler, config)


def _hello(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message, separators=(",", ":")).encode())


def _ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000.0
