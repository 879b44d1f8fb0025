"""The ``warmline.core.relay`` facade and what both halves of it share (docs/protocols.md §1)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from warmline.core import relay, relay_in, relay_out
from warmline.core.relay import (
    INBOUND_TYPES,
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
)

ALL_MESSAGES = [
    Setup(session_id="VX1"),
    Prompt(voice_prompt="x"),
    Dtmf(digit="1"),
    Interrupt(),
    Error(),
    Info(),
    UnknownMessage(type="agentStatus"),
    Text(token="x"),
    Play(source="https://example.com/a.mp3"),
    SendDigits(digits="1"),
    Language(tts_language="en-US"),
    End(),
]


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_are_frozen_and_slotted(message: Any) -> None:
    first = type(message).__slots__[0]
    with pytest.raises(AttributeError, match="immutable"):
        setattr(message, first, "y")
    with pytest.raises(AttributeError, match="immutable"):
        delattr(message, first)
    assert not hasattr(message, "__dict__")


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


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_copy_and_pickle_to_equal_messages(message: Any) -> None:
    for twin in (copy.copy(message), copy.deepcopy(message), pickle.loads(pickle.dumps(message))):
        assert twin == message and type(twin) is type(message)


def test_outbound_messages_take_positional_or_keyword_arguments() -> None:
    assert Text("Hi", True, "en-US", False, True) == Text(
        token="Hi", last=True, lang="en-US", interruptible=False, preemptible=True
    )
    assert Play("https://e.com/a.mp3", 2, True, False) == Play(
        source="https://e.com/a.mp3", loop=2, preemptible=True, interruptible=False
    )
    assert SendDigits("12") == SendDigits(digits="12")
    assert Language("en-US", "es") == Language(tts_language="en-US", transcription_language="es")
    assert End("x") == End(handoff_data="x")


def test_outbound_messages_match_positionally() -> None:
    match Text("Hi", True):
        case Text(token, last):
            assert (token, last) == ("Hi", True)
        case _:
            pytest.fail("Text did not match positionally")
    match End("data"):
        case End(data):
            assert data == "data"
        case _:
            pytest.fail("End did not match positionally")
    assert Play.__match_args__ == ("source", "loop", "preemptible", "interruptible")
    assert SendDigits.__match_args__ == ("digits",)
    assert Language.__match_args__ == ("tts_language", "transcription_language")


def test_inbound_messages_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Prompt("hi")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Prompt()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Dtmf()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        UnknownMessage()  # type: ignore[call-arg]


def test_inbound_defaults_are_empty_and_fresh() -> None:
    first, second = Setup(), Setup()
    assert first.raw == {} and first.custom_parameters == {}
    assert first.raw is not second.raw
    assert first.custom_parameters is not second.custom_parameters
    assert all(getattr(first, name) == "" for name in Setup.__slots__[:-2])
    assert Prompt(voice_prompt="x") == Prompt(voice_prompt="x", lang="", last=True, raw={})
    assert Dtmf(digit="1").raw == {}
    assert Interrupt() == Interrupt(
        utterance_until_interrupt="", duration_until_interrupt_ms=None, raw={}
    )
    assert Error() == Error(description="", raw={})
    assert Info() == Info(name="", value="", raw={})
    assert UnknownMessage(type="x").raw == {}
    for message in ALL_MESSAGES[:7]:
        twin = type(message)(**{n: getattr(message, n) for n in type(message).__slots__[:-1]})
        assert twin.raw == {} and twin.raw is not message.raw


def test_inbound_repr_leaves_out_raw() -> None:
    assert repr(Prompt(voice_prompt="hi", raw={"secret": 1})) == (
        "Prompt(voice_prompt='hi', lang='', last=True)"
    )
    assert repr(UnknownMessage(type="x", raw={"a": 1})) == "UnknownMessage(type='x')"
    assert repr(Setup(session_id="VX1", custom_parameters={"a": "b"})).endswith(
        "call_status='', custom_parameters={'a': 'b'})"
    )
    assert repr(Text("hi")) == (
        "Text(token='hi', last=False, lang=None, interruptible=None, preemptible=None)"
    )
    assert repr(End()) == "End(handoff_data=None)"


def test_inbound_equality_includes_raw_and_hash_leaves_out_dicts() -> None:
    one = Setup(session_id="VX1", custom_parameters={"a": "b"}, raw={"type": "setup"})
    same = Setup(session_id="VX1", custom_parameters={"a": "b"}, raw={"type": "setup"})
    other_raw = Setup(session_id="VX1", custom_parameters={"a": "b"}, raw={"x": 1})
    assert one == same and hash(one) == hash(same)
    assert one != other_raw and hash(one) == hash(other_raw)
    assert hash(Setup(session_id="VX1")) != hash(Setup(session_id="VX2"))
    assert len({Prompt(voice_prompt="a"), Prompt(voice_prompt="a"), Prompt(voice_prompt="b")}) == 2
    assert Prompt(voice_prompt="a") != Prompt(voice_prompt="a", last=False)
    assert Info(name="a") != Error(description="a")
