"""The emulator's pages and event stream over real sockets (no browser needed)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warmline.dev.gateway.web import parse_record
from warmline.dev.runtime.logs import LogRecord, report_line

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from web_helpers import ThreadedDevServer, agent_config


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[ThreadedDevServer]:
    server = ThreadedDevServer(agent_config(tmp_path)).start()
    yield server
    server.close()


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_pages_and_assets_come_from_the_package(dev: ThreadedDevServer) -> None:
    status, headers, body = _get(dev.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"softphone.js" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, _, body = _get(dev.url + "dashboard")
    assert status == 200 and b"dashboard.js" in body
    for name, kind in (("softphone.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = _get(dev.url + "static/" + name)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
    status, _, body = _get(dev.url + "config.json")
    assert json.loads(body) == {"stage": "dev", "wsPath": "/dev"}


def test_unknown_paths_and_methods_are_refused(dev: ThreadedDevServer) -> None:
    assert _get(dev.url + "static/..%2Fweb.py")[0] == 404
    assert _get(dev.url + "static/nope.js")[0] == 404
    assert _get(dev.url + "elsewhere")[0] == 404
    assert _get(dev.url + "dashboard", method="POST")[0] == 405


def test_the_app_still_gets_its_own_http_routes(dev: ThreadedDevServer) -> None:
    base = dev.url.removesuffix("/_warmline/")
    status, _, body = _get(base + "/twiml", method="POST")
    assert status == 200 and b"ConversationRelay" in body


def _events(url: str, until: Any, limit: int = 400) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    with urllib.request.urlopen(url, timeout=10) as res:
        assert res.headers["Content-Type"] == "text/event-stream"
        for _ in range(limit):
            line = res.readline()
            if line.startswith(b"data: "):
                seen.append(json.loads(line[6:]))
                if until(seen):
                    return seen
    raise AssertionError(f"condition not met in {limit} lines: {seen}")


def test_the_event_stream_replays_a_chat_call_from_its_log_lines(
    dev: ThreadedDevServer,
) -> None:
    from websockets.sync.client import connect

    with connect(dev.server.ws_url) as ws:
        ws.send(json.dumps({"type": "chat.start"}))
        while not json.loads(ws.recv(timeout=10))["last"]:
            pass
        ws.send(json.dumps({"type": "chat.message", "text": "What are your support hours?"}))
        while not json.loads(ws.recv(timeout=10))["last"]:
            pass

    def complete(events: list[dict[str, Any]]) -> bool:
        kinds = {e.get("route") for e in events} | {e["kind"] for e in events}
        return {"prompt", "snapshot"} <= kinds

    events = _events(dev.url + "events", complete)
    connect_step = next(e for e in events if e.get("step") == "connect")
    assert connect_step["cold"] is True
    assert any(e["kind"] == "init" for e in events)
    cold = [e for e in events if e["kind"] == "report" and e["initMs"] is not None]
    assert cold and cold[0]["warmup"] is False
    prompt = next(e for e in events if e.get("route") == "prompt")
    assert prompt["intent"] == "answer" and prompt["channel"] == "chat"
    assert prompt["firstSendMs"] <= prompt["durationMs"]
    snapshot = next(e for e in events if e["kind"] == "snapshot")
    assert snapshot["envs"] and snapshot["envs"][0]["function"] == "agent"


def _record(line: str, env: str = "e1") -> LogRecord:
    return LogRecord(1.0, "agent", env, line)


def test_report_lines_parse_and_warmups_are_marked_apart(dev: ThreadedDevServer) -> None:
    line = report_line("r1", duration_ms=2.5, billed=3, memory_mb=512, max_memory_mb=40, init_ms=31)
    event = parse_record(_record(line))
    assert event is not None
    assert (event["durationMs"], event["initMs"], event["billedMs"]) == (2.5, 31.0, 3.0)
    assert parse_record(_record("START RequestId: r1 Version: $LATEST")) is None
    assert parse_record(_record("{not json")) is None

    console = dev.server.gateway.web  # type: ignore[union-attr]
    assert console is not None
    console.on_record(_record('{"step":"warmup","warmup":true,"cold":false}', "ping-env"))
    console.on_record(_record(line, "ping-env"))
    console.on_record(_record(line, "ping-env"))
    ping, after = [e for e in console.history if e["kind"] == "report"][-2:]
    assert ping["warmup"] is True and after["warmup"] is False
