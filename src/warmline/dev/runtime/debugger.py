"""Inside a debugged environment (``warmline dev --debug``): the terminal and debugpy.

:mod:`warmline.dev.debug` describes the whole feature. The bootstrap calls :func:`attach`
in the debugged function's environments only. Standard library only at import time (the
environment's runtime imports nothing else); pdb and debugpy load when they are used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["attach"]


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
