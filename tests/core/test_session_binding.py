"""A session is bound to its call: a second connection cannot take over a live call's
session by sending a ``setup`` with its ``sessionId``; the setup fields kept are bounded."""

from __future__ import annotations

import io
import json
from typing import Any

from warmline.adapters.compose import from_environment
from warmline.connections.local import LocalConnections
from warmline.core.app import App, Context
from warmline.core.conversation import MAX_SETUP_BYTES
from warmline.core.events import ConnectionRef, Message
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore

VICTIM = ConnectionRef("victim-conn=", "abc.example.com", "prod")
ATTACKER = ConnectionRef("attacker-conn=", "abc.example.com", "prod")
SETUP = {"type": "setup", "sessionId": "VX1", "callSid": "CA1", "from": "+15550100"}


def make_app() -> tuple[App, MemoryStore, LocalConnections, StepLogger, list[str]]:
    store = MemoryStore()
    conns = LocalConnections()
    for ref in (VICTIM, ATTACKER):
        conns.open(ref.connection_id)
    app = App(store=store, connections=lambda ref: conns)
    app.compose(from_environment({}, allow_unsigned=True))
    greeted: list[str] = []

    @app.setup
    def greet(ctx: Context[Any]) -> str:
        assert ctx.connection is not None
        greeted.append(ctx.connection.connection_id)
        ctx.update_session(lambda r: r.evolve(data={**r.data, "greeted": True}))
        return "hello"

    log = StepLogger(io.StringIO(), keep=True)
    return app, store, conns, log, greeted


def send(app: App, log: StepLogger, ref: ConnectionRef, frame: dict[str, Any]) -> int:
    from warmline.core.context import Invocation

    response = app.handle(Message(ref, json.dumps(frame)), Invocation(log=log))
    return int(response.status_code)


def test_a_setup_naming_another_connections_session_is_refused() -> None:
    app, store, conns, log, greeted = make_app()
    assert send(app, log, VICTIM, SETUP) == 200
    before = store.get("VX1")
    assert send(app, log, ATTACKER, SETUP) == 409
    assert store.get("VX1") == before  # nothing written to the victim's record
    assert greeted == [VICTIM.connection_id]  # no handler ran for the attacker
    assert conns.sent(ATTACKER.connection_id) == []
    assert log.records is not None
    refused = [r for r in log.records if r["step"] == "setup_refused"]
    assert len(refused) == 1 and refused[0]["connectionId"] == ATTACKER.connection_id
    # and the attacker's later prompts find no session to write into
    assert store.by_connection(ATTACKER.connection_id) is None


def test_a_setup_naming_the_session_with_another_call_sid_is_refused() -> None:
    app, store, _conns, log, _greeted = make_app()
    assert send(app, log, VICTIM, SETUP) == 200
    assert send(app, log, VICTIM, {**SETUP, "callSid": "CA2"}) == 409
    record = store.get("VX1")
    assert record is not None and record.call_sid == "CA1"


def test_a_redelivered_setup_on_its_own_connection_keeps_the_record() -> None:
    app, store, _conns, log, greeted = make_app()
    assert send(app, log, VICTIM, SETUP) == 200
    assert send(app, log, VICTIM, SETUP) == 200
    record = store.get("VX1")
    assert record is not None and record.connection_id == VICTIM.connection_id
    assert greeted == [VICTIM.connection_id] * 2


def test_the_setup_kept_on_the_record_is_bounded() -> None:
    app, store, _conns, log, _greeted = make_app()
    params = {f"p{n}": "x" * 1000 for n in range(100)}  # ~100 KB of customParameters
    assert send(app, log, VICTIM, {**SETUP, "customParameters": params}) == 200
    record = store.get("VX1")
    assert record is not None and record.data["setupTrimmed"] is True
    assert "customParameters" not in record.data["setup"]
    assert record.data["setup"]["callSid"] == "CA1"
    assert len(json.dumps(record.data).encode()) <= MAX_SETUP_BYTES
