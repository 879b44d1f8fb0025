"""The socket side: one port for ws://, wss://, http:// and https://.

Each accepted socket is peeked at: a first byte of 0x16 is a TLS ClientHello, so the socket
is wrapped in TLS; anything else is plain HTTP. That lets an unmodified handler build its
``@connections`` endpoint as ``"https://" + domainName + "/" + stage`` (as AWS's samples do)
while local clients use plain ``ws://``. Every socket then speaks HTTP/1.1 until a WebSocket
upgrade switches it to frames (:class:`GatewayProtocol`). Each request passes the
listener's :class:`~warmline.dev.gateway.access.AccessPolicy` first (the Host header, the
control endpoints), WebSocket upgrades included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import TYPE_CHECKING, cast

from warmline.dev.gateway.http import DROP, HttpError, Request, RequestParser, Response
from warmline.dev.gateway.web import EventStream
from warmline.dev.gateway.websocket import WebSocketConnection

if TYPE_CHECKING:
    from warmline.dev.gateway.access import AccessPolicy
    from warmline.dev.gateway.gateway import Gateway

__all__ = ["GatewayProtocol", "Listener"]

TLS_HANDSHAKE = 0x16
#: A client that connects and sends nothing is dropped after this.
FIRST_BYTE_TIMEOUT_S = 30.0


class GatewayProtocol(asyncio.Protocol):
    """HTTP/1.1 (keep-alive, one request at a time) that may become a WebSocket."""

    def __init__(self, gateway: Gateway, *, tls: bool, policy: AccessPolicy | None = None) -> None:
        self.gateway = gateway
        self.tls = tls
        self.policy = policy
        self.transport: asyncio.Transport | None = None
        self.ws: WebSocketConnection | None = None
        self.peer_ip = "127.0.0.1"
        self.peer_port = 0
        self._parser = RequestParser()
        self._busy = False
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses; they quack alike)
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer_ip, self.peer_port = str(peer[0]), int(peer[1])
        self.gateway.protocols.add(self)

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.data_received(data)
            return
        self._parser.feed(data)
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.gateway.protocols.discard(self)
        if self.ws is not None:
            self.ws.connection_lost()

    @property
    def lost(self) -> bool:
        """The socket is closed."""
        return self._lost

    def abort(self) -> None:
        """Drop the socket now (server shutdown)."""
        if self.transport is not None:
            self.transport.abort()

    def _next(self) -> None:
        while not (self._busy or self._lost or self.ws is not None):
            try:
                request = self._parser.next_request()
            except HttpError as exc:
                self._write(Response(exc.status, str(exc).encode()), keep_alive=False)
                return
            if request is None:
                return
            if self.policy is not None:
                refusal = self.policy.check(request, self.peer_ip)
                if refusal is not None:
                    # A refused request closes the socket: a rebinding page gets no reuse.
                    self._write(refusal, keep_alive=refusal.status < 400 and request.keep_alive)
                    continue
            if (request.header("Upgrade") or "").lower() != "websocket":
                response = self.gateway.handle_http_now(request)
                if response is not None:  # served in place: no task on the hot path
                    self._write(response, keep_alive=request.keep_alive)
                    continue
            self._busy = True
            self.gateway.spawn(self._serve(request))

    async def _serve(self, request: Request) -> None:
        if (request.header("Upgrade") or "").lower() == "websocket":
            self.ws = await self.gateway.upgrade(self, request)
            if self.ws is not None:
                rest = self._parser.take_rest()
                if rest:
                    self.ws.data_received(rest)
            return
        response = await self.gateway.handle_http(request, tls=self.tls, peer_ip=self.peer_ip)
        if response is DROP:  # an injected fault: no answer, the socket is reset
            self._lost = True
            self.abort()
            return
        if isinstance(response, EventStream):
            # Server-sent events (the dashboard): the socket stays on this stream.
            self.write_raw(response.head())
            try:
                await response.run(self._write_stream, self._stream_gone)
            finally:
                if self.transport is not None and not self._lost:
                    self.transport.close()
                self._lost = True
            return
        self._write(response, keep_alive=request.keep_alive)
        self._busy = False
        self._next()

    def _write(self, response: Response, *, keep_alive: bool) -> None:
        if self.transport is None or self._lost:
            return
        self.transport.write(response.encode(keep_alive=keep_alive))
        if not keep_alive:
            self.transport.close()
            self._lost = True

    def _stream_gone(self) -> bool:
        return self._lost or self.transport is None or self.transport.is_closing()

    def _write_stream(self, data: bytes) -> None:
        if not self._stream_gone():
            self.write_raw(data)

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are (the 101 response)."""
        if self.transport is not None and not self._lost:
            self.transport.write(data)

    def reject(self, response: Response) -> None:
        """Answer a refused upgrade and close."""
        self._write(response, keep_alive=False)


class Listener:
    """Accepts sockets on one port and hands each to a :class:`GatewayProtocol`.

    Args:
        gateway: serves the requests.
        ssl_context: server-side TLS for sockets that start with a ClientHello
            (None: plain only).
        policy: checks every request before it is served (None: none is checked).
    """

    def __init__(
        self,
        gateway: Gateway,
        ssl_context: ssl.SSLContext | None,
        policy: AccessPolicy | None = None,
    ) -> None:
        self._gateway = gateway
        self.ssl_context = ssl_context
        self.policy = policy
        #: the bound address (after :meth:`bind`): ``0.0.0.0``, ``127.0.0.1``, ``::``...
        self.address = ""
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: set[socket.socket] = set()

    def bind(self, host: str, port: int) -> int:
        """Bind and listen; returns the port (useful with port 0)."""
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(info[4])
        except OSError:
            sock.close()
            raise
        sock.listen(512)
        sock.setblocking(False)
        self._sock = sock
        self.address = str(sock.getsockname()[0])
        return int(sock.getsockname()[1])

    def start(self) -> None:
        """Start accepting (after :meth:`bind`)."""
        self._task = asyncio.get_running_loop().create_task(self._accept_loop())

    async def close(self) -> None:
        """Stop accepting and close the listening socket."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sock is not None:
            self._sock.close()
        for sock in list(self._pending):
            sock.close()

    async def _accept_loop(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError:
                if self._sock.fileno() < 0:
                    return
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pending.add(conn)
            self._gateway.spawn(self._setup(conn))

    async def _setup(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        handed_over = False
        try:
            try:
                first = await asyncio.wait_for(_peek(loop, conn), FIRST_BYTE_TIMEOUT_S)
            except (TimeoutError, OSError):
                return
            tls = bool(first) and first[0] == TLS_HANDSHAKE and self.ssl_context is not None
            self._pending.discard(conn)  # from here on it is ours to close, not close()'s
            with contextlib.suppress(OSError, ssl.SSLError):
                await loop.connect_accepted_socket(
                    lambda: GatewayProtocol(self._gateway, tls=tls, policy=self.policy),
                    conn,
                    ssl=self.ssl_context if tls else None,
                )
                handed_over = True
        finally:
            # Also when shutdown cancels us mid-handshake: a socket accepted just before
            # close() must not outlive the server (a ResourceWarning in the tests).
            self._pending.discard(conn)
            if not handed_over:
                conn.close()


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The first byte without consuming it (empty at EOF)."""
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def _readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, _readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    return conn.recv(1, socket.MSG_PEEK)
