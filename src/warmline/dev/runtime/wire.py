"""Framing between the emulator and its environments: length-prefixed JSON.

Each environment keeps one persistent stream socket to the emulator: a process or a
reconnect per invocation is what makes emulators slow (docs/performance.md, "Inside the
emulator"). A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. Length
prefixes (not newlines) let a result embed the handler's JSON text verbatim, so the return
value is serialised exactly once, by the same ``json.dumps`` Lambda's runtime uses.

This module is imported by the pre-started runtime process, so it is standard library only
and imports nothing asynchronous at module top.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import TYPE_CHECKING, Any

from warmline.errors import RemoteProtocolError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Mapping

    from warmline.dev.timers import FixedDelayTimers, Timer

__all__ = [
    "HEADER",
    "MAX_FRAME_BYTES",
    "MAX_RESPONSE_BYTES",
    "AsyncChannel",
    "FrameError",
    "SyncChannel",
    "dumps",
    "encode",
    "frame",
]

HEADER = struct.Struct("!I")
#: Largest synchronous invocation response (docs/protocols.md §3.4: 6 MB request/response).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
#: Largest frame accepted. Lambda's synchronous payload limit is 6 MB each way
#: (docs/protocols.md §3.4); a little headroom for the envelope and error traces.
MAX_FRAME_BYTES = 8 * 1024 * 1024


def frame(data: bytes) -> bytes:
    """Prefix ``data`` with its length.

    Args:
        data: the frame body (UTF-8 JSON).

    Returns:
        The bytes to write.
    """
    return HEADER.pack(len(data)) + data


def dumps(message: Mapping[str, Any]) -> bytes:
    """A frame's body: compact UTF-8 JSON.

    Raises:
        TypeError: something in ``message`` is not JSON-able.
    """
    return json.dumps(message, separators=(",", ":")).encode()


def encode(message: dict[str, Any]) -> bytes:
    """Serialise one message into a frame.

    Args:
        message: a JSON-able dict.

    Returns:
        The framed bytes.
    """
    return frame(dumps(message))


class FrameError(RemoteProtocolError):
    """A frame over :data:`MAX_FRAME_BYTES` or not a JSON object: the peer is broken."""


class SyncChannel:
    """The environment's side: blocking reads and writes on its one socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._reader = sock.makefile("rb")

    def recv(self) -> dict[str, Any] | None:
        """Read one message.

        Returns:
            The message, or ``None`` at end of stream (the emulator went away).

        Raises:
            FrameError: on an oversize or malformed frame.
        """
        head = self._reader.read(HEADER.size)
        if len(head) < HEADER.size:
            return None
        (size,) = HEADER.unpack(head)
        if size > MAX_FRAME_BYTES:
            raise FrameError(f"frame of {size} bytes")
        body = self._reader.read(size)
        if len(body) < size:
            return None
        message = json.loads(body.decode())
        if not isinstance(message, dict):
            raise FrameError("frame is not a JSON object")
        return message

    def fileno(self) -> int:
        """The socket's descriptor (to wait on it with ``select``)."""
        return self._sock.fileno()

    def send_bytes(self, data: bytes) -> None:
        """Write an already framed message."""
        self._sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        """Write one message."""
        self._sock.sendall(encode(message))


