"""Outbound ConversationRelay messages: validation, encoding, ``parse_outbound`` (§1.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.core.limits import MAX_POST_BYTES
from warmline.core.relay import (
    OUTBOUND_TYPES,
    End,
    Language,
    OutboundMessage,
    Play,
    SendDigits,
    Text,
    is_language_tag,
    parse_outbound,
)
from warmline.errors import RelayValidationError


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


_TAG = "a BCP-47 language tag (e.g. 'en-US') or 'multi'"
_URL = "https://e.com/a.mp3"

#: Each way to break a rule, and the exact error: the field (with its wire name where it
#: differs), what it must be, and what it was (its type and repr, clipped to 40 characters).
EXACT_ERRORS: dict[str, tuple[Any, str]] = {
    "text-token": (lambda: Text(5), "Text.token must be a str, not int 5"),
    "text-last": (lambda: Text("x", last=1), "Text.last must be a bool, not int 1"),
    "text-lang": (
        lambda: Text("x", lang="english"),
        f"Text.lang must be {_TAG}, not str 'english'",
    ),
    "text-interruptible": (
        lambda: Text("x", interruptible="yes"),
        "Text.interruptible must be a bool, not str 'yes'",
    ),
    "text-preemptible": (
        lambda: Text("x", preemptible=0),
        "Text.preemptible must be a bool, not int 0",
    ),
    "text-surrogate": (
        lambda: Text("ok\udcff"),
        "Text.token is not valid Unicode (lone surrogate at index 2)",
    ),
    "play-source-type": (lambda: Play(5), "Play.source must be a str, not int 5"),
    "play-source-surrogate": (
        lambda: Play("https://e.com/\ud800"),
        "Play.source is not valid Unicode (lone surrogate at index 14)",
    ),
    "play-source": (
        lambda: Play("ftp://x"),
        "Play.source must be an absolute http(s) URL, not str 'ftp://x'",
    ),
    "play-source-40": (
        lambda: Play("x" * 38),
        "Play.source must be an absolute http(s) URL, not str '" + "x" * 38 + "'",
    ),
    "play-source-41": (
        lambda: Play("x" * 39),
        "Play.source must be an absolute http(s) URL, not str '" + "x" * 38 + "…",
    ),
    "play-loop": (
        lambda: Play(_URL, loop=1001),
        "Play.loop must be an int from 0 to 1000, not int 1001",
    ),
    "play-loop-bool": (
        lambda: Play(_URL, loop=True),
        "Play.loop must be an int from 0 to 1000, not bool True",
    ),
    "play-preemptible": (
        lambda: Play(_URL, preemptible=1),
        "Play.preemptible must be a bool, not int 1",
    ),
    "play-interruptible": (
        lambda: Play(_URL, interruptible="no"),
        "Play.interruptible must be a bool, not str 'no'",
    ),
    "digits-empty": (
        lambda: SendDigits(""),
        "SendDigits.digits must be non-empty, of 0-9 w W # *, not str ''",
    ),
    "digits-other": (
        lambda: SendDigits("12a"),
        "SendDigits.digits must be non-empty, of 0-9 w W # *, not str '12a'",
    ),
    "digits-type": (lambda: SendDigits(5), "SendDigits.digits must be a str, not int 5"),
    "language-none": (
        lambda: Language(),
        "Language needs tts_language or transcription_language (or both)",
    ),
    "language-tts": (
        lambda: Language("x"),
        f"Language.tts_language (ttsLanguage) must be {_TAG}, not str 'x'",
    ),
    "language-transcription": (
        lambda: Language(None, "x"),
        f"Language.transcription_language (transcriptionLanguage) must be {_TAG}, not str 'x'",
    ),
    "end-type": (lambda: End(5), "End.handoff_data (handoffData) must be a str, not int 5"),
    "end-surrogate": (
        lambda: End("\udcff"),
        "End.handoff_data (handoffData) is not valid Unicode (lone surrogate at index 0)",
    ),
    "end-json": (
        lambda: End({"a": object()}),
        "End.handoff_data (handoffData) cannot be JSON-encoded:"
        " Object of type object is not JSON serializable",
    ),
}


@pytest.mark.parametrize("name", EXACT_ERRORS)
def test_each_error_names_the_field_the_rule_and_the_value(name: str) -> None:
    build, expected = EXACT_ERRORS[name]
    with pytest.raises(RelayValidationError) as info:
        build()
    assert str(info.value) == expected


def test_end_encodes_any_mapping_and_keeps_non_ascii() -> None:
    from types import MappingProxyType

    assert End(MappingProxyType({"name": "Zoë"})).handoff_data == '{"name": "Zoë"}'


# === outbound: JSON and size ===============================================================
def test_to_json_is_compact_and_keeps_non_ascii() -> None:
    assert Text(token="¡Hola, Zoë!", last=True).to_json() == (
        '{"type":"text","token":"¡Hola, Zoë!","last":true}'
    )


#: Characters by what one costs in the JSON frame: 1, 2 (UTF-8 or an escaped quote), 4
#: (outside the BMP, one ``str`` character) and 6 bytes (a control character, ``\u0001``).
CHARS_BY_COST = ["x", "é", '"', "\U0001f600", "\x01"]


def _json_cost(char: str) -> int:
    return len(json.dumps(char, ensure_ascii=False).encode("utf-8")) - 2


def _token_for(room: int, char: str) -> str:
    """A token that takes exactly ``room`` bytes in a frame: ``char`` as often as fits."""
    cost = _json_cost(char)
    return char * (room // cost) + "x" * (room % cost)


def _text_of_size(size: int, char: str = "x") -> Text:
    overhead = len(Text(token="").to_json().encode("utf-8"))
    return Text(token=_token_for(size - overhead, char))


@pytest.mark.parametrize("char", CHARS_BY_COST)
def test_a_frame_of_exactly_the_post_limit_is_built_and_encoded(char: str) -> None:
    message = _text_of_size(MAX_POST_BYTES, char)
    assert len(message.to_json().encode("utf-8")) == MAX_POST_BYTES
    assert parse_outbound(message.to_json()) == message


@pytest.mark.parametrize("char", CHARS_BY_COST)
def test_a_text_over_the_post_limit_cannot_be_built(char: str) -> None:
    # '"' is 1 byte in the token but 2 in JSON ('\\"'): the limit applies to the frame.
    with pytest.raises(RelayValidationError) as info:
        _text_of_size(MAX_POST_BYTES + 1, char)
    assert str(info.value) == (
        f"text frame of {MAX_POST_BYTES + 1} bytes is over the {MAX_POST_BYTES}-byte limit"
        " of one WebSocket message"
    )


#: One way per outbound type to ask for a frame over 128 KB (API Gateway's message limit).
OVERSIZED: dict[str, Any] = {
    "text": lambda: Text("x" * MAX_POST_BYTES, True, "en-US", False, False),
    "text-lang": lambda: Text("x", lang="en" + "-abcde" * (MAX_POST_BYTES // 6)),
    "play": lambda: Play("https://example.com/" + "a" * MAX_POST_BYTES, 3, False, True),
    "sendDigits": lambda: SendDigits("1" * MAX_POST_BYTES),
    "language": lambda: Language("en" + "-abcde" * (MAX_POST_BYTES // 6)),
    "language-transcription": lambda: Language(
        transcription_language="en" + "-abcde" * (MAX_POST_BYTES // 6)
    ),
    "end": lambda: End(handoff_data="x" * MAX_POST_BYTES),
    "end-dict": lambda: End(handoff_data={"transcript": "é" * (MAX_POST_BYTES // 2)}),
    "end-list-of-quotes": lambda: End(['"' * (MAX_POST_BYTES // 3)]),
}


@pytest.mark.parametrize("name", OVERSIZED)
def test_no_outbound_message_over_the_post_limit_can_be_built(name: str) -> None:
    kind = name.partition("-")[0]
    with pytest.raises(RelayValidationError, match=f"^{kind} frame of [0-9]+ bytes is over"):
        OVERSIZED[name]()


def test_an_oversized_frame_sent_as_a_dict_is_refused_too() -> None:
    with pytest.raises(RelayValidationError, match="over the 131072-byte limit"):
        parse_outbound({"type": "end", "handoffData": "x" * MAX_POST_BYTES})


def test_a_handoff_just_under_the_limit_is_kept_whole() -> None:
    overhead = len(End(handoff_data="").to_json().encode("utf-8"))
    data = _token_for(MAX_POST_BYTES - overhead, "é")
    message = End(handoff_data=data)
    assert message.handoff_data == data
    assert len(message.to_json().encode("utf-8")) == MAX_POST_BYTES


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
