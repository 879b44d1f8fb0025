"""Node.js stacks run unchanged under ``warmline dev``: the chat sample, a ConversationRelay agent.

The stack is AWS's simple-websockets-chat-app in Node.js (SAM template, ``nodejs20.x``, ES
modules): its three handlers import the AWS SDK for JavaScript v3 without bundling it (the
managed runtime provides it), keep connections in the template's DynamoDB table and post
with ``@connections`` to ``https://{apiId}.execute-api.{region}.amazonaws.com/{stage}``. The
test runs ``warmline dev --template`` as a developer would: two clients connect, one sends,
both receive the broadcast, and the handlers' writes reached the emulated DynamoDB.

The ConversationRelay agent (one ``nodejs20.x`` function on ``$connect``, ``$disconnect`` and
``$default``, a scheduled warm-up it short-circuits on ``source == "aws.events"``) answers
``warmline call``, and its first environment's cold start is logged as Lambda logs it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from services_helpers import FIXTURES, recorded_calls, warmline_dev
from websockets.asyncio.client import connect

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js stacks need node and npm on PATH (make node installs them)",
)

TEMPLATE = FIXTURES / "chat-node" / "template.yaml"


async def _broadcast(ws_url: str) -> tuple[str, str]:
    async with connect(ws_url) as alice, connect(ws_url) as bob:
        await alice.send(json.dumps({"action": "sendmessage", "data": "hello from node"}))
        got_bob = await asyncio.wait_for(bob.recv(), 60)
        got_alice = await asyncio.wait_for(alice.recv(), 60)
    return str(got_alice), str(got_bob)


def test_the_nodejs_chat_stack_broadcasts_to_both_clients(tmp_path: Path) -> None:
    with warmline_dev("--template", str(TEMPLATE), cwd=tmp_path) as dev:
        assert asyncio.run(_broadcast(dev.ws_url)) == ("hello from node", "hello from node")
        output = dev.output()
    assert "nodejs20.x functions run on node" in output
    assert "INIT_START Runtime Version: nodejs:20.v1" in output
    assert "Uncaught Exception" not in output and "Invoke Error" not in output, output
    calls = recorded_calls(tmp_path / ".warmline" / "services" / "moto-recording.jsonl")
    puts = [body for target, body in calls if target == "DynamoDB_20120810.PutItem"]
    assert len(puts) == 2 and {p["TableName"] for p in puts} == {"simplechat_connections"}
    assert [t for t, _ in calls].count("DynamoDB_20120810.Scan") == 1


RELAY = FIXTURES / "relay-node"
REPORT_INIT = re.compile(r"\[relay \w+\] REPORT RequestId: \S+\t.*\tInit Duration: \d+\.\d\d ms$")


def _fire(http_url: str, schedule: str) -> int:
    request = urllib.request.Request(
        f"{http_url}/_warmline/schedules/{schedule}/fire", method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_a_nodejs_conversationrelay_agent_answers_warmline_call(tmp_path: Path) -> None:
    script = tmp_path / "call.txt"
    script.write_text("What time is it?\n", encoding="utf-8")
    with warmline_dev("--config", str(RELAY / "warmline.toml"), cwd=tmp_path) as dev:
        called = subprocess.run(
            [sys.executable, "-m", "warmline", "call", "--ws", dev.ws_url,
             "--script", str(script), "--json", "--timeout", "60"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert called.returncode == 0, called.stdout + called.stderr
        http_url = "http" + dev.ws_url.removeprefix("ws").rsplit("/", 1)[0]
        assert _fire(http_url, "warm") == 202
        assert _eventually(lambda: "INFO\twarm-up" in dev.output())
        output = dev.output()
    result = json.loads(called.stdout)
    assert result["greeting"] == "Hello from Node. How can I help?"
    assert [t["answer"] for t in result["turns"]] == ["You said: What time is it?"]
    assert all(t["complete"] for t in result["turns"])
    assert result["invalidFrames"] == []
    lines = output.splitlines()
    # the first $connect paid the cold start, shown as Lambda shows it
    first = next(i for i, line in enumerate(lines) if "[relay " in line)
    assert (
        "INIT_START Runtime Version: nodejs:20.v1\tRuntime Version ARN: arn:aws:lambda:"
        in (lines[first])
    )
    reports = [line for line in lines if "REPORT RequestId" in line]
    assert REPORT_INIT.match(reports[0]), reports[0]
    assert not any("Init Duration" in line for line in reports[1:-1])
    # setup was logged in the Node runtime's format: time, request id, level, message
    setup = next(line for line in lines if "setup for call" in line)
    assert re.search(
        r"\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[0-9a-f-]{36}\tINFO\tsetup for call CA", setup
    )
    assert f"setup for call {result['callSid']}" in setup


def _eventually(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
