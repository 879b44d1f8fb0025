"""``warmline dev --debug FUNCTION``: one environment of a function, attached to a debugger.

On the emulator's side (:func:`debug_config`):

- the function keeps one environment (reserved concurrency 1), so every invocation stops
  at the same ``breakpoint()`` and a second message while it is stopped is throttled (as
  AWS throttles past reserved concurrency) rather than starting a second, unattached one;
- the timeouts that would cut a stopped invocation short are lifted while debugging: the
  function's timeout, the INIT limit, API Gateway's 29 s integration timeout and the
  10-minute idle timeout of WebSocket connections. The banner says so (docs/dev.md
  compares SAM CLI and serverless-offline).

Inside the environment (:func:`warmline.dev.runtime.debugger.attach`, called by the
bootstrap after the sandbox is entered and before the import path is restricted):

- with a terminal (``tty``): ``sys.stdin`` reads it and ``breakpoint()`` runs pdb on it, so
  pdb stops and takes input where ``warmline dev`` runs, while the function's prints still
  go to its log;
- with ``port``: debugpy (the ``debug`` extra) listens on ``127.0.0.1:PORT`` for VS Code or
  PyCharm to attach; once one is attached, ``breakpoint()`` stops there instead.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warmline.config import DevConfig

__all__ = ["DEBUG_TIMEOUT_S", "debug_config"]

#: The timeouts of a debugged function while ``--debug`` runs: a day, "no limit" for a
#: person stepping through code.
DEBUG_TIMEOUT_S = 86_400.0


def debug_config(config: DevConfig, function: str) -> DevConfig:
    """``config`` with ``function`` debuggable: one environment, no limits.

    Raises:
        ConfigurationError: no function has that name.
    """
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
