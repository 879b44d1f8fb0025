"""TwiML for ConversationRelay: ``<Connect><ConversationRelay>`` and what follows a call.

The incoming-call webhook answers with TwiML that connects the call to your WebSocket
(docs/protocols.md §1.6); when the relay session ends Twilio calls ``<Connect action>`` and the
TwiML returned there decides what happens next (§1.7): hang up, or dial a human on handoff.

Written by hand rather than with twilio's ``VoiceResponse`` (the twilio package costs
over 10 ms to import) or ``xml.sax.saxutils`` (it imports ``urllib.request``:
~26 ms with what that pulls in, measured with ``warmline coldstart``), on a path that
answers a ringing phone. The settings are plain slotted classes, not dataclasses, for the
same reason (``dataclasses`` loads ``inspect``). Tests compare the output with
``VoiceResponse`` as the oracle.
Attribute names are camelCase in the XML, as twilio-python writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from warmline.core._struct import Struct, init_fields
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
#: values (docs/protocols.md §1.6); ``true``/``false`` are accepted as ``any``/``none``.
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


class RelayLanguage(Struct):
    """A nested ``<Language>`` element: per-language TTS/STT settings."""

    __slots__ = ("code", "tts_provider", "voice", "transcription_provider", "speech_model")
    code: str
    tts_provider: str | None
    voice: str | None
    transcription_provider: str | None
    speech_model: str | None

    def __init__(
        self,
        code: str,
        tts_provider: str | None = None,
        voice: str | None = None,
        transcription_provider: str | None = None,
        speech_model: str | None = None,
    ) -> None:
        init_fields(
            self,
            code=code,
            tts_provider=tts_provider,
            voice=voice,
            transcription_provider=transcription_provider,
            speech_model=speech_model,
        )

    def attributes(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "ttsProvider": self.tts_provider,
            "voice": self.voice,
            "transcriptionProvider": self.transcription_provider,
            "speechModel": self.speech_model,
        }


class RelaySettings(Struct):
    """The ``<ConversationRelay>`` attributes (docs/protocols.md §1.6), validated.

    Only ``url`` is required; anything left at None is omitted, so Twilio's defaults apply.
    """

    __slots__ = (
        "url",
        "welcome_greeting",
        "welcome_greeting_interruptible",
        "language",
        "tts_language",
        "transcription_language",
        "tts_provider",
        "voice",
        "transcription_provider",
        "speech_model",
        "interruptible",
        "interrupt_sensitivity",
        "dtmf_detection",
        "report_input_during_agent_speech",
        "preemptible",
        "partial_prompts",
        "hints",
        "debug",
        "intelligence_service",
        "parameters",
        "languages",
    )
    url: str
    welcome_greeting: str | None
    welcome_greeting_interruptible: str | None
    language: str | None
    tts_language: str | None
    transcription_language: str | None
    tts_provider: str | None
    voice: str | None
    transcription_provider: str | None
    speech_model: str | None
    interruptible: str | None
    interrupt_sensitivity: str | None
    dtmf_detection: bool | None
    report_input_during_agent_speech: str | None
    preemptible: bool | None
    partial_prompts: bool | None
    hints: Sequence[str]
    debug: Sequence[str]
    intelligence_service: str | None
    parameters: Mapping[str, str]
    languages: Sequence[RelayLanguage]

    def __init__(
        self,
        url: str,
        welcome_greeting: str | None = None,
        welcome_greeting_interruptible: str | None = None,
        language: str | None = None,
        tts_language: str | None = None,
        transcription_language: str | None = None,
        tts_provider: str | None = None,
        voice: str | None = None,
        transcription_provider: str | None = None,
        speech_model: str | None = None,
        interruptible: str | None = None,
        interrupt_sensitivity: str | None = None,
        dtmf_detection: bool | None = None,
        report_input_during_agent_speech: str | None = None,
        preemptible: bool | None = None,
        partial_prompts: bool | None = None,
        hints: Sequence[str] = (),
        debug: Sequence[str] = (),
        intelligence_service: str | None = None,
        parameters: Mapping[str, str] | None = None,
        languages: Sequence[RelayLanguage] = (),
    ) -> None:
        init_fields(
            self,
            url=url,
            welcome_greeting=welcome_greeting,
            welcome_greeting_interruptible=welcome_greeting_interruptible,
            language=language,
            tts_language=tts_language,
            transcription_language=transcription_language,
            tts_provider=tts_provider,
            voice=voice,
            transcription_provider=transcription_provider,
            speech_model=speech_model,
            interruptible=interruptible,
            interrupt_sensitivity=interrupt_sensitivity,
            dtmf_detection=dtmf_detection,
            report_input_during_agent_speech=report_input_during_agent_speech,
            preemptible=preemptible,
            partial_prompts=partial_prompts,
            hints=hints,
            debug=debug,
            intelligence_service=intelligence_service,
            parameters=dict(parameters or {}),
            languages=languages,
        )
        self._validate()

    def _validate(self) -> None:
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


def escape(text: str) -> str:
    """XML character data: ``&``, ``<``, ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(value: str) -> str:
    """A double-quoted XML attribute value (whitespace kept as character references)."""
    escaped = escape(value).replace('"', "&quot;")
    escaped = escaped.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    return f'"{escaped}"'


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
