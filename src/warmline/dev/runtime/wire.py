"""Framing between the emulator and its environments: length-prefixed JSON.

Each environment keeps one persistent stream socket to the emulator (ANCHORS.md, last
section: a process per invocation or a reconnect per invocation is what makes emulators
slow). A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. Length
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

__all__ = [
    "HEADER",
    "MAX_FRAME_BYTES",
    "MAX_RESPONSE_BYTES",
    "AsyncChannel",
    "FrameError",
    "SyncChannel",
    "encode",
    "frame",
]

HEADER = struct.Struct("!I")
#: Largest synchronous invocation response (PROTOCOLS.md §3.4: 6 MB request/response).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
#: Largest frame accepted. Lambda's synchronous payload limit is 6 MB each way
#: (PROTOCOLS.md §3.4); a little headroom for the envelope and error traces.
MAX_FRAME_BYTES = 8 * 1024 * 1024


def frame(data: bytes) -> bytes:
    """Prefix ``data`` with its length.

    Args:
        data: the frame body (UTF-8 JSON).

    Returns:
        The bytes to write.
    """
    return HEADER.pack(len(data)) + data


def encode(message: dict[str, Any]) -> bytes:
    """Serialise one message into a frame.

    Args:
        message: a JSON-able dict.

    Returns:
        The framed bytes.
    """
    return frame(json.dumps(message, separators=(",", ":")).encode())


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
        message = json.loads(body)
        if not isinstance(message, dict):
            raise FrameError("frame is not a JSON object")
        return message

    def send_bytes(self, data: bytes) -> None:
        """Write an already framed message."""
        self._sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        """Write one message."""
        self._sock.sendall(encode(message))


class AsyncChannel:
    """The emulator's side: the same frames over a non-blocking socket on an event loop.

    Uses ``loop.sock_recv`` / ``loop.sock_sendall`` directly (no stream transports), so
    closing is just closing the socket.
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._loop = loop
        self._buf = bytearray()

    async def recv(self) -> dict[str, Any] | None:
        """Read one message.

        Returns:
            The message, or ``None`` at end of stream (the environment died).

        Raises:
            FrameError: on an oversize or malformed frame.
        """
        buf = self._buf
        while True:
            if len(buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(buf)
                if size > MAX_FRAME_BYTES:
                    raise FrameError(f"frame of {size} bytes")
                end = HEADER.size + size
                if len(buf) >= end:
                    body = bytes(buf[HEADER.size : end])
                    del buf[:end]
                    message = json.loads(body)
                    if not isinstance(message, dict):
                        raise FrameError("frame is not a JSON object")
                    return message
            try:
                chunk = await self._loop.sock_recv(self.sock, 256 * 1024)
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not chunk:
                return None
            buf += chunk

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
        """Close the socket (idempotent)."""
        self.sock.close()
