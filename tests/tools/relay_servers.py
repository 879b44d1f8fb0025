"""ConversationRelay servers written here, to call with ``warmline call`` in tests.

- ``tutorial``: in the style of Twilio's tutorial: the TwiML greets (``welcomeGreeting``),
  the socket sends nothing on ``setup`` and answers each prompt with one ``text`` frame.
- ``everything``: greets on ``setup`` and answers keywords with every outbound type:
  ``play``, ``sendDigits``, ``language``, ``end``, and invalid frames (``sendDigits
  "hello"``, ``play "not a url"``, not JSON); ``flood`` sends twelve invalid frames.
- ``sloppy``: as ``everything``, but every answer starts with a frame Twilio refuses.

Both serve the TwiML webhook and the ``<Connect action>`` (a relative URL) over plain HTTP
from a thread, the WebSocket from the test's event loop, and record what they receive.
The action answers ``<Hangup/>``, or connects the call again to the same socket while
``reconnects`` lasts (what a server that drains for a deploy answers).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

GREETING = "Hi! This is the tutorial agent."
APP_GREETING = "Hello from the everything agent."


@dataclass
class Recorded:
    """What a server saw."""

    webhooks: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    setups: list[dict[str, Any]] = field(default_factory=list)
    #: every frame received, per session (in order of connection).
    sessions: list[list[dict[str, Any]]] = field(default_factory=list)
    #: close code each session's socket saw.
    closes: list[int | None] = field(default_factory=list)

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [f for frames in self.sessions for f in frames if f.get("type") == kind]


@dataclass
class RelayServer:
    twiml_url: str
    ws_url: str
    recorded: Recorded
    reconnects: list[int]


def _twiml(ws_url: str, style: str, method: str, extra: str) -> str:
    greeting = f' welcomeGreeting="{GREETING}"' if style == "tutorial" else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Connect action="action?x=1" method="{method}">'
        f'<ConversationRelay url="{ws_url}"{greeting}{extra}>'
        '<Parameter name="tenant" value="t1" /></ConversationRelay></Connect></Response>'
    )


def _answer(prompt: str, style: str) -> list[str]:
    """The frames a server sends for one prompt (text or raw, as sent)."""
    if style == "tutorial":
        return [json.dumps({"type": "text", "token": f"You said: {prompt}", "last": True})]
    if style == "sloppy":
        return ['{"type": "text", "token": null}', *_answer(prompt, "everything")]
    words = prompt.lower()
    said = [json.dumps({"type": "text", "token": "Okay.", "last": True})]
    if "music" in words:
        return [json.dumps({"type": "play", "source": "https://example.com/hold.mp3", "loop": 2})]
    if "digits" in words:
        return [json.dumps({"type": "sendDigits", "digits": "12w#"})]
    if "spanish" in words:
        return [
            json.dumps(
                {"type": "language", "ttsLanguage": "es-ES", "transcriptionLanguage": "es-ES"}
            ),
            json.dumps({"type": "text", "token": "Hola.", "last": True, "lang": "es-ES"}),
        ]
    if "broken" in words:
        return [
            json.dumps({"type": "sendDigits", "digits": "hello"}),
            json.dumps({"type": "play", "source": "not a url"}),
            "this is not json",
            *said,
        ]
    if "flood" in words:
        return ["{oops"] * 12
    if "drain" in words:  # a deploy: the session ends before the answer
        return [json.dumps({"type": "end", "handoffData": '{"reason":"drain"}'})]
    if "bye" in words:
        return [
            json.dumps({"type": "text", "token": "Goodbye.", "last": True}),
            json.dumps({"type": "end", "handoffData": '{"reason":"done"}'}),
        ]
    if "long" in words:
        return [
            json.dumps(
                {"type": "text", "token": f"part {i} ", "last": False, "interruptible": True}
            )
            for i in range(5)
        ] + [json.dumps({"type": "text", "token": "", "last": True})]
    if "stubborn" in words:
        return [
            json.dumps(
                {"type": "text", "token": f"rule {i} ", "last": False, "interruptible": False}
            )
            for i in range(3)
        ] + [json.dumps({"type": "text", "token": "", "last": True})]
    return said


@asynccontextmanager
async def relay_server(
    style: str, *, method: str = "POST", reconnects: int = 0, extra_attributes: str = ""
) -> AsyncIterator[RelayServer]:
    """Run a server of ``style`` on loopback ports; yield its URLs and records."""
    recorded = Recorded()
    left = [reconnects]
    urls: dict[str, str] = {}

    class Webhooks(BaseHTTPRequestHandler):
        def _handle(self, method_used: str) -> None:
            parts = urlsplit(self.path)
            form = dict(parse_qsl(parts.query))
            if method_used == "POST":
                length = int(self.headers.get("Content-Length", "0"))
                form.update(parse_qsl(self.rfile.read(length).decode()))
            recorded.webhooks.append((parts.path, method_used, form))
            if parts.path == "/twiml":
                body = _twiml(urls["ws"], style, method, extra_attributes)
            elif left[0] > 0 and form.get("SessionStatus") != "completed":
                left[0] -= 1
                body = _twiml(urls["ws"], style, method, extra_attributes)
            else:
                body = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            self._handle("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    async def socket(ws: ServerConnection) -> None:
        frames: list[dict[str, Any]] = []
        recorded.sessions.append(frames)
        try:
            await converse(ws, frames)
        except ConnectionClosed:
            pass  # the caller (or Twilio, after invalid frames) closed mid-answer
        recorded.closes.append(ws.close_code)

    async def converse(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            frames.append(frame)
            kind = frame.get("type")
            if kind == "setup":
                recorded.setups.append(frame)
                if style != "tutorial":
                    await ws.send(json.dumps({"type": "text", "token": APP_GREETING, "last": True}))
            elif kind == "prompt" and frame.get("last"):
                for out in _answer(str(frame["voicePrompt"]), style):
                    await ws.send(out)
            elif kind == "dtmf" and style != "tutorial":
                await ws.send(
                    json.dumps({"type": "text", "token": f"key {frame['digit']}", "last": True})
                )

    http = ThreadingHTTPServer(("127.0.0.1", 0), Webhooks)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        async with serve(socket, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            urls["ws"] = f"ws://127.0.0.1:{port}/ws"
            yield RelayServer(
                f"http://127.0.0.1:{http.server_address[1]}/twiml", urls["ws"], recorded, left
            )
    finally:
        http.shutdown()
        http.server_close()
        thread.join()
