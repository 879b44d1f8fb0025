"""examples/agent runs unchanged through the Lambda adapter with its real default ports:
the SQLite session store and the @connections HTTP client, pointed at a local HTTP server
that plays API Gateway's management API."""

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

from warmline.agent.kb import close_indexes
from warmline.testing import LambdaContext, websocket_event

ROOT = Path(__file__).resolve().parents[2]
CID = "Ag3nt/cid+1="


class Recorder(BaseHTTPRequestHandler):
    """POST /{stage}/@connections/{id}: records the JSON body."""

    posts: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.posts.append((unquote(self.path.rsplit("/", 1)[-1]), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    Recorder.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("WARMLINE_SQLITE_PATH", str(tmp_path / "sessions.sqlite3"))
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
        f"http://127.0.0.1:{server.server_address[1]}/prod",
    )
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
        ("AWS_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("WARMLINE_ALLOW_UNSIGNED", "1")  # local and unsigned, as in dev
    spec = importlib.util.spec_from_file_location("agent_app", ROOT / "examples/agent/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        module.app.close()
        store_close = getattr(module.app.store, "close", None) if module.app._store else None
        if store_close is not None:
            store_close()
        close_indexes()
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_example_agent_answers_a_call_end_to_end(agent: ModuleType) -> None:
    handler, ctx = agent.handler, LambdaContext()
    assert handler(websocket_event("CONNECT", connection_id=CID), ctx) == {"statusCode": 200}
    for frame in (
        {"type": "setup", "sessionId": "VX7", "callSid": "CA7", "customParameters": {}},
        {"type": "prompt", "voicePrompt": "How much is the Spark 300 plan?", "last": True},
        {"type": "prompt", "voicePrompt": "get me a representative", "last": True},
    ):
        event = websocket_event("MESSAGE", body=json.dumps(frame), connection_id=CID)
        assert handler(event, ctx) == {"statusCode": 200}
    assert {cid for cid, _ in Recorder.posts} == {CID}
    frames = [f for _, f in Recorder.posts]
    texts = "".join(f.get("token", "") for f in frames)
    assert "Spark 300 costs 45 dollars a month" in texts
    assert frames[-1]["type"] == "end"
    assert json.loads(frames[-1]["handoffData"])["callSid"] == "CA7"
    session = agent.app.store.by_call_sid("CA7")
    assert session is not None and session.turn == 2
    assert [t["role"] for t in session.data["history"]] == ["assistant"] + ["user", "assistant"] * 2


def test_a_warm_up_ping_opens_the_index_and_sends_nothing(agent: ModuleType) -> None:
    assert agent.app.agent._retriever is None
    result = agent.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    assert result is not None
    retriever = agent.app.agent._retriever
    assert retriever is not None and int(retriever.meta()["entries"]) >= 110
    assert Recorder.posts == []
