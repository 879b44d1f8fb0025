"""Real HTTP servers on 127.0.0.1 that speak the providers' wire formats, for tests.

A :class:`ScriptedServer` records every request (method, raw path, headers, body) and
answers it with a test-supplied function that writes the response by hand: status line,
headers, chunked transfer encoding, Server-Sent Events or AWS event-stream frames, a
socket closed mid-body, or a wait on :attr:`ScriptedServer.release` (a slow model; the
test releases it once the client has given up, so nothing sleeps).

The event-stream encoder here is written from the format description, independently of
the decoder under test, and is itself checked against botocore's decoder.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

#: Longest a scripted handler waits for the test to release it.
RELEASE_WAIT_S = 10.0


class Recorded(NamedTuple):
    """A request as the server received it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int = 0  # the client's port: the same for requests on one connection

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = RELEASE_WAIT_S  # a kept-alive connection nobody closes still ends
    server: _Server
    served = 0
    recorded: Recorded  # the request being answered

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.served += 1  # requests on this connection (one handler per connection)
        peer = int(self.client_address[1])
        self.recorded = Recorded(self.command, self.path, headers, body, peer)
        self.server.requests.append(self.recorded)
        self.close_connection = not self.server.keep_alive
        try:
            self.server.respond(self)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client hung up (a timeout test): expected

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- writing responses -------------------------------------------------------------
    def head(self, status: int, headers: Mapping[str, str], *, chunked: bool = True) -> None:
        """Status line and headers (``Transfer-Encoding: chunked`` unless told not to)."""
        lines = [f"HTTP/1.1 {status} {'OK' if status < 300 else 'Error'}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        if not self.server.keep_alive:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        """One chunk of a chunked body, flushed (so it leaves as its own read)."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def whole(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """A complete response with Content-Length."""
        self.head(
            status,
            {"Content-Type": content_type, "Content-Length": str(len(body))},
            chunked=False,
        )
        self.wfile.write(body)
        self.wfile.flush()

    def wait_for_release(self) -> None:
        self.server.release.wait(RELEASE_WAIT_S)


Respond = Callable[[Handler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close joins the handler threads: no stray sockets

    def __init__(self, respond: Respond, keep_alive: bool) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.respond = respond
        self.keep_alive = keep_alive
        self.requests: list[Recorded] = []
        self.release = threading.Event()


class ScriptedServer:
    """A running server; :attr:`url` is its base URL."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Recorded]:
        return self._server.requests

    @property
    def release(self) -> threading.Event:
        return self._server.release

    def set_responder(self, respond: Respond) -> None:
        self._server.respond = respond


@contextmanager
def scripted_server(respond: Respond, *, keep_alive: bool = False) -> Iterator[ScriptedServer]:
    """Serve on 127.0.0.1 (a free port) until the block ends; then release and join.

    Args:
        respond: writes each response.
        keep_alive: keep connections open between requests (HTTP/1.1 persistent
            connections); by default every response says ``Connection: close``.
    """
    server = _Server(respond, keep_alive)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield ScriptedServer(server)
    finally:
        server.release.set()
        server.shutdown()
        thread.join()
        server.server_close()


def refused_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- Server-Sent Events (chat completions) ------------------------------------------------
def sse(data: Any, *, newline: str = "\n") -> bytes:
    """One ``data:`` event (JSON-encoded unless a string)."""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"data: {text}{newline}{newline}".encode()


def chat_chunk(content: str | None = None, *, finish: str | None = None, role: bool = False) -> Any:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def usage_chunk(prompt: int = 50, completion: int = 7) -> Any:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": "test-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def sse_answer(tokens: Sequence[str], *, usage: bool = True) -> list[bytes]:
    """The events of a complete streamed answer, as OpenAI sends them."""
    events = [sse(chat_chunk("", role=True))]
    events += [sse(chat_chunk(t)) for t in tokens]
    events.append(sse(chat_chunk(finish="stop")))
    if usage:
        events.append(sse(usage_chunk()))
    events.append(sse("[DONE]"))
    return events


def openai_error(status: int, message: str, type_: str, code: str | None) -> Respond:
    body = json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})

    def respond(h: Handler) -> None:
        h.whole(status, body.encode())

    return respond


# --- AWS event stream (Bedrock ConverseStream) --------------------------------------------
def _header(name: str, kind: int, value: bytes) -> bytes:
    raw = name.encode()
    return bytes([len(raw)]) + raw + bytes([kind]) + value


def string_header(name: str, value: str) -> bytes:
    raw = value.encode()
    return _header(name, 7, struct.pack(">H", len(raw)) + raw)


def frame(headers: bytes, payload: bytes) -> bytes:
    """One event-stream message: prelude, prelude CRC, headers, payload, message CRC."""
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, payload: Any) -> bytes:
    headers = (
        string_header(":event-type", event_type)
        + string_header(":content-type", "application/json")
        + string_header(":message-type", "event")
    )
    return frame(headers, json.dumps(payload).encode())


def exception(exception_type: str, message: str) -> bytes:
    headers = (
        string_header(":exception-type", exception_type)
        + string_header(":content-type", "application/json")
        + string_header(":message-type", "exception")
    )
    return frame(headers, json.dumps({"message": message}).encode())


def converse_answer(tokens: Sequence[str]) -> list[bytes]:
    """The frames of a complete ConverseStream answer, as Bedrock sends them."""
    pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
    frames = [event("messageStart", {"p": pad[:10], "role": "assistant"})]
    frames += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}, "p": pad[:5]})
        for t in tokens
    ]
    frames.append(event("contentBlockStop", {"contentBlockIndex": 0, "p": pad[:3]}))
    frames.append(event("messageStop", {"p": pad[:7], "stopReason": "end_turn"}))
    frames.append(
        event(
            "metadata",
            {
                "metrics": {"latencyMs": 321},
                "p": pad[:2],
                "usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49},
            },
        )
    )
    return frames
