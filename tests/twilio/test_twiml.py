"""TwiML output equals twilio-python's VoiceResponse for the same settings (the oracle)."""

from __future__ import annotations

from typing import Any

import pytest

from warmline.errors import ConfigurationError
from warmline.twilio.twiml import RelayLanguage, RelaySettings, connect_relay, dial, hangup


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
    assert ours == str(oracle)


#: A value for every ``<ConversationRelay>`` attribute: ours as keyword arguments, the
#: twilio-python keyword is the same name (its camelCase ones are given camelCase).
EVERY_ATTRIBUTE: dict[str, Any] = {
    "url": "wss://abc.example.com/prod",
    "language": "en-US",
    "tts_language": "en-GB",
    "transcription_language": "en-AU",
    "tts_provider": "amazon",
    "voice": "Joanna-Neural",
    "transcription_provider": "deepgram",
    "speech_model": "nova-3-general",
    "profanity_filter": True,
    "dtmf_detection": False,
    "welcome_greeting": 'Hello!\tTab,\nnew line & "quotes"',
    "partial_prompts": True,
    "welcome_greeting_interruptible": "dtmf",
    "interruptible": "speech",
    "preemptible": True,
    "intelligence_service": "GAxxxx",
    "report_input_during_agent_speech": "none",
    "elevenlabs_text_normalization": "auto",
    "interrupt_sensitivity": "low",
    "background_noise_reduction": True,
    "speech_timeout": 1500,
    "deepgram_smart_format": False,
    "ignore_backchannel": True,
    "partial_prompt_on_hangup": True,
    "eager_eot_threshold": 0.5,
    "asr_smart_format": True,
    "tts_text_normalization": "on",
    "tts_language_text_normalization": True,
    "elevenlabs_language_text_normalization": False,
    "include_in_prompt": "turn-state",
    "customer_name": "Ada <Lovelace>",
    "application_reconnect": True,
    "echo_prompt_filtering": True,
    "turn_detection": False,
}
#: twilio-python spells a few keywords in camelCase.
SDK_NAMES = {
    "background_noise_reduction": "backgroundNoiseReduction",
    "speech_timeout": "speechTimeout",
    "deepgram_smart_format": "deepgramSmartFormat",
    "ignore_backchannel": "ignoreBackchannel",
}


def test_every_attribute_is_written_byte_for_byte_as_the_sdk_writes_it() -> None:
    from twilio.twiml.voice_response import Connect, VoiceResponse

    settings = RelaySettings(
        **EVERY_ATTRIBUTE,
        hints=["Brightwave", "router"],
        debug=["debugging", "tokens-played"],
        events=["speaker-events", "tokens-played"],
        parameters={"tenant": "t1", "note": "a&b"},
        languages=[
            RelayLanguage(
                "es-ES",
                tts_provider="Google",
                voice="es-ES-Neural2-B",
                transcription_provider="Google",
                speech_model="telephony",
                hints=["hola", "adios"],
                asr_smart_format=True,
                tts_text_normalization="off",
                tts_language_text_normalization=False,
                extra={"futureLanguageThing": "x"},
            ),
            RelayLanguage("fr-FR"),
        ],
        extra={"someNewAttribute": "yes", "anotherOne": "1"},
    )
    ours = connect_relay(settings, action="https://abc.example.com/cr-action", method="GET")

    oracle = VoiceResponse()
    connect = Connect(action="https://abc.example.com/cr-action", method="GET")
    relay = connect.conversation_relay(
        **{SDK_NAMES.get(k, k): v for k, v in EVERY_ATTRIBUTE.items()},
        hints="Brightwave,router",
        debug="debugging tokens-played",
        events="speaker-events tokens-played",
        someNewAttribute="yes",
        anotherOne="1",
    )
    relay.language(
        code="es-ES",
        tts_provider="Google",
        voice="es-ES-Neural2-B",
        transcription_provider="Google",
        speech_model="telephony",
        hints="hola,adios",
        asr_smart_format=True,
        tts_text_normalization="off",
        tts_language_text_normalization=False,
        futureLanguageThing="x",
    )
    relay.language(code="fr-FR")
    relay.parameter(name="tenant", value="t1")
    relay.parameter(name="note", value="a&b")
    oracle.append(connect)
    assert ours == str(oracle)


def test_every_attribute_the_sdk_knows_has_an_argument() -> None:
    """A new twilio-python attribute shows up here: add it to ``RELAY_ATTRIBUTES``."""
    import inspect

    from twilio.twiml.voice_response import Connect, ConversationRelay

    from warmline.twilio.twiml import LANGUAGE_ATTRIBUTES, RELAY_ATTRIBUTES

    ours_for = {sdk: ours for ours, sdk in SDK_NAMES.items()}

    def sdk_names(function: Any) -> set[str]:
        names = set(inspect.signature(function).parameters) - {"self", "kwargs"}
        return {ours_for.get(name, name) for name in names}

    assert sdk_names(Connect.conversation_relay) == {name for name, _ in RELAY_ATTRIBUTES}
    assert sdk_names(ConversationRelay.language) == {name for name, _ in LANGUAGE_ATTRIBUTES}


def test_provider_names_match_without_regard_to_case_and_are_written_as_given() -> None:
    settings = RelaySettings(
        url="wss://x", tts_provider="ELEVENLABS", transcription_provider="deepgram"
    )
    assert settings.attributes()["ttsProvider"] == "ELEVENLABS"
    assert RelayLanguage("en-US", tts_provider="google").attributes()["ttsProvider"] == "google"


@pytest.mark.parametrize(
    "extra",
    [{"welcomeGreeting": "twice"}, {"bad name": "x"}, {"ok": 1}],
)
def test_a_pass_through_attribute_must_be_new_and_well_formed(extra: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RelaySettings(url="wss://x", extra=extra)


def test_hangup_and_dial_match_voice_response() -> None:
    from twilio.twiml.voice_response import VoiceResponse

    oracle = VoiceResponse()
    oracle.say("Goodbye & thanks")
    oracle.hangup()
    assert hangup("Goodbye & thanks") == str(oracle)
    oracle = VoiceResponse()
    oracle.say("Connecting you")
    oracle.dial("+15550123", caller_id="+15550100")
    assert dial("+15550123", say="Connecting you", caller_id="+15550100") == str(oracle)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "https://not-wss.example.com"},
        {"url": "wss://x", "interruptible": "sometimes"},
        {"url": "wss://x", "tts_provider": "Polly"},
        {"url": "wss://x", "transcription_provider": "Whisper"},
        {"url": "wss://x", "interrupt_sensitivity": "max"},
        {"url": "wss://x", "debug": ["everything"]},
        {"url": "wss://x", "debug": "debugging everything"},
        {"url": "wss://x", "tts_text_normalization": "maybe"},
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
