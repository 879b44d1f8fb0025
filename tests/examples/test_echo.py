"""examples/echo runs unchanged through the Lambda adapter, with its real default ports:
the SQLite store and the @connections HTTP client (pointed at a local HTTP server that
plays API Gateway's management API, as the emulator does)."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest

from warmline.testing import LambdaContext, websocket_event

ROOT = Path(__file__).resolve().parents[2]


class Recorder(BaseHTTPRequestHandler):
    """POST /{stage}/@connections/{id}: records the body; 410 for ids marked gone."""

    posts: list[tuple[str, dict[str, Any]]] = []
    gone: set[str] = set()

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        connection_id = unquote(self.path.rsplit("/", 1)[-1])
        assert self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 ")
        if connection_id in self.gone:
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.posts.append((connection_id, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def management_api() -> Iterator[str]:
    Recorder.posts = []
    Recorder.gone = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def echo(
    tmp_path: Path, management_api: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    monkeypatch.setenv("WARMLINE_SQLITE_PATH", str(tmp_path / "sessions.sqlite3"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", management_api)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("WARMLINE_ALLOW_UNSIGNED", "1")  # local and unsigned, as in dev
    spec = importlib.util.spec_from_file_location("echo_app", ROOT / "examples/echo/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module


def _relay(**fields: Any) -> str:
    return json.dumps(fields)


def test_echo_greets_and_says_back_final_prompts(echo: ModuleType) -> None:
    handler, ctx = echo.handler, LambdaContext()
    cid = "Abc/def+gh=="  # needs percent-encoding on the wire
    assert handler(websocket_event("CONNECT", connection_id=cid), ctx) == {"statusCode": 200}
    setup = _relay(type="setup", sessionId="VX9", callSid="CA9", customParameters={})
    handler(websocket_event("MESSAGE", body=setup, connection_id=cid), ctx)
    partial = _relay(type="prompt", voicePrompt="hel", lang="en-US", last=False)
    handler(websocket_event("MESSAGE", body=partial, connection_id=cid), ctx)
    final = _relay(type="prompt", voicePrompt="hello there", lang="en-US", last=True)
    handler(websocket_event("MESSAGE", body=final, connection_id=cid), ctx)
    assert Recorder.posts == [
        (cid, {"type": "text", "token": echo.GREETING, "last": True}),
        (cid, {"type": "text", "token": "You said: hello there", "last": True}),
    ]
    session = echo.app.store.by_call_sid("CA9")
    assert session is not None and session.turn == 1


def test_echo_survives_a_caller_who_hung_up(echo: ModuleType) -> None:
    Recorder.gone.add("gone-id")
    final = _relay(type="prompt", voicePrompt="anyone?", lang="en-US", last=True)
    result = echo.handler(websocket_event("MESSAGE", body=final, connection_id="gone-id"), None)
    assert result == {"statusCode": 200}
    assert Recorder.posts == []


def test_echo_ignores_malformed_frames(echo: ModuleType) -> None:
    for body in ("{oops", "[]", _relay(type=5)):
        event = websocket_event("MESSAGE", body=body, connection_id="c1")
        assert echo.handler(event, LambdaContext()) == {"statusCode": 400}
    assert Recorder.posts == []
