"""Inbound ConversationRelay messages: ``parse_inbound`` and its records (docs/protocols.md §1.2).

Inbound frames come from JSON fixtures in tests/events/relay/, written for this project in
the shape of Twilio's documented and observed frames (no real call data). Expected values
are spelled out here, not read back from the fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.core.limits import MAX_MESSAGE_BYTES
from warmline.core.relay import (
    INBOUND_TYPES,
    MAX_JSON_DEPTH,
    Dtmf,
    Error,
    Info,
    Interrupt,
    Prompt,
    Setup,
    UnknownMessage,
    parse_inbound,
)
from warmline.errors import FrameTooLargeError, MalformedFrameError

FIXTURES = Path(__file__).resolve().parent.parent / "events" / "relay"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def frame(**fields: Any) -> str:
    return json.dumps(fields)


# === inbound: the fixtures ================================================================
SETUP_FIELDS = {
    "session_id": "VX00000000000000000000000000000001",
    "call_sid": "CA00000000000000000000000000000001",
    "parent_call_sid": "",
    "account_sid": "AC00000000000000000000000000000001",
    "from_": "+15550100",
    "to": "+15550101",
    "forwarded_from": "+15550102",
    "call_type": "PSTN",
    "caller_name": "",
    "direction": "inbound",
    "call_status": "RINGING",
    "custom_parameters": {"tenant": "t1", "campaign": "spring"},
}


@pytest.mark.parametrize(
    ("name", "cls", "fields"),
    [
        ("setup.json", Setup, SETUP_FIELDS),
        (
            "setup_reconnect_extra_fields.json",
            Setup,
            {
                "session_id": "VX00000000000000000000000000000002",
                "parent_call_sid": "CA00000000000000000000000000000009",
                "from_": "sip:alice@example.com",
                "forwarded_from": "",
                "call_type": "SIP",
                "caller_name": "ALICE EXAMPLE",
                "direction": "outbound-api",
                "call_status": "IN_PROGRESS",
                "custom_parameters": {},
            },
        ),
        (
            "setup_minimal.json",
            Setup,
            {
                "session_id": "VX00000000000000000000000000000003",
                "call_sid": "CA00000000000000000000000000000003",
                "account_sid": "",
                "from_": "",
                "direction": "",
                "custom_parameters": {},
            },
        ),
        (
            "prompt.json",
            Prompt,
            {
                "voice_prompt": "What are your opening hours on Sunday?",
                "lang": "en-US",
                "last": True,
            },
        ),
        (
            "prompt_partial.json",
            Prompt,
            {"voice_prompt": "What are your opening", "lang": "en-US", "last": False},
        ),
        (
            "prompt_multi_no_last.json",
            Prompt,
            {"voice_prompt": "¿Dónde está la estación?", "lang": "es", "last": True},
        ),
        ("dtmf.json", Dtmf, {"digit": "#"}),
        (
            "interrupt.json",
            Interrupt,
            {
                "utterance_until_interrupt": "Our opening hours on Sunday are",
                "duration_until_interrupt_ms": 460.0,
            },
        ),
        (
            "interrupt_string_duration.json",
            Interrupt,
            {"utterance_until_interrupt": "", "duration_until_interrupt_ms": 1250.0},
        ),
        (
            "error.json",
            Error,
            {"description": 'Invalid message received, code: 64107, {"type":"text","last":true}'},
        ),
        ("info_round_trip_delay.json", Info, {"name": "roundTripDelayMs", "value": "182"}),
        ("info_agent_speaking.json", Info, {"name": "agentSpeaking", "value": "on"}),
        (
            "info_tokens_played.json",
            Info,
            {"name": "tokensPlayed", "value": "Our opening hours on Sunday are ten to four."},
        ),
        ("unknown_type.json", UnknownMessage, {"type": "agentStatus"}),
    ],
)
def test_each_fixture_parses_to_its_type(name: str, cls: type, fields: dict[str, Any]) -> None:
    text = fixture_text(name)
    message = parse_inbound(text)
    assert type(message) is cls
    assert {key: getattr(message, key) for key in fields} == fields
    assert message.raw == json.loads(text)
    # The same frame as UTF-8 bytes parses to an equal message.
    assert parse_inbound(text.encode("utf-8")) == message


def test_every_fixture_is_covered_and_every_inbound_type_has_one() -> None:
    kinds = {json.loads(path.read_text(encoding="utf-8"))["type"] for path in FIXTURES.iterdir()}
    assert set(INBOUND_TYPES) <= kinds
    assert kinds - set(INBOUND_TYPES) == {"agentStatus"}


def test_inbound_types_map_wire_names_to_classes() -> None:
    assert INBOUND_TYPES == {
        "setup": Setup,
        "prompt": Prompt,
        "dtmf": Dtmf,
        "interrupt": Interrupt,
        "error": Error,
        "info": Info,
    }
    for kind, cls in INBOUND_TYPES.items():
        assert cls.type == kind


def test_an_unknown_type_keeps_its_type_and_whole_frame() -> None:
    message = parse_inbound(fixture_text("unknown_type.json"))
    assert isinstance(message, UnknownMessage)
    assert message.type == "agentStatus"
    assert message.raw == {"type": "agentStatus", "status": "thinking", "sequence": 7}


def test_types_are_case_sensitive() -> None:
    message = parse_inbound(frame(type="Prompt", voicePrompt="hi"))
    assert isinstance(message, UnknownMessage) and message.type == "Prompt"


def test_unknown_extra_fields_are_kept_in_raw() -> None:
    message = parse_inbound(fixture_text("setup_reconnect_extra_fields.json"))
    assert isinstance(message, Setup)
    assert message.raw["sipHeaders"] == {"X-Trace": "abc"}
    assert message.raw["appVersion"] == 3
    prompt = parse_inbound(frame(type="prompt", voicePrompt="hi", confidence=0.93))
    assert prompt.raw["confidence"] == 0.93


def test_missing_and_null_optional_fields_take_their_defaults() -> None:
    assert parse_inbound(frame(type="setup")) == Setup(raw={"type": "setup"})
    null_setup = parse_inbound(frame(type="setup", callerName=None, customParameters=None))
    assert isinstance(null_setup, Setup)
    assert (null_setup.caller_name, null_setup.custom_parameters) == ("", {})
    prompt = parse_inbound(frame(type="prompt", voicePrompt="", last=None))
    assert isinstance(prompt, Prompt) and (prompt.voice_prompt, prompt.lang, prompt.last) == (
        "",
        "",
        True,
    )
    interrupt = parse_inbound(frame(type="interrupt"))
    assert isinstance(interrupt, Interrupt)
    assert interrupt.utterance_until_interrupt == ""
    assert interrupt.duration_until_interrupt_ms is None
    assert parse_inbound(frame(type="error")) == Error(raw={"type": "error"})
    assert parse_inbound(frame(type="info")) == Info(raw={"type": "info"})


@pytest.mark.parametrize("digit", list("0123456789*#"))
def test_every_dtmf_key_is_accepted(digit: str) -> None:
    message = parse_inbound(frame(type="dtmf", digit=digit))
    assert isinstance(message, Dtmf) and message.digit == digit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (460, 460.0),
        (460.5, 460.5),
        ("460", 460.0),
        ("460.5", 460.5),
        (" 460 ", 460.0),
        ("4.6e2", 460.0),
        (0, 0.0),
        ("abc", None),
        ("", None),
        ("460ms", None),
        ("1_000", None),
        ("NaN", None),
        ("inf", None),
        ("1e400", None),
        ("٤٦٠", None),
        (-5, None),
        (True, None),
        (None, None),
        ([460], None),
        ({"ms": 460}, None),
    ],
)
def test_interrupt_duration_is_parsed_leniently(value: Any, expected: float | None) -> None:
    message = parse_inbound(frame(type="interrupt", durationUntilInterruptMs=value))
    assert isinstance(message, Interrupt)
    assert message.duration_until_interrupt_ms == expected
    assert message.raw["durationUntilInterruptMs"] == value


def test_interrupt_duration_missing_is_none() -> None:
    message = parse_inbound(frame(type="interrupt", utteranceUntilInterrupt="Sure"))
    assert isinstance(message, Interrupt) and message.duration_until_interrupt_ms is None


def test_an_integer_too_big_for_a_float_is_none_not_an_error() -> None:
    body = '{"type":"interrupt","durationUntilInterruptMs":1' + "0" * 400 + "}"
    message = parse_inbound(body)
    assert isinstance(message, Interrupt) and message.duration_until_interrupt_ms is None


@pytest.mark.parametrize(
    ("value", "expected"), [(182, "182"), (12.5, "12.5"), (True, "true"), ("off", "off")]
)
def test_info_scalar_values_become_their_json_text(value: Any, expected: str) -> None:
    message = parse_inbound(frame(type="info", name="roundTripDelayMs", value=value))
    assert isinstance(message, Info) and message.value == expected


# === inbound: what is rejected =============================================================
@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("   ", "not JSON"),
        ('{"type":"dtmf","digit":"1"} {"type":"dtmf","digit":"2"}', "not JSON"),
        ("\ufeff" + '{"type":"dtmf","digit":"1"}', "not JSON"),
        ('{"type":"info","value":NaN}', "NaN"),
        ('{"type":"info","value":-Infinity}', "Infinity"),
        ("[1, 2]", "array"),
        ('"just a string"', "string"),
        ("42", "number"),
        ("null", "null"),
        ("true", "boolean"),
        ('{"no": "type"}', "no 'type'"),
        ('{"type": null}', "no 'type'"),
        ('{"type": 5}', "'type'"),
        ('{"type": ""}', "'type'"),
        ('{"type": ["prompt"]}', "'type'"),
        ("\udcff", "Unicode"),
        ('{"type":"prompt","voicePrompt":"\udcff"}', "Unicode"),
        ('{"type":"prompt"}', "voicePrompt"),
        ('{"type":"prompt","voicePrompt":5}', "prompt.voicePrompt"),
        ('{"type":"prompt","voicePrompt":["hi"]}', "prompt.voicePrompt"),
        ('{"type":"prompt","voicePrompt":"hi","last":"true"}', "prompt.last"),
        ('{"type":"prompt","voicePrompt":"hi","last":1}', "prompt.last"),
        ('{"type":"prompt","voicePrompt":"hi","lang":7}', "prompt.lang"),
        ('{"type":"dtmf"}', "digit"),
        ('{"type":"dtmf","digit":"x"}', "dtmf.digit"),
        ('{"type":"dtmf","digit":"12"}', "dtmf.digit"),
        ('{"type":"dtmf","digit":""}', "dtmf.digit"),
        ('{"type":"dtmf","digit":"A"}', "dtmf.digit"),
        ('{"type":"dtmf","digit":5}', "dtmf.digit"),
        ('{"type":"setup","callSid":5}', "setup.callSid"),
        ('{"type":"setup","from":{"x":1}}', "setup.from"),
        ('{"type":"setup","customParameters":["t1"]}', "setup.customParameters"),
        ('{"type":"setup","customParameters":{"tenant":1}}', "setup.customParameters.tenant"),
        ('{"type":"interrupt","utteranceUntilInterrupt":false}', "interrupt.utteranceUntil"),
        ('{"type":"error","description":404}', "error.description"),
        ('{"type":"info","name":1}', "info.name"),
        ('{"type":"info","value":{"on":true}}', "info.value"),
        ('{"type":"info","value":1' + "0" * 5000 + "}", "not JSON"),
    ],
)
def test_malformed_text_frames_are_rejected(body: str, mentions: str) -> None:
    with pytest.raises(MalformedFrameError) as info:
        parse_inbound(body)
    assert mentions in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00\x01binary",
        b"\x80",
        b'{"type":"prompt","voicePrompt":"caf\xe9"}',  # Latin-1, not UTF-8
        b"\xed\xb3\xbf",  # an encoded lone surrogate is not UTF-8
        '{"type":"dtmf","digit":"1"}'.encode("utf-16"),
    ],
)
def test_bytes_that_are_not_utf8_are_rejected(body: bytes) -> None:
    with pytest.raises(MalformedFrameError, match="UTF-8"):
        parse_inbound(body)


def test_bytearray_is_read_like_bytes() -> None:
    message = parse_inbound(bytearray(b'{"type":"dtmf","digit":"7"}'))
    assert isinstance(message, Dtmf) and message.digit == "7"


def test_a_frame_that_is_neither_text_nor_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_inbound(None)  # type: ignore[arg-type]


def test_error_messages_name_the_field_but_never_quote_the_body() -> None:
    digit = "9" * 50_000
    with pytest.raises(MalformedFrameError) as info:
        parse_inbound(frame(type="dtmf", digit=digit, note="y" * 50_000))
    message = str(info.value)
    assert "dtmf.digit" in message and len(message) < 120
    with pytest.raises(MalformedFrameError) as info:
        parse_inbound('{"type":"prompt","voicePrompt":"' + "z" * 90_000)
    assert len(str(info.value)) < 120


#: Frames and the exact error each gets: the message names the wire field, what it must be
#: and what it was (its JSON type, and the value clipped to 40 characters).
EXACT_ERRORS = [
    ("{not json", "frame is not JSON: Expecting property name enclosed in dou…"),
    ("", "frame is not JSON: Expecting value"),
    ('{"type":"a"} x', "frame is not JSON: Extra data"),
    ('{"type":"info","value":NaN}', "frame is not JSON: NaN is not valid JSON"),
    ("[1, 2]", "frame is a JSON array, not an object"),
    ('"s"', "frame is a JSON string, not an object"),
    ("42", "frame is a JSON number, not an object"),
    ("null", "frame is a JSON null, not an object"),
    ("true", "frame is a JSON boolean, not an object"),
    ('{"no": "type"}', "frame has no 'type'"),
    ('{"type": 5}', "frame 'type' must be a non-empty string, not number 5"),
    ('{"type": ""}', "frame 'type' must be a non-empty string, not string ''"),
    ('{"type": ["prompt"]}', "frame 'type' must be a non-empty string, not a JSON array"),
    ('{"type": {"a": 1}}', "frame 'type' must be a non-empty string, not a JSON object"),
    ('{"type":"prompt"}', "prompt frame has no 'voicePrompt'"),
    ('{"type":"prompt","voicePrompt":5}', "prompt.voicePrompt must be a string, not number 5"),
    ('{"type":"prompt","voicePrompt":"hi","lang":7}', "prompt.lang must be a string, not number 7"),
    (
        '{"type":"prompt","voicePrompt":"hi","last":"true"}',
        "prompt.last must be a boolean, not string 'true'",
    ),
    (
        '{"type":"prompt","voicePrompt":"hi","last":1.5}',
        "prompt.last must be a boolean, not number 1.5",
    ),
    ('{"type":"dtmf"}', "dtmf frame has no 'digit'"),
    ('{"type":"dtmf","digit":null}', "dtmf frame has no 'digit'"),
    ('{"type":"dtmf","digit":5}', "dtmf.digit must be a string, not number 5"),
    ('{"type":"dtmf","digit":"x"}', "dtmf.digit must be one of 0-9 * #, not string 'x'"),
    ('{"type":"info","value":{"on":true}}', "info.value must be a string, not a JSON object"),
    ('{"type":"info","value":[1]}', "info.value must be a string, not a JSON array"),
    ('{"type":"info","name":false}', "info.name must be a string, not boolean False"),
    (
        '{"type":"setup","customParameters":["t1"]}',
        "setup.customParameters must be an object, not a JSON array",
    ),
    (
        '{"type":"setup","customParameters":{"tenant":1}}',
        "setup.customParameters.tenant must be a string, not number 1",
    ),
    (
        '{"type":"setup","customParameters":{"tenant":null}}',
        "setup.customParameters.tenant must be a string, not null None",
    ),
    (
        '{"type":"interrupt","utteranceUntilInterrupt":false}',
        "interrupt.utteranceUntilInterrupt must be a string, not boolean False",
    ),
    ('{"type":"error","description":404}', "error.description must be a string, not number 404"),
    # 40 characters are quoted whole (a 38-character string and its quotes) ...
    (
        '{"type":"prompt","voicePrompt":"hi","last":"' + "a" * 38 + '"}',
        "prompt.last must be a boolean, not string '" + "a" * 38 + "'",
    ),
    # ... 41 are clipped to 39 and an ellipsis.
    (
        '{"type":"prompt","voicePrompt":"hi","last":"' + "a" * 39 + '"}',
        "prompt.last must be a boolean, not string '" + "a" * 38 + "…",
    ),
    (
        '{"type":"setup","customParameters":{"' + "k" * 40 + '":1}}',
        "setup.customParameters." + "k" * 40 + " must be a string, not number 1",
    ),
    (
        '{"type":"setup","customParameters":{"' + "k" * 41 + '":1}}',
        "setup.customParameters." + "k" * 39 + "… must be a string, not number 1",
    ),
]


@pytest.mark.parametrize(("body", "expected"), EXACT_ERRORS, ids=[b[:40] for b, _ in EXACT_ERRORS])
def test_each_error_says_which_field_what_it_must_be_and_what_it_was(
    body: str, expected: str
) -> None:
    with pytest.raises(MalformedFrameError) as info:
        parse_inbound(body)
    assert str(info.value) == expected


SETUP_WIRE_KEYS = [
    "sessionId",
    "callSid",
    "parentCallSid",
    "accountSid",
    "from",
    "to",
    "forwardedFrom",
    "callType",
    "callerName",
    "direction",
    "callStatus",
]


@pytest.mark.parametrize("key", SETUP_WIRE_KEYS)
def test_every_setup_field_is_checked_and_named(key: str) -> None:
    with pytest.raises(MalformedFrameError) as info:
        parse_inbound(frame(type="setup", **{key: True}))
    assert str(info.value) == f"setup.{key} must be a string, not boolean True"


@pytest.mark.parametrize(
    ("data", "error", "expected"),
    [
        ("x" * (MAX_MESSAGE_BYTES + 1), FrameTooLargeError, "frame over 131072 bytes"),
        ("é" * 70_000, FrameTooLargeError, "frame of 140000 bytes is over 131072"),
        (
            b"x" * (MAX_MESSAGE_BYTES + 1),
            FrameTooLargeError,
            "frame of 131073 bytes is over 131072",
        ),
        ('{"a":"\udcff"}', MalformedFrameError, "frame is not valid Unicode text (at index 6)"),
        (b'{"a":"\xff"}', MalformedFrameError, "frame is not valid UTF-8 (at byte 6)"),
        (None, TypeError, "a frame is str or bytes, not NoneType"),
        (["x"], TypeError, "a frame is str or bytes, not list"),
    ],
    ids=["long-text", "long-utf8", "long-bytes", "surrogate", "not-utf8", "none", "list"],
)
def test_size_encoding_and_type_errors_say_what_was_wrong(
    data: Any, error: type[Exception], expected: str
) -> None:
    with pytest.raises(error) as info:
        parse_inbound(data)
    assert str(info.value) == expected


# === inbound: size and nesting =============================================================
def _prompt_of_size(size: int, char: str = "x") -> str:
    """A valid prompt frame of exactly ``size`` UTF-8 bytes (``char`` 1 or 2 bytes)."""
    head, tail = '{"type":"prompt","voicePrompt":"', '"}'
    room = size - len(head) - len(tail)
    width = len(char.encode("utf-8"))
    body = head + char * (room // width) + "x" * (room % width) + tail
    assert len(body.encode("utf-8")) == size
    return body


def test_a_frame_of_exactly_the_limit_parses() -> None:
    body = _prompt_of_size(MAX_MESSAGE_BYTES)
    message = parse_inbound(body)
    assert isinstance(message, Prompt) and len(message.voice_prompt) > 100_000
    assert isinstance(parse_inbound(body.encode("utf-8")), Prompt)


def test_a_frame_over_the_limit_is_too_large_as_text_or_bytes() -> None:
    body = _prompt_of_size(MAX_MESSAGE_BYTES + 1)
    with pytest.raises(FrameTooLargeError):
        parse_inbound(body)
    with pytest.raises(FrameTooLargeError):
        parse_inbound(body.encode("utf-8"))


def test_size_counts_utf8_bytes_not_characters() -> None:
    body = _prompt_of_size(MAX_MESSAGE_BYTES + 2, char="é")
    assert len(body) < MAX_MESSAGE_BYTES  # under the limit in characters
    with pytest.raises(FrameTooLargeError):
        parse_inbound(body)
    message = parse_inbound(_prompt_of_size(MAX_MESSAGE_BYTES, char="é"))
    assert isinstance(message, Prompt)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(FrameTooLargeError) as info:
        parse_inbound("{" * (MAX_MESSAGE_BYTES + 1))
    assert info.value.close_code == 1009
    with pytest.raises(FrameTooLargeError):
        parse_inbound(b"\xff" * (MAX_MESSAGE_BYTES + 1))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 2_000, 20_000])
def test_deep_nesting_is_malformed_not_a_recursion_error(depth: int) -> None:
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = '{"type":"info","x":' + opener * depth + "1" + closer * depth + "}"
        with pytest.raises(MalformedFrameError, match="nests deeper"):
            parse_inbound(body)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_JSON_DEPTH - 1  # the frame object itself is one level
    body = '{"type":"info","x":' + "[" * depth + "]" * depth + "}"
    message = parse_inbound(body)
    assert isinstance(message, Info) and isinstance(message.raw["x"], list)


# === inbound: properties ===================================================================
@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_parse_inbound_raises_only_frame_errors_for_any_text_or_bytes(data: str | bytes) -> None:
    try:
        message = parse_inbound(data)
    except (MalformedFrameError, FrameTooLargeError):
        return
    assert isinstance(message, (*INBOUND_TYPES.values(), UnknownMessage))


#: Flat strategies keep generation cheap; nesting is covered by the depth tests above.
_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
_json_values = (
    _scalars
    | st.lists(_scalars, max_size=2)
    | st.dictionaries(st.text(max_size=4), _scalars, max_size=2)
)
_wire_keys = st.sampled_from(
    [
        "voicePrompt",
        "lang",
        "last",
        "digit",
        "utteranceUntilInterrupt",
        "durationUntilInterruptMs",
        "description",
        "name",
        "value",
        "callSid",
        "from",
        "customParameters",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from([*INBOUND_TYPES, "agentStatus", ""]),
    fields=st.dictionaries(_wire_keys | st.text(max_size=6), _json_values, max_size=5),
)
def test_parse_inbound_judges_any_json_object_without_crashing(
    kind: str, fields: dict[str, Any]
) -> None:
    obj = {**fields, "type": kind}
    try:
        message = parse_inbound(json.dumps(obj))
    except MalformedFrameError:
        return
    assert message.raw == obj
    assert message.type == kind
    assert type(message) is INBOUND_TYPES.get(kind, UnknownMessage)


# === inbound: every string is storable (Rule 3) ============================================
#: A JSON frame with a lone surrogate where Twilio sends text: ``json.dumps`` writes it as
#: the escape ``\ud800``, which is how such a string reaches ``parse_inbound`` at all.
SURROGATE_FRAMES = {
    "setup": {
        "type": "setup",
        "sessionId": "VX\ud800",
        "callSid": "CA\udfff",
        "parentCallSid": "\ud800",
        "accountSid": "AC\ud800",
        "from": "+1555\ud800",
        "to": "\ud800",
        "forwardedFrom": "\ud800",
        "callType": "PSTN\ud800",
        "callerName": "ALICE \ud800",
        "direction": "inbound\ud800",
        "callStatus": "RINGING\ud800",
        "customParameters": {"tenant\ud800": "t\udc00", "plain": "ok"},
    },
    "prompt": {"type": "prompt", "voicePrompt": "hello \ud800 there", "lang": "en\udbff"},
    "interrupt": {
        "type": "interrupt",
        "utteranceUntilInterrupt": "Our opening \ud800",
        "durationUntilInterruptMs": 460,
    },
    "error": {"type": "error", "description": "code 64107 \udc80"},
    "info": {"type": "info", "name": "tokensPlayed\ud800", "value": "ten \udfff four"},
    "unknown": {"type": "agentStatus\ud800", "status": ["\ud800"], "\udc00": {"k\ud800": 1}},
}


def _strings(value: Any) -> list[str]:
    """Every string in ``value``: dict keys and values, list items, nested."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(key) + _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _fields(message: Any) -> dict[str, Any]:
    return {name: getattr(message, name) for name in type(message).__slots__}


