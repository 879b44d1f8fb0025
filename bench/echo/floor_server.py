"""The floor: a plain ``websockets`` echo server, nothing between the socket and the echo.

Run as a subprocess by ``bench/emulator_vs_offline.py`` so that it gets its own
interpreter (and its own GIL) like the emulators it is compared with.
Usage: ``python bench/echo/floor_server.py --port PORT [--host 127.0.0.1]``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


async def _echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def _serve(host: str, port: int) -> None:
    from websockets.asyncio.server import serve

    # No permessage-deflate, like the benchmark client: the floor does nothing but echo.
    async with serve(_echo, host, port, compression=None) as server:
        await server.serve_forever()


def main() -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
