"""The trace header crosses the offload boundary: the dispatcher's ``_X_AMZN_TRACE_ID``
rides in the turn payload, the worker's lines name it (``dispatchTraceId``) beside their
own ``traceId``, and the worker's final line carries the dispatch lag, which its EMF line
turns into ``OffloadLagMs`` and ``FirstTokenMs``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from obs_helpers import emf_lines, validate_emf

from warmline.adapters.aws_lambda import lambda_handler
from warmline.connections.local import LocalConnections
from warmline.core.app import App
from warmline.log import StepLogger
from warmline.metrics import EmfWriter
from warmline.offload.route import offload, trace_extra
from warmline.offload.stream import StreamPolicy
from warmline.offload.worker import TurnWorker
from warmline.stores.sqlite import SQLiteStore
from warmline.testing import LambdaContext, websocket_event

DISPATCHER = "Root=1-6b15e691-16ab1126d7e302c8ec7c6700;Parent=53995c3f42cd8ad8;Sampled=1"
WORKER = "Root=1-6b15e692-0000000000000000000000aa;Parent=1111111111111111;Sampled=1"
CID = "R1kmxc2VNjMCFIA="


class Capture:
    def __init__(self) -> None:
        self.payloads: list[dict[str, object]] = []

    def dispatch(self, payload: dict[str, object]) -> str:
        self.payloads.append(payload)
        return "m1"


def test_the_worker_logs_the_dispatchers_trace_and_its_lag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    conns = LocalConnections()
    conns.open(CID)
    app = App(store=store, connections=lambda ref: conns)
    capture = Capture()
    worker = TurnWorker(lambda t: iter(["one ", "two"]), policy=StreamPolicy(filler_after_s=None))
    offload(app, capture, worker=worker)
    out = io.StringIO()
    handler = lambda_handler(app, log=StepLogger(out, also=[EmfWriter("t", "ws")]))
    monkeypatch.setenv("_X_AMZN_TRACE_ID", DISPATCHER)
    setup = {"type": "setup", "sessionId": "VX1", "callSid": "CA1"}
    prompt = {"type": "prompt", "voicePrompt": "hours?", "lang": "en-US", "last": True}
    for frame in (setup, prompt):
        event = websocket_event("MESSAGE", body=json.dumps(frame), connection_id=CID)
        handler(event, LambdaContext())
    (payload,) = capture.payloads
    assert payload["traceHeader"] == DISPATCHER

    monkeypatch.setenv("_X_AMZN_TRACE_ID", WORKER)
    out.truncate(0)
    out.seek(0)
    assert handler(payload, LambdaContext())["status"] == "done"
    lines = out.getvalue().splitlines()
    steps = [json.loads(x) for x in lines if '"step"' in x]
    (final,) = [s for s in steps if s["step"] == "offload.turn"]
    assert final["traceId"] == "1-6b15e692-0000000000000000000000aa"
    assert final["dispatchTraceId"] == "1-6b15e691-16ab1126d7e302c8ec7c6700"
    assert final["lagMs"] >= 0
    (doc,) = emf_lines(lines)
    validate_emf(doc)
    assert doc["route"] == "offload"
    assert doc["OffloadLagMs"] == final["lagMs"]
    assert doc["FirstTokenMs"] == final["lagMs"] + final["firstPostMs"]
    app.close()
    store.close()


def test_no_trace_header_adds_no_payload_field() -> None:
    assert trace_extra({}) == {}
    assert trace_extra({"_X_AMZN_TRACE_ID": DISPATCHER}) == {"traceHeader": DISPATCHER}
