"""The session store fails during a call: the caller hears an apology, nothing is
half-written, and the call goes on once the store is back.

The store is a real MemoryStore behind :class:`~warmline.stores.faulty.FaultyStore` (the
wrapper ``warmline dev`` injects store faults with), which makes chosen operations raise
``StoreUnavailableError`` (what the SQLite, DynamoDB and Redis stores raise when their
backend is unreachable; their own tests prove that translation). The app is the reference
agent behind the real Lambda handler.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from warmline.adapters.aws_lambda import STORE_APOLOGY, lambda_handler
from warmline.agent.app import build_app
from warmline.connections.local import LocalConnections
from warmline.errors import ConnectionGoneError, StoreUnavailableError
from warmline.log import StepLogger
from warmline.stores.faulty import FaultyStore
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

CID = "R1kmxc2VNjMCFIA="


def message(frame: dict[str, Any]) -> dict[str, Any]:
    return websocket_event("MESSAGE", body=json.dumps(frame), connection_id=CID)


SETUP = {"type": "setup", "sessionId": "VX1", "callSid": "CA1", "from": "+1555", "to": "+1666"}
HOURS = {"type": "prompt", "voicePrompt": "What are your support hours?", "last": True}


def agent() -> tuple[Any, FaultyStore, LocalConnections, io.StringIO]:
    store = FaultyStore(MemoryStore())
    conns = LocalConnections()
    conns.open(CID)
    app = build_app(store=store, connections=lambda _ref: conns)
    out = io.StringIO()
    return lambda_handler(app, log=StepLogger(out)), store, conns, out


def spoken(conns: LocalConnections, start: int = 0) -> list[dict[str, Any]]:
    return [frame for frame in conns.sent_json(CID)[start:]]


@pytest.mark.parametrize("down", [{"get"}, {"put"}, {"*"}])
def test_store_down_during_a_prompt_gives_a_spoken_apology(down: set[str]) -> None:
    handler, store, conns, out = agent()
    assert handler(message(SETUP), LambdaContext())["statusCode"] == 200
    before = store.inner.get("VX1")
    sent_before = len(conns.sent(CID))

    store.down = down
    result = handler(message(HOURS), LambdaContext())

    assert result == {"statusCode": 503}
    assert store.failures >= 1
    assert spoken(conns, sent_before) == [{"type": "text", "token": STORE_APOLOGY, "last": True}]
    assert store.inner.get("VX1") == before  # nothing half-written: same record, same version
    assert '"store_unavailable"' in out.getvalue()


def test_the_call_goes_on_when_the_store_is_back_and_no_turn_is_lost_or_doubled() -> None:
    handler, store, conns, _out = agent()
    handler(message(SETUP), LambdaContext())
    turn_before = store.inner.get("VX1").turn  # type: ignore[union-attr]
    store.down = {"put"}
    handler(message(HOURS), LambdaContext())
    store.down = set()
    sent_before = len(conns.sent(CID))
    assert handler(message(HOURS), LambdaContext())["statusCode"] == 200
    answer = spoken(conns, sent_before)
    assert "7 in the morning" in "".join(f.get("token", "") for f in answer)
    assert answer[-1]["last"] is True
    assert store.inner.get("VX1").turn == turn_before + 1  # type: ignore[union-attr]


def test_store_down_during_setup_creates_no_session() -> None:
    handler, store, conns, _out = agent()
    store.down = {"put"}
    assert handler(message(SETUP), LambdaContext()) == {"statusCode": 503}
    assert spoken(conns)[-1]["token"] == STORE_APOLOGY
    assert store.inner.get("VX1") is None


def test_store_down_and_caller_gone_still_no_exception() -> None:
    handler, store, conns, out = agent()
    handler(message(SETUP), LambdaContext())
    store.down = {"*"}
    conns.fail_next(ConnectionGoneError("gone", status=410))
    assert handler(message(HOURS), LambdaContext()) == {"statusCode": 503}
    assert '"apology_failed"' in out.getvalue()


def test_store_down_on_an_sqs_worker_task_still_raises_for_a_retry() -> None:
    """Async work is different: the failure is reported so SQS redelivers the record."""
    app = build_app(store=FaultyStore(MemoryStore()), connections=lambda _ref: LocalConnections())

    @app.worker
    def work(ctx: Any) -> None:
        raise StoreUnavailableError("injected")

    handler = lambda_handler(app, log=StepLogger(io.StringIO()))
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "{}"}]}
    assert handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_a_browser_caller_gets_the_apology_as_chat() -> None:
    """The apology goes through the message's channel, not as a raw relay frame."""
    handler, store, conns, _out = agent()
    start = {"type": "chat.start"}
    assert handler(message(start), LambdaContext())["statusCode"] == 200
    sent_before = len(conns.sent(CID))
    store.down = {"*"}
    ask = {"type": "chat.message", "text": "What are your support hours?"}
    assert handler(message(ask), LambdaContext()) == {"statusCode": 503}
    (frame,) = spoken(conns, sent_before)
    assert frame["type"] == "chat.token" and frame["text"] == STORE_APOLOGY
    assert frame["last"] is True
