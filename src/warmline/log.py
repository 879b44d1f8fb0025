"""Structured logs: one JSON line per step, the fields a voice team searches by.

Lambda sends a function's stdout to CloudWatch line by line, so one ``print``-sized JSON
object per step is both the cheapest logger (the stdlib ``logging`` package costs ~14 ms
to import on a cold start) and the easiest to query (CloudWatch Logs Insights parses JSON
lines into fields). Field names are camelCase to match API Gateway and Twilio:
``route``, ``connectionId``, ``callSid``, ``sessionId``, ``turn``, ``intent``,
``hitCount``, ``topScore``, ``durationMs``, ``cold``, ``warmup``.

Secrets never go through here: callers pass ids and measurements, not payloads.

Phone numbers can (a caller's ``from`` in a session record, a handoff target). Set
``WARMLINE_REDACT_PHONE=1`` (or pass ``redact_phone=True``) and every E.164 number in a
string field -- ``+`` (or ``%2B``) then 8 to 15 digits -- is masked down to its last 4
digits (last 2 when it has fewer than 10): ``+15550100`` becomes ``+******00``,
``+14155550100`` ``+*******0100``. Nested lists and objects are masked too. Off by
default: support teams search logs by caller number. The scan is plain string code (no
``re``, which costs an import on the cold path) and skips strings without a ``+``/``%``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["REDACT_PHONE_ENV", "StepLogger", "redact_phone_numbers"]

#: Environment switch for phone-number masking ("1", "true", "yes" turn it on).
REDACT_PHONE_ENV = "WARMLINE_REDACT_PHONE"
#: E.164: at most 15 digits after the "+" (ITU-T E.164 §6); fewer than 8 is not a number
#: worth masking (short codes, "+1" in prose).
_E164_MAX_DIGITS = 15
_E164_MIN_DIGITS = 8
_DIGITS = frozenset("0123456789")


def _mask_number(digits: str) -> str:
    keep = 4 if len(digits) >= 10 else 2
    return "*" * (len(digits) - keep) + digits[-keep:]


def _mask_text(text: str) -> str:
    if "+" not in text and "%2" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "+":
            prefix = 1
        elif text.startswith(("%2B", "%2b"), i):
            prefix = 3
        else:
            out.append(text[i])
            i += 1
            continue
        j = i + prefix
        while j < n and text[j] in _DIGITS:
            j += 1
        count = j - i - prefix
        if _E164_MIN_DIGITS <= count <= _E164_MAX_DIGITS:
            out.append(text[i : i + prefix] + _mask_number(text[i + prefix : j]))
        else:
            out.append(text[i:j])
        i = j
    return "".join(out)


def redact_phone_numbers(value: Any) -> Any:
    """Mask E.164 phone numbers in ``value``: a string, or lists/dicts holding strings.

    Args:
        value: a log field's value; other types are returned unchanged.

    Returns:
        The value with every number but its last 2-4 digits replaced by ``*``.
    """
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: redact_phone_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_phone_numbers(v) for v in value]
    return value


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class StepLogger:
    """Writes one JSON object per call to a text stream.

    Args:
        stream: where lines go; ``None`` means ``sys.stdout`` at write time (so test
            capture and Lambda's redirection both work).
        base: fields added to every line (e.g. the function name).
        clock: wall-clock seconds for the ``ts`` field; ``None`` leaves it out (Lambda
            timestamps every line itself).
        keep: also keep every record written in :attr:`records`.
        redact_phone: mask E.164 numbers in string fields (see the module notes);
            ``None`` reads ``WARMLINE_REDACT_PHONE`` now.
        also: hooks that see each record as written and may return one more line to
            write after it (:class:`warmline.metrics.EmfWriter` returns EMF documents; a
            tracer returns None).
    """

    __slots__ = ("_stream", "_base", "_clock", "_redact", "_also", "_scope", "records")

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        base: dict[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
        keep: bool = False,
        redact_phone: bool | None = None,
        also: Sequence[Callable[[dict[str, Any]], dict[str, Any] | None]] = (),
    ) -> None:
        self._stream = stream
        self._also = tuple(also)
        self._scope: dict[str, Any] = {}
        self._redact = _env_flag(REDACT_PHONE_ENV) if redact_phone is None else redact_phone
        self._base = dict(base or {})
        self._clock = clock
        #: the records written, when ``keep`` is set (for tests and the dashboard).
        self.records: list[dict[str, Any]] | None = [] if keep else None

    def bind(self, **fields: Any) -> None:
        """Set the fields added to every line until the next ``bind`` (one invocation's
        ids, such as its ``traceId``); None values are left out."""
        self._scope = {k: v for k, v in fields.items() if v is not None}

    def __call__(self, step: str, level: str = "info", **fields: Any) -> dict[str, Any]:
        """Write one line for ``step``; fields whose value is None are left out.

        Returns:
            The record as written.
        """
        record: dict[str, Any] = {"level": level, "step": step}
        if self._clock is not None:
            record["ts"] = round(self._clock(), 3)
        record.update(self._base)
        record.update(self._scope)
        for key, value in fields.items():
            if value is not None:
                record[key] = value
        if self._redact:
            record = {k: redact_phone_numbers(v) for k, v in record.items()}
        self._write(record)
        if self.records is not None:
            self.records.append(record)
        for hook in self._also:
            try:
                extra = hook(record)
            except Exception as exc:  # metrics and spans are best effort, never the call's end
                extra = {"level": "error", "step": "log_hook_failed", "error": repr(exc)}
            if extra is not None:
                self._write(extra)
        return record

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(line + "\n")
        except UnicodeEncodeError:
            # A lone surrogate from a peer's "\ud800" escape has no UTF-8 form; Lambda's
            # stdout is strict UTF-8. Write the line with escapes rather than lose the log
            # line or raise inside the request.
            ascii_line = json.dumps(record, ensure_ascii=True, default=str, separators=(",", ":"))
            stream.write(ascii_line + "\n")
