"""What an Amazon Connect flow gets back: a flat map of strings, under 32 KB.

The "Invoke AWS Lambda function" block with response validation ``STRING_MAP`` accepts
only a flat JSON object whose values are strings, and any response must be smaller than
32 KB of UTF-8 (docs/protocols.md §4.5). A response that breaks either rule does not reach the
flow: the block takes its Error branch and the caller hears whatever that branch says.
So the adapter builds every response here and checks it with
:func:`validate_flat_response` before returning it, and an answer that would not fit is
cut at a sentence boundary by :func:`fit_response` (a voice reading half a sentence
sounds broken; a shorter answer that ends cleanly does not). :func:`reply_response`
turns what the agent said (the ConversationRelay ``text`` and ``end`` frames it would
have sent on a Twilio call) into that map, so the agent needs no Connect-specific code.

Sizes are measured on the JSON text with non-ASCII characters escaped (``\\u00e9``).
That text is never shorter than the UTF-8 one, so the check holds whichever way the
Lambda runtime serialises the result.

The keys a flow branches on (``$.External.<key>``, readable until the next Lambda block):

==============  ============================================================================
``answer``      what to say or send (plain text, shaped for Polly; no SSML)
``intent``      ``answer``, ``handoff``, ``end``, ``action``, ``declined``, ``greeting``,
                ``none``
``handoff``     ``"true"`` when the caller should go to a person
``next``        the branch: ``continue``, ``handoff``, ``end``, ``fallback``, ``error``
``sessionTurn`` the session's turn after this request (pass it back as a parameter)
``error``       only on ``next == "error"``: why
==============  ============================================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from warmline.core.limits import CONNECT_MAX_RESPONSE_BYTES
from warmline.errors import LocalProtocolError

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.app import FlowReply
    from warmline.core.events import ContactFlow

__all__ = [
    "NEXT_CONTINUE",
    "NEXT_END",
    "NEXT_ERROR",
    "NEXT_FALLBACK",
    "NEXT_HANDOFF",
    "collect_reply",
    "error_response",
    "fit_response",
    "flow_response",
    "reply_response",
    "response_bytes",
    "truncate_at_sentence",
    "validate_flat_response",
]

#: ``next`` values, the branches of the flow's "Check contact attributes" block.
NEXT_CONTINUE = "continue"
NEXT_HANDOFF = "handoff"
NEXT_END = "end"
NEXT_FALLBACK = "fallback"
NEXT_ERROR = "error"

#: Longest ``error`` text returned to a flow (it lands in contact attributes and logs).
MAX_ERROR_CHARS = 300
#: Longest ``handoffReason`` (the phrase or key that triggered the handoff).
MAX_REASON_CHARS = 200

# A sentence ends at . ! ? (or …), possibly followed by closing quotes or brackets.
# Patterns stay strings: compiled at first use (re caches them), not on the cold start.
_SENTENCE_END = r"[.!?\u2026][\"')\]\u201d\u2019]*(?=\s|$)"


def response_bytes(response: Mapping[str, Any]) -> int:
    """The size of ``response`` as JSON, non-ASCII escaped (never below its UTF-8 size)."""
    return len(json.dumps(response, separators=(",", ":")))


def validate_flat_response(
    response: object, *, max_bytes: int = CONNECT_MAX_RESPONSE_BYTES
) -> dict[str, str]:
    """Check that ``response`` is what a ``STRING_MAP`` Lambda block accepts (§4.5).

    Args:
        response: what the handler is about to return.
        max_bytes: the size the JSON must stay below (default: Connect's 32 KB).

    Returns:
        ``response`` as a plain ``dict[str, str]``.

    Raises:
        LocalProtocolError: not a mapping, a key that is not a non-empty string, a value
            that is not a string (nested objects, numbers, booleans, None), or too large.
            The message says which; the adapter turns it into an error result.
    """
    if not isinstance(response, Mapping):
        raise LocalProtocolError(f"a Connect response must be an object, not {_kind(response)}")
    flat: dict[str, str] = {}
    for key, value in response.items():
        if not isinstance(key, str) or not key:
            raise LocalProtocolError(f"a Connect response key must be a non-empty str: {key!r}")
        if not isinstance(value, str):
            raise LocalProtocolError(
                f"Connect response value {key!r} must be a str, not {_kind(value)}"
            )
        flat[key] = value
    size = response_bytes(flat)
    if size >= max_bytes:
        raise LocalProtocolError(f"Connect response is {size} bytes; it must be < {max_bytes}")
    return flat


def truncate_at_sentence(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, ending at a sentence boundary.

    When no sentence ends within the limit, cut at the last space and end with a period
    (so a TTS voice drops its pitch as at any sentence end); a single word longer than
    the limit is cut hard.

    Args:
        text: the answer.
        max_chars: the most characters to keep (>= 0).

    Returns:
        ``text`` unchanged when it fits, else its longest clean prefix.
    """
    if len(text) <= max_chars:
        return text
    if max_chars <= 0:
        return ""
    head = text[:max_chars]
    # The character after the cut decides whether a sentence end at the cut is real.
    window = head + (" " if text[max_chars].isspace() else "")
    ends = [m.end() for m in re.finditer(_SENTENCE_END, window) if m.end() <= max_chars]
    if ends:
        return head[: ends[-1]].rstrip()
    space = head.rfind(" ")
    if space > 0:
        cut = head[:space].rstrip(" ,;:-\u2013\u2014")
        if cut and len(cut) + 1 <= max_chars:
            return cut + "."
        return cut
    return head


def fit_response(
    response: Mapping[str, str],
    *,
    key: str = "answer",
    max_bytes: int = CONNECT_MAX_RESPONSE_BYTES,
) -> dict[str, str]:
    """``response`` with ``response[key]`` cut at a sentence so the whole stays < max_bytes.

    A cut response gets ``truncated: "true"``. Other keys are never touched: if they alone
    are too big, the result is still too big and :func:`validate_flat_response` says so.

    Args:
        response: a flat map of strings.
        key: the long text value that may be shortened.
        max_bytes: the size the JSON must stay below.

    Returns:
        A new dict (the input is not modified).
    """
    out = dict(response)
    text = out.get(key)
    if not isinstance(text, str) or response_bytes(out) < max_bytes:
        return out
    out[key] = ""
    out["truncated"] = "true"
    room = max_bytes - 1 - response_bytes(out)  # bytes the text may take, escaped
    if room <= 0:
        return out
    # The escaped size of a prefix grows with its length: find the longest that fits.
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(json.dumps(text[:mid])) - 2 <= room:
            lo = mid
        else:
            hi = mid - 1
    out[key] = truncate_at_sentence(text, lo)
    return out


def error_response(error: str, *, say: str, **extra: str) -> dict[str, str]:
    """The result for a request that cannot be served: ``next == "error"``, never raised.

    Args:
        error: why (kept short; it ends up in contact attributes and logs).
        say: what the flow may say to the caller on its error branch.
        **extra: more string fields (``sessionTurn`` when known).
    """
    reason = " ".join(error.split())[:MAX_ERROR_CHARS] or "error"
    return {
        "answer": say,
        "intent": "none",
        "handoff": "false",
        "next": NEXT_ERROR,
        "error": reason,
        **extra,
    }


def collect_reply(result: Any) -> list[Any]:
    """Everything an agent route returned or yielded, as a list.

    Async results (LLM answerers) are drained with ``asyncio.run`` in the calling thread,
    the adapter's worker, where no other loop runs; ``asyncio`` (~30 ms to import) is
    then paid by async answerers alone.
    """
    if result is None:
        return []
    if hasattr(result, "__await__") or hasattr(result, "__aiter__"):
        import asyncio

        async def drain(value: Any) -> list[Any]:
            if hasattr(value, "__await__"):
                value = await value
            if hasattr(value, "__aiter__"):
                return [item async for item in value]
            return collect_reply(value)

        items: list[Any] = asyncio.run(drain(result))
        return items
    if isinstance(result, str | bytes) or hasattr(result, "to_json"):
        return [result]
    return list(result)


def reply_response(
    items: list[Any],
    *,
    turn: int,
    fields: Mapping[str, Any],
    default_intent: str = "none",
    topic: object = None,
) -> dict[str, str]:
    """The flat map for what the agent said: its ``text`` frames and ``end`` frame.

    Args:
        items: relay messages (``Text``, ``End``) or plain strings, in order.
        turn: the session turn this reply belongs to.
        fields: the route's log fields (``intent``, ``answered``).
        default_intent: the intent when the route annotated none.
        topic: the session's topic (a menu option), if any.

    Returns:
        ``answer``, ``intent``, ``handoff``, ``next``, ``sessionTurn``, plus
        ``answered``, ``topic`` and ``handoffReason`` when they apply (not yet fitted).
    """
    texts: list[str] = []
    ended: dict[str, Any] | None = None
    for item in items:
        kind = "text" if isinstance(item, str) else getattr(item, "type", "")
        if kind == "text":
            texts.append(item if isinstance(item, str) else str(getattr(item, "token", "")))
        elif kind == "end":
            data = getattr(item, "handoff_data", None)
            try:
                decoded = json.loads(data) if isinstance(data, str) else {}
            except ValueError:
                decoded = {}
            ended = decoded if isinstance(decoded, dict) else {}
    if ended is None:
        nxt = NEXT_CONTINUE
    elif ended.get("reason") == "handoff":
        nxt = NEXT_HANDOFF
    else:
        nxt = NEXT_END
    response = {
        "answer": "".join(texts).strip(),
        "intent": str(fields.get("intent") or default_intent),
        "handoff": "true" if nxt == NEXT_HANDOFF else "false",
        "next": nxt,
        "sessionTurn": str(turn),
    }
    answered = fields.get("answered")
    if isinstance(answered, bool):
        response["answered"] = "true" if answered else "false"
    if isinstance(topic, str) and topic:
        response["topic"] = topic
    if nxt == NEXT_HANDOFF and ended is not None:
        response["handoffReason"] = str(ended.get("trigger") or "")[:MAX_REASON_CHARS]
    return response


def flow_response(
    reply: FlowReply, event: ContactFlow, *, reprompt_text: str = ""
) -> dict[str, str]:
    """The flat map for what a ``@app.contact_flow`` handler said, fitted and validated.

    Args:
        reply: the App's result for the contact flow.
        event: the invocation (its ``turn``, else the session's, is ``sessionTurn``).
        reprompt_text: said when the customer's turn carried no words and no keys and
            the handler said nothing.

    Raises:
        LocalProtocolError: the map cannot be made to fit (a single over-long word).
    """
    session = reply.session
    data = getattr(session, "data", None)
    turn = event.turn or int(getattr(session, "turn", 0) or 0)
    response = reply_response(
        reply.items,
        turn=turn,
        fields=reply.fields,
        topic=data.get("topic") if isinstance(data, Mapping) else None,
    )
    if not response["answer"] and event.message is None and reprompt_text:
        response["answer"] = reprompt_text
    return validate_flat_response(fit_response(response))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
