"""The SSE decoder against the WHATWG event-stream rules, fed in every possible split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmline.agent.providers.sse import MAX_LINE_BYTES, ServerSentEvent, SSEDecoder


def decode(data: bytes, cuts: list[int] | None = None) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    start = 0
    for cut in sorted(cuts or []) + [len(data)]:
        events += decoder.feed(data[start:cut])
        start = cut
    return events


STREAM = (
    b"\xef\xbb\xbf: a comment, then a BOM-prefixed stream\r\n"
    b"event: chunk\r\n"
    b"id: 7\r\n"
    b"data: line one\r\n"
    b"data:line two\r\n"
    b"data:  two spaces\r\n"
    b"\r\n"
    b"retry: 1000\n"
    b"data\n"
    b"\n"
    b"data: caf\xc3\xa9 \xe2\x82\xac\r"
    b"\r"
    b": keep-alive\n\n"
    b"data: [DONE]\n\n"
    b"data: never dispatched"
)
EXPECTED = [
    ServerSentEvent("line one\nline two\n two spaces", "chunk", "7"),
    ServerSentEvent("", "message", "7"),
    ServerSentEvent("café €", "message", "7"),
    ServerSentEvent("[DONE]", "message", "7"),
]


def test_crlf_cr_lf_comments_multiline_data_bom_and_fields() -> None:
    assert decode(STREAM) == EXPECTED


def test_every_single_cut_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode(STREAM, [cut]) == EXPECTED, cut


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_cuts_give_the_same_events(cuts: list[int]) -> None:
    assert decode(STREAM, cuts) == EXPECTED


def test_a_cr_at_the_end_of_a_read_waits_for_the_next_byte() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent("a")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\n: only a comment\n\nid: 3\n\n") == []


def test_an_endless_line_is_refused() -> None:
    decoder = SSEDecoder()
    with pytest.raises(ValueError, match="over"):
        decoder.feed(b"data: " + b"x" * MAX_LINE_BYTES)


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(ValueError):
        decode(b"data: \xff\xfe\n\n")
