"""A ``warmline dev`` server for one scenario, its log written to a file the test reads."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer


@contextlib.asynccontextmanager
async def dev_server(config: Any, log: Path) -> AsyncIterator[DevServer]:
    """Start ``config`` on a free port, logging to ``log``; closed (and flushed) on exit."""
    sink = LogSink(console=None, path=log)
    server = DevServer(config, port=0, log_sink=sink)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
        sink.close()