def _without_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


@pytest.mark.parametrize("name", SURROGATE_FRAMES)
def test_a_lone_surrogate_in_any_text_field_is_replaced_and_the_message_stored(
    name: str, tmp_path: Path
) -> None:
    from warmline.core.session import SessionRecord
    from warmline.stores.sqlite import SQLiteStore

    obj = SURROGATE_FRAMES[name]
    message = parse_inbound(json.dumps(obj))
    fields = _fields(message)
    # Each field is the sent text with U+FFFD for each lone surrogate, nothing else changed.
    assert message.raw == json.loads(_without_surrogates(json.dumps(obj, ensure_ascii=False)))
    assert "\ufffd" in "".join(_strings(fields))
    for text in _strings(fields):
        text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    session_id = getattr(message, "session_id", "") or "VX1"
    call_sid = getattr(message, "call_sid", "") or None
    with SQLiteStore(tmp_path / "sessions.sqlite3") as store:
        stored = store.put(SessionRecord(session_id, call_sid=call_sid, data=fields))
        assert store.get(session_id) == stored
        assert stored.data == fields


def test_setup_fields_and_custom_parameters_are_repaired() -> None:
    message = parse_inbound(json.dumps(SURROGATE_FRAMES["setup"]))
    assert isinstance(message, Setup)
    assert (message.session_id, message.call_sid, message.from_) == (
        "VX\ufffd",
        "CA\ufffd",
        "+1555\ufffd",
    )
    assert message.custom_parameters == {"tenant\ufffd": "t\ufffd", "plain": "ok"}


