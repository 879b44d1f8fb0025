"""The router side of offload stays off asyncio, HTTP/TLS and boto3 until it needs them."""

from __future__ import annotations

import json
import subprocess
import sys

ROUTER = """
import json, sys
from warmline import App
from warmline.connections.local import LocalConnections
from warmline.core.app import Invocation
from warmline.core.events import ConnectionRef, Message
from warmline.stores.memory import MemoryStore
before = set(sys.modules)
from warmline.offload import LambdaInvokeDispatcher, TurnWorker, offload

sent = []
class Capture:
    def dispatch(self, payload):
        sent.append(payload)
        return "m1"

LambdaInvokeDispatcher("worker", "eu-west-1", environ={})  # constructed, not used
conns = LocalConnections()
conns.open("c1")
app = App(store=MemoryStore(), connections=lambda ref: conns)
offload(app, Capture(), worker=TurnWorker(lambda turn: iter(["hi"])))
ref = ConnectionRef("c1", "d", "prod")
app.handle(Message(ref, json.dumps({"type": "setup", "sessionId": "VX1", "callSid": "CA1"})))
app.handle(Message(ref, json.dumps({"type": "prompt", "voicePrompt": "q", "last": True})))
assert [p["turn"] for p in sent] == [1], sent
print(json.dumps([sorted(sys.modules), sorted(set(sys.modules) - before)]))
"""


def test_offloading_router_loads_no_event_loop_http_or_boto3() -> None:
    out = subprocess.run(
        [sys.executable, "-c", ROUTER], check=True, capture_output=True, text=True
    ).stdout
    loaded, added = json.loads(out.strip().splitlines()[-1])
    assert sorted(m for m in ("asyncio", "http.client", "ssl") if m in loaded) == []
    assert sorted(m for m in loaded if m.split(".")[0] in ("boto3", "botocore")) == []
    # What offload itself adds to a router: its own modules and warmline.aws; the signer
    # hashes with the bare SHA-256 type, so not even hashlib/hmac.
    foreign = [m for m in added if not m.startswith(("warmline.", "_"))]
    assert sorted(foreign) == []
