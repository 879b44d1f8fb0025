"""The frame codec (RFC 6455 framing with API Gateway's frame and message limits), edge by edge."""

from __future__ import annotations

import struct

import pytest

from warmline.dev.gateway.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    FrameReader,
    ProtocolViolation,
    encode_close,
    encode_frame,
)

MASK = b"\x37\xfa\x21\x3d"
KB = 1024


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """A client frame with a fixed mask, its length in the shortest form RFC 6455 allows."""
    first = (0x80 if fin else 0) | rsv | opcode
    bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, bit | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, bit | 127, n)
    if not masked:
        return header + payload
    return header + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def read_all(reader: FrameReader, data: bytes) -> list[Frame]:
    reader.feed(data)
    frames = []
    while (frame := reader.next_frame()) is not None:
        frames.append(frame)
    return frames


def violation(reader: FrameReader, data: bytes) -> ProtocolViolation:
    reader.feed(data)
    with pytest.raises(ProtocolViolation) as raised:
        while reader.next_frame() is not None:
            pass
    return raised.value


def api_gateway_reader() -> FrameReader:
    return FrameReader(32 * KB, 128 * KB)


# --- encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65_535, b"\x81\x7e\xff\xff"),
        (65_536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_server_frames_use_the_shortest_length_form(size: int, header: bytes) -> None:
    payload = b"x" * size
    assert encode_frame(OP_TEXT, payload) == header + payload


def test_a_server_frame_is_final_unmasked_and_carries_its_opcode() -> None:
    assert encode_frame(OP_PONG, b"hi") == b"\x8a\x02hi"
    assert encode_frame(OP_BINARY, b"") == b"\x82\x00"


def test_a_close_frame_carries_the_code_and_the_reason() -> None:
    assert encode_close(1009) == b"\x88\x02\x03\xf1"
    assert encode_close(1000, "bye") == b"\x88\x05\x03\xe8bye"


def test_a_close_reason_is_cut_so_the_frame_stays_a_control_frame() -> None:
    frame = encode_close(1001, "r" * 200)
    assert frame[:2] == b"\x88\x7d"  # 125 bytes: 2 for the code, 123 of reason
    assert frame[4:] == b"r" * 123


def test_a_protocol_violation_carries_its_close_code_and_reason() -> None:
    error = ProtocolViolation(1009, "Message too big")
    assert (error.code, error.reason, str(error)) == (
        1009,
        "Message too big",
        "1009 Message too big",
    )


# --- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_frame_of_any_length_form_decodes_to_its_payload(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    reader = FrameReader(128 * KB, 128 * KB)
    assert read_all(reader, client_frame(OP_TEXT, payload)) == [Frame(True, OP_TEXT, payload)]


@pytest.mark.parametrize("size", [5, 126, 65_536])
def test_a_frame_is_returned_only_once_all_of_it_has_arrived(size: int) -> None:
    data = client_frame(OP_BINARY, b"b" * size)
    reader = FrameReader(128 * KB, 128 * KB)
    for cut in sorted({0, 1, 2, 3, 4, 9, len(data) - 1}):
        fresh = FrameReader(128 * KB, 128 * KB)
        fresh.feed(data[:cut])
        assert fresh.next_frame() is None
    reader.feed(data[:-1])
    assert reader.next_frame() is None
    reader.feed(data[-1:])
    assert reader.next_frame() == Frame(True, OP_BINARY, b"b" * size)
    assert reader.next_frame() is None


def test_frames_arriving_together_are_returned_one_by_one() -> None:
    data = client_frame(OP_TEXT, b"one") + client_frame(OP_PING, b"") + client_frame(OP_TEXT, b"3")
    frames = read_all(api_gateway_reader(), data + data[:3])
    assert frames == [
        Frame(True, OP_TEXT, b"one"),
        Frame(True, OP_PING, b""),
        Frame(True, OP_TEXT, b"3"),
    ]


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_a_frame_with_a_reserved_bit_is_a_protocol_error(rsv: int) -> None:
    error = violation(api_gateway_reader(), client_frame(OP_TEXT, b"x", rsv=rsv))
    assert (error.code, error.reason) == (1002, "reserved bits set")


def test_an_unmasked_client_frame_is_a_protocol_error() -> None:
    error = violation(api_gateway_reader(), client_frame(OP_TEXT, b"x", masked=False))
    assert (error.code, error.reason) == (1002, "unmasked client frame")


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xF])
def test_a_reserved_opcode_is_a_protocol_error(opcode: int) -> None:
    error = violation(api_gateway_reader(), client_frame(opcode, b"x"))
    assert (error.code, error.reason) == (1002, "unknown opcode")


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_a_control_frame_of_125_bytes_is_fine(opcode: int) -> None:
    frames = read_all(api_gateway_reader(), client_frame(opcode, b"c" * 125))
    assert frames == [Frame(True, opcode, b"c" * 125)]


