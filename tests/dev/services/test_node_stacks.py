"""Node.js stacks run unchanged under ``warmline dev``: the chat sample in Node.js 20.

The stack is AWS's simple-websockets-chat-app in Node.js (SAM template, ``nodejs20.x``, ES
modules): its three handlers import the AWS SDK for JavaScript v3 without bundling it (the
managed runtime provides it), keep connections in the template's DynamoDB table and post
with ``@connections`` to ``https://{apiId}.execute-api.{region}.amazonaws.com/{stage}``. The
test runs ``warmline dev --template`` as a developer would: two clients connect, one sends,
both receive the broadcast, and the handlers' writes reached the emulated DynamoDB.
"""

from __future__ import annotations

import asyncio
import json
import shutil
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
