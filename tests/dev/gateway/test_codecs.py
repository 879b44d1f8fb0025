"""The sans-I/O pieces: frame codec, HTTP parser, ids and times, route selection."""

from __future__ import annotations

import re
import struct

import pytest
from gateway_helpers import AWS_ID_RE

from warmline.dev.gateway.events import aws_id, clf_time, iso_time, select_route
from warmline.dev.gateway.frames import (
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    FrameReader,
    ProtocolViolation,
    accept_key,
    encode_frame,
)
from warmline.dev.gateway.http import HttpError, RequestParser, Response


def client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame, as a browser or websockets would send it (with a fixed mask)."""
    mask = b"\x5a\x13\xc4\x7e"
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def test_reader_decodes_frames_fed_byte_by_byte() -> None:
    reader = FrameReader(32 * 1024, 128 * 1024)
    data = client_frame(OP_TEXT, b"hello") + client_frame(OP_TEXT, b"x" * 300)
    frames = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        while (frame := reader.next_frame()) is not None:
            frames.append(frame)
    assert [(f.opcode, f.payload) for f in frames] == [(OP_TEXT, b"hello"), (OP_TEXT, b"x" * 300)]


def test_oversize_frame_is_refused_from_its_header() -> None:
    reader = FrameReader(32 * 1024, 128 * 1024)
    frame = client_frame(OP_TEXT, b"x" * (32 * 1024 + 1))
    reader.feed(frame[:14])  # header and mask only
    with pytest.raises(ProtocolViolation) as info:
        reader.next_frame()
    assert info.value.code == 1009


def test_fragmented_message_over_the_message_limit_is_refused() -> None:
    reader = FrameReader(100, 250)
    reader.feed(client_frame(OP_TEXT, b"a" * 100, fin=False))
    reader.feed(client_frame(OP_CONT, b"b" * 100, fin=False))
    reader.feed(client_frame(OP_CONT, b"c" * 100))
    assert reader.next_frame() is not None
    assert reader.next_frame() is not None
    with pytest.raises(ProtocolViolation) as info:
        reader.next_frame()
    assert info.value.code == 1009


@pytest.mark.parametrize(
    "data",
    [
        encode_frame(OP_TEXT, b"unmasked"),
        client_frame(OP_CONT, b"no start"),
        client_frame(OP_CLOSE, b"x" * 126),
        client_frame(0x3, b"reserved opcode"),
    ],
    ids=["unmasked", "continuation-first", "long-close", "reserved-opcode"],
)
def test_protocol_errors_are_1002(data: bytes) -> None:
    reader = FrameReader(1000, 1000)
    reader.feed(data)
    with pytest.raises(ProtocolViolation) as info:
        reader.next_frame()
    assert info.value.code == 1002


def test_accept_key_matches_rfc6455_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_http_parser_handles_keep_alive_pipelines_and_bodies() -> None:
    parser = RequestParser()
    parser.feed(
        b"POST /dev/@connections/a%3D HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /p?x=1&x=2 HTTP/1.1\r\nconnection: close\r\n\r\n"
    )
    first = parser.next_request()
    second = parser.next_request()
    assert first is not None and second is not None
    assert (first.method, first.body, first.path_segments()) == (
        "POST",
        b"abc",
        ["dev", "@connections", "a="],
    )
    assert first.keep_alive and not second.keep_alive
    assert second.query == [("x", "1"), ("x", "2")]
    assert second.header("CONNECTION") == "close"
    assert parser.next_request() is None


def test_http_parser_waits_for_the_body_and_rejects_garbage() -> None:
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
    assert parser.next_request() is None
    parser.feed(b"cde")
    request = parser.next_request()
    assert request is not None and request.body == b"abcde"
    bad = RequestParser()
    bad.feed(b"NONSENSE\r\n\r\n")
    with pytest.raises(HttpError):
        bad.next_request()
    chunked = RequestParser()
    chunked.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(HttpError) as info:
        chunked.next_request()
    assert info.value.status == 411


def test_response_encoding() -> None:
    raw = Response(410, b"{}", [("x-amzn-ErrorType", "GoneException")]).encode(keep_alive=False)
    assert raw.startswith(b"HTTP/1.1 410 Gone\r\n")
    assert b"Content-Length: 2\r\n" in raw and b"Connection: close\r\n" in raw
    assert raw.endswith(b"\r\n\r\n{}")


def test_ids_and_times_look_like_aws() -> None:
    ids = {aws_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.match(AWS_ID_RE, i) for i in ids)
    assert clf_time(1705751697.419) == "20/Jan/2024:11:54:57 +0000"
    assert iso_time(1705751697.419) == "2024-01-20T11:54:57.419Z"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"action": "sendmessage"}', "sendmessage"),
        ('{"action": "other"}', "$default"),
        ('{"action": "$connect"}', "$default"),
        ('{"action": true}', "true"),
        ("not json", "$default"),
        ('{"action": {"nested": 1}}', "$default"),
    ],
)
def test_route_selection(body: str, expected: str) -> None:
    routes = {"sendmessage": 1, "true": 1, "$default": 1, "$connect": 1}
    assert select_route(body, (("action",),), routes) == expected


def test_route_selection_without_default_is_none() -> None:
    assert select_route('{"action": "x"}', (("action",),), {"y": 1}) is None
