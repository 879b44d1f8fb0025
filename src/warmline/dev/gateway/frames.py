"""WebSocket framing (RFC 6455), sans-I/O, with API Gateway's size rules.

Own codec rather than websockets' ``ServerProtocol`` because API Gateway judges each frame
(32 KB) separately from the message (128 KB) and closes with 1009 on either, and closes with
1003 on a binary message (docs/protocols.md §2.1); the codec must see the frame header before the
payload arrives to reject an oversize frame at once. Masking uses websockets' C speedup.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - pure Python fallback
    from websockets.utils import apply_mask

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Frame",
    "FrameReader",
    "ProtocolViolation",
    "accept_key",
    "encode_close",
    "encode_frame",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DATA_OPS = (OP_CONT, OP_TEXT, OP_BINARY)
_CONTROL_OPS = (OP_CLOSE, OP_PING, OP_PONG)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: RFC 6455 close codes used here.
CLOSE_PROTOCOL_ERROR = 1002


class ProtocolViolation(Exception):
    """The client broke the WebSocket protocol or a size rule; close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame."""

    fin: bool
    opcode: int
    payload: bytes


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A single unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def encode_close(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and reason."""
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123])


class FrameReader:
    """Incremental frame parser: ``feed(bytes)`` then ``next_frame()`` until ``None``.

    Args:
        max_frame_bytes: a frame whose payload is larger raises 1009 (from its header).
        max_message_bytes: a message whose frames add up to more raises 1009.
    """

    def __init__(self, max_frame_bytes: int, max_message_bytes: int) -> None:
        self._buf = bytearray()
        self._max_frame = max_frame_bytes
        self._max_message = max_message_bytes
        self._message_size = 0
        self._in_message = False

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None when more bytes are needed.

        Raises:
            ProtocolViolation: unmasked frame, bad opcode or sequence, or a size limit.
        """
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        fin, opcode = bool(b0 & 0x80), b0 & 0x0F
        if b0 & 0x70:
            raise ProtocolViolation(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        if not b1 & 0x80:
            raise ProtocolViolation(CLOSE_PROTOCOL_ERROR, "unmasked client frame")
        length = b1 & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, 2)
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, 2)
            pos = 10
        if opcode in _CONTROL_OPS:
            if length > 125 or not fin:
                raise ProtocolViolation(CLOSE_PROTOCOL_ERROR, "bad control frame")
        elif opcode in _DATA_OPS:
            self._check_data(opcode, length)
        else:
            raise ProtocolViolation(CLOSE_PROTOCOL_ERROR, "unknown opcode")
        end = pos + 4 + length
        if len(buf) < end:
            return None
        mask = bytes(buf[pos : pos + 4])
        payload = apply_mask(bytes(buf[pos + 4 : end]), mask)
        del buf[:end]
        if opcode in _DATA_OPS:
            self._in_message = not fin
            self._message_size = 0 if fin else self._message_size + length
        return Frame(fin, opcode, payload)

    def _check_data(self, opcode: int, length: int) -> None:
        if opcode == OP_CONT and not self._in_message:
            raise ProtocolViolation(CLOSE_PROTOCOL_ERROR, "unexpected continuation frame")
        if opcode != OP_CONT and self._in_message:
            raise ProtocolViolation(CLOSE_PROTOCOL_ERROR, "expected continuation frame")
        if length > self._max_frame:
            raise ProtocolViolation(1009, "Frame too big")
        if self._message_size + length > self._max_message:
            raise ProtocolViolation(1009, "Message too big")
