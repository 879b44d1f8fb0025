"""TwiML output equals twilio-python's VoiceResponse for the same settings (the oracle)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from warmline.errors import ConfigurationError
from warmline.twilio.twiml import RelayLanguage, RelaySettings, connect_relay, dial, hangup


def canonical(xml: str) -> str:
    return ET.canonicalize(xml.split("?>", 1)[-1])


def test_connect_relay_matches_voice_response() -> None:
    from twilio.twiml.voice_response import Connect, VoiceResponse

    settings = RelaySettings(
        url="wss://abc.example.com/prod?tenant=t1&x=<y>",
        welcome_greeting='Hi! I\'m "Wren" & I help',
        language="en-US",
        tts_provider="ElevenLabs",
        voice="UgBBYS2sOqTuMpoF3BR0",
        transcription_provider="Deepgram",
        speech_model="nova-3-general",
        interruptible="any",
        interrupt_sensitivity="high",
        dtmf_detection=True,
        partial_prompts=False,
        hints=["Brightwave", "router"],
        debug=["debugging", "speaker-events"],
        parameters={"tenant": "t1", "campaign": "spring"},
        languages=[RelayLanguage(code="es-ES", tts_provider="Google", voice="es-ES-Neural2-B")],
    )
    ours = connect_relay(settings, action="https://abc.example.com/cr-action", method="POST")

    oracle = VoiceResponse()
    connect = Connect(action="https://abc.example.com/cr-action", method="POST")
    relay = connect.conversation_relay(
        url=settings.url,
        welcome_greeting=settings.welcome_greeting,
        language="en-US",
        tts_provider="ElevenLabs",
        voice="UgBBYS2sOqTuMpoF3BR0",
        transcription_provider="Deepgram",
        speech_model="nova-3-general",
        interruptible="any",
        interrupt_sensitivity="high",
        dtmf_detection=True,
        partial_prompts=False,
        hints="Brightwave,router",
        debug="debugging speaker-events",
    )
    relay.language(code="es-ES", tts_provider="Google", voice="es-ES-Neural2-B")
    relay.parameter(name="tenant", value="t1")
    relay.parameter(name="campaign", value="spring")
    oracle.append(connect)
    assert canonical(ours) == canonical(str(oracle))


def test_hangup_and_dial_match_voice_response() -> None:
    from twilio.twiml.voice_response import VoiceResponse

    oracle = VoiceResponse()
    oracle.say("Goodbye & thanks")
    oracle.hangup()
    assert canonical(hangup("Goodbye & thanks")) == canonical(str(oracle))
    oracle = VoiceResponse()
    oracle.say("Connecting you")
    oracle.dial("+15550123", caller_id="+15550100")
    assert canonical(dial("+15550123", say="Connecting you", caller_id="+15550100")) == canonical(
        str(oracle)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "https://not-wss.example.com"},
        {"url": "wss://x", "interruptible": "sometimes"},
        {"url": "wss://x", "tts_provider": "Polly"},
        {"url": "wss://x", "transcription_provider": "Whisper"},
        {"url": "wss://x", "interrupt_sensitivity": "max"},
        {"url": "wss://x", "debug": ["everything"]},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RelaySettings(**kwargs)  # type: ignore[arg-type]


def test_bad_method_and_empty_dial_are_rejected() -> None:
    with pytest.raises(ConfigurationError):
        connect_relay(RelaySettings(url="wss://x"), method="PUT")
    with pytest.raises(ConfigurationError):
        dial("")
