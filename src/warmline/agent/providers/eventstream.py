"""A sans-I/O decoder for the AWS event stream (``application/vnd.amazon.eventstream``).

Bedrock's ``ConverseStream`` (and Transcribe, S3 Select, Kinesis SubscribeToShard...)
stream binary messages. Each one is, big-endian::

    total length  uint32   the whole message, these 4 bytes and the final CRC included
    headers length uint32
    prelude CRC   uint32   CRC-32 of the 8 bytes above
    headers       ...      repeated: name length uint8, name (UTF-8), type uint8, value
    payload       ...      total - headers - 16 bytes
    message CRC   uint32   CRC-32 of everything before it

Header value types: 0 true and 1 false (no value), 2 int8, 3 int16, 4 int32, 5 int64,
6 bytes and 7 UTF-8 string (each after a uint16 length), 8 timestamp (int64 ms since the
epoch), 9 UUID (16 bytes). The CRC is the zlib / IEEE 802.3 CRC-32. Facts from the AWS
Transcribe streaming docs ("Setting up a streaming transcription", event stream
encoding) and botocore ``eventstream.py``, which also caps headers at 128 KiB and the
payload at 24 MiB; the tests check this decoder against botocore's.

Why write it: botocore's parser is the only other one, and importing botocore costs
~180 ms on a cold start (docs/protocols.md §6); this needs ``struct`` and ``zlib``.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

__all__ = [
    "MAX_HEADERS_BYTES",
    "MAX_PAYLOAD_BYTES",
    "EventStreamDecoder",
    "EventStreamError",
    "EventStreamMessage",
    "HeaderValue",
]

#: Prelude: total length, headers length, prelude CRC.
_PRELUDE = struct.Struct(">III")
#: Prelude plus the trailing message CRC.
_OVERHEAD = _PRELUDE.size + 4
#: botocore's limits (``_MAX_HEADERS_LENGTH``, ``_MAX_PAYLOAD_LENGTH``).
MAX_HEADERS_BYTES = 128 * 1024
MAX_PAYLOAD_BYTES = 24 * 1024 * 1024

#: A decoded header value (timestamps as int ms, UUIDs as 16 bytes).
HeaderValue = bool | int | bytes | str

_INTS = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
}
_U16 = struct.Struct(">H")
_TIMESTAMP = struct.Struct(">q")


class EventStreamError(ValueError):
    """A malformed message: bad CRC, impossible lengths, unknown header type."""


class EventStreamMessage(NamedTuple):
    """One decoded message.

    Attributes:
        headers: name -> value (``:message-type``, ``:event-type``, ``:content-type``,
            ``:exception-type``, ``:error-code``, ``:error-message``).
        payload: the raw payload (JSON for Bedrock).
    """

    headers: dict[str, HeaderValue]
    payload: bytes


class EventStreamDecoder:
    """Feed bytes as they arrive; get the messages they complete.

    Raises:
        EventStreamError: from :meth:`feed`, on a malformed message (the stream cannot
            be resynchronised after that: there are no markers between messages).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole message (non-zero at EOF = truncated)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        """The messages completed by ``data``, in order."""
        self._buffer += data
        messages: list[EventStreamMessage] = []
        while len(self._buffer) >= _PRELUDE.size:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if headers_len > MAX_HEADERS_BYTES:
                raise EventStreamError(f"headers of {headers_len} bytes (max {MAX_HEADERS_BYTES})")
            payload_len = total - headers_len - _OVERHEAD
            if payload_len < 0:
                raise EventStreamError(f"total length {total} too small for {headers_len}")
            if payload_len > MAX_PAYLOAD_BYTES:
                raise EventStreamError(f"payload of {payload_len} bytes (max {MAX_PAYLOAD_BYTES})")
            if len(self._buffer) < total:
                break
            message = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", message, total - 4)
            if zlib.crc32(message[: total - 4]) != message_crc:
                raise EventStreamError("message CRC mismatch")
            start = _PRELUDE.size
            headers = _headers(message[start : start + headers_len])
            messages.append(EventStreamMessage(headers, message[start + headers_len : total - 4]))
        return messages


def _headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    try:
        while pos < len(data):
            name_len = data[pos]
            name = data[pos + 1 : pos + 1 + name_len].decode("utf-8")
            pos += 1 + name_len
            kind = data[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _INTS:
                unpacker = _INTS[kind]
                (value,) = unpacker.unpack_from(data, pos)
                pos += unpacker.size
            elif kind in (6, 7):
                (length,) = _U16.unpack_from(data, pos)
                raw = data[pos + 2 : pos + 2 + length]
                if len(raw) != length:
                    raise EventStreamError("a header value runs past the headers")
                value = raw.decode("utf-8") if kind == 7 else raw
                pos += 2 + length
            elif kind == 8:
                (value,) = _TIMESTAMP.unpack_from(data, pos)
                pos += 8
            elif kind == 9:
                value = data[pos : pos + 16]
                if len(value) != 16:
                    raise EventStreamError("a UUID header runs past the headers")
                pos += 16
            else:
                raise EventStreamError(f"unknown header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from exc
    if pos != len(data):
        raise EventStreamError("headers overrun their length")
    return headers
