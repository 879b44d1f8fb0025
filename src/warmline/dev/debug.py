"""``warmline dev --debug FUNCTION``: one environment of a function, attached to a debugger.

On the emulator's side (:func:`debug_config`):

- the function keeps one environment (reserved concurrency 1), so every invocation stops
  at the same ``breakpoint()`` and a second message while it is stopped is throttled (as
  AWS throttles past reserved concurrency) rather than starting a second, unattached one;
- the timeouts that would cut a stopped invocation short are lifted while debugging: the
  function's timeout, the INIT limit, API Gateway's 29 s integration timeout and the
  10-minute idle timeout of WebSocket connections. The banner says so. (SAM CLI does the
  same for a debugged function; docs/dev.md.)

Inside the environment (:func:`attach`, called by the bootstrap after the sandbox is
entered and before the import path is restricted):

- with a terminal (``tty``): ``sys.stdin`` reads it and ``breakpoint()`` runs pdb on it, so
  pdb stops and takes input where ``warmline dev`` runs, while the function's prints still
  go to its log;
- with ``port``: debugpy (the ``debug`` extra) listens on ``127.0.0.1:PORT`` for VS Code or
  PyCharm to attach; once one is attached, ``breakpoint()`` stops there instead.

Standard library only at import time: the bootstrap imports this module in every
environment that is debugged (debugpy and pdb load when they are used).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["DEBUG_TIMEOUT_S", "attach", "debug_config"]

#: The timeouts of a debugged function while ``--debug`` runs: a day, "no limit" for a
#: person stepping through code.
DEBUG_TIMEOUT_S = 86_400.0


def attach(options: Mapping[str, Any]) -> None:
    """Connect this environment to the terminal and/or start debugpy (see the module doc).

    Args:
        options: ``tty`` (a terminal device path) and ``port`` (debugpy's), either optional.

    Raises:
        OSError: the terminal cannot be opened or the port cannot be listened on.
    """
    port = options.get("port")
    debugpy: Any = None
    if port:
        import debugpy

        debugpy.listen(("127.0.0.1", int(port)))
        print(f"[warmline] debugpy listens on 127.0.0.1:{port}: attach your IDE")
    tty = options.get("tty")
    terminal = None
    if tty:
        # A terminal is not seekable: one text stream each way on the same device.
        fd = os.open(str(tty), os.O_RDWR | os.O_NOCTTY)
        terminal = os.fdopen(fd, "r", encoding="utf-8", errors="replace")
        output = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
        sys.stdin = terminal

    def hook(*_args: Any, **_kwargs: Any) -> None:
        frame = sys._getframe(1)
        if debugpy is not None and (terminal is None or debugpy.is_client_connected()):
            debugpy.breakpoint()
            return
        if terminal is None:
            return
        import pdb

        pdb.Pdb(stdin=terminal, stdout=output).set_trace(frame)

    sys.breakpointhook = hook


def debug_config(config: Any, function: str) -> Any:
    """``config`` (a ``DevConfig``) with ``function`` debuggable: one environment, no limits.

    Raises:
        ConfigurationError: no function has that name.
    """
    import dataclasses

    from warmline.errors import ConfigurationError

    if function not in config.functions:
        names = ", ".join(sorted(config.functions)) or "none"
        raise ConfigurationError(f"--debug {function}: no such function (functions: {names})")
    functions = dict(config.functions)
    functions[function] = dataclasses.replace(
        functions[function], timeout_s=DEBUG_TIMEOUT_S, reserved_concurrency=1
    )
    limits = dataclasses.replace(
        config.limits, integration_timeout_s=DEBUG_TIMEOUT_S, idle_timeout_s=DEBUG_TIMEOUT_S
    )
    return dataclasses.replace(config, functions=functions, limits=limits)