class AsyncChannel:
    """The emulator's side: the same frames over a non-blocking socket on an event loop.

    The socket stays registered with the loop for its whole life and every readable event
    parses what arrived, handing a message to the one waiting :meth:`recv` (or keeping it
    for the next). That is one callback per frame and no Task, future-per-read or
    reader (un)registration per invocation, which is what ``loop.sock_recv`` under
    ``asyncio.wait_for`` cost: bench/emulator_vs_offline.py's profile had it at a tenth of
    the emulator's CPU per echo.
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        from collections import deque

        sock.setblocking(False)
        self.sock = sock
        self._loop = loop
        self._buf = bytearray()
        #: parsed frames nobody asked for yet; None marks the end of the stream.
        self._ready: deque[dict[str, Any] | Exception | None] = deque()
        self._waiter: asyncio.Future[dict[str, Any] | Exception | None] | None = None
        self._fd = sock.fileno()
        self._ended = False
        #: messages parsed that no :meth:`recv` has returned yet (a result the invocation's
        #: coroutine has not woken up for: the environment has in fact finished).
        self.unconsumed = 0
        #: takes the next message (or exception, or None at the end) in place of a
        #: :meth:`recv`, inside the read callback: a warm invocation waits this way, with
        #: no Task or future (``Runtime.invoke_soon``). Cleared before it is called.
        self.on_message: Callable[[dict[str, Any] | Exception | None], None] | None = None
        loop.add_reader(self._fd, self._readable)

    @property
    def fd(self) -> int:
        """The socket's descriptor."""
        return self._fd

    @property
    def quiet(self) -> bool:
        """Nothing parsed and waiting, and not at its end: :attr:`on_message` may wait."""
        return not self._ready and not self._ended

    def read_now(self) -> None:
        """Take what the socket holds now, ahead of the loop noticing it."""
        if not self._ended:
            self._readable()

    def _readable(self) -> None:
        try:
            chunk = self.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._end(None)
            return
        buf = self._buf
        buf += chunk
        while len(buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(buf)
            if size > MAX_FRAME_BYTES:
                self._end(FrameError(f"frame of {size} bytes"))
                return
            end = HEADER.size + size
            if len(buf) < end:
                return
            body = bytes(buf[HEADER.size : end])
            del buf[:end]
            try:
                message: dict[str, Any] | Exception = json.loads(body.decode())
            except ValueError as exc:
                message = FrameError(f"frame is not JSON: {exc}")
            if not isinstance(message, dict | Exception):
                message = FrameError("frame is not a JSON object")
            self._deliver(message)

    def _end(self, last: Exception | None) -> None:
        if not self._ended:
            self._ended = True
            self._loop.remove_reader(self._fd)
            self._deliver(last)

    def _deliver(self, item: dict[str, Any] | Exception | None) -> None:
        callback = self.on_message
        if callback is not None:
            self.on_message = None
            callback(item)
            return
        if item is not None:
            self.unconsumed += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(item)
        else:
            self._ready.append(item)

    async def recv(
        self, timeout: float | None = None, *, timers: FixedDelayTimers | None = None
    ) -> dict[str, Any] | None:
        """Read one message.

        Args:
            timeout: seconds to wait at most (None: no limit).
            timers: wait at most their delay instead, on their queue (the function
                timeout of a warm invocation; see :mod:`warmline.dev.timers`).

        Returns:
            The message, or ``None`` at end of stream (the environment died).

        Raises:
            FrameError: on an oversize or malformed frame.
            TimeoutError: nothing arrived within ``timeout``.
        """
        if self._ready:
            item = self._ready.popleft()
        elif self._ended:
            item = None
        else:
            loop = self._loop
            waiter: asyncio.Future[dict[str, Any] | Exception | None] = loop.create_future()
            self._waiter = waiter
            timer: asyncio.TimerHandle | Timer | None = None
            if timers is not None:
                timer = timers.call_later(_expire, waiter)
            elif timeout is not None:
                timer = loop.call_later(timeout, _expire, waiter)
            try:
                item = await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                if self._waiter is waiter:
                    self._waiter = None
        if item is not None:
            self.unconsumed -= 1
        if isinstance(item, Exception):
            raise item
        return item

    async def send(self, message: dict[str, Any]) -> None:
        """Write one message.

        Raises:
            ConnectionError: the environment is gone.
        """
        await self._loop.sock_sendall(self.sock, encode(message))

    async def send_bytes(self, data: bytes) -> None:
        """Write an already framed message.

        Raises:
            ConnectionError: the environment is gone.
        """
        await self._loop.sock_sendall(self.sock, data)

    def close(self) -> None:
        """Close the socket (idempotent); a waiting :meth:`recv` gets the end of stream."""
        self._end(None)
        self.sock.close()


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
