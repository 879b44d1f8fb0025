"""ConversationRelay messages Twilio sends to the app, parsed into typed records.

One module for one concept, a little over 600 lines: each message is a slotted class that
names its fields three times (slots, constructor, defaults), the price of not importing
``dataclasses`` at cold start (docs/performance.md).

Twilio is the peer here, so everything it sends is *judged*, not trusted: a frame that
cannot be a ConversationRelay message raises :class:`~warmline.errors.MalformedFrameError`
(the call goes on; the adapter logs it and answers 400) and nothing else ever escapes
:func:`parse_inbound` for any text or bytes. The rules, in order (docs/protocols.md §1.1, §1.2):

Rule 1: size first. A body over ``MAX_MESSAGE_BYTES`` (API Gateway's 128 KB, §2.5) raises
    ``FrameTooLargeError`` before a byte of it is decoded.
Rule 2: UTF-8 text holding one JSON object (strict JSON: no ``NaN``, no ``Infinity``, at
    most ``MAX_JSON_DEPTH`` levels of nesting) whose ``type`` is a non-empty string.
Rule 3: every string is storable. Twilio sends UTF-8 (§1.1), which cannot hold a lone UTF-16
    surrogate, but JSON's ``\\ud800`` escape can, and ``json`` decodes it to a ``str``
    that no UTF-8 encoder accepts: stored as it is, it would crash the session store (or
    a logger) mid-turn. Such a frame can only come from a broken or hostile peer, so each
    lone surrogate, in any key or value (``raw`` included), becomes U+FFFD, the Unicode
    replacement character, and the frame is handled like any other. Keys that differ only
    in their lone surrogates collapse into one (the last wins).
Rule 4: a field that is missing or ``null`` takes its default; a field that is present
    with the wrong JSON type is an error. Twilio always sends its fields (§1.2), so a
    missing one is tolerated, but a wrong type means the frame is not what we think it is.
    Required (no default): ``prompt.voicePrompt``, ``dtmf.digit``.
Rule 5: where Twilio's own docs disagree with themselves, parse leniently:
    ``interrupt.durationUntilInterruptMs`` is a number or a numeric string (the docs show
    both ``460`` and ``"460"``) and anything else becomes ``None``, never an error.
    ``info.value`` numbers and booleans are kept as their JSON text.
Rule 6: unknown ``type`` values become :class:`UnknownMessage` (Twilio adds message types
    over time; the app routes them to its fallback), and every message keeps the decoded
    object as ``raw``, so unknown extra fields are never lost.

The records are frozen, slotted value objects (:class:`~warmline.core._struct.Struct`,
not ``dataclasses``, which would cost every cold start its import and class building),
but unlike the outbound messages they do not validate at construction: validation
happens once, in the parser, where the error can name the wire field. That also lets
tests build any message directly.
"""

from __future__ import annotations

import json
import math
import re

from warmline.core._struct import Struct
from warmline.core.limits import MAX_MESSAGE_BYTES
from warmline.errors import FrameTooLargeError, MalformedFrameError

# typing costs milliseconds to import and this module is on the cold start: annotations are
# strings, so only the type checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, NoReturn

__all__ = [
    "DTMF_DIGITS",
    "INBOUND_TYPES",
    "MAX_JSON_DEPTH",
    "Dtmf",
    "Error",
    "InboundMessage",
    "Info",
    "Interrupt",
    "Prompt",
    "Setup",
    "UnknownMessage",
    "decode_object",
    "frame_type",
    "parse_inbound",
]

#: Keys a caller can press, as ``dtmf.digit`` reports them (docs/protocols.md §1.2).
DTMF_DIGITS = frozenset("0123456789*#")

#: Deepest JSON nesting accepted. Not a Twilio limit: Twilio's frames are at most two levels
#: deep (``setup.customParameters``); this keeps a hostile body from reaching the recursion
#: limit in ``json`` or in whatever later walks ``raw`` (a store, a logger).
MAX_JSON_DEPTH = 32

#: Longest excerpt of a bad value quoted in an error message (never the whole body).
_SHOW_CHARS = 40

#: A number as a string: ``"460"``, ``"460.5"``, ``"4.6e2"`` (no ``_``, ``inf``, ``nan`` or
#: non-ASCII digits, which ``float()`` would take). A pattern string, not a compiled one:
#: ``re`` compiles and caches it on first use, keeping the compile off the import.
_NUMERIC = r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*"

