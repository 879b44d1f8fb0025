"""ConversationRelay messages the app sends to Twilio, validated as Twilio validates them.

Twilio drops an outbound frame that breaks one of its rules with error 64107 and the call
goes on in silence (docs/protocols.md §1.3, §1.4); worse, frames it cannot identify count toward
the 10 that end the call. So every rule is checked here, at construction, where the bug is:
a message that exists is one Twilio accepts. A broken one raises
:class:`~warmline.errors.RelayValidationError` naming the field, in tests rather than on a
live call.

The rules (§1.3), with the choices warmline makes where Twilio's docs are vague:

- ``text.token`` is a ``str``, never ``None``; ``""`` is allowed (it closes a talk cycle
  with ``last=True``) and tokens are never trimmed (LLM tokens carry their spaces).
- Flags (``last``, ``interruptible``, ``preemptible``) are real ``bool`` values: ``1`` or
  ``"true"`` are rejected, because JSON keeps the difference and Twilio checks it.
- Languages are plausible BCP-47 tags (``en-US``, ``es``, ``zh-Hans-CN``, ``es-419``) or
  ``multi``; which languages a provider supports is Twilio's to say, not ours.
- ``play.source`` is an absolute ``http(s)`` URL; ``play.loop`` an int in 0..1000
  (``0`` means 1000 times).
- ``sendDigits.digits`` is non-empty, made of ``0-9 w W # *`` (``w`` is a half-second pause).
- ``language`` sets at least one of its two languages.
- ``end.handoffData`` is a string; :class:`End` JSON-encodes a dict or list for you.
- Strings must be encodable as UTF-8 (no lone surrogates), and the whole frame, as
  ``to_json()`` encodes it, must fit one ``PostToConnection`` body and one API Gateway
  WebSocket message (``MAX_POST_BYTES``, 128 KB: §2.4, §2.5). API Gateway would refuse a
  bigger one (413) and the caller would hear nothing, so a message too large is refused
  when it is built: cap what goes into it, or split a long answer into several ``Text``.

The messages are frozen, slotted value objects (:class:`~warmline.core._struct.Struct`,
not ``dataclasses``, which would cost every cold start its import and class building),
built positionally or by keyword and matched positionally (``__match_args__``).

:func:`parse_outbound` reads a frame back into these types with the same rules, plus one
more: an unknown field is an error, because a misspelt ``interruptable`` or a snake_case
``handoff_data`` would otherwise be ignored by Twilio without a word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from warmline.core._struct import Struct
from warmline.core.limits import MAX_POST_BYTES
from warmline.core.relay_in import decode_object, frame_type
from warmline.errors import RelayValidationError

# typing costs milliseconds to import and this module is on the cold start: annotations are
# strings, so only the type checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = [
    "MAX_PLAY_LOOP",
    "OUTBOUND_TYPES",
    "End",
    "Language",
    "OutboundMessage",
    "Play",
    "SendDigits",
    "Text",
    "is_language_tag",
    "parse_outbound",
]

#: ``play.loop`` upper bound; ``0`` also means this many (docs/protocols.md §1.3).
MAX_PLAY_LOOP = 1000

#: Longest excerpt of a bad value quoted in an error message.
_SHOW_CHARS = 40

#: A plausible BCP-47 tag (RFC 5646 §2.1 syntax, without grandfathered tags): language
#: (+ extlangs), script, region, variants, extensions, private use. Case-insensitive, as
#: the RFC says; ASCII only (``[0-9]``, not ``\d``, which matches other scripts' digits).
#: Patterns are kept as strings for ``re.fullmatch``, which compiles and caches them on
#: first use: compiling them here would cost every cold start about a millisecond.
_LANGUAGE_TAG = r"""
    [A-Za-z]{2,3} (?:-[A-Za-z]{3}){0,3}
    (?:-[A-Za-z]{4})?
    (?:-(?:[A-Za-z]{2}|[0-9]{3}))?
    (?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*
    (?:-[0-9A-WYZa-wyz](?:-[A-Za-z0-9]{2,8})+)*
    (?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?
"""
#: ElevenLabs TTS / Deepgram STT automatic language detection (§1.3, §1.6).
_MULTI = "multi"

#: An absolute http(s) URL: scheme, optional userinfo, host (name or [IPv6]), optional
#: port, then anything without whitespace or control characters.
_HTTP_URL = r"""
    [Hh][Tt][Tt][Pp][Ss]?://
    (?:[^\s\x00-\x1f\x7f/?#@]*@)?
    (?:\[[0-9A-Fa-f:.]+\]|[^\s\x00-\x1f\x7f/?#@:\[\]]+)
    (?::[0-9]{1,5})?
    (?:[/?#][^\s\x00-\x1f\x7f]*)?
"""
#: What ``sendDigits.digits`` may contain: DTMF keys plus ``w``/``W`` pauses.
_DIGIT_CHARS = "0123456789wW#*"

#: A message whose strings hold at most this many characters in all always fits in
#: ``MAX_POST_BYTES``: JSON spends at most 6 bytes on a character (``\u001f``), and the
#: rest of any frame (names, flags, a loop count) is far below 1 KB. Only a message with
#: more is encoded at construction to be measured.
_ALWAYS_FITS = (MAX_POST_BYTES - 1024) // 6

#: Sets a field of a frozen message in ``__init__``: one direct call per field is as fast
#: as the ``__init__`` ``dataclasses`` would write (a streamed answer builds many ``Text``).
_set = object.__setattr__


# --- validation helpers ----------------------------------------------------------------
def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 1] + "…"
    return f"{type(value).__name__} {text}"


def _invalid(where: str, expected: str, value: Any) -> RelayValidationError:
    return RelayValidationError(f"{where} must be {expected}, not {_show(value)}")


def _check_str(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid(where, "a str", value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RelayValidationError(
                f"{where} is not valid Unicode (lone surrogate at index {exc.start})"
            ) from exc
    return value


def _check_bool(where: str, value: Any, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if type(value) is not bool:
        raise _invalid(where, "a bool", value)


def _check_language(where: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not is_language_tag(value):
        raise _invalid(where, "a BCP-47 language tag (e.g. 'en-US') or 'multi'", value)


def is_language_tag(value: str) -> bool:
    """Whether ``value`` is a plausible BCP-47 tag or ``multi``, as Twilio expects."""
    return value == _MULTI or re.fullmatch(_LANGUAGE_TAG, value, re.VERBOSE) is not None


class _Outbound(Struct):
    """What every outbound message shares: the wire encoding and the size rule."""

    __slots__ = ()

    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The frame as a dict: Twilio's camelCase names, fields left at ``None`` omitted."""
        raise NotImplementedError

    def to_json(self) -> str:
        """The frame as compact JSON text, ready for ``PostToConnection``.

        It fits one ``PostToConnection`` (``MAX_POST_BYTES``): construction checked that.
        """
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def _check_size(self, chars: int) -> None:
        """Refuse the message if its frame would be over ``MAX_POST_BYTES`` (§2.4, §2.5).

        Args:
            chars: how many characters the message's strings hold in all.

        Raises:
            RelayValidationError: the frame is too large; cap or split what it carries.
        """
        if chars <= _ALWAYS_FITS:
            return
        size = len(self.to_json().encode("utf-8"))
        if size > MAX_POST_BYTES:
            raise RelayValidationError(
                f"{self.type} frame of {size} bytes is over the {MAX_POST_BYTES}-byte limit"
                " of one WebSocket message"
            )


# --- the messages ----------------------------------------------------------------------
class Text(_Outbound):
    """``text``: a token to speak (or, in chat, to show).

    Args:
        token: the text, sent as is (SSML passes through to providers that take it).
        last: ``True`` ends the talk cycle; a streamed answer ends with ``last=True``.
        lang: the TTS language for this token, overriding ``language``/``ttsLanguage``.
        interruptible: whether the caller can barge in on this text (overrides TwiML).
        preemptible: whether the *next* text or play may cut this one short.

    Raises:
        RelayValidationError: a field breaks Twilio's rules, or the frame is over 128 KB.
    """

    __slots__ = ("token", "last", "lang", "interruptible", "preemptible")
    __match_args__ = ("token", "last", "lang", "interruptible", "preemptible")
    type: ClassVar[str] = "text"
    token: str
    last: bool
    lang: str | None
    interruptible: bool | None
    preemptible: bool | None

    def __init__(
        self,
        token: str,
        last: bool = False,
        lang: str | None = None,
        interruptible: bool | None = None,
        preemptible: bool | None = None,
    ) -> None:
        _check_str("Text.token", token)
        _check_bool("Text.last", last, optional=False)
        _check_language("Text.lang", lang)
        _check_bool("Text.interruptible", interruptible)
        _check_bool("Text.preemptible", preemptible)
        _set(self, "token", token)
        _set(self, "last", last)
        _set(self, "lang", lang)
        _set(self, "interruptible", interruptible)
        _set(self, "preemptible", preemptible)
        self._check_size(len(token) + len(lang or ""))

    def to_dict(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "text", "token": self.token, "last": self.last}
        if self.lang is not None:
            frame["lang"] = self.lang
        if self.interruptible is not None:
            frame["interruptible"] = self.interruptible
        if self.preemptible is not None:
            frame["preemptible"] = self.preemptible
        return frame


class Play(_Outbound):
    """``play``: play an audio file from a URL.

    Args:
        source: an absolute ``http(s)`` URL Twilio can fetch.
        loop: how many times to play it, 1..1000, or ``0`` for 1000; Twilio's default is 1.
        preemptible: whether the next text or play may cut this one short.
        interruptible: whether the caller can barge in (overrides TwiML).

    Raises:
        RelayValidationError: a field breaks Twilio's rules, or the frame is over 128 KB.
    """

    __slots__ = ("source", "loop", "preemptible", "interruptible")
    __match_args__ = ("source", "loop", "preemptible", "interruptible")
    type: ClassVar[str] = "play"
    source: str
    loop: int | None
    preemptible: bool | None
    interruptible: bool | None

    def __init__(
        self,
        source: str,
        loop: int | None = None,
        preemptible: bool | None = None,
        interruptible: bool | None = None,
    ) -> None:
        _check_str("Play.source", source)
        if re.fullmatch(_HTTP_URL, source, re.VERBOSE) is None:
            raise _invalid("Play.source", "an absolute http(s) URL", source)
        if loop is not None and (
            type(loop) is not int or not 0 <= loop <= MAX_PLAY_LOOP  # bool is not an int here
        ):
            raise _invalid("Play.loop", f"an int from 0 to {MAX_PLAY_LOOP}", loop)
        _check_bool("Play.preemptible", preemptible)
        _check_bool("Play.interruptible", interruptible)
        _set(self, "source", source)
        _set(self, "loop", loop)
        _set(self, "preemptible", preemptible)
        _set(self, "interruptible", interruptible)
        self._check_size(len(source))

    def to_dict(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "play", "source": self.source}
        if self.loop is not None:
            frame["loop"] = self.loop
        if self.preemptible is not None:
            frame["preemptible"] = self.preemptible
        if self.interruptible is not None:
            frame["interruptible"] = self.interruptible
        return frame


class SendDigits(_Outbound):
    """``sendDigits``: play DTMF tones, queued behind any speech (e.g. to drive an IVR).

    Args:
        digits: ``0-9``, ``*``, ``#``, and ``w``/``W`` for pauses.

    Raises:
        RelayValidationError: empty, a character outside that set, or over 128 KB.
    """

    __slots__ = ("digits",)
    __match_args__ = ("digits",)
    type: ClassVar[str] = "sendDigits"
    digits: str

    def __init__(self, digits: str) -> None:
        _check_str("SendDigits.digits", digits)
        if not digits or digits.strip(_DIGIT_CHARS):
            raise _invalid("SendDigits.digits", "non-empty, of 0-9 w W # *", digits)
        _set(self, "digits", digits)
        self._check_size(len(digits))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "sendDigits", "digits": self.digits}


class Language(_Outbound):
    """``language``: switch the TTS and/or transcription language mid-call.

    Args:
        tts_language: the new text-to-speech language.
        transcription_language: the new speech-to-text language.

    Raises:
        RelayValidationError: neither is set, one is not a language tag, or over 128 KB.
    """

    __slots__ = ("tts_language", "transcription_language")
    __match_args__ = ("tts_language", "transcription_language")
    type: ClassVar[str] = "language"
    tts_language: str | None
    transcription_language: str | None

    def __init__(
        self, tts_language: str | None = None, transcription_language: str | None = None
    ) -> None:
        if tts_language is None and transcription_language is None:
            raise RelayValidationError(
                "Language needs tts_language or transcription_language (or both)"
            )
        _check_language("Language.tts_language (ttsLanguage)", tts_language)
        _check_language(
            "Language.transcription_language (transcriptionLanguage)", transcription_language
        )
        _set(self, "tts_language", tts_language)
        _set(self, "transcription_language", transcription_language)
        self._check_size(len(tts_language or "") + len(transcription_language or ""))

    def to_dict(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "language"}
        if self.tts_language is not None:
            frame["ttsLanguage"] = self.tts_language
        if self.transcription_language is not None:
            frame["transcriptionLanguage"] = self.transcription_language
        return frame


class End(_Outbound):
    """``end``: end the session; Twilio then calls the ``<Connect action>`` URL (§1.7).

    Args:
        handoff_data: an opaque string Twilio returns as ``HandoffData`` on the action
            callback; a dict or list is JSON-encoded for you (``json.dumps`` defaults).

    Raises:
        RelayValidationError: ``handoff_data`` is another type or cannot be JSON-encoded,
            or the frame would be over 128 KB (cap what the handoff carries).
    """

    __slots__ = ("handoff_data",)
    __match_args__ = ("handoff_data",)
    type: ClassVar[str] = "end"
    handoff_data: str | None

    def __init__(
        self, handoff_data: str | Mapping[str, Any] | list[Any] | tuple[Any, ...] | None = None
    ) -> None:
        value = handoff_data
        if isinstance(value, Mapping | list | tuple):
            try:
                value = json.dumps(
                    dict(value) if isinstance(value, Mapping) else value,
                    ensure_ascii=False,
                    allow_nan=False,  # NaN is not JSON; the reader of HandoffData would choke
                )
            except (TypeError, ValueError) as exc:
                raise RelayValidationError(
                    f"End.handoff_data (handoffData) cannot be JSON-encoded: {exc}"
                ) from exc
        if value is not None:
            _check_str("End.handoff_data (handoffData)", value)
        _set(self, "handoff_data", value)
        self._check_size(len(value or ""))

    def to_dict(self) -> dict[str, Any]:
        if self.handoff_data is None:
            return {"type": "end"}
        return {"type": "end", "handoffData": self.handoff_data}


#: Anything the app can send through ConversationRelay.
OutboundMessage = Text | Play | SendDigits | Language | End

#: Wire ``type`` -> message class (§1.3).
OUTBOUND_TYPES: dict[str, type[OutboundMessage]] = {
    "text": Text,
    "play": Play,
    "sendDigits": SendDigits,
    "language": Language,
    "end": End,
}

#: Per wire type: wire field -> constructor argument, and the fields that are required.
_FIELDS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "text": (
        {
            "token": "token",
            "last": "last",
            "lang": "lang",
            "interruptible": "interruptible",
            "preemptible": "preemptible",
        },
        ("token",),
    ),
    "play": (
        {
            "source": "source",
            "loop": "loop",
            "preemptible": "preemptible",
            "interruptible": "interruptible",
        },
        ("source",),
    ),
    "sendDigits": ({"digits": "digits"}, ("digits",)),
    "language": (
        {"ttsLanguage": "tts_language", "transcriptionLanguage": "transcription_language"},
        (),
    ),
    "end": ({"handoffData": "handoff_data"}, ()),
}


def parse_outbound(data: str | bytes | bytearray | Mapping[str, Any]) -> OutboundMessage:
    """Read an outbound frame back into its typed message, with every rule applied.

    For test clients and the emulator's fake Twilio (what would Twilio make of this?),
    and for apps that send plain dicts.

    Args:
        data: the frame as JSON text or UTF-8 bytes, or as an already decoded object.

    Returns:
        The typed message; ``parse_outbound(m.to_json()) == m`` for every message ``m``.

    Raises:
        RelayValidationError: Twilio would drop the frame: not a JSON object, too large,
            an unknown ``type``, a missing, ``null``, unknown or invalid field.
        TypeError: ``data`` is none of the accepted types (a programming error).
    """
    if isinstance(data, Mapping):
        obj = dict(data)
    else:
        obj = decode_object(
            data,
            max_bytes=MAX_POST_BYTES,
            error=RelayValidationError,
            too_large=RelayValidationError,
        )
    kind = frame_type(obj, RelayValidationError)
    spec = _FIELDS.get(kind)
    if spec is None:
        known = ", ".join(OUTBOUND_TYPES)
        raise RelayValidationError(f"unknown outbound type {kind[:_SHOW_CHARS]!r} ({known})")
    names, required = spec
    kwargs: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "type":
            continue
        name = names.get(key)
        if name is None:
            raise RelayValidationError(f"{kind} has no field {str(key)[:_SHOW_CHARS]!r}")
        if value is None:
            raise RelayValidationError(f"{kind}.{key} must not be null")
        kwargs[name] = value
    for key in required:
        if key not in obj:
            raise RelayValidationError(f"{kind} frame has no {key!r}")
    if kind == "end" and not isinstance(kwargs.get("handoff_data", ""), str):
        # End() encodes a dict for convenience; on the wire it must already be a string.
        raise _invalid("end.handoffData", "a str", kwargs["handoff_data"])
    message: OutboundMessage = OUTBOUND_TYPES[kind](**kwargs)
    return message
