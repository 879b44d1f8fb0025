"""TwiML for ConversationRelay: ``<Connect><ConversationRelay>`` and what follows a call.

The incoming-call webhook answers with TwiML that connects the call to your WebSocket
(PROTOCOLS.md §1.6); when the relay session ends Twilio calls ``<Connect action>`` and the
TwiML returned there decides what happens next (§1.7): hang up, or dial a human on handoff.

Written on the standard library (``xml.sax.saxutils``) rather than twilio's
``VoiceResponse``: the twilio package costs ~12–21 ms to import (ANCHORS.md) on a path that
answers a ringing phone. Tests compare the output with ``VoiceResponse`` as the oracle.
Attribute names are camelCase in the XML, as twilio-python writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from warmline.errors import ConfigurationError

__all__ = [
    "INTERRUPTIBLE_VALUES",
    "RelayLanguage",
    "RelaySettings",
    "connect_relay",
    "dial",
    "hangup",
]

#: ``interruptible`` / ``welcomeGreetingInterruptible`` / ``reportInputDuringAgentSpeech``
#: values (PROTOCOLS.md §1.6); ``true``/``false`` are accepted as ``any``/``none``.
INTERRUPTIBLE_VALUES = frozenset({"none", "dtmf", "speech", "any", "true", "false"})
_SENSITIVITY = frozenset({"low", "medium", "high"})
_TTS_PROVIDERS = frozenset({"Google", "Amazon", "ElevenLabs"})
_STT_PROVIDERS = frozenset({"Google", "Deepgram"})
_DEBUG_CHANNELS = frozenset({"debugging", "speaker-events", "tokens-played"})


def _is_local_ws(url: str) -> bool:
    """``ws://localhost...`` / ``ws://127.x``: the local emulator, never Twilio."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    local = host == "localhost" or host.startswith("127.") or host == "::1"
    return parts.scheme == "ws" and local


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


@dataclass(frozen=True, slots=True)
class RelayLanguage:
    """A nested ``<Language>`` element: per-language TTS/STT settings."""

    code: str
    tts_provider: str | None = None
    voice: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None

    def attributes(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "ttsProvider": self.tts_provider,
            "voice": self.voice,
            "transcriptionProvider": self.transcription_provider,
            "speechModel": self.speech_model,
        }


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """The ``<ConversationRelay>`` attributes (PROTOCOLS.md §1.6), validated.

    Only ``url`` is required; anything left at None is omitted, so Twilio's defaults apply.
    """

    url: str
    welcome_greeting: str | None = None
    welcome_greeting_interruptible: str | None = None
    language: str | None = None
    tts_language: str | None = None
    transcription_language: str | None = None
    tts_provider: str | None = None
    voice: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None
    interruptible: str | None = None
    interrupt_sensitivity: str | None = None
    dtmf_detection: bool | None = None
    report_input_during_agent_speech: str | None = None
    preemptible: bool | None = None
    partial_prompts: bool | None = None
    hints: Sequence[str] = ()
    debug: Sequence[str] = ()
    intelligence_service: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    languages: Sequence[RelayLanguage] = ()

    def __post_init__(self) -> None:
        if not (self.url.startswith("wss://") or _is_local_ws(self.url)):
            raise ConfigurationError(
                f"ConversationRelay url must start with wss:// (ws:// only for a local "
                f"emulator on localhost): {self.url!r}"
            )
        for name in (
            "interruptible",
            "welcome_greeting_interruptible",
            "report_input_during_agent_speech",
        ):
            value = getattr(self, name)
            if value is not None and value not in INTERRUPTIBLE_VALUES:
                raise ConfigurationError(
                    f"{name} must be one of {sorted(INTERRUPTIBLE_VALUES)}, not {value!r}"
                )
        if self.interrupt_sensitivity not in (None, *_SENSITIVITY):
            raise ConfigurationError(f"interrupt_sensitivity {self.interrupt_sensitivity!r}")
        if self.tts_provider not in (None, *_TTS_PROVIDERS):
            raise ConfigurationError(
                f"tts_provider must be one of {sorted(_TTS_PROVIDERS)}, not {self.tts_provider!r}"
            )
        if self.transcription_provider not in (None, *_STT_PROVIDERS):
            raise ConfigurationError(
                f"transcription_provider must be one of {sorted(_STT_PROVIDERS)}, "
                f"not {self.transcription_provider!r}"
            )
        unknown = set(self.debug) - _DEBUG_CHANNELS
        if unknown:
            raise ConfigurationError(f"unknown debug channels {sorted(unknown)}")

    def attributes(self) -> dict[str, str | None]:
        return {
            "url": self.url,
            "welcomeGreeting": self.welcome_greeting,
            "welcomeGreetingInterruptible": self.welcome_greeting_interruptible,
            "language": self.language,
            "ttsLanguage": self.tts_language,
            "transcriptionLanguage": self.transcription_language,
            "ttsProvider": self.tts_provider,
            "voice": self.voice,
            "transcriptionProvider": self.transcription_provider,
            "speechModel": self.speech_model,
            "interruptible": self.interruptible,
            "interruptSensitivity": self.interrupt_sensitivity,
            "dtmfDetection": _flag(self.dtmf_detection),
            "reportInputDuringAgentSpeech": self.report_input_during_agent_speech,
            "preemptible": _flag(self.preemptible),
            "partialPrompts": _flag(self.partial_prompts),
            "hints": ",".join(self.hints) or None,
            "debug": " ".join(self.debug) or None,
            "intelligenceService": self.intelligence_service,
        }


def _element(tag: str, attributes: Mapping[str, str | None], body: str = "") -> str:
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in attributes.items() if v is not None)
    return f"<{tag}{attrs}>{body}</{tag}>" if body else f"<{tag}{attrs}/>"


def _response(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


def connect_relay(
    settings: RelaySettings, *, action: str | None = None, method: str | None = None
) -> str:
    """``<Response><Connect action=...><ConversationRelay .../></Connect></Response>``.

    Args:
        settings: the relay's attributes, ``<Language>`` and ``<Parameter>`` children.
        action: URL Twilio calls when the relay session ends (§1.7).
        method: ``GET`` or ``POST`` for ``action``.
    """
    if method not in (None, "GET", "POST"):
        raise ConfigurationError(f"method must be GET or POST, not {method!r}")
    children = "".join(_element("Language", lang.attributes()) for lang in settings.languages)
    children += "".join(
        _element("Parameter", {"name": name, "value": value})
        for name, value in settings.parameters.items()
    )
    relay = _element("ConversationRelay", settings.attributes(), children)
    return _response(_element("Connect", {"action": action, "method": method}, relay))


def hangup(say: str | None = None) -> str:
    """End the call, optionally saying something first."""
    return _response((f"<Say>{escape(say)}</Say>" if say else "") + "<Hangup/>")


def dial(number: str, *, say: str | None = None, caller_id: str | None = None) -> str:
    """Transfer to a human: ``<Dial>number</Dial>``, optionally after a ``<Say>``."""
    if not number:
        raise ConfigurationError("dial needs a number or SIP address")
    said = f"<Say>{escape(say)}</Say>" if say else ""
    return _response(said + _element("Dial", {"callerId": caller_id}, escape(number)))
