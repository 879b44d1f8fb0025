"""A sans-I/O Server-Sent Events decoder (the ``text/event-stream`` of chat completions).

OpenAI-compatible servers stream ``data: {json}`` events separated by blank lines and end
with ``data: [DONE]``; some send ``: keep-alive`` comments, ``event:`` names, or CRLF line
ends (proxies, LM Studio on Windows). The rules follow the WHATWG HTML standard,
"Interpreting an event stream" (section 9.2.6):

- lines end with CRLF, LF or CR; a CR at the end of one read may be followed by the LF
  in the next, so it is held until the next byte decides;
- a line starting with ``:`` is a comment; ``field: value`` loses one space after the
  colon; a line without a colon is a field with an empty value;
- several ``data`` lines make one event, joined with ``\\n``;
- a blank line dispatches the event (nothing when no ``data`` was seen); a UTF-8 BOM at
  the very start is dropped; an unterminated event at the end of the stream is dropped.

Bytes are decoded per complete line, so a multi-byte UTF-8 character split across reads
is never broken.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MAX_LINE_BYTES", "SSEDecoder", "ServerSentEvent"]

#: Longest line accepted; a stream that never ends a line is not an event stream.
MAX_LINE_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    """One dispatched event.

    Attributes:
        data: the ``data`` lines joined with ``\\n``.
        event: the ``event`` field (``message`` when absent, as browsers do).
        id: the last event id seen (it persists across events).
    """

    data: str
    event: str = "message"
    id: str = ""


class SSEDecoder:
    """Feed bytes as they arrive; get the events they complete.

    Raises:
        ValueError: from :meth:`feed`, a line over :data:`MAX_LINE_BYTES` or not UTF-8.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by ``chunk``, in order."""
        buffer = self._buffer + chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        events: list[ServerSentEvent] = []
        start = 0
        size = len(buffer)
        while start < size:
            cr = buffer.find(b"\r", start)
            lf = buffer.find(b"\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == size:
                    break  # a CR last: the next read may bring its LF
                end, after = cr, cr + 2 if buffer[cr + 1 : cr + 2] == b"\n" else cr + 1
            else:
                end, after = lf, lf + 1
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = after
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_LINE_BYTES:
            raise ValueError(f"an event-stream line is over {MAX_LINE_BYTES} bytes")
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored: there is no reconnecting here.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent("\n".join(data), event or "message", self._last_id)
