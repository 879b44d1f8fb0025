"""A Lambda environment killed mid-invocation in ``warmline dev``: the caller gets AWS's
error frame for that message, the connection stays open, and the next message is answered
by a fresh environment.

(The runtime-level rules -- a crash discards only its environment, a timeout kills it and
the next invoke is cold, signals are named -- are in
tests/dev/runtime/test_runtime_failures.py; this is the same fault seen from the socket.)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

pytestmark = pytest.mark.slow

HANDLER = """
import json, os, time

def handler(event, context):
    rc = event["requestContext"]
    if rc["eventType"] != "MESSAGE":
        return {"statusCode": 200}
    message = json.loads(event["body"])
    if message.get("do") == "hang":
        with open(message["pidfile"], "w") as fh:
            fh.write(str(os.getpid()))
        while True:  # until killed (the function timeout bounds it)
            time.sleep(0.01)
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid(), "echo": message})}
"""


def test_environment_killed_mid_invocation_then_the_next_message_is_answered(
    tmp_path: Path,
) -> None:
    # The code in a folder of its own: the handler writes its pid next to it, and on
    # Lambda (so under warmline dev) the task root is read-only.
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "killme.py").write_text(HANDLER)
    table = {
        "functions": {"ws": {"handler": "killme.handler", "code": "fn", "timeout": 10}},
        "websocket": {
            "stage": "dev",
            "routes": {"$connect": "ws", "$default": {"function": "ws", "route_response": True}},
        },
    }
    pidfile = tmp_path / "pid.txt"

    async def main() -> tuple[dict[str, str], dict[str, object], int]:
        config = parse_config(table, base_dir=tmp_path)
        server = DevServer(config, port=0, log_sink=LogSink(console=None))
        await server.start()
        try:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"do": "hang", "pidfile": str(pidfile)}))
                for _ in range(1000):
                    if pidfile.exists() and pidfile.read_text():
                        break
                    await asyncio.sleep(0.01)
                killed = int(pidfile.read_text())
                os.kill(killed, signal.SIGKILL)
                error = json.loads(await asyncio.wait_for(ws.recv(), 10))
                await ws.send(json.dumps({"do": "echo", "n": 1}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                return error, answer, killed
        finally:
            await server.close()

    error, answer, killed = asyncio.run(main())
    assert error["message"] == "Internal server error"  # AWS's frame for a failed integration
    assert answer["echo"] == {"do": "echo", "n": 1}
    assert answer["pid"] != killed  # a fresh environment answered
