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
uvicorn's sans-I/O implementation on the ``websockets`` package, HTTP is uvicorn's h11
implementation. Both are narrowed where a caller could hold the server's resources:

- **Request heads are timed**: a connection has ``header_timeout_s`` from its accept (and
  from the end of each keep-alive response) to send a complete request line and headers,
  else it is closed. uvicorn's own keep-alive timer restarts on every byte, so a client
  trickling one header byte at a time would hold the socket forever. A head over 16 KB is
  answered 400 by h11 (``h11_max_incomplete_event_size``).
- **API Gateway's frame limits** (docs/protocols.md §2.1, §2.5): a frame over 32 KB closes
  the connection with 1009, as does a message over 128 KB (``ws_max_size``, so such a
  message is refused from its header instead of being buffered first).
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from warmline.adapters.asgi import CLOSE_TOO_BIG, DEFAULT_DRAIN_TIMEOUT_S, AsgiApp
from warmline.core.limits import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES
from warmline.errors import MissingExtraError

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "bind_socket", "make_server"]

#: Time a connection has to send a whole request head (request line and headers). Not an
#: AWS figure (API Gateway and ALB do not publish theirs); a client's head arrives in one
#: packet, so this only ever ends a stalled or trickling connection.
DEFAULT_HEADER_TIMEOUT_S = 10.0


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
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    log_level: str = "warning",
    **config: Any,
) -> Any:
    """A ``uvicorn.Server`` for ``asgi`` whose first exit signal drains calls first.

    Run it with ``await server.serve(sockets=[sock])``; stop it with
    ``await server.drain_and_exit()`` (what the signal does) or ``server.should_exit = True``.

    Args:
        header_timeout_s: time a connection has to send a whole request head.

    Raises:
        MissingExtraError: uvicorn is not installed (``warmline[asgi]``).
        ValueError: a header timeout that is not positive.
    """
    if header_timeout_s <= 0:
        raise ValueError(f"header_timeout_s must be > 0, not {header_timeout_s}")
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

    http, ws = _protocols(header_timeout_s)
    cfg = uvicorn.Config(
        asgi,
        lifespan="on",
        http=http,
        ws=ws,
        ws_max_size=MAX_MESSAGE_BYTES,  # over it: 1009 from the frame header (§2.1)
        ws_per_message_deflate=False,  # Twilio does not negotiate compression (§1.1)
        log_level=log_level,
        timeout_graceful_shutdown=5,
        # X-Forwarded-For is AsgiApp's to read (its trusted_proxies), not uvicorn's: two
        # readers with two notions of whom to trust would disagree on the caller.
        proxy_headers=False,
        **config,
    )
    return DrainingServer(cfg)


def _protocols(header_timeout_s: float) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """uvicorn's h11 and sans-I/O WebSocket protocols with a head timeout and a frame limit."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class TimedHeadH11(H11Protocol):
        """h11 with a deadline for each request head, not reset by trickled bytes."""

        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            upgraded = self.transport.get_protocol() is not self
            if upgraded or self.conn.their_state is not h11.IDLE:
                self._cancel_head_timer()  # the head is in (or the socket is a WebSocket)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_head_timer()  # keep-alive: the next head has the same deadline

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.get_protocol() is not self or self.transport.is_closing():
                return
            if self.conn.their_state is h11.IDLE:  # no complete head yet
                self.logger.info("closing a connection whose request head took too long")
                self.transport.close()

    class FrameLimitedWebSockets(WebSocketsSansIOProtocol):
        """Closes with 1009 on a frame over API Gateway's 32 KB, as API Gateway does."""

        def handle_text(self, event: Any) -> None:
            if not self._too_big(event):
                super().handle_text(event)

        def handle_bytes(self, event: Any) -> None:
            if not self._too_big(event):
                super().handle_bytes(event)

        def handle_cont(self, event: Any) -> None:
            if not self._too_big(event):
                super().handle_cont(event)

        def _too_big(self, event: Any) -> bool:
            if self.close_sent:
                return True  # already closing: drop what is still parsed
            if len(event.data) <= MAX_FRAME_BYTES:
                return False
            reason = f"frame over {MAX_FRAME_BYTES // 1024} KB"
            self.conn.fail(CLOSE_TOO_BIG, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": CLOSE_TOO_BIG, "reason": reason}
            )
            self.close_sent = True
            self.transport.close()
            return True

    return TimedHeadH11, FrameLimitedWebSockets
