"""How Twilio reads the frames an application sends on a ConversationRelay socket.

Every frame goes through :func:`warmline.core.relay_out.parse_outbound`, the project's one
set of outbound rules. A frame that breaks one is not acted upon: Twilio answers it with an
``error`` frame naming error 64107 and the frame, and the session goes on. Ten invalid frames
in a row end the session: Twilio closes the socket with code 1007 and reports the session as
failed with 64105 (docs/protocols.md §1.4).

Sans-I/O: :meth:`OutboundReader.read` takes one frame and says what Twilio does with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from warmline.core.relay_out import OutboundMessage, parse_outbound
from warmline.errors import RelayValidationError

__all__ = [
    "INVALID_MESSAGE_CODE",
    "MALFORMED_CLOSE",
    "MAX_CONSECUTIVE_INVALID",
    "Outcome",
    "OutboundReader",
]

#: Twilio's error code for an outbound frame it cannot act upon (§1.4).
INVALID_MESSAGE_CODE = "64107"
#: Invalid frames in a row after which Twilio closes the socket (§1.4).
MAX_CONSECUTIVE_INVALID = 10
#: The close Twilio sends after them (§1.4).
MALFORMED_CLOSE = (1007, "Too many consecutive malformed messages.")


@dataclass(frozen=True)
class Outcome:
    """What Twilio makes of one frame."""

    #: the frame as received: the decoded object, or ``{"raw": text}`` when not JSON.
    frame: dict[str, Any]
    #: the typed message when the frame is valid.
    message: OutboundMessage | None
    #: why it is invalid (the rule it breaks), or None.
    problem: str | None
    #: the ``error`` frame Twilio sends back, or None for a valid frame.
    reply: dict[str, str] | None
    #: Twilio closes the socket with :data:`MALFORMED_CLOSE` after this frame.
    close: bool


class OutboundReader:
    """Reads one session's outbound frames, counting invalid ones in a row."""

    def __init__(self) -> None:
        self.consecutive_invalid = 0

    def read(self, raw: str | bytes) -> Outcome:
        """Judge one frame as Twilio does."""
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = None
        frame = decoded if isinstance(decoded, dict) else {"raw": text}
        try:
            message = parse_outbound(raw if isinstance(raw, str) else bytes(raw))
        except RelayValidationError as exc:
            self.consecutive_invalid += 1
            reply = {
                "type": "error",
                "description": f"Invalid message received, code: {INVALID_MESSAGE_CODE}, {text}",
            }
            close = self.consecutive_invalid >= MAX_CONSECUTIVE_INVALID
            return Outcome(frame, None, str(exc), reply, close)
        self.consecutive_invalid = 0
        return Outcome(frame, message, None, None, False)
