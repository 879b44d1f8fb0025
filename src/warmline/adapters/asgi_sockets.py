"""The ``ConnectionClient`` of container mode: posts go straight onto the open sockets.

On AWS a handler sends through the ``@connections`` API; in ``warmline serve`` the server
holds the sockets itself, so a post is put on the socket's send queue in-process. The
rules an app relies on stay the same (docs/protocols.md §2.4): an unknown or closed id raises
:class:`ConnectionGoneError` (410), a body over ``MAX_POST_BYTES`` raises
:class:`PayloadTooLargeError` (413) and nothing is sent.

Handlers run in worker threads (``App.handle`` is synchronous), and a socket belongs to
the event loop that accepted it, so :meth:`SocketRegistry.post` hands the frame over with
``loop.call_soon_threadsafe``: frames posted by one thread keep their order.

Several instances behind one load balancer: a post for a socket this instance does not
hold goes to a :class:`Router` (:mod:`warmline.adapters.asgi_redis`), which forwards it
to the instance that does. Standard library only.
"""

from __future__ import annotations

import time
from _thread import allocate_lock  # threading.Lock without importing threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from warmline.core.limits import MAX_POST_BYTES
from warmline.core.ports import ConnectionInfo
from warmline.errors import ConnectionGoneError, PayloadTooLargeError

if TYPE_CHECKING:
    import asyncio

__all__ = ["CLOSE", "Router", "SocketRegistry"]

#: What a send queue carries to close its socket with 1000 (``DeleteConnection``); an
#: ``int`` in the queue closes with that code instead.
CLOSE = None


class Router(Protocol):
    """Where posts for sockets held by other instances go (a Redis pub/sub router)."""

    def claim(self, connection_id: str) -> None:
        """Record that this instance holds ``connection_id``."""
        ...

    def release(self, connection_id: str) -> None:
        """Forget ``connection_id`` (it closed here)."""
        ...

    def forward(self, connection_id: str, op: str, data: bytes) -> None:
        """Send ``op`` (``post`` or ``delete``) to the instance that holds the socket.

        Raises:
            ConnectionGoneError: no live instance holds it.
        """
        ...


class _Socket:
    __slots__ = ("loop", "queue", "connected_at", "last_active_at", "source_ip", "user_agent")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[bytes | int | None],
        now: float,
        source_ip: str,
        user_agent: str,
    ) -> None:
        self.loop = loop
        self.queue = queue
        self.connected_at = now
        self.last_active_at = now
        self.source_ip = source_ip
        self.user_agent = user_agent


class SocketRegistry:
    """Open sockets of this instance, and a thread-safe ConnectionClient over them.

    Args:
        router: forwards posts for ids this instance does not hold (multi-instance).
        clock: wall-clock seconds, for ``connectedAt`` / ``lastActiveAt``.
    """

    def __init__(
        self, router: Router | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.router = router
        self._clock = clock
        self._sockets: dict[str, _Socket] = {}
        self._lock = allocate_lock()

    # --- the server's side ---------------------------------------------------------------
    def register(
        self,
        connection_id: str,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[bytes | int | None],
        *,
        source_ip: str = "",
        user_agent: str = "",
    ) -> None:
        """A socket was accepted: posts to ``connection_id`` now go to ``queue``.

        The router's claim is the caller's to make (it is network I/O: off the loop).
        """
        with self._lock:
            self._sockets[connection_id] = _Socket(
                loop, queue, self._clock(), source_ip, user_agent
            )

    def unregister(self, connection_id: str) -> None:
        """The socket closed: later posts raise ConnectionGoneError."""
        with self._lock:
            self._sockets.pop(connection_id, None)

    def touch(self, connection_id: str) -> None:
        """The client sent something (``lastActiveAt``)."""
        with self._lock:
            sock = self._sockets.get(connection_id)
            if sock is not None:
                sock.last_active_at = self._clock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)

    def holds(self, connection_id: str) -> bool:
        """True while ``connection_id`` is open on this instance."""
        with self._lock:
            return connection_id in self._sockets

    def deliver(self, connection_id: str, op: str, data: bytes) -> bool:
        """Apply a post or delete to a socket held here (also for the router's messages).

        Returns:
            False when this instance does not hold the socket.
        """
        with self._lock:
            sock = self._sockets.get(connection_id)
            if sock is None:
                return False
            if op == "post":
                sock.last_active_at = self._clock()
        item = data if op == "post" else CLOSE
        try:
            sock.loop.call_soon_threadsafe(sock.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server stopped
            return False
        return True

    # --- the ConnectionClient protocol -----------------------------------------------------
    def post(self, connection_id: str, data: bytes | str) -> None:
        """Send one message.

        Raises:
            ConnectionGoneError: unknown or closed connection (410).
            PayloadTooLargeError: over ``MAX_POST_BYTES`` (413); nothing is sent.
        """
        body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if len(body) > MAX_POST_BYTES:
            raise PayloadTooLargeError(
                f"{len(body)} bytes is over the {MAX_POST_BYTES}-byte PostToConnection limit",
                status=413,
            )
        self._send(connection_id, "post", body)

    def get(self, connection_id: str) -> ConnectionInfo:
        """Metadata of a socket held here (ISO 8601 UTC, as ``GetConnection`` answers).

        Raises:
            ConnectionGoneError: not open on this instance (410).
        """
        with self._lock:
            sock = self._sockets.get(connection_id)
            if sock is None:
                raise ConnectionGoneError(f"connection {connection_id!r} is gone", status=410)
            return ConnectionInfo(
                connected_at=_iso(sock.connected_at),
                last_active_at=_iso(sock.last_active_at),
                source_ip=sock.source_ip,
                user_agent=sock.user_agent,
            )

    def delete(self, connection_id: str) -> None:
        """Close the connection as ``DeleteConnection`` does.

        Raises:
            ConnectionGoneError: unknown or already closed (410).
        """
        self._send(connection_id, "delete", b"")

    def _send(self, connection_id: str, op: str, body: bytes) -> None:
        if self.deliver(connection_id, op, body):
            return
        if self.router is None:
            raise ConnectionGoneError(f"connection {connection_id!r} is gone", status=410)
        self.router.forward(connection_id, op, body)


def _iso(epoch_s: float) -> str:
    whole, millis = divmod(round(epoch_s * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"
