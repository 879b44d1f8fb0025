"""Typed Twilio ConversationRelay messages: what Twilio sends, and what the app may send.

Import from here; the two halves live in their own modules because they follow opposite
policies (docs/protocols.md §1.2, §1.3):

===================  ====================================================================
``relay_in``         Twilio -> app: :func:`parse_inbound` judges a frame from the peer.
                     Bad input raises ``MalformedFrameError``/``FrameTooLargeError``
                     (log it, the call goes on); unknown types and fields are kept.
``relay_out``        app -> Twilio: messages validate at construction and raise
                     ``RelayValidationError`` for anything Twilio would drop (64107),
                     so a bug surfaces in tests, not as silence on a call.
===================  ====================================================================

Both are standard library only and cheap to import: they sit on the Lambda hot path.

Example::

    message = parse_inbound(event_body)
    if isinstance(message, Prompt) and message.last:
        post(Text(token="One moment.", last=True).to_json())
"""

from __future__ import annotations

from warmline.core.relay_in import (
    DTMF_DIGITS,
    INBOUND_TYPES,
    MAX_JSON_DEPTH,
    Dtmf,
    Error,
    InboundMessage,
    Info,
    Interrupt,
    Prompt,
    Setup,
    UnknownMessage,
    parse_inbound,
)
from warmline.core.relay_out import (
    MAX_PLAY_LOOP,
    OUTBOUND_TYPES,
    End,
    Language,
    OutboundMessage,
    Play,
    SendDigits,
    Text,
    is_language_tag,
    parse_outbound,
)

__all__ = [
    "DTMF_DIGITS",
    "INBOUND_TYPES",
    "MAX_JSON_DEPTH",
    "MAX_PLAY_LOOP",
    "OUTBOUND_TYPES",
    "Dtmf",
    "End",
    "Error",
    "InboundMessage",
    "Info",
    "Interrupt",
    "Language",
    "OutboundMessage",
    "Play",
    "Prompt",
    "SendDigits",
    "Setup",
    "Text",
    "UnknownMessage",
    "is_language_tag",
    "parse_inbound",
    "parse_outbound",
]
