"""The event-stream decoder, with botocore's decoder as the oracle for the test frames."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st
from provider_servers import _header, converse_answer, event, exception, frame, string_header

from warmline.agent.providers.eventstream import (
    MAX_HEADERS_BYTES,
    EventStreamDecoder,
    EventStreamError,
)

UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
ALL_TYPES = (
    _header("t", 0, b"")
    + _header("f", 1, b"")
    + _header("i8", 2, struct.pack(">b", -5))
    + _header("i16", 3, struct.pack(">h", -300))
    + _header("i32", 4, struct.pack(">i", 70_000))
    + _header("i64", 5, struct.pack(">q", -(2**40)))
    + _header("bytes", 6, struct.pack(">H", 3) + b"\x00\x01\x02")
    + string_header("str", "héllo")
    + _header("ts", 8, struct.pack(">q", 1_790_000_000_123))
    + _header("uuid", 9, UUID.bytes)
)
EXPECTED_HEADERS = {
    "t": True,
    "f": False,
    "i8": -5,
    "i16": -300,
    "i32": 70_000,
    "i64": -(2**40),
    "bytes": b"\x00\x01\x02",
    "str": "héllo",
    "ts": 1_790_000_000_123,
    "uuid": UUID.bytes,
}


def botocore_messages(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(m.headers, m.payload) for m in buffer]  # type: ignore[misc]


def test_every_header_type_decodes() -> None:
    (message,) = EventStreamDecoder().feed(frame(ALL_TYPES, b"payload"))
    assert message.headers == EXPECTED_HEADERS
    assert message.payload == b"payload"
    # botocore reads the same frame (timestamps and UUIDs in its own types)
    ((headers, payload),) = botocore_messages(frame(ALL_TYPES, b"payload"))
    assert payload == b"payload"
    assert {k: headers[k] for k in ("t", "f", "i8", "i16", "i32", "i64", "str")} == {
        k: EXPECTED_HEADERS[k] for k in ("t", "f", "i8", "i16", "i32", "i64", "str")
    }


def test_the_test_servers_frames_agree_with_botocore_and_with_the_decoder() -> None:
    stream = b"".join(converse_answer(["Hello", " there."])) + exception("throttlingException", "x")
    ours = [(m.headers, m.payload) for m in EventStreamDecoder().feed(stream)]
    assert ours == botocore_messages(stream)
    assert [h[":event-type"] for h, _ in ours[:-1]] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert ours[-1][0][":message-type"] == "exception"


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_any_cuts_give_the_same_messages(cuts: list[int]) -> None:
    stream = b"".join(converse_answer(["One", " two", " three."]))
    whole = EventStreamDecoder().feed(stream)
    decoder = EventStreamDecoder()
    got = []
    start = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        got += decoder.feed(stream[start:cut])
        start = cut
    assert got == whole and decoder.pending == 0


def test_a_corrupted_payload_fails_the_message_crc() -> None:
    data = bytearray(event("contentBlockDelta", {"delta": {"text": "hi"}}))
    data[-6] ^= 0x01  # a payload byte
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(data))


def test_a_corrupted_length_fails_the_prelude_crc() -> None:
    data = bytearray(event("messageStop", {"stopReason": "end_turn"}))
    data[3] ^= 0x01
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(data))


def test_impossible_lengths_are_refused() -> None:
    def prelude(total: int, headers: int) -> bytes:
        raw = struct.pack(">II", total, headers)
        return raw + struct.pack(">I", zlib.crc32(raw))

    with pytest.raises(EventStreamError, match="too small"):
        EventStreamDecoder().feed(prelude(10, 0))
    with pytest.raises(EventStreamError, match="headers of"):
        EventStreamDecoder().feed(prelude(MAX_HEADERS_BYTES + 100, MAX_HEADERS_BYTES + 1))


def test_bad_headers_are_refused() -> None:
    with pytest.raises(EventStreamError, match="unknown header type"):
        EventStreamDecoder().feed(frame(_header("x", 10, b""), b""))
    with pytest.raises(EventStreamError, match="past the headers"):
        EventStreamDecoder().feed(frame(_header("x", 7, struct.pack(">H", 50) + b"ab"), b""))
    with pytest.raises(EventStreamError, match="malformed headers"):
        EventStreamDecoder().feed(frame(_header("x", 4, b"\x00"), b""))


def test_a_partial_message_is_held() -> None:
    data = event("messageStop", {"stopReason": "end_turn"})
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:-1]) == []
    assert decoder.pending == len(data) - 1
    assert len(decoder.feed(data[-1:])) == 1 and decoder.pending == 0
