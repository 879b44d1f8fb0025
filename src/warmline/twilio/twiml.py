"""TwiML for ConversationRelay: ``<Connect><ConversationRelay>`` and what follows a call.

The incoming-call webhook answers with TwiML that connects the call to your WebSocket
(docs/protocols.md §1.6); when the relay session ends Twilio calls ``<Connect action>`` and the
TwiML returned there decides what happens next (§1.7): hang up, or dial a human on handoff.

Written by hand rather than with twilio's ``VoiceResponse`` (the twilio package costs
over 10 ms to import) or ``xml.sax.saxutils`` (it imports ``urllib.request``:
~26 ms with what that pulls in, measured with ``warmline coldstart``), on a path that
answers a ringing phone. The settings are plain slotted classes, not dataclasses, for the
same reason (``dataclasses`` loads ``inspect``). The output is byte for byte what
``VoiceResponse`` writes for the same settings (the tests use it as the oracle):
camelCase attribute names, sorted, escaped as ``xml.etree`` escapes them.
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
_NORMALIZATION = frozenset({"on", "auto", "off"})
#: Provider names, matched without regard to case (§1.6): Twilio's own examples spell them
#: both ways (``Deepgram`` and ``deepgram``); the value is written as given.
TTS_PROVIDERS = frozenset({"google", "amazon", "elevenlabs"})
STT_PROVIDERS = frozenset({"google", "deepgram"})
_DEBUG_CHANNELS = frozenset({"debugging", "speaker-events", "tokens-played"})
#: Attribute values are strings, flags and numbers; lists are joined as Twilio reads them.
Value = str | bool | int | float | None

#: ``<ConversationRelay>`` attributes: constructor argument -> XML name, in the order of
#: twilio-python's ``conversation_relay()`` (which writes them sorted, as :func:`_element`).
RELAY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("url", "url"),
    ("language", "language"),
    ("tts_language", "ttsLanguage"),
    ("transcription_language", "transcriptionLanguage"),
    ("tts_provider", "ttsProvider"),
    ("voice", "voice"),
    ("transcription_provider", "transcriptionProvider"),
    ("speech_model", "speechModel"),
    ("profanity_filter", "profanityFilter"),
    ("dtmf_detection", "dtmfDetection"),
    ("welcome_greeting", "welcomeGreeting"),
    ("partial_prompts", "partialPrompts"),
    ("welcome_greeting_interruptible", "welcomeGreetingInterruptible"),
    ("interruptible", "interruptible"),
    ("preemptible", "preemptible"),
    ("hints", "hints"),
    ("intelligence_service", "intelligenceService"),
    ("report_input_during_agent_speech", "reportInputDuringAgentSpeech"),
    ("elevenlabs_text_normalization", "elevenlabsTextNormalization"),
    ("interrupt_sensitivity", "interruptSensitivity"),
    ("debug", "debug"),
    ("background_noise_reduction", "backgroundNoiseReduction"),
    ("speech_timeout", "speechTimeout"),
    ("deepgram_smart_format", "deepgramSmartFormat"),
    ("ignore_backchannel", "ignoreBackchannel"),
    ("events", "events"),
    ("partial_prompt_on_hangup", "partialPromptOnHangup"),
    ("eager_eot_threshold", "eagerEotThreshold"),
    ("asr_smart_format", "asrSmartFormat"),
    ("tts_text_normalization", "ttsTextNormalization"),
    ("tts_language_text_normalization", "ttsLanguageTextNormalization"),
    ("elevenlabs_language_text_normalization", "elevenlabsLanguageTextNormalization"),
    ("include_in_prompt", "includeInPrompt"),
    ("customer_name", "customerName"),
    ("application_reconnect", "applicationReconnect"),
    ("echo_prompt_filtering", "echoPromptFiltering"),
    ("turn_detection", "turnDetection"),
)

#: ``<Language>`` attributes: constructor argument -> XML name.
LANGUAGE_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("code", "code"),
    ("tts_provider", "ttsProvider"),
    ("voice", "voice"),
    ("transcription_provider", "transcriptionProvider"),
    ("speech_model", "speechModel"),
    ("hints", "hints"),
    ("asr_smart_format", "asrSmartFormat"),
    ("tts_text_normalization", "ttsTextNormalization"),
    ("tts_language_text_normalization", "ttsLanguageTextNormalization"),
)

#: What an XML attribute name may be (ASCII letters, digits, ``-``, ``_``, ``.``, ``:``).
_XML_NAME = r"[A-Za-z_:][A-Za-z0-9_:.-]*"


def _is_local_ws(url: str) -> bool:
    """``ws://localhost...`` / ``ws://127.x``: the local emulator, never Twilio."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    local = host == "localhost" or host.startswith("127.") or host == "::1"
    return parts.scheme == "ws" and local


