"""One open WebSocket connection: frames in, frames out, timers, close handshake.

Kept free of routing and Lambda: incoming text messages go to ``on_message``, the end of the
connection (whoever closed it) goes once to ``on_closed(code, reason)``, which is where the
gateway fires ``$disconnect``. The rules are API Gateway's (docs/protocols.md §2.1, §2.5):
binary message -> close 1003; frame > 32 KB or message > 128 KB -> close 1009; no data
message in either direction for the idle timeout -> close; connection older than the
maximum -> close (both 1001 "Going away" [inf: AWS's exact code is unpublished]). Data
frames from the client and messages to it (``@connections`` posts, error frames) count as
activity (§8.6); pings and pongs do not, so a client library's automatic pings do not keep
an idle connection alive.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

from warmline.core import limits
from warmline.dev.gateway.events import ConnectionInfo
from warmline.dev.gateway.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    ProtocolViolation,
    encode_close,
    encode_frame,
)

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_NO_STATUS", "GOING_AWAY_REASON", "WebSocketConnection"]

#: Close code for the idle / maximum duration timers and DeleteConnection [inf].
CLOSE_GOING_AWAY = 1001
GOING_AWAY_REASON = "Going away"
#: Reported as disconnectStatusCode when the socket ended without a close frame.
CLOSE_ABNORMAL = 1006
#: A close frame without a status code (RFC 6455 §7.1.5).
CLOSE_NO_STATUS = 1005
#: How long to wait for the client's close frame before dropping the socket.
CLOSE_GRACE_S = 2.0


class WebSocketConnection:
    """The server side of one established connection.

    Args:
        transport: the socket's transport (already switched to WebSocket).
        info: the connection's facts, repeated in every event.
        max_frame_bytes / max_message_bytes: the 1009 limits.
        idle_timeout_s / max_connection_s: the close timers.
        on_message: called with each complete text message.
        on_closed: called once with (code, reason) when the connection ends.
        flush_soon: called when :meth:`post` queues a first frame; the caller calls
            :meth:`flush` later in the same loop pass (None: posts are written at once).
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        info: ConnectionInfo,
        *,
        max_frame_bytes: int,
        max_message_bytes: int,
        idle_timeout_s: float,
        max_connection_s: float,
        on_message: Callable[[WebSocketConnection, str], None],
        on_closed: Callable[[WebSocketConnection, int, str], None],
        flush_soon: Callable[[WebSocketConnection], None] | None = None,
    ) -> None:
        self.transport = transport
        self._flush_soon = flush_soon
        #: frames of :meth:`post` not written yet, and their size.
        self._queued: list[bytes] = []
        self._queued_bytes = 0
        self.info = info
        #: the same instant as the events' ``connectedAt`` (GetConnection returns both).
        self.connected_at = info.connected_at_ms / 1000.0
        self.last_active_at = time.time()
        self._reader = FrameReader(max_frame_bytes, max_message_bytes)
        self._fragments: list[bytes] = []
        self._on_message = on_message
        self._on_closed = on_closed
        self._idle_timeout_s = idle_timeout_s
        self._closing = False
        self._finished = False
        loop = asyncio.get_running_loop()
        self._max_timer = loop.call_later(max_connection_s, self._expire, "max")
        self._idle_timer: asyncio.TimerHandle | None = loop.call_later(
            idle_timeout_s, self._check_idle
        )
        self._grace_timer: asyncio.TimerHandle | None = None

    @property
    def connection_id(self) -> str:
        """The API Gateway connection id."""
        return self.info.connection_id

    @property
    def open(self) -> bool:
        """True until a close started."""
        return not self._closing and not self._finished

    def write_buffer_size(self) -> int:
        """Bytes queued to the client and not yet sent (for 429 on PostToConnection)."""
        return self.transport.get_write_buffer_size() + self._queued_bytes

    # --- outgoing -------------------------------------------------------------------------

    def post(self, data: bytes, *, text: bool) -> None:
        """Send a ``@connections`` post: a text (UTF-8, already checked) or binary message.

        Written at the end of the loop pass (see ``flush_soon``), after the poster's
        ``200``: the function gets its answer first and can return while the client is
        still reading, as over a real network, where the client is milliseconds away.
        Served the other way round on loopback, the client's next message often arrived
        while the function had not yet returned, and scaled out to a new environment. A
        pass's posts to one connection go out in one write. Ignored once closing.
        """
        if not self.open:
            return
        self.last_active_at = time.time()  # a message to the client is activity (§8.6)
        chunk = encode_frame(OP_TEXT if text else OP_BINARY, data)
        if self._flush_soon is None:
            self.transport.write(chunk)
            return
        if not self._queued:
            self._flush_soon(self)
        self._queued.append(chunk)
        self._queued_bytes += len(chunk)

    def flush(self) -> None:
        """Write the queued posts (every other write does this first, to keep the order)."""
        if self._queued:
            chunks = self._queued
            self._queued = []
            self._queued_bytes = 0
            self.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def send_text(self, text: str) -> None:
        """Send a text message (one frame); ignored once closing."""
        if self.open:
            self.last_active_at = time.time()
            self.flush()
            self.transport.write(encode_frame(OP_TEXT, text.encode()))

    def close(self, code: int, reason: str) -> None:
        """Start the close handshake; ``on_closed`` fires now with our code."""
        if not self.open:
            return
        self.flush()
        self._closing = True
        self.transport.write(encode_close(code, reason))
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(CLOSE_GRACE_S, self.transport.abort)
        self._finish(code, reason)

    def abort(self) -> None:
        """Reset the TCP connection, no close frame (the client.abort fault: a caller whose
        network vanished); ``on_closed`` fires with 1006 when the socket is gone."""
        self._queued = []
        self._queued_bytes = 0
        self.transport.abort()

    # --- incoming -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed bytes from the socket; dispatch complete messages."""
        if self._finished and not self._closing:
            return
        self._reader.feed(data)
        while True:
            try:
                frame = self._reader.next_frame()
            except ProtocolViolation as exc:
                if self.open:
                    self.close(exc.code, exc.reason)
                else:
                    self.transport.abort()
                return
            if frame is None:
                return
            op = frame.opcode
            if op == OP_CLOSE:
                self._client_closed(frame.payload)
                return
            if self._closing:
                continue  # after our close frame, only the client's close matters
            if op == OP_PING:
                self.flush()
                self.transport.write(encode_frame(OP_PONG, frame.payload))
            elif op == OP_PONG:
                pass
            elif op == OP_BINARY:
                self.close(limits.CLOSE_UNSUPPORTED_DATA, "Binary frames are not supported")
                return
            else:
                self._data_frame(op, frame.fin, frame.payload)

    def _data_frame(self, op: int, fin: bool, payload: bytes) -> None:
        self.last_active_at = time.time()
        if not fin:
            self._fragments.append(payload)
            return
        if self._fragments:
            self._fragments.append(payload)
            payload = b"".join(self._fragments)
            self._fragments = []
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self.close(1007, "Invalid UTF-8")
            return
        self._on_message(self, text)

    def _client_closed(self, payload: bytes) -> None:
        if self._closing:
            self.transport.close()  # handshake complete
            return
        code, reason = CLOSE_NO_STATUS, ""
        if len(payload) >= 2:
            (code,) = struct.unpack("!H", payload[:2])
            reason = payload[2:].decode(errors="replace")
        self.flush()
        self._closing = True
        echo = encode_close(code) if code != CLOSE_NO_STATUS else encode_frame(OP_CLOSE, b"")
        self.transport.write(echo)
        self.transport.close()
        self._finish(code, reason)

    def connection_lost(self) -> None:
        """The socket is gone (after a handshake or abruptly)."""
        self._finish(CLOSE_ABNORMAL, "")
        if self._grace_timer is not None:
            self._grace_timer.cancel()

    # --- timers ---------------------------------------------------------------------------

    def _check_idle(self) -> None:
        self._idle_timer = None
        if not self.open:
            return
        remaining = self.last_active_at + self._idle_timeout_s - time.time()
        if remaining > 0:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(remaining, self._check_idle)
            return
        self._expire("idle")

    def _expire(self, _why: str) -> None:
        self.close(CLOSE_GOING_AWAY, GOING_AWAY_REASON)

    def _finish(self, code: int, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._max_timer.cancel()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._on_closed(self, code, reason)