@pytest.mark.parametrize(
    "data",
    [
        client_frame(OP_PING, b"c" * 126),
        client_frame(OP_CLOSE, b"c" * 65_536),
        client_frame(OP_PING, b"c", fin=False),
        client_frame(OP_PONG, b"", fin=False),
    ],
)
def test_a_long_or_fragmented_control_frame_is_a_protocol_error(data: bytes) -> None:
    error = violation(api_gateway_reader(), data)
    assert (error.code, error.reason) == (1002, "bad control frame")


def test_a_fragmented_message_arrives_frame_by_frame_with_pings_between() -> None:
    data = (
        client_frame(OP_TEXT, b"hel", fin=False)
        + client_frame(OP_PING, b"p")
        + client_frame(OP_CONT, b"l", fin=False)
        + client_frame(OP_CONT, b"o")
        + client_frame(OP_TEXT, b"next")
    )
    assert read_all(api_gateway_reader(), data) == [
        Frame(False, OP_TEXT, b"hel"),
        Frame(True, OP_PING, b"p"),
        Frame(False, OP_CONT, b"l"),
        Frame(True, OP_CONT, b"o"),
        Frame(True, OP_TEXT, b"next"),
    ]


def test_a_continuation_without_a_message_is_a_protocol_error() -> None:
    reader = api_gateway_reader()
    assert read_all(reader, client_frame(OP_TEXT, b"done")) == [Frame(True, OP_TEXT, b"done")]
    error = violation(reader, client_frame(OP_CONT, b"more"))
    assert (error.code, error.reason) == (1002, "unexpected continuation frame")


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_a_new_message_inside_a_fragmented_one_is_a_protocol_error(opcode: int) -> None:
    reader = api_gateway_reader()
    reader.feed(client_frame(OP_TEXT, b"part", fin=False))
    assert reader.next_frame() == Frame(False, OP_TEXT, b"part")
    error = violation(reader, client_frame(opcode, b"new"))
    assert (error.code, error.reason) == (1002, "expected continuation frame")


# --- API Gateway's limits: 32 KB a frame, 128 KB a message --------------------------------


def test_a_frame_of_exactly_the_frame_limit_is_fine() -> None:
    frames = read_all(api_gateway_reader(), client_frame(OP_TEXT, b"x" * (32 * KB)))
    assert len(frames[0].payload) == 32 * KB


def test_a_frame_one_byte_over_the_limit_is_1009_from_its_header() -> None:
    reader = api_gateway_reader()
    reader.feed(client_frame(OP_TEXT, b"x" * (32 * KB + 1))[:8])  # header + mask
    with pytest.raises(ProtocolViolation) as raised:
        reader.next_frame()
    assert (raised.value.code, raised.value.reason) == (1009, "Frame too big")


def test_a_continuation_frame_over_the_limit_is_1009() -> None:
    reader = api_gateway_reader()
    reader.feed(client_frame(OP_TEXT, b"a", fin=False))
    reader.next_frame()
    error = violation(reader, client_frame(OP_CONT, b"b" * (32 * KB + 1)))
    assert (error.code, error.reason) == (1009, "Frame too big")


def test_a_fragmented_message_of_exactly_the_message_limit_is_fine() -> None:
    reader = FrameReader(100, 250)
    data = (
        client_frame(OP_TEXT, b"a" * 100, fin=False)
        + client_frame(OP_CONT, b"b" * 100, fin=False)
        + client_frame(OP_CONT, b"c" * 50)
    )
    assert [len(f.payload) for f in read_all(reader, data)] == [100, 100, 50]


def test_a_fragmented_message_one_byte_over_the_limit_is_1009() -> None:
    reader = FrameReader(100, 250)
    reader.feed(client_frame(OP_TEXT, b"a" * 100, fin=False))
    reader.feed(client_frame(OP_CONT, b"b" * 100, fin=False))
    assert reader.next_frame() is not None
    assert reader.next_frame() is not None
    error = violation(reader, client_frame(OP_CONT, b"c" * 51))
    assert (error.code, error.reason) == (1009, "Message too big")