def test_a_prompt_keeps_its_text_around_the_replacement() -> None:
    message = parse_inbound(json.dumps(SURROGATE_FRAMES["prompt"]))
    assert isinstance(message, Prompt)
    assert (message.voice_prompt, message.lang) == ("hello \ufffd there", "en\ufffd")


def test_an_unknown_type_with_a_lone_surrogate_is_repaired_too() -> None:
    message = parse_inbound(json.dumps(SURROGATE_FRAMES["unknown"]))
    assert isinstance(message, UnknownMessage)
    assert message.type == "agentStatus\ufffd"
    assert message.raw == {
        "type": "agentStatus\ufffd",
        "status": ["\ufffd"],
        "\ufffd": {"k\ufffd": 1},
    }


def test_a_dtmf_digit_that_is_a_lone_surrogate_is_malformed_and_says_so_storably() -> None:
    with pytest.raises(MalformedFrameError) as info:
        parse_inbound(json.dumps({"type": "dtmf", "digit": "\ud800"}))
    str(info.value).encode("utf-8")
    assert "dtmf.digit" in str(info.value)


def test_valid_surrogate_pairs_are_one_character_and_kept() -> None:
    # "\ud83d\ude00" in JSON is one character, U+1F600, which UTF-8 encodes.
    message = parse_inbound('{"type":"prompt","voicePrompt":"hi \\ud83d\\ude00 \\u00e9"}')
    assert isinstance(message, Prompt) and message.voice_prompt == "hi \U0001f600 é"


