"""Typed ConversationRelay messages (docs/protocols.md §1.2, §1.3).

Inbound frames come from JSON fixtures in tests/events/relay/, written for this project in
the shape of Twilio's documented and observed frames (no real call data). Expected values
are spelled out here, not read back from the fixtures.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.core import relay, relay_in, relay_out
from warmline.core.limits import MAX_MESSAGE_BYTES, MAX_POST_BYTES
from warmline.core.relay import (
    INBOUND_TYPES,
    MAX_JSON_DEPTH,
    OUTBOUND_TYPES,
    Dtmf,
    End,
    Error,
    InboundMessage,
    Info,
    Interrupt,
    Language,
    OutboundMessage,
    Play,
    Prompt,
    SendDigits,
    Setup,
    Text,
    UnknownMessage,
    is_language_tag,
    parse_inbound,
    parse_outbound,
)
from warmline.errors import FrameTooLargeError, MalformedFrameError, RelayValidationError

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


# === outbound: each rule ===================================================================
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Text(token="Hello "), {"type": "text", "token": "Hello ", "last": False}),
        (Text(token="", last=True), {"type": "text", "token": "", "last": True}),
        (
            Text(token="  keep  spaces \n"),
            {"type": "text", "token": "  keep  spaces \n", "last": False},
        ),
        (
            Text(token="Sure, one moment.", interruptible=True, preemptible=True),
            {
                "type": "text",
                "token": "Sure, one moment.",
                "last": False,
                "interruptible": True,
                "preemptible": True,
            },
        ),
        (
            Text(token="Hola", last=True, lang="es-ES", interruptible=False, preemptible=False),
            {
                "type": "text",
                "token": "Hola",
                "last": True,
                "lang": "es-ES",
                "interruptible": False,
                "preemptible": False,
            },
        ),
        (
            Play(source="https://cdn.example.com/hold.mp3"),
            {"type": "play", "source": "https://cdn.example.com/hold.mp3"},
        ),
        (
            Play(
                source="http://127.0.0.1:8080/a.wav", loop=0, preemptible=True, interruptible=False
            ),
            {
                "type": "play",
                "source": "http://127.0.0.1:8080/a.wav",
                "loop": 0,
                "preemptible": True,
                "interruptible": False,
            },
        ),
        (SendDigits(digits="1w2W#*"), {"type": "sendDigits", "digits": "1w2W#*"}),
        (Language(tts_language="fr-FR"), {"type": "language", "ttsLanguage": "fr-FR"}),
        (
            Language(transcription_language="multi"),
            {"type": "language", "transcriptionLanguage": "multi"},
        ),
        (
            Language(tts_language="pt-BR", transcription_language="pt-BR"),
            {"type": "language", "ttsLanguage": "pt-BR", "transcriptionLanguage": "pt-BR"},
        ),
        (End(), {"type": "end"}),
        (End(handoff_data=""), {"type": "end", "handoffData": ""}),
        (
            End(handoff_data='{"reason":"agent"}'),
            {"type": "end", "handoffData": '{"reason":"agent"}'},
        ),
    ],
)
def test_to_dict_uses_twilio_names_and_omits_unset_fields(
    message: OutboundMessage, expected: dict[str, Any]
) -> None:
    assert message.to_dict() == expected
    assert json.loads(message.to_json()) == expected
    assert OUTBOUND_TYPES[expected["type"]] is type(message)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": None},
        {"token": 5},
        {"token": b"bytes"},
        {"token": "x", "last": None},
        {"token": "x", "last": 1},
        {"token": "x", "last": "true"},
        {"token": "x", "interruptible": 0},
        {"token": "x", "interruptible": "false"},
        {"token": "x", "preemptible": 1},
        {"token": "x", "lang": "en_US"},
        {"token": "x", "lang": "english"},
        {"token": "x", "lang": ""},
        {"token": "x", "lang": "e"},
        {"token": "x", "lang": "en-"},
        {"token": "x", "lang": " en-US"},
        {"token": "x", "lang": "Multi"},
        {"token": "x", "lang": 7},
        {"token": "bad \udcff surrogate"},
    ],
)
def test_text_rejects_what_twilio_rejects(kwargs: dict[str, Any]) -> None:
    with pytest.raises(RelayValidationError) as info:
        Text(**kwargs)
    field = next(key for key in reversed(list(kwargs)))
    assert f"Text.{field}" in str(info.value)


@pytest.mark.parametrize(
    "tag",
    [
        "en-US",
        "es",
        "pt-BR",
        "zh-Hans-CN",
        "cmn-Hant-TW",
        "es-419",
        "sr-Latn",
        "de-CH-1996",
        "en-US-x-twain",
        "EN-us",
        "multi",
    ],
)
def test_plausible_language_tags_are_accepted(tag: str) -> None:
    assert is_language_tag(tag)
    assert Text(token="x", lang=tag).lang == tag
    assert Language(tts_language=tag, transcription_language=tag).to_dict()["ttsLanguage"] == tag


@pytest.mark.parametrize(
    "tag", ["en_US", "english", "e", "en-", "-en", "en--US", "en-US ", "12-US", "zh-Hans-CN-", "é"]
)
def test_implausible_language_tags_are_rejected(tag: str) -> None:
    assert not is_language_tag(tag)
    with pytest.raises(RelayValidationError, match="tts_language"):
        Language(tts_language=tag)
    with pytest.raises(RelayValidationError, match="transcription_language"):
        Language(tts_language="en-US", transcription_language=tag)


def test_language_needs_at_least_one_language() -> None:
    with pytest.raises(RelayValidationError, match="tts_language or transcription_language"):
        Language()


@pytest.mark.parametrize(
    "source",
    [
        "https://cdn.example.com/hold.mp3",
        "http://127.0.0.1:8080/a.wav",
        "HTTPS://Example.COM/a.mp3?sig=abc&x=1#t",
        "https://[::1]:8443/a.wav",
        "https://user:pw@example.com/a.mp3",
        "https://example.com",
    ],
)
def test_play_accepts_absolute_http_urls(source: str) -> None:
    assert Play(source=source).source == source


@pytest.mark.parametrize(
    "source",
    [
        "ftp://example.com/a.mp3",
        "/relative/a.mp3",
        "example.com/a.mp3",
        "https://",
        "https:///a.mp3",
        "https://exa mple.com/a.mp3",
        "https://example.com/a b.mp3",
        "https://example.com/a\x00.mp3",
        "https://example.com:99999999/a.mp3",
        " https://example.com/a.mp3",
        "",
        None,
        b"https://example.com/a.mp3",
    ],
)
def test_play_rejects_anything_but_absolute_http_urls(source: Any) -> None:
    with pytest.raises(RelayValidationError, match="Play.source"):
        Play(source=source)


@pytest.mark.parametrize("loop", [0, 1, 2, 1000])
def test_play_loop_accepts_0_to_1000(loop: int) -> None:
    assert Play(source="https://example.com/a.mp3", loop=loop).to_dict()["loop"] == loop


@pytest.mark.parametrize("loop", [-1, 1001, True, False, 1.0, "2"])
def test_play_loop_rejects_others(loop: Any) -> None:
    with pytest.raises(RelayValidationError, match="Play.loop"):
        Play(source="https://example.com/a.mp3", loop=loop)


@pytest.mark.parametrize(
    "kwargs",
    [{"preemptible": 1}, {"interruptible": "true"}],
)
def test_play_flags_must_be_bools(kwargs: dict[str, Any]) -> None:
    with pytest.raises(RelayValidationError, match=f"Play.{next(iter(kwargs))}"):
        Play(source="https://example.com/a.mp3", **kwargs)


@pytest.mark.parametrize("digits", ["0", "1234567890", "*#", "w", "1w2W3ww#"])
def test_send_digits_accepts_dtmf_keys_and_pauses(digits: str) -> None:
    assert SendDigits(digits=digits).to_dict() == {"type": "sendDigits", "digits": digits}


@pytest.mark.parametrize("digits", ["", "12a", "1 2", "A", "p", "１", "1\n", None, 12])
def test_send_digits_rejects_others(digits: Any) -> None:
    with pytest.raises(RelayValidationError, match="SendDigits.digits"):
        SendDigits(digits=digits)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"reason": "agent"}, '{"reason": "agent"}'),
        ({"queue": "billing", "vip": True, "n": 2}, '{"queue": "billing", "vip": true, "n": 2}'),
        (["a", 1], '["a", 1]'),
        ({"name": "Zoë"}, '{"name": "Zoë"}'),
        ("already a string", "already a string"),
    ],
)
def test_end_json_encodes_dicts_and_lists(value: Any, expected: str) -> None:
    assert End(handoff_data=value).handoff_data == expected
    assert End(value).to_dict() == {"type": "end", "handoffData": expected}


@pytest.mark.parametrize(
    "value", [5, True, b"x", {"when": object()}, {"x": float("nan")}, "\udcff"]
)
def test_end_rejects_what_is_not_a_string_or_json(value: Any) -> None:
    with pytest.raises(RelayValidationError, match="handoff_data"):
        End(handoff_data=value)


def test_messages_are_frozen_and_slotted() -> None:
    for message in (
        Text(token="x"),
        Play(source="https://example.com/a.mp3"),
        SendDigits(digits="1"),
        Language(tts_language="en-US"),
        End(),
        Prompt(voice_prompt="x"),
    ):
        first = dataclasses.fields(message)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(message, first, "y")
        assert not hasattr(message, "__dict__")


def test_outbound_types_map_wire_names_to_classes() -> None:
    assert OUTBOUND_TYPES == {
        "text": Text,
        "play": Play,
        "sendDigits": SendDigits,
        "language": Language,
        "end": End,
    }
    for kind, cls in OUTBOUND_TYPES.items():
        assert cls.type == kind


# === outbound: JSON and size ===============================================================
def test_to_json_is_compact_and_keeps_non_ascii() -> None:
    assert Text(token="¡Hola, Zoë!", last=True).to_json() == (
        '{"type":"text","token":"¡Hola, Zoë!","last":true}'
    )


def _text_of_size(size: int, char: str = "x") -> Text:
    overhead = len(Text(token="").to_json().encode("utf-8"))
    width = len(char.encode("utf-8"))
    room = size - overhead
    message = Text(token=char * (room // width) + "x" * (room % width))
    return message


def test_to_json_accepts_a_frame_of_exactly_the_post_limit() -> None:
    assert len(_text_of_size(MAX_POST_BYTES).to_json().encode("utf-8")) == MAX_POST_BYTES
    assert len(_text_of_size(MAX_POST_BYTES, "é").to_json().encode("utf-8")) == MAX_POST_BYTES


@pytest.mark.parametrize("char", ["x", "é", '"'])
def test_to_json_rejects_a_frame_over_the_post_limit(char: str) -> None:
    # '"' is 1 byte in the token but 2 in JSON ('\\"'): the limit applies to the frame.
    count = MAX_POST_BYTES // 2 if char == '"' else MAX_POST_BYTES // len(char.encode())
    message = Text(token=char * count)
    with pytest.raises(RelayValidationError, match=str(MAX_POST_BYTES)):
        message.to_json()


# === outbound: parse_outbound ================================================================
ROUND_TRIP = [
    Text(token="Hello "),
    Text(token="", last=True),
    Text(token="¿Qué tal? \u2603 <break time='1s'/>", last=True, lang="es-419"),
    Text(token="x", interruptible=False, preemptible=True),
    Play(source="https://cdn.example.com/hold.mp3"),
    Play(source="https://cdn.example.com/hold.mp3", loop=3, preemptible=False, interruptible=True),
    SendDigits(digits="ww1234#"),
    Language(tts_language="de-DE"),
    Language(transcription_language="multi"),
    Language(tts_language="zh-Hans-CN", transcription_language="cmn-Hant-TW"),
    End(),
    End(handoff_data={"reason": "agent", "queue": "billing"}),
]


@pytest.mark.parametrize("message", ROUND_TRIP, ids=lambda m: repr(m)[:40])
def test_to_json_round_trips_through_parse_outbound(message: OutboundMessage) -> None:
    text = message.to_json()
    assert parse_outbound(text) == message
    assert parse_outbound(text.encode("utf-8")) == message
    assert parse_outbound(message.to_dict()) == message
    assert parse_outbound(text).to_json() == text


@pytest.mark.parametrize(
    ("data", "mentions"),
    [
        ("{not json", "not JSON"),
        ("[1]", "array"),
        (b"\xff", "UTF-8"),
        ('{"token":"x"}', "no 'type'"),
        ('{"type":"speak","token":"x"}', "unknown outbound type 'speak'"),
        ('{"type":"prompt","voicePrompt":"x"}', "unknown outbound type 'prompt'"),
        ('{"type":"text"}', "no 'token'"),
        ('{"type":"text","token":null}', "text.token must not be null"),
        ('{"type":"text","token":"x","lang":null}', "text.lang must not be null"),
        ('{"type":"text","token":"x","interruptable":true}', "no field 'interruptable'"),
        ('{"type":"end","handoff_data":"x"}', "no field 'handoff_data'"),
        ('{"type":"text","token":"x","last":"true"}', "Text.last"),
        ('{"type":"text","token":"x","lang":"english"}', "Text.lang"),
        ('{"type":"play"}', "no 'source'"),
        ('{"type":"play","source":"https://e.com/a.mp3","loop":-1}', "Play.loop"),
        ('{"type":"sendDigits","digits":""}', "SendDigits.digits"),
        ('{"type":"language"}', "tts_language or transcription_language"),
        ('{"type":"language","ttsLanguage":"x"}', "ttsLanguage"),
        ('{"type":"end","handoffData":{"reason":"agent"}}', "end.handoffData"),
        ('{"type":"end","handoffData":5}', "end.handoffData"),
    ],
)
def test_parse_outbound_rejects_what_twilio_would_drop(data: str | bytes, mentions: str) -> None:
    with pytest.raises(RelayValidationError) as info:
        parse_outbound(data)
    assert mentions in str(info.value)


def test_parse_outbound_rejects_a_frame_over_the_post_limit() -> None:
    body = json.dumps({"type": "text", "token": "x" * MAX_POST_BYTES})
    with pytest.raises(RelayValidationError, match="over"):
        parse_outbound(body)


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(max_size=200),
    last=st.booleans(),
    lang=st.none() | st.sampled_from(["en-US", "es", "multi", "zh-Hans-CN"]),
    interruptible=st.none() | st.booleans(),
    preemptible=st.none() | st.booleans(),
)
def test_any_valid_text_round_trips(
    token: str, last: bool, lang: str | None, interruptible: bool | None, preemptible: bool | None
) -> None:
    try:
        message = Text(
            token=token, last=last, lang=lang, interruptible=interruptible, preemptible=preemptible
        )
    except RelayValidationError:
        # Only text that is not encodable (a lone surrogate) is refused.
        with pytest.raises(UnicodeEncodeError):
            token.encode("utf-8")
        return
    assert message.token == token  # never trimmed or altered
    assert parse_outbound(message.to_json()) == message


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_parse_outbound_raises_only_relay_validation_errors(data: str | bytes) -> None:
    try:
        message = parse_outbound(data)
    except RelayValidationError:
        return
    assert type(message) in OUTBOUND_TYPES.values()


# === the module ==============================================================================
def test_relay_exports_both_halves() -> None:
    exported = set(relay.__all__)
    assert {name for name in relay_in.__all__ if name not in ("decode_object", "frame_type")} <= (
        exported
    )
    assert set(relay_out.__all__) <= exported
    for name in relay.__all__:
        assert getattr(relay, name) is not None


def test_inbound_and_outbound_unions_cover_the_type_maps() -> None:
    inbound_members = set(InboundMessage.__args__)
    outbound_members = set(OutboundMessage.__args__)
    assert inbound_members == {*INBOUND_TYPES.values(), UnknownMessage}
    assert outbound_members == set(OUTBOUND_TYPES.values())
