"""Run an :class:`~warmline.adapters.asgi.AsgiApp` under uvicorn, draining calls on SIGTERM.

uvicorn's own shutdown closes every open WebSocket with 1012 at once and only then tells
the application; for a phone call that is a hang-up. So the first SIGTERM (or SIGINT) is
taken here instead: the app stops accepting calls and reports not ready (an ALB stops
sending new calls once its health check sees 503), the open calls get up to
``drain_timeout_s`` to end, and only then does uvicorn shut down. HTTP is served
throughout, so the ``<Connect action>`` callbacks of the calls that end still work. A
second signal shuts down at once.

On ECS/Fargate set the task's ``stopTimeout`` above ``drain_timeout_s`` (SIGKILL follows
SIGTERM after it) and the target group's deregistration delay to about the same.

uvicorn is imported here on first use (``warmline[asgi]``); the WebSocket protocol is
uvicorn's sans-I/O implementation on the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from warmline.adapters.asgi import DEFAULT_DRAIN_TIMEOUT_S, AsgiApp
from warmline.errors import MissingExtraError

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["bind_socket", "make_server"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one), made before the app is imported so the
    app can be told its own URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def make_server(
    asgi: AsgiApp,
    *,
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
    log_level: str = "warning",
    **config: Any,
) -> Any:
    """A ``uvicorn.Server`` for ``asgi`` whose first exit signal drains calls first.

    Run it with ``await server.serve(sockets=[sock])``; stop it with
    ``await server.drain_and_exit()`` (what the signal does) or ``server.should_exit = True``.

    Raises:
        MissingExtraError: uvicorn is not installed (``warmline[asgi]``).
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingExtraError("uvicorn", "asgi") from exc

    class DrainingServer(uvicorn.Server):
        """uvicorn's server with a drain before its shutdown."""

        def __init__(self, cfg: uvicorn.Config) -> None:
            super().__init__(cfg)
            self.loop: asyncio.AbstractEventLoop | None = None
            self.draining: asyncio.Task[None] | None = None

        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().serve(sockets=sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            loop = self.loop
            if self.draining is not None or loop is None or self.should_exit:
                super().handle_exit(sig, frame)  # second signal: now
                return
            # A signal handler runs between bytecodes: hand the work to the loop.
            loop.call_soon_threadsafe(self._start_drain)

        def _start_drain(self) -> None:
            if self.draining is None:
                self.draining = asyncio.ensure_future(self.drain_and_exit())

        async def drain_and_exit(self) -> None:
            """Drain the calls (bounded), then let uvicorn shut down."""
            try:
                await asgi.drain(drain_timeout_s)
            finally:
                self.should_exit = True

    cfg = uvicorn.Config(
        asgi,
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # Twilio does not negotiate compression (§1.1)
        log_level=log_level,
        timeout_graceful_shutdown=5,
        # X-Forwarded-For is AsgiApp's to read (its trusted_proxies), not uvicorn's: two
        # readers with two notions of whom to trust would disagree on the caller.
        proxy_headers=False,
        **config,
    )
    return DrainingServer(cfg)
