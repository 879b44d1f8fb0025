"""Hostile ConversationRelay frames: ``parse_inbound`` and ``parse_outbound`` on garbage.

Documented contract (``warmline.core.relay``): inbound garbage raises only
``MalformedFrameError`` / ``FrameTooLargeError`` (the call goes on); outbound garbage
raises only ``RelayValidationError``. Neither may hang, recurse or leak another error on
any JSON, deep nesting, invalid UTF-8, huge strings or wrong field types.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hostile_strategies import EXAMPLES, deep_json, json_values, mutated
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.core.relay import UnknownMessage, parse_inbound, parse_outbound
from warmline.core.relay_in import INBOUND_TYPES
from warmline.core.relay_out import OUTBOUND_TYPES
from warmline.errors import FrameTooLargeError, MalformedFrameError, RelayValidationError

INBOUND_TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "setup",
        "sessionId": "VX1",
        "callSid": "CA1",
        "from": "+15550100",
        "to": "+15550101",
        "customParameters": {"lang": "en"},
    },
    {"type": "prompt", "voicePrompt": "hello", "lang": "en-US", "last": True},
    {"type": "dtmf", "digit": "1"},
    {"type": "interrupt", "utteranceUntilInterrupt": "he", "durationUntilInterruptMs": 300},
    {"type": "error", "description": "x"},
    {"type": "info", "name": "roundTripDelayMs", "value": "12"},
]
OUTBOUND_TEMPLATES: list[dict[str, Any]] = [
    {"type": "text", "token": "hi", "last": True},
    {"type": "play", "source": "https://example.com/a.mp3", "loop": 1},
    {"type": "sendDigits", "digits": "12"},
    {"type": "language", "ttsLanguage": "en-US", "transcriptionLanguage": "en-US"},
    {"type": "end", "handoffData": "{}"},
]


def inbound(data: str | bytes) -> None:
    try:
        message = parse_inbound(data)
    except (MalformedFrameError, FrameTooLargeError):
        return
    assert isinstance(message, (UnknownMessage, *INBOUND_TYPES.values()))


def outbound(data: Any) -> None:
    try:
        message = parse_outbound(data)
    except RelayValidationError:
        return
    assert isinstance(message, tuple(OUTBOUND_TYPES.values()))
    assert parse_outbound(message.to_json()) == message


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values)
def test_inbound_any_json(value: Any) -> None:
    inbound(json.dumps(value))
    inbound(json.dumps(value).encode("utf-8", "surrogatepass"))


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.one_of(*(mutated(t) for t in INBOUND_TEMPLATES)))
def test_inbound_fields_of_wrong_type(value: Any) -> None:
    inbound(json.dumps(value))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=200))
def test_inbound_arbitrary_bytes(data: bytes) -> None:
    inbound(data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=200))
def test_inbound_arbitrary_text(data: str) -> None:
    inbound(data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values)
def test_outbound_any_json_text_and_object(value: Any) -> None:
    outbound(json.dumps(value))
    if isinstance(value, dict):
        outbound(value)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.one_of(*(mutated(t) for t in OUTBOUND_TEMPLATES)))
def test_outbound_fields_of_wrong_type(value: Any) -> None:
    outbound(json.dumps(value))
    outbound(value)


@pytest.mark.parametrize(
    "data",
    [
        deep_json(10_000),
        "[" * 100_000,
        b'{"type":"prompt","voicePrompt":"\xff\xfe","last":true}',
        b"\xc0\xaf",
        '{"type":"setup","callSid":"\\ud800"}',
        '{"type":"prompt","voicePrompt":"' + "a" * 140_000 + '","last":true}',
        "x" * 5_000_000,
        '{"type":"dtmf","digit":' + "9" * 10_000 + "}",
        '{"type":"prompt","last":true,"voicePrompt":"hi","voicePrompt":1}',
        '{"type":"info","name":"x","value":NaN}',
        '{"type":"prompt","voicePrompt":"hi","last":Infinity}',
        "\ufeff" + '{"type":"prompt","voicePrompt":"hi","last":true}',
        "",
    ],
    ids=[
        "deep-10000",
        "100k-open-brackets",
        "invalid-utf8-in-string",
        "overlong-utf8",
        "lone-surrogate-escape",
        "140KB-prompt",
        "5MB-text",
        "10000-digit-int",
        "duplicate-key",
        "NaN",
        "Infinity",
        "bom",
        "empty",
    ],
)
def test_inbound_named_hostile_frames(data: str | bytes) -> None:
    inbound(data)


@pytest.mark.parametrize("data", [deep_json(10_000), b"\xff", "x" * 5_000_000, "{" * 50_000])
def test_outbound_named_hostile_frames(data: str | bytes) -> None:
    outbound(data)


def test_oversized_inbound_is_frame_too_large() -> None:
    """Over 128 KB is FrameTooLargeError (close 1009), not a parse of 5 MB of text."""
    with pytest.raises(FrameTooLargeError):
        parse_inbound("x" * 5_000_000)