def test_a_frame_without_escapes_is_returned_as_decoded() -> None:
    body = '{"type":"prompt","voicePrompt":"a \\\\ud800 is six characters here"}'
    message = parse_inbound(body)
    assert isinstance(message, Prompt)
    assert message.voice_prompt == "a \\ud800 is six characters here"
    assert message.raw == json.loads(body)


def test_a_literal_lone_surrogate_in_the_text_is_malformed_not_repaired() -> None:
    # Text that is not valid Unicode cannot have come over a WebSocket at all (§1.1).
    with pytest.raises(MalformedFrameError, match="not valid Unicode"):
        parse_inbound('{"type":"prompt","voicePrompt":"\ud800"}')


def test_outbound_decoding_does_not_repair() -> None:
    from warmline.core.relay_in import decode_object

    obj = decode_object('{"type":"text","token":"\\ud800"}', max_bytes=1000)
    assert obj["token"] == "\ud800"


#: Text with lone surrogates among ordinary and astral characters.
_any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=12)
_any_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_any_text, children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([*INBOUND_TYPES, "agentStatus"]),
    text=_any_text,
    extra=st.dictionaries(_any_text, _any_values, max_size=3),
    ensure_ascii=st.booleans(),
)
def test_any_text_through_parse_inbound_yields_storable_fields(
    kind: str, text: str, extra: dict[str, Any], ensure_ascii: bool
) -> None:
    keys = [
        "voicePrompt",
        "lang",
        "utteranceUntilInterrupt",
        "description",
        "name",
        "value",
        "sessionId",
        "callSid",
        "from",
        "callerName",
    ]
    # Extra fields are prefixed so none of them is a wire field of the wrong type.
    obj = {f"x{key}": value for key, value in extra.items()}
    obj.update(dict.fromkeys(keys, text), customParameters={text: text}, digit="#", type=kind)
    try:
        message = parse_inbound(json.dumps(obj, ensure_ascii=ensure_ascii))
    except MalformedFrameError:
        # Only text with a literal lone surrogate is refused (not valid Unicode).
        assert not ensure_ascii
        return
    for string in _strings(_fields(message)):
        string.encode("utf-8")
    if kind == "prompt":
        assert isinstance(message, Prompt)
        assert message.voice_prompt == _without_surrogates(text)