def _text(value: Value) -> str | None:
    """An attribute value as twilio-python writes it: flags as ``true``/``false``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _joined(values: Sequence[str] | str, sep: str) -> str | None:
    if isinstance(values, str):
        return values or None
    return sep.join(values) or None


def _check_one_of(name: str, value: str | None, allowed: frozenset[str], *, fold: bool) -> None:
    if value is None:
        return
    if (value.lower() if fold else value) not in allowed:
        raise ConfigurationError(f"{name} must be one of {sorted(allowed)}, not {value!r}")


def _check_providers(owner: str, tts: str | None, stt: str | None) -> None:
    _check_one_of(f"{owner}tts_provider", tts, TTS_PROVIDERS, fold=True)
    _check_one_of(f"{owner}transcription_provider", stt, STT_PROVIDERS, fold=True)


def _check_extra(extra: Mapping[str, str], known: tuple[tuple[str, str], ...]) -> None:
    """A pass-through attribute is a valid XML name that no typed argument writes."""
    import re

    taken = {xml for _, xml in known}
    for name, value in extra.items():
        if re.fullmatch(_XML_NAME, name) is None:
            raise ConfigurationError(f"extra attribute name {name!r} is not an XML name")
        if name in taken:
            raise ConfigurationError(
                f"extra attribute {name!r} has its own argument; set that instead"
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"extra attribute {name!r} must be a str, not {value!r}")


class RelayLanguage(Struct):
    """A nested ``<Language>`` element: per-language TTS/STT settings (§1.6).

    ``extra`` passes attributes this class does not know yet through as written.
    """

    __slots__ = (
        "code",
        "tts_provider",
        "voice",
        "transcription_provider",
        "speech_model",
        "hints",
        "asr_smart_format",
        "tts_text_normalization",
        "tts_language_text_normalization",
        "extra",
    )
    code: str
    tts_provider: str | None
    voice: str | None
    transcription_provider: str | None
    speech_model: str | None
    hints: Sequence[str] | str
    asr_smart_format: bool | None
    tts_text_normalization: str | None
    tts_language_text_normalization: bool | None
    extra: Mapping[str, str]

    def __init__(
        self,
        code: str,
        tts_provider: str | None = None,
        voice: str | None = None,
        transcription_provider: str | None = None,
        speech_model: str | None = None,
        hints: Sequence[str] | str = (),
        asr_smart_format: bool | None = None,
        tts_text_normalization: str | None = None,
        tts_language_text_normalization: bool | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        init_fields(
            self,
            code=code,
            tts_provider=tts_provider,
            voice=voice,
            transcription_provider=transcription_provider,
            speech_model=speech_model,
            hints=hints,
            asr_smart_format=asr_smart_format,
            tts_text_normalization=tts_text_normalization,
            tts_language_text_normalization=tts_language_text_normalization,
            extra=dict(extra or {}),
        )
        if not code:
            raise ConfigurationError("<Language> needs a code")
        _check_providers("Language.", tts_provider, transcription_provider)
        _check_one_of(
            "Language.tts_text_normalization", tts_text_normalization, _NORMALIZATION, fold=False
        )
        _check_extra(self.extra, LANGUAGE_ATTRIBUTES)

    def attributes(self) -> dict[str, str | None]:
        """XML name -> value (None: left out)."""
        values = {xml: _text(getattr(self, name)) for name, xml in LANGUAGE_ATTRIBUTES}
        values["hints"] = _joined(self.hints, ",")
        return {**values, **self.extra}


class RelaySettings(Struct):
    """The ``<ConversationRelay>`` attributes (docs/protocols.md §1.6), validated.

    Every attribute twilio-python's ``conversation_relay()`` knows has an argument of the
    same snake_case name (:data:`RELAY_ATTRIBUTES`); ``extra`` passes attributes newer than
    this list through as written (camelCase XML names). Only ``url`` is required; anything
    left at None is omitted, so Twilio's defaults apply. ``hints``, ``debug`` and
    ``events`` take a list (joined with ``,`` / spaces) or the joined string.
    """

    __slots__ = (
        *(name for name, _ in RELAY_ATTRIBUTES),
        "parameters",
        "languages",
        "extra",
    )
    url: str
    language: str | None
    tts_language: str | None
    transcription_language: str | None
    tts_provider: str | None
    voice: str | None
    transcription_provider: str | None
    speech_model: str | None
    profanity_filter: bool | None
    dtmf_detection: bool | None
    welcome_greeting: str | None
    partial_prompts: bool | None
    welcome_greeting_interruptible: str | None
    interruptible: str | None
    preemptible: bool | None
    hints: Sequence[str] | str
    intelligence_service: str | None
    report_input_during_agent_speech: str | None
    elevenlabs_text_normalization: str | None
    interrupt_sensitivity: str | None
    debug: Sequence[str] | str
    background_noise_reduction: bool | None
    speech_timeout: int | str | None
    deepgram_smart_format: bool | None
    ignore_backchannel: bool | None
    events: Sequence[str] | str
    partial_prompt_on_hangup: bool | None
    eager_eot_threshold: float | str | None
    asr_smart_format: bool | None
    tts_text_normalization: str | None
    tts_language_text_normalization: bool | None
    elevenlabs_language_text_normalization: bool | None
    include_in_prompt: str | None
    customer_name: str | None
    application_reconnect: bool | None
    echo_prompt_filtering: bool | None
    turn_detection: bool | None
    parameters: Mapping[str, str]
    languages: Sequence[RelayLanguage]
    extra: Mapping[str, str]

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
        hints: Sequence[str] | str = (),
        debug: Sequence[str] | str = (),
        intelligence_service: str | None = None,
        parameters: Mapping[str, str] | None = None,
        languages: Sequence[RelayLanguage] = (),
        *,
        profanity_filter: bool | None = None,
        elevenlabs_text_normalization: str | None = None,
        background_noise_reduction: bool | None = None,
        speech_timeout: int | str | None = None,
        deepgram_smart_format: bool | None = None,
        ignore_backchannel: bool | None = None,
        events: Sequence[str] | str = (),
        partial_prompt_on_hangup: bool | None = None,
        eager_eot_threshold: float | str | None = None,
        asr_smart_format: bool | None = None,
        tts_text_normalization: str | None = None,
        tts_language_text_normalization: bool | None = None,
        elevenlabs_language_text_normalization: bool | None = None,
        include_in_prompt: str | None = None,
        customer_name: str | None = None,
        application_reconnect: bool | None = None,
        echo_prompt_filtering: bool | None = None,
        turn_detection: bool | None = None,
        extra: Mapping[str, str] | None = None,
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
            languages=tuple(languages),
            profanity_filter=profanity_filter,
            elevenlabs_text_normalization=elevenlabs_text_normalization,
            background_noise_reduction=background_noise_reduction,
            speech_timeout=speech_timeout,
            deepgram_smart_format=deepgram_smart_format,
            ignore_backchannel=ignore_backchannel,
            events=events,
            partial_prompt_on_hangup=partial_prompt_on_hangup,
            eager_eot_threshold=eager_eot_threshold,
            asr_smart_format=asr_smart_format,
            tts_text_normalization=tts_text_normalization,
            tts_language_text_normalization=tts_language_text_normalization,
            elevenlabs_language_text_normalization=elevenlabs_language_text_normalization,
            include_in_prompt=include_in_prompt,
            customer_name=customer_name,
            application_reconnect=application_reconnect,
            echo_prompt_filtering=echo_prompt_filtering,
            turn_detection=turn_detection,
            extra=dict(extra or {}),
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
            _check_one_of(name, getattr(self, name), INTERRUPTIBLE_VALUES, fold=False)
        _check_one_of("interrupt_sensitivity", self.interrupt_sensitivity, _SENSITIVITY, fold=False)
        for name in ("elevenlabs_text_normalization", "tts_text_normalization"):
            _check_one_of(name, getattr(self, name), _NORMALIZATION, fold=False)
        _check_providers("", self.tts_provider, self.transcription_provider)
        debug = self.debug.split() if isinstance(self.debug, str) else self.debug
        unknown = set(debug) - _DEBUG_CHANNELS
        if unknown:
            raise ConfigurationError(f"unknown debug channels {sorted(unknown)}")
        _check_extra(self.extra, RELAY_ATTRIBUTES)

    def attributes(self) -> dict[str, str | None]:
        """XML name -> value (None: left out), pass-through attributes included."""
        values = {xml: _text(getattr(self, name)) for name, xml in RELAY_ATTRIBUTES}
        values["hints"] = _joined(self.hints, ",")
        values["debug"] = _joined(self.debug, " ")
        values["events"] = _joined(self.events, " ")
        return {**values, **self.extra}


def escape(text: str) -> str:
    """XML character data: ``&``, ``<``, ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(value: str) -> str:
    """A double-quoted XML attribute value, escaped as ``xml.etree`` (and so twilio-python)
    escapes it: whitespace other than spaces kept as character references."""
    escaped = escape(value).replace('"', "&quot;")
    escaped = escaped.replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#09;")
    return f'"{escaped}"'


def _element(tag: str, attributes: Mapping[str, str | None], body: str = "") -> str:
    """One element, written byte for byte as twilio-python writes it: attributes sorted by
    name, an empty element closed with `` />``."""
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in sorted(attributes.items()) if v is not None)
    return f"<{tag}{attrs}>{body}</{tag}>" if body else f"<{tag}{attrs} />"


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
    return _response((f"<Say>{escape(say)}</Say>" if say else "") + _element("Hangup", {}))


def dial(number: str, *, say: str | None = None, caller_id: str | None = None) -> str:
    """Transfer to a human: ``<Dial>number</Dial>``, optionally after a ``<Say>``."""
    if not number:
        raise ConfigurationError("dial needs a number or SIP address")
    said = f"<Say>{escape(say)}</Say>" if say else ""
    return _response(said + _element("Dial", {"callerId": caller_id}, escape(number)))
