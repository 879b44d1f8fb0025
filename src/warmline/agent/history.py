"""The conversation history the agent keeps in the session record, and its bounds.

Everything here is pure: lists of turns in, lists of turns out. The history lives in
``record.data["history"]``, each turn ``{"role": "user"|"assistant", "text": ...}``, and
every message may land in a different environment, so it is written back with the rest
of the record on every turn. That makes its size a storage problem: a DynamoDB item may
be at most 400 KB, attribute names included (docs/protocols.md §7), and an item over it is
refused, so every later turn of the call would fail. The policy, applied on every write:

1. **Per turn**: a turn's text is cut to :data:`MAX_TURN_BYTES` of UTF-8 (at a character
   boundary, marked ``"cut": True``). A 128 KB prompt is answered in full; only the
   stored copy is cut.
2. **Per history**: at most ``limit`` turns (the agent's ``history_limit``), and at most
   :data:`MAX_HISTORY_BYTES` of encoded JSON: the oldest turns are dropped first.
3. **Barge-in**: an ``interrupt`` may only *shorten* the last answer to the part of it
   that was sent (:func:`heard_part`); text that was never sent never enters the
   history, so a caller cannot write words into an LLM's context.

With the setup fields the core keeps (capped in :mod:`warmline.core.conversation`) and
the handoff data (:func:`bounded_handoff`), a record stays under 160 KB, well inside
DynamoDB's 400 KB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "HISTORY_LIMIT",
    "MAX_HANDOFF_BYTES",
    "MAX_HANDOFF_FIELD_CHARS",
    "MAX_HISTORY_BYTES",
    "MAX_TURN_BYTES",
    "append_history",
    "bounded_handoff",
    "cut_text",
    "heard_part",
    "history_bytes",
    "pending_cut",
    "truncate_history",
]

#: Turns of conversation kept in the session (older ones are dropped).
HISTORY_LIMIT = 20
#: Largest stored text of one turn, in UTF-8 bytes.
MAX_TURN_BYTES = 8 * 1024
#: Largest stored history, in bytes of compact JSON (``ensure_ascii=False``).
MAX_HISTORY_BYTES = 96 * 1024
#: Largest text of one handoff field (``lastQuestion``, ``topic``...), in characters.
MAX_HANDOFF_FIELD_CHARS = 1000
#: Largest handoff data, in bytes of compact JSON: it rides in the ``end`` frame (the
#: whole frame must stay under Twilio's and API Gateway's 128 KB) and comes back as the
#: ``HandoffData`` form field of the action callback (docs/protocols.md §1.7).
MAX_HANDOFF_BYTES = 8 * 1024

_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = ".,;:!?\"'()[]{}…-–—"


def cut_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, never inside a character."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def _bounded_turn(role: str, text: str) -> dict[str, Any]:
    cut = cut_text(text, MAX_TURN_BYTES)
    turn: dict[str, Any] = {"role": role, "text": cut}
    if cut != text:
        turn["cut"] = True
    return turn


def history_bytes(history: Iterable[Mapping[str, Any]]) -> int:
    """The history's size as stored: compact JSON, UTF-8."""
    text = json.dumps(list(history), ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def append_history(
    history: Iterable[Mapping[str, Any]], *turns: tuple[str, str], limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """``history`` plus ``(role, text)`` turns, bounded by the policy above.

    Empty texts are skipped; each new turn is cut to :data:`MAX_TURN_BYTES`; then the
    oldest turns are dropped until at most ``limit`` remain and the whole is at most
    :data:`MAX_HISTORY_BYTES`.
    """
    out = [dict(turn) for turn in history]
    out.extend(_bounded_turn(role, text) for role, text in turns if text)
    out = out[-limit:] if limit > 0 else []
    while out and history_bytes(out) > MAX_HISTORY_BYTES:
        out.pop(0)
    return out


def _same_word(sent: str, heard: str) -> bool:
    return sent.strip(_EDGE_PUNCTUATION).casefold() == heard.strip(_EDGE_PUNCTUATION).casefold()


def heard_part(sent: str, heard: str) -> str | None:
    """The part of ``sent`` the caller heard, by Twilio's ``utteranceUntilInterrupt``.

    Returns:
        ``heard`` itself when it is a prefix of ``sent``; else ``sent`` up to the end of
        the longest run of leading words the two share (case and edge punctuation
        aside), so the result is always a prefix of what was sent and never longer;
        None when not even the first word matches (what was heard cannot be placed).
    """
    heard = heard.strip()
    if sent.startswith(heard):
        return heard
    words = list(_WORD.finditer(sent))
    matched = 0
    for word, said in zip(words, heard.split(), strict=False):
        if not _same_word(word.group(), said):
            break
        matched += 1
    return sent[: words[matched - 1].end()] if matched else None


def truncate_history(history: Iterable[Mapping[str, Any]], heard: str) -> list[dict[str, Any]]:
    """Cut the last assistant turn to the part of it the caller heard before barging in.

    The turn gets ``"interrupted": True``. Nothing heard removes it. What was heard is
    matched against what was sent (:func:`heard_part`): it may shorten the turn, never
    replace or lengthen it; when it cannot be placed at all the turn keeps its text. A
    history whose last turn is not the assistant's is returned as it is (the answer is
    not recorded yet; see :func:`pending_cut`).
    """
    out = [dict(turn) for turn in history]
    if not out or out[-1].get("role") != "assistant":
        return out
    heard = heard.strip()
    if not heard:
        out.pop()
        return out
    sent = str(out[-1].get("text", ""))
    part = heard_part(sent, heard)
    out[-1] = {"role": "assistant", "text": sent if part is None else part, "interrupted": True}
    return out


def pending_cut(sent: str, heard: str) -> dict[str, Any] | None:
    """The assistant turn to record for an answer a barge-in overtook: ``sent`` cut to
    what was heard, or None when nothing was heard."""
    heard = heard.strip()
    if not heard or not sent:
        return None
    part = heard_part(sent, heard)
    text = cut_text(sent if part is None else part, MAX_TURN_BYTES)
    return {"role": "assistant", "text": text, "interrupted": True}


def bounded_handoff(data: Mapping[str, Any]) -> dict[str, Any]:
    """Handoff data cut to fit the ``end`` frame: each string field to
    :data:`MAX_HANDOFF_FIELD_CHARS`, then fields dropped from the last until the JSON is at
    most :data:`MAX_HANDOFF_BYTES` (``reason`` is always kept)."""
    out: dict[str, Any] = {
        key: value[:MAX_HANDOFF_FIELD_CHARS] if isinstance(value, str) else value
        for key, value in data.items()
    }
    keys = [k for k in out if k != "reason"]
    while keys and history_bytes([out]) > MAX_HANDOFF_BYTES:
        out.pop(keys.pop())
    return out
