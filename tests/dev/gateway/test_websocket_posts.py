"""WebSocketConnection.post: queued to the end of the loop pass, never reordered.

Over a real socket pair: the server side is an asyncio transport, the client side a plain
socket whose bytes are decoded with the emulator's own frame reader.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from warmline.dev.gateway.events import ConnectionInfo
from warmline.dev.gateway.frames import OP_BINARY, OP_CLOSE, OP_TEXT
from warmline.dev.gateway.websocket import WebSocketConnection


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


class _Pair:
    def __init__(self) -> None:
        self.server_sock, self.client = socket.socketpair()
        self.client.setblocking(False)
        self.flushes: list[WebSocketConnection] = []
        self.ws: WebSocketConnection | None = None

    async def open(self) -> WebSocketConnection:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, self.server_sock)
        info = ConnectionInfo("cid", 0, "127.0.0.1", None, "localhost", "dev", "local")
        self.ws = WebSocketConnection(
            transport,
            info,
            max_frame_bytes=32 * 1024,
            max_message_bytes=128 * 1024,
            idle_timeout_s=60,
            max_connection_s=60,
            on_message=lambda _ws, _text: None,
            on_closed=lambda _ws, _code, _reason: None,
            flush_soon=self.flushes.append,
        )
        return self.ws

    async def frames(self) -> list[tuple[int, bytes]]:
        """Every frame the client side has received so far (a transport's write of a
        few bytes into an empty buffer reaches the socket before ``write`` returns)."""
        try:
            data = self.client.recv(1 << 20)
        except BlockingIOError:
            return []
        found, at = [], 0
        while at < len(data):  # server frames: unmasked (RFC 6455 §5.1)
            opcode, size = data[at] & 0x0F, data[at + 1] & 0x7F
            at += 2
            if size >= 126:
                width = 2 if size == 126 else 8
                size = int.from_bytes(data[at : at + width], "big")
                at += width
            found.append((opcode, data[at : at + size]))
            at += size
        return found

    def close(self) -> None:
        if self.ws is not None:
            self.ws.transport.abort()
        self.client.close()


def test_posts_wait_for_flush_and_go_out_in_order_in_one_write() -> None:
    async def main() -> None:
        pair = _Pair()
        ws = await pair.open()
        try:
            ws.post(b"one", text=True)
            ws.post(b"\xff", text=False)
            ws.post(b"three", text=True)
            assert pair.flushes == [ws]  # asked once, for the first queued post
            assert ws.write_buffer_size() > 0  # queued bytes count toward the 429 limit
            assert await pair.frames() == []
            ws.flush()
            assert await pair.frames() == [
                (OP_TEXT, b"one"),
                (OP_BINARY, b"\xff"),
                (OP_TEXT, b"three"),
            ]
            ws.flush()  # nothing queued: nothing written
            assert await pair.frames() == []
        finally:
            pair.close()

    _run(main())


def test_any_other_write_first_writes_the_queued_posts() -> None:
    async def main() -> None:
        pair = _Pair()
        ws = await pair.open()
        try:
            ws.post(b"posted", text=True)
            ws.send_text("route response")
            assert await pair.frames() == [(OP_TEXT, b"posted"), (OP_TEXT, b"route response")]
            ws.post(b"before close", text=True)
            ws.close(1000, "bye")
            frames = await pair.frames()
            assert frames[0] == (OP_TEXT, b"before close")
            assert frames[1][0] == OP_CLOSE
            ws.post(b"after close", text=True)  # ignored once closing
            ws.flush()
            assert await pair.frames() == []
        finally:
            pair.close()

    _run(main())


def test_without_flush_soon_a_post_is_written_at_once() -> None:
    async def main() -> None:
        pair = _Pair()
        ws = await pair.open()
        ws._flush_soon = None
        try:
            ws.post(b"now", text=True)
            assert await pair.frames() == [(OP_TEXT, b"now")]
        finally:
            pair.close()

    _run(main())
