"""AWS's simple-websockets-chat-app, unmodified, under ``warmline dev``: SAM, Serverless, Terraform.

Each stack keeps its connections in a DynamoDB table (``boto3.client("dynamodb")`` with no
endpoint override, the table name from the template's ``Ref``) and posts with
``apigatewaymanagementapi`` to ``https://{apiId}.execute-api.{region}.amazonaws.com/{stage}``.
The test runs ``warmline dev`` as a developer would (its own process, no edit to the
stack): two clients connect, one sends, both receive the broadcast, and the table the
handlers wrote is the one the template declares.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from services_helpers import CHAT, recorded_calls, warmline_dev
from websockets.asyncio.client import connect

STACKS = {
    "sam": ("--template", str(CHAT / "sam" / "template.yaml")),
    "serverless": ("--serverless", str(CHAT / "serverless.yml")),
    "terraform": ("--terraform", str(CHAT / "terraform")),
}
TABLES = {
    "sam": "simplechat_connections",
    "serverless": "simplechat-dev-connections",
    "terraform": "simplechat-connections",
}


async def _broadcast(ws_url: str) -> tuple[str, str]:
    async with connect(ws_url) as alice, connect(ws_url) as bob:
        await alice.send(json.dumps({"action": "sendmessage", "data": "hello, both"}))
        got_bob = await asyncio.wait_for(bob.recv(), 30)
        got_alice = await asyncio.wait_for(alice.recv(), 30)
    return str(got_alice), str(got_bob)


@pytest.mark.parametrize("stack", list(STACKS))
def test_unmodified_chat_stack_broadcasts_to_both_clients(stack: str, tmp_path: Path) -> None:
    with warmline_dev(*STACKS[stack], cwd=tmp_path) as dev:
        assert dev.ws_url.startswith("ws://127.0.0.1:")
        assert asyncio.run(_broadcast(dev.ws_url)) == ("hello, both", "hello, both")
        output = dev.output()
    assert f"DynamoDB table {TABLES[stack]}" in output
    assert "warmline00.execute-api.us-east-1.amazonaws.com (@connections)" in output
    assert "DynamoDB is not emulated" not in output
    assert "Traceback" not in output, output
    # the handlers' writes reached moto and were recorded under .warmline/ in the project
    calls = recorded_calls(tmp_path / ".warmline" / "services" / "moto-recording.jsonl")
    puts = [body for target, body in calls if target == "DynamoDB_20120810.PutItem"]
    assert len(puts) == 2 and {p["TableName"] for p in puts} == {TABLES[stack]}
    assert [t for t, _ in calls].count("DynamoDB_20120810.Scan") == 1