#: Any UTF-16 surrogate code point; after ``json`` has paired the valid ones, a lone one.
_SURROGATE = "[\ud800-\udfff]"
#: What replaces a lone surrogate (Rule 3): U+FFFD REPLACEMENT CHARACTER.
_REPLACEMENT = "\ufffd"

#: Sets a field of a frozen message in ``__init__``: one direct call per field is as fast
#: as the ``__init__`` ``dataclasses`` would write (messages are built on every frame).
_set = object.__setattr__


# --- the messages ----------------------------------------------------------------------
class _Inbound(Struct):
    """What the inbound messages share: ``raw`` (and any dict) stays out of repr and hash."""

    __slots__ = ()

    def __repr__(self) -> str:
        args = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self._fields() if name != "raw"
        )
        return f"{type(self).__name__}({args})"

    def __hash__(self) -> int:
        # Dicts are unhashable: hash the other fields (equal messages still hash alike).
        return hash(tuple(value for value in self._values() if not isinstance(value, dict)))


class Setup(_Inbound):
    """``setup``: the first frame of every session, describing the call (§1.2).

    Attributes:
        session_id: ``sessionId`` (``VX…``); a new one on each reconnect of the same call.
        call_sid: ``callSid`` (``CA…``); stable across reconnects.
        parent_call_sid: ``parentCallSid``, ``""`` if none.
        account_sid: ``accountSid`` (``AC…``).
        from_: ``from``, the caller (E.164, SIP URI or ``client:`` identity).
        to: ``to``, the number or address called.
        forwarded_from: ``forwardedFrom``, may be ``""``.
        call_type: ``callType``: ``PSTN``, ``SIP``, ``CLIENT``.
        caller_name: ``callerName`` (CNAM), may be ``""``.
        direction: ``direction``: ``inbound``, ``outbound-api``, ...
        call_status: ``callStatus``: ``RINGING``, ``IN_PROGRESS`` (on a reconnect), ...
        custom_parameters: ``customParameters``, the TwiML ``<Parameter>`` values.
        raw: the decoded frame, including fields this class does not model.
    """

    __slots__ = (
        "session_id",
        "call_sid",
        "parent_call_sid",
        "account_sid",
        "from_",
        "to",
        "forwarded_from",
        "call_type",
        "caller_name",
        "direction",
        "call_status",
        "custom_parameters",
        "raw",
    )
    type: ClassVar[str] = "setup"
    session_id: str
    call_sid: str
    parent_call_sid: str
    account_sid: str
    from_: str
    to: str
    forwarded_from: str
    call_type: str
    caller_name: str
    direction: str
    call_status: str
    custom_parameters: dict[str, str]
    raw: dict[str, Any]

    def __init__(
        self,
        *,
        session_id: str = "",
        call_sid: str = "",
        parent_call_sid: str = "",
        account_sid: str = "",
        from_: str = "",
        to: str = "",
        forwarded_from: str = "",
        call_type: str = "",
        caller_name: str = "",
        direction: str = "",
        call_status: str = "",
        custom_parameters: dict[str, str] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        _set(self, "session_id", session_id)
        _set(self, "call_sid", call_sid)
        _set(self, "parent_call_sid", parent_call_sid)
        _set(self, "account_sid", account_sid)
        _set(self, "from_", from_)
        _set(self, "to", to)
        _set(self, "forwarded_from", forwarded_from)
        _set(self, "call_type", call_type)
        _set(self, "caller_name", caller_name)
        _set(self, "direction", direction)
        _set(self, "call_status", call_status)
        _set(self, "custom_parameters", {} if custom_parameters is None else custom_parameters)
        _set(self, "raw", {} if raw is None else raw)


class Prompt(_Inbound):
    """``prompt``: what the caller said, transcribed (§1.2).

    With ``partialPrompts`` on, ``last=False`` frames carry the utterance *so far*
    (cumulative, not a delta) and the final ``last=True`` frame repeats all of it.

    Attributes:
        voice_prompt: ``voicePrompt``, the transcript.
        lang: ``lang``, e.g. ``en-US`` (with ``multi`` STT only the primary tag, ``en``).
        last: ``last``; ``True`` when absent, so a frame without it is a complete turn.
        raw: the decoded frame.
    """

    __slots__ = ("voice_prompt", "lang", "last", "raw")
    type: ClassVar[str] = "prompt"
    voice_prompt: str
    lang: str
    last: bool
    raw: dict[str, Any]

    def __init__(
        self,
        *,
        voice_prompt: str,
        lang: str = "",
        last: bool = True,
        raw: dict[str, Any] | None = None,
    ) -> None:
        _set(self, "voice_prompt", voice_prompt)
        _set(self, "lang", lang)
        _set(self, "last", last)
        _set(self, "raw", {} if raw is None else raw)


class Dtmf(_Inbound):
    """``dtmf``: one key the caller pressed, one frame per key (§1.2).

    Attributes:
        digit: one of ``0-9``, ``*``, ``#``.
        raw: the decoded frame.
    """

    __slots__ = ("digit", "raw")
    type: ClassVar[str] = "dtmf"
    digit: str
    raw: dict[str, Any]

    def __init__(self, *, digit: str, raw: dict[str, Any] | None = None) -> None:
        _set(self, "digit", digit)
        _set(self, "raw", {} if raw is None else raw)


class Interrupt(_Inbound):
    """``interrupt``: the caller barged in while the agent was speaking (§1.2).

    Twilio has already dropped everything queued; the app only needs to stop producing
    and, if it keeps a transcript, cut its last turn to what the caller heard.

    Attributes:
        utterance_until_interrupt: ``utteranceUntilInterrupt``, the text actually played.
        duration_until_interrupt_ms: ``durationUntilInterruptMs``, or ``None`` when
            absent or not a finite, non-negative number.
        raw: the decoded frame.
    """

    __slots__ = ("utterance_until_interrupt", "duration_until_interrupt_ms", "raw")
    type: ClassVar[str] = "interrupt"
    utterance_until_interrupt: str
    duration_until_interrupt_ms: float | None
    raw: dict[str, Any]

    def __init__(
        self,
        *,
        utterance_until_interrupt: str = "",
        duration_until_interrupt_ms: float | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        _set(self, "utterance_until_interrupt", utterance_until_interrupt)
        _set(self, "duration_until_interrupt_ms", duration_until_interrupt_ms)
        _set(self, "raw", {} if raw is None else raw)


class Error(_Inbound):
    """``error``: Twilio reporting a problem, e.g. an outbound frame it dropped (64107).

    Attributes:
        description: ``description``, e.g. ``"Invalid message received, code: 64107, …"``.
        raw: the decoded frame.
    """

    __slots__ = ("description", "raw")
    type: ClassVar[str] = "error"
    description: str
    raw: dict[str, Any]

    def __init__(self, *, description: str = "", raw: dict[str, Any] | None = None) -> None:
        _set(self, "description", description)
        _set(self, "raw", {} if raw is None else raw)


class Info(_Inbound):
    """``info``: a debug or speaker event the TwiML subscribed to (``debug``/``events``).

    Attributes:
        name: ``roundTripDelayMs``, ``agentSpeaking``, ``clientSpeaking``, ``tokensPlayed``...
        value: ``value`` as a string (``"on"``/``"off"``, a number, the text just spoken).
        raw: the decoded frame.
    """

    __slots__ = ("name", "value", "raw")
    type: ClassVar[str] = "info"
    name: str
    value: str
    raw: dict[str, Any]

    def __init__(
        self, *, name: str = "", value: str = "", raw: dict[str, Any] | None = None
    ) -> None:
        _set(self, "name", name)
        _set(self, "value", value)
        _set(self, "raw", {} if raw is None else raw)


class UnknownMessage(_Inbound):
    """A frame whose ``type`` warmline does not model; routed to the app's fallback.

    Attributes:
        type: the frame's ``type``, as sent.
        raw: the decoded frame.
    """

    __slots__ = ("type", "raw")
    type: str
    raw: dict[str, Any]

    def __init__(self, *, type: str, raw: dict[str, Any] | None = None) -> None:
        _set(self, "type", type)
        _set(self, "raw", {} if raw is None else raw)


#: Anything :func:`parse_inbound` returns.
InboundMessage = Setup | Prompt | Dtmf | Interrupt | Error | Info | UnknownMessage


# --- decoding --------------------------------------------------------------------------
def _reject_constant(name: str) -> NoReturn:
    # json accepts NaN/Infinity/-Infinity by default; they are not JSON.
    raise ValueError(f"{name} is not valid JSON")


def decode_object(
    data: str | bytes | bytearray,
    *,
    max_bytes: int,
    error: type[Exception] = MalformedFrameError,
    too_large: type[Exception] = FrameTooLargeError,
    storable: bool = False,
) -> dict[str, Any]:
    """Decode one WebSocket text frame into a JSON object, safely.

    Shared by :func:`parse_inbound` and ``relay_out.parse_outbound``, which raise
    different errors (the peer's fault vs. the app's).

    Args:
        data: the frame as text, or as bytes that must be UTF-8.
        max_bytes: the largest accepted size in UTF-8 bytes, checked before decoding.
        error: raised for anything that is not a JSON object.
        too_large: raised when the frame is over ``max_bytes``.
        storable: replace lone surrogates in every key and string with U+FFFD (Rule 3).

    Returns:
        The decoded object, with a string ``type`` checked by the caller.

    Raises:
        TypeError: ``data`` is neither text nor bytes (a programming error).
    """
    if isinstance(data, str):
        if len(data) > max_bytes:  # every character is at least one byte
            raise too_large(f"frame over {max_bytes} bytes")
        if not data.isascii():
            try:
                size = len(data.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise error(f"frame is not valid Unicode text (at index {exc.start})") from exc
            if size > max_bytes:
                raise too_large(f"frame of {size} bytes is over {max_bytes}")
        text = data
    elif isinstance(data, bytes | bytearray):
        if len(data) > max_bytes:
            raise too_large(f"frame of {len(data)} bytes is over {max_bytes}")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"frame is not valid UTF-8 (at byte {exc.start})") from exc
    else:
        raise TypeError(f"a frame is str or bytes, not {type(data).__name__}")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise error(f"frame nests deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:
        # JSONDecodeError, NaN/Infinity, and ints over sys.get_int_max_str_digits().
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise error(f"frame is not JSON: {_clip(reason)}") from exc
    if not isinstance(obj, dict):
        raise error(f"frame is a JSON {_json_type(obj)}, not an object")
    _check_depth(obj, error)
    # Only JSON's \uXXXX escape can put a lone surrogate into the decoded object (the text
    # itself is valid UTF-8 or encodable), so a frame without a backslash-u needs no walk.
    if storable and "\\u" in text:
        repaired: dict[str, Any] = _storable(obj)
        return repaired
    return obj


def _storable(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings and keys replaced (Rule 3).

    Recursive: only called after ``_check_depth``, so at most ``MAX_JSON_DEPTH`` deep.
    """
    if isinstance(value, str):
        return value if value.isascii() else re.sub(_SURROGATE, _REPLACEMENT, value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _check_depth(obj: dict[str, Any], error: type[Exception]) -> None:
    """Raise ``error`` if ``obj`` nests deeper than MAX_JSON_DEPTH (iteratively, no recursion)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise error(f"frame nests deeper than {MAX_JSON_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def frame_type(obj: dict[str, Any], error: type[Exception]) -> str:
    """The frame's ``type``: a non-empty string, or ``error`` is raised."""
    kind = obj.get("type")
    if kind is None:
        raise error("frame has no 'type'")
    if not isinstance(kind, str) or not kind:
        raise error(f"frame 'type' must be a non-empty string, not {_show(kind)}")
    return kind


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"  # json.loads makes nothing else


def _clip(text: str) -> str:
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def _show(value: Any) -> str:
    """A short description of a bad value: its JSON type, plus the value if it is small."""
    if isinstance(value, dict | list):
        return f"a JSON {_json_type(value)}"
    return f"{_json_type(value)} {_clip(repr(value))}"


# --- field readers (Rule 4) --------------------------------------------------------------
def _bad(kind: str, key: str, expected: str, value: Any) -> MalformedFrameError:
    return MalformedFrameError(f"{kind}.{key} must be {expected}, not {_show(value)}")


def _str(obj: dict[str, Any], kind: str, key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(kind, key, "a string", value)
    return value


def _required_str(obj: dict[str, Any], kind: str, key: str) -> str:
    value = obj.get(key)
    if value is None:
        raise MalformedFrameError(f"{kind} frame has no {key!r}")
    if not isinstance(value, str):
        raise _bad(kind, key, "a string", value)
    return value


def _duration_ms(value: Any) -> float | None:
    """Rule 5: a finite, non-negative number from an int, float or numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if re.fullmatch(_NUMERIC, value) is None:
            return None
        number = float(value)
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return None
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


# --- one parser per type ---------------------------------------------------------------
def _setup(obj: dict[str, Any]) -> Setup:
    params = obj.get("customParameters")  # None: Setup gives it a fresh {}
    if params is not None:
        if not isinstance(params, dict):
            raise _bad("setup", "customParameters", "an object", params)
        for name, value in params.items():
            if not isinstance(value, str):
                raise _bad("setup", f"customParameters.{_clip(name)}", "a string", value)
    return Setup(
        session_id=_str(obj, "setup", "sessionId"),
        call_sid=_str(obj, "setup", "callSid"),
        parent_call_sid=_str(obj, "setup", "parentCallSid"),
        account_sid=_str(obj, "setup", "accountSid"),
        from_=_str(obj, "setup", "from"),
        to=_str(obj, "setup", "to"),
        forwarded_from=_str(obj, "setup", "forwardedFrom"),
        call_type=_str(obj, "setup", "callType"),
        caller_name=_str(obj, "setup", "callerName"),
        direction=_str(obj, "setup", "direction"),
        call_status=_str(obj, "setup", "callStatus"),
        custom_parameters=params,
        raw=obj,
    )


def _prompt(obj: dict[str, Any]) -> Prompt:
    last = obj.get("last")
    if last is None:
        last = True
    elif not isinstance(last, bool):
        raise _bad("prompt", "last", "a boolean", last)
    return Prompt(
        voice_prompt=_required_str(obj, "prompt", "voicePrompt"),
        lang=_str(obj, "prompt", "lang"),
        last=last,
        raw=obj,
    )


def _dtmf(obj: dict[str, Any]) -> Dtmf:
    digit = _required_str(obj, "dtmf", "digit")
    if digit not in DTMF_DIGITS:
        raise _bad("dtmf", "digit", "one of 0-9 * #", digit)
    return Dtmf(digit=digit, raw=obj)


def _interrupt(obj: dict[str, Any]) -> Interrupt:
    return Interrupt(
        utterance_until_interrupt=_str(obj, "interrupt", "utteranceUntilInterrupt"),
        duration_until_interrupt_ms=_duration_ms(obj.get("durationUntilInterruptMs")),
        raw=obj,
    )


def _error(obj: dict[str, Any]) -> Error:
    return Error(description=_str(obj, "error", "description"), raw=obj)


def _info(obj: dict[str, Any]) -> Info:
    value = obj.get("value")
    if isinstance(value, bool | int | float):
        value = json.dumps(value)  # Rule 5: 120 -> "120", true -> "true"
    elif value is None:
        value = ""
    elif not isinstance(value, str):
        raise _bad("info", "value", "a string", value)
    return Info(name=_str(obj, "info", "name"), value=value, raw=obj)


#: Wire ``type`` -> message class, for every type Twilio documents (§1.2).
INBOUND_TYPES: dict[str, type[Setup | Prompt | Dtmf | Interrupt | Error | Info]] = {
    "setup": Setup,
    "prompt": Prompt,
    "dtmf": Dtmf,
    "interrupt": Interrupt,
    "error": Error,
    "info": Info,
}

_PARSERS: dict[str, Callable[[dict[str, Any]], InboundMessage]] = {
    "setup": _setup,
    "prompt": _prompt,
    "dtmf": _dtmf,
    "interrupt": _interrupt,
    "error": _error,
    "info": _info,
}


def parse_inbound(data: str | bytes | bytearray) -> InboundMessage:
    """Parse one frame Twilio sent into its typed message.

    Args:
        data: the WebSocket text frame (API Gateway's ``body``), as text or UTF-8 bytes.

    Returns:
        The typed message; :class:`UnknownMessage` for a ``type`` warmline does not model.

    Raises:
        FrameTooLargeError: the frame is over 128 KB (answer 413 / close 1009).
        MalformedFrameError: the frame is not a ConversationRelay message (log it and go
            on: Twilio closes the call only after 10 in a row, §1.4).
        TypeError: ``data`` is neither text nor bytes (a programming error).
    """
    obj = decode_object(data, max_bytes=MAX_MESSAGE_BYTES, storable=True)
    kind = frame_type(obj, MalformedFrameError)
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownMessage(type=kind, raw=obj)
    return parser(obj)
