"""A call moved between servers (warmline.core.reconnect, conversation rules 6 and 7): the
``setup`` of the new relay session resumes the marked session of its own call and answers
the prompts the old server deferred; nothing else can take a session over."""

from __future__ import annotations

import io
import json
from typing import Any

from warmline.adapters.compose import from_environment
from warmline.connections.local import LocalConnections
from warmline.core import reconnect
from warmline.core.app import App, Context
from warmline.core.context import Invocation
from warmline.core.events import ConnectionRef, Message
from warmline.core.relay import Prompt
from warmline.core.session import SessionRecord
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore

OLD = ConnectionRef("old-conn=", "abc.example.com", "prod")
NEW = ConnectionRef("new-conn=", "abc.example.com", "prod")
OTHER = ConnectionRef("other-conn=", "abc.example.com", "prod")


def make_app() -> tuple[App, MemoryStore, LocalConnections, StepLogger]:
    store = MemoryStore()
    conns = LocalConnections()
    for ref in (OLD, NEW, OTHER):
        conns.open(ref.connection_id)
    app = App(store=store, connections=lambda ref: conns)
    app.compose(from_environment({}, allow_unsigned=True))

    @app.setup
    def greet(ctx: Context[Any]) -> str:
        return "hello"

    @app.prompt
    def answer(ctx: Context[Prompt]) -> str:
        said = ctx.message.voice_prompt

        def remember(r: SessionRecord) -> SessionRecord:
            return r.evolve(data={**r.data, "heard": [*r.data.get("heard", []), said]})

        record = ctx.update_session(remember)
        return " | ".join(record.data["heard"]) if record is not None else f"stateless {said}"

    return app, store, conns, StepLogger(io.StringIO(), keep=True)


def send(app: App, log: StepLogger, ref: ConnectionRef, frame: dict[str, Any]) -> int:
    response = app.handle(Message(ref, json.dumps(frame)), Invocation(log=log))
    return int(response.status_code)


def setup(session_id: str, call_sid: str, resume: str = "") -> dict[str, Any]:
    params = {reconnect.RESUME_PARAMETER: resume} if resume else {}
    return {
        "type": "setup",
        "sessionId": session_id,
        "callSid": call_sid,
        "customParameters": params,
    }


def prompt(text: str) -> dict[str, Any]:
    return {"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True}


def steps(log: StepLogger) -> list[str]:
    assert log.records is not None
    return [r["step"] for r in log.records]


def texts(conns: LocalConnections, ref: ConnectionRef) -> list[str]:
    return [f["token"] for f in conns.sent_json(ref.connection_id) if f["type"] == "text"]


def test_a_marked_session_resumes_on_the_new_connection_with_its_history_and_deferred_prompts() -> (
    None
):
    app, store, conns, log = make_app()
    send(app, log, OLD, setup("VX1", "CA1"))
    send(app, log, OLD, prompt("one"))
    record = store.get("VX1")
    assert record is not None
    reconnect.mark(store, record, "drain")
    send(app, log, OLD, prompt("two"))  # arrived after the mark: kept for the next server
    assert texts(conns, OLD) == ["hello", "one"]
    send(app, log, NEW, setup("VX2", "CA1", resume="VX1"))
    assert texts(conns, NEW) == ["hello", "one | two"]
    send(app, log, NEW, prompt("three"))
    assert texts(conns, NEW)[-1] == "one | two | three"
    moved = store.get("VX1")
    assert moved is not None and store.get("VX2") is None  # one record per call
    assert moved.connection_id == NEW.connection_id and moved.turn == 3
    assert "reconnect" not in moved.data and "deferred" not in moved.data
    assert moved.data["setup"]["sessionId"] == "VX2" and moved.data["reconnects"] == 1
    assert "prompt_deferred" in steps(log) and "session_resumed" in steps(log)


def test_a_redelivered_resumed_setup_keeps_the_adopted_record() -> None:
    app, store, conns, log = make_app()
    send(app, log, OLD, setup("VX1", "CA1"))
    record = store.get("VX1")
    assert record is not None
    reconnect.mark(store, record, "failed")
    send(app, log, NEW, setup("VX2", "CA1", resume="VX1"))
    adopted = store.get("VX1")
    assert send(app, log, NEW, setup("VX2", "CA1", resume="VX1")) == 200
    assert store.get("VX1") == adopted and store.get("VX2") is None


def test_another_calls_session_or_an_unmarked_one_is_not_resumed() -> None:
    app, store, conns, log = make_app()
    send(app, log, OLD, setup("VX1", "CA1"))
    send(app, log, OLD, prompt("secret"))
    # Not marked: a setup naming it (same call) gets a fresh session instead.
    send(app, log, NEW, setup("VX2", "CA1", resume="VX1"))
    send(app, log, NEW, prompt("hi"))
    assert texts(conns, NEW)[-1] == "hi"
    # Marked, but the setup is another call's: no take-over either.
    record = store.get("VX1")
    assert record is not None
    reconnect.mark(store, record, "drain")
    send(app, log, OTHER, setup("VX3", "CA-other", resume="VX1"))
    send(app, log, OTHER, prompt("hello"))
    assert texts(conns, OTHER)[-1] == "hello"
    kept = store.get("VX1")
    assert kept is not None and kept.connection_id == OLD.connection_id
    assert reconnect.is_marked(kept)
    assert steps(log).count("resume_refused") == 2


def test_deferred_prompts_are_bounded() -> None:
    store = MemoryStore()
    record = store.put(SessionRecord("VX1", "c", "CA1"))
    marked = reconnect.mark(store, record, "drain")
    assert marked is not None
    kept = [reconnect.defer(store, marked, prompt(str(i))) for i in range(12)]
    assert kept.count(True) == reconnect.MAX_DEFERRED
    assert not reconnect.defer(store, store.put(SessionRecord("VX9", "d", "CA9")), prompt("x"))


def test_marking_twice_counts_one_move() -> None:
    store = MemoryStore()
    record = store.put(SessionRecord("VX1", "c", "CA1"))
    first = reconnect.mark(store, record, "drain")
    assert first is not None
    second = reconnect.mark(store, first, "failed")
    assert second is not None and reconnect.moves(second) == 1
    assert second.data["reconnect"]["trigger"] == "drain"


def test_a_prompt_without_a_session_is_answered_and_logged() -> None:
    app, store, conns, log = make_app()
    send(app, log, OLD, prompt("early"))
    assert texts(conns, OLD) == ["stateless early"]
    assert log.records is not None
    [line] = [r for r in log.records if r["step"] == "no_session"]
    assert line["level"] == "warning" and "dropped" in line["error"]


def test_handoff_data_round_trip() -> None:
    data = reconnect.handoff_data("drain", "VX1")
    assert reconnect.is_reconnect(data)
    assert json.loads(data) == {"reason": "reconnect", "trigger": "drain", "session": "VX1"}
    assert not reconnect.is_reconnect('{"reason":"handoff"}')
    assert not reconnect.is_reconnect("not json") and not reconnect.is_reconnect("{bad")
