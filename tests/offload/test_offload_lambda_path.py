"""Offloaded turns through the real Lambda adapter: Event invoke, SQS batches, SNS."""

from __future__ import annotations

import io
import json
from pathlib import Path

from offload_helpers import CID, REF, SETUP, SID, frame, tokens

from warmline.adapters.aws_lambda import lambda_handler
from warmline.connections.local import LocalConnections
from warmline.core.app import App
from warmline.log import StepLogger
from warmline.offload.payload import TurnPayload
from warmline.offload.route import offload
from warmline.offload.stream import StreamPolicy
from warmline.offload.worker import TurnWorker
from warmline.stores.sqlite import SQLiteStore
from warmline.testing import LambdaContext, websocket_event


class Capture:
    def __init__(self) -> None:
        self.payloads: list[dict[str, object]] = []

    def dispatch(self, payload: dict[str, object]) -> str:
        self.payloads.append(payload)
        return f"m{len(self.payloads)}"


def _sqs(payload: dict[str, object], message_id: str, receive_count: int = 1) -> dict[str, object]:
    return {
        "messageId": message_id,
        "receiptHandle": "rh",
        "body": json.dumps(payload),
        "eventSource": "aws:sqs",
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def test_router_and_worker_through_the_lambda_handler(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    conns = LocalConnections()
    conns.open(CID)
    app = App(store=store, connections=lambda ref: conns)
    capture = Capture()
    worker = TurnWorker(lambda t: iter(tokens(30)), policy=StreamPolicy(filler_after_s=None))
    offload(app, capture, worker=worker)
    handler = lambda_handler(app, log=StepLogger(io.StringIO()))
    ws = {"connection_id": CID, "domain_name": REF.domain_name, "stage": REF.stage}
    assert (
        handler(websocket_event("MESSAGE", body=SETUP, **ws), LambdaContext())["statusCode"] == 200
    )
    prompt = frame(type="prompt", voicePrompt="hours?", lang="en-US", last=True)
    assert handler(websocket_event("MESSAGE", body=prompt, **ws), LambdaContext()) == {
        "statusCode": 200
    }
    assert conns.sent(CID) == []  # the route answered nothing itself: it dispatched
    (payload,) = capture.payloads
    assert TurnPayload.from_dict(payload).session_id == SID

    # An SQS batch: the turn, plus its duplicate and a malformed record.
    batch = {
        "Records": [
            _sqs(payload, "a"),
            _sqs(payload, "b"),
            {**_sqs(payload, "c"), "body": json.dumps({"kind": "warmline.turn", "v": 1})},
        ]
    }
    assert handler(batch, LambdaContext()) == {"batchItemFailures": []}
    text = "".join(f["token"] for f in conns.sent_json(CID))
    assert text == "".join(tokens(30))

    # A plain Event invoke of the same turn later: a duplicate, nothing posted.
    posts = len(conns.sent(CID))
    assert handler(payload, LambdaContext())["status"] == "duplicate"
    assert len(conns.sent(CID)) == posts
    app.close()
    store.close()


def test_a_busy_turn_is_reported_as_an_sqs_item_failure(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    conns = LocalConnections()
    conns.open(CID)
    app = App(store=store, connections=lambda ref: conns)
    capture = Capture()
    offload(app, capture, worker=TurnWorker(lambda t: iter(["hi"])))
    handler = lambda_handler(app, log=StepLogger(io.StringIO()))
    ws = {"connection_id": CID, "domain_name": REF.domain_name, "stage": REF.stage}
    handler(websocket_event("MESSAGE", body=SETUP, **ws), LambdaContext())
    handler(
        websocket_event("MESSAGE", body=frame(type="prompt", voicePrompt="q", last=True), **ws),
        LambdaContext(),
    )
    (payload,) = capture.payloads
    from warmline.offload.claims import TurnClaims

    TurnClaims(store, owner="elsewhere").acquire(SID, 1)  # a live worker holds the turn
    result = handler({"Records": [_sqs(payload, "m-1")]}, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}  # SQS redelivers later
    assert conns.sent(CID) == []
    app.close()
    store.close()
