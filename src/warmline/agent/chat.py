"""The browser channel: a small JSON chat protocol on the agent's WebSocket.

A web page cannot speak ConversationRelay (Twilio does the speech), so it sends plain
chat frames; this module translates them at the edge into the relay message that means
the same thing, and the relay frames the agent sends back into chat frames. The agent
never knows which channel it serves: one session store, one set of intents, one
retrieval path, one log format (``channel: "chat"`` is added to each step line).

Client to server (each a JSON text frame)::

    {"type": "chat.start"}                        -> setup (the session; the greeting)
    {"type": "chat.message", "text": "..."}       -> prompt (final, lang en-US)
    {"type": "chat.dtmf", "digit": "1"}           -> dtmf
    {"type": "chat.interrupt", "heard": "..."}    -> interrupt (barge-in: what was shown)

Server to client::

    {"type": "chat.token", "text": "...", "last": false, "turn": 1, "intent": "answer"}
    {"type": "chat.end", "handoff": {...}, "turn": 2}       (the agent ended the call)
    {"type": "chat.play" | "chat.sendDigits" | "chat.language", ...}   (the rest of the
    relay frame, as is)

``turn`` is the session's turn counter when the frame was sent: a barge-in moves it on,
so a page drops tokens of the turn it interrupted, as Twilio stops playing them.
``intent`` is the agent's intent for this message once decided (absent for the greeting).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from warmline.errors import MalformedFrameError, StoreError

if TYPE_CHECKING:
    from warmline.core.app import Context

__all__ = ["CHAT_PREFIX", "ChatChannel", "to_chat", "to_relay"]

#: Every chat frame's ``type`` starts with this; relay types never do.
CHAT_PREFIX = "chat."
#: The marker looked for before any JSON parse, so relay frames pay one substring test.
_MARKER = '"' + CHAT_PREFIX
#: Language sent with chat prompts (ConversationRelay's ``prompt.lang``).
CHAT_LANG = "en-US"


def to_relay(body: str) -> str | None:
    """The relay frame equivalent to a chat frame, or None when ``body`` is not chat.

    Raises:
        MalformedFrameError: a chat frame with a bad field or an unknown ``chat.`` type.
    """
    if _MARKER not in body:
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None  # not JSON: the relay parser reports it
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(kind, str) or not kind.startswith(CHAT_PREFIX):
        return None
    relay: dict[str, Any]
    if kind == "chat.start":
        # An empty sessionId keys the session by the connection id.
        relay = {
            "type": "setup",
            "sessionId": "",
            "callSid": "",
            "from": "browser",
            "to": "",
            "customParameters": {"channel": "browser"},
        }
    elif kind == "chat.message":
        relay = {
            "type": "prompt",
            "voicePrompt": _text(obj, kind, "text"),
            "lang": CHAT_LANG,
            "last": True,
        }
    elif kind == "chat.dtmf":
        relay = {"type": "dtmf", "digit": _text(obj, kind, "digit")}
    elif kind == "chat.interrupt":
        heard = obj.get("heard", "")
        if not isinstance(heard, str):
            raise MalformedFrameError(f"{kind}: heard must be a string")
        relay = {
            "type": "interrupt",
            "utteranceUntilInterrupt": heard,
            "durationUntilInterruptMs": 0,
        }
    else:
        raise MalformedFrameError(f"unknown chat frame type {kind!r}")
    return json.dumps(relay, separators=(",", ":"))


def _text(obj: dict[str, Any], kind: str, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedFrameError(f"{kind}: {key} must be a string")
    return value


def to_chat(
    frame: bytes | str, *, turn: int | None = None, intent: str | None = None
) -> str | None:
    """The chat frame for an outbound relay frame (None: nothing to send).

    Args:
        frame: the relay frame as the App encoded it.
        turn: the session's turn, added to the frame when known.
        intent: the message's intent, added to token and end frames when known.
    """
    text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.pop("type", None)
    out: dict[str, Any]
    if kind == "text":
        out = {"type": "chat.token", "text": obj.get("token", ""), "last": bool(obj.get("last"))}
    elif kind == "end":
        raw = obj.get("handoffData")
        handoff: Any = raw
        if isinstance(raw, str):
            try:
                handoff = json.loads(raw)
            except ValueError:
                handoff = raw
        out = {"type": "chat.end", "handoff": handoff}
    elif isinstance(kind, str):
        out = {"type": CHAT_PREFIX + kind, **obj}
    else:
        return None
    if turn is not None:
        out["turn"] = turn
    if intent and out["type"] in ("chat.token", "chat.end"):
        out["intent"] = intent
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class ChatChannel:
    """The browser channel as an App translator (``app.channel(ChatChannel())``)."""

    name = "chat"

    def inbound(self, body: str) -> str | None:
        """The relay frame for a chat frame, None for any other frame."""
        return to_relay(body)

    def outbound(self, frame: bytes | str, ctx: Context) -> str | None:
        """The chat frame for a relay frame, with the turn and intent of ``ctx``.

        The turn is decoration: when the session store is down (the frame is then the
        App's spoken apology) the frame goes out without it rather than not at all.
        """
        try:
            record = ctx.session
        except StoreError:
            record = None
        intent = ctx.fields.get("intent")
        return to_chat(
            frame,
            turn=record.turn if record is not None else None,
            intent=intent if isinstance(intent, str) else None,
        )