def test_a_single_frame_message_is_held_to_the_message_limit_too() -> None:
    error = violation(FrameReader(300, 250), client_frame(OP_TEXT, b"x" * 251))
    assert (error.code, error.reason) == (1009, "Message too big")


def test_control_frames_do_not_count_towards_the_message() -> None:
    reader = FrameReader(125, 200)
    data = (
        client_frame(OP_TEXT, b"a" * 100, fin=False)
        + client_frame(OP_PING, b"p" * 125)
        + client_frame(OP_CONT, b"b" * 100)
    )
    assert len(read_all(reader, data)) == 3


def test_each_message_starts_its_size_from_zero() -> None:
    # A long call: far more than 128 KB in total, in messages that each fit.
    reader = api_gateway_reader()
    message = client_frame(OP_TEXT, b"a" * (30 * KB), fin=False) + client_frame(
        OP_CONT, b"b" * (30 * KB)
    )
    for _ in range(10):
        assert len(read_all(reader, message)) == 2
    single = client_frame(OP_TEXT, b"s" * (30 * KB))
    for _ in range(10):
        assert len(read_all(reader, single)) == 1


def test_after_a_fragmented_message_the_next_one_may_use_the_whole_limit() -> None:
    reader = FrameReader(100, 200)
    first = client_frame(OP_TEXT, b"a" * 100, fin=False) + client_frame(OP_CONT, b"b" * 100)
    assert len(read_all(reader, first)) == 2
    assert len(read_all(reader, first)) == 2
    assert len(read_all(reader, client_frame(OP_TEXT, b"c" * 100))) == 1


@pytest.mark.parametrize(
    ("size", "extra"), [(126, b"\x7e\x00\x7e"), (65_536, b"\x7f" + (1 << 16).to_bytes(8, "big"))]
)
def test_every_length_form_carries_the_opcode_in_a_final_frame(size: int, extra: bytes) -> None:
    payload = b"b" * size
    assert encode_frame(OP_BINARY, payload) == b"\x82" + extra + payload
    assert encode_frame(OP_PING, b"p") == b"\x89\x01p"


# --- header errors are raised as soon as the header bytes are in --------------------------


@pytest.mark.parametrize(
    "data",
    [
        client_frame(OP_TEXT, b"x", rsv=0x40),
        client_frame(OP_TEXT, b"x", masked=False),
        client_frame(0x3, b"x"),
        client_frame(OP_PING, b"p", fin=False),
    ],
    ids=["reserved-bit", "unmasked", "reserved-opcode", "fragmented-ping"],
)
def test_a_bad_two_byte_header_is_refused_before_the_rest_arrives(data: bytes) -> None:
    reader = api_gateway_reader()
    reader.feed(data[:1])
    assert reader.next_frame() is None
    reader.feed(data[1:2])
    with pytest.raises(ProtocolViolation):
        reader.next_frame()


def test_an_oversize_16_bit_length_is_refused_once_its_4_header_bytes_are_in() -> None:
    reader = FrameReader(1000, 1000)
    header = client_frame(OP_TEXT, b"x" * 1001)[:4]
    reader.feed(header[:3])
    assert reader.next_frame() is None
    reader.feed(header[3:])
    with pytest.raises(ProtocolViolation) as raised:
        reader.next_frame()
    assert raised.value.reason == "Frame too big"


def test_an_oversize_64_bit_length_is_refused_once_its_10_header_bytes_are_in() -> None:
    reader = api_gateway_reader()
    header = client_frame(OP_TEXT, b"x" * 65_536)[:10]
    reader.feed(header[:9])
    assert reader.next_frame() is None
    reader.feed(header[9:])
    with pytest.raises(ProtocolViolation) as raised:
        reader.next_frame()
    assert raised.value.reason == "Frame too big"


@pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1])
def test_a_64_bit_length_with_its_top_bit_set_is_too_big_not_negative(length: int) -> None:
    reader = api_gateway_reader()
    reader.feed(b"\x81\xff" + length.to_bytes(8, "big") + MASK)
    with pytest.raises(ProtocolViolation) as raised:
        reader.next_frame()
    assert (raised.value.code, raised.value.reason) == (1009, "Frame too big")
