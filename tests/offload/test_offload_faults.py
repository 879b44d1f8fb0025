"""Fault tests of offloaded turns over real stores: duplicates, crashes, interrupts, hang-ups,
races. Each runs on MemoryStore, SQLiteStore (a tmp file) and DynamoDBStore (moto, slow)."""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from offload_helpers import CID, SID, Harness, make_store, moto_endpoint_fixture, tokens

from warmline.core.app import App, Invocation
from warmline.core.events import WorkerTask
from warmline.offload.claims import TurnBusyError, claim_key
from warmline.offload.payload import TurnPayload
from warmline.offload.stream import StreamPolicy
from warmline.offload.worker import TurnContext, TurnWorker
from warmline.types import SessionStore

FULL = "".join(tokens(200))
COALESCE = StreamPolicy(filler_after_s=None, max_chars=60)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    yield from moto_endpoint_fixture()


@pytest.fixture(params=["memory", "sqlite", pytest.param("dynamodb", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SessionStore:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.close()


def _start(h: Harness, harnesses: list[Harness]) -> Harness:
    harnesses.append(h)
    h.setup()
    h.prompt("what are your hours")
    return h


def test_duplicate_deliveries_answer_once(store: SessionStore, harnesses: list[Harness]) -> None:
    h = _start(
        Harness(
            store,
            lambda t: iter(tokens(200)),
            policy=COALESCE,
            bus_options={"duplicates": 3, "shuffle": random.Random(7)},
        ),
        harnesses,
    )
    assert h.bus.pending == 4
    h.bus.drain()
    statuses = sorted(d.result["status"] for d in h.bus.deliveries)
    assert statuses == ["done", "duplicate", "duplicate", "duplicate"]
    assert h.answer_text() == FULL
    assert [f["last"] for f in h.frames()].count(True) == 1


def test_a_redelivered_payload_after_completion_posts_nothing(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    h = _start(Harness(store, lambda t: iter(tokens(20)), policy=COALESCE), harnesses)
    h.bus.drain()
    posts = len(h.conns.sent(CID))
    payload = TurnPayload(CID, SID, 1, prompt="again").to_dict()
    result = h.app.handle(WorkerTask(payload, delivery="sqs", attempt=2), Invocation(log=h.log))
    assert result["status"] == "duplicate"
    assert len(h.conns.sent(CID)) == posts


def test_answer_crash_mid_stream_then_retry_resumes_without_repeats(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    attempts: list[int] = []

    def answer(turn: TurnContext) -> Iterator[str]:
        attempts.append(turn.resumed_from)
        for i, token in enumerate(tokens(200)):
            if i == 120 and len(attempts) == 1:
                raise RuntimeError("worker died mid-stream")
            yield token

    h = _start(Harness(store, answer, policy=COALESCE), harnesses)
    h.bus.drain()
    assert [d.error != "" for d in h.bus.deliveries] == [True, False]
    assert h.bus.deliveries[1].result["status"] == "done"
    assert attempts[0] == 0 and attempts[1] > 0  # the retry knew what was heard
    assert h.answer_text() == FULL  # complete, and not one character twice
    claim = store.get(claim_key(SID, 1))
    assert claim is not None and claim.data["state"] == "done"


def test_interrupt_stops_the_stream_at_the_fence(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    seen: dict[str, int] = {}
    box: list[Harness] = []

    async def answer(turn: TurnContext) -> AsyncIterator[str]:
        for i, token in enumerate(tokens(200)):
            if i == 80:
                box[0].interrupt()  # the caller barges in, handled by "another invocation"
                seen["posts"] = len(box[0].conns.sent(CID))
            yield token

    h = _start(Harness(store, answer, policy=COALESCE), harnesses)
    box.append(h)
    h.bus.drain()
    assert h.bus.deliveries[0].result["status"] == "fenced"
    assert len(h.conns.sent(CID)) == seen["posts"]  # nothing after the fence moved
    assert 0 < len(h.answer_text()) < len(FULL)
    assert h.session().turn == 2
    claim = store.get(claim_key(SID, 1))
    assert claim is not None and claim.data["state"] == "fenced"


def test_a_newer_prompt_makes_an_old_turn_stale(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    h = _start(Harness(store, lambda t: iter([f"<{t.prompt}>"]), policy=COALESCE), harnesses)
    h.prompt("second question")  # turn 2 before the worker ran turn 1
    h.bus.drain()
    statuses = [d.result["status"] for d in h.bus.deliveries]
    assert statuses == ["stale", "done"]
    assert h.answer_text() == "<second question>"


def test_caller_hangs_up_mid_stream(store: SessionStore, harnesses: list[Harness]) -> None:
    box: list[Harness] = []

    def answer(turn: TurnContext) -> Iterator[str]:
        for i, token in enumerate(tokens(200)):
            if i == 50:
                box[0].conns.close(CID)  # the caller hung up: posts now answer 410
            yield token

    h = _start(Harness(store, answer, policy=COALESCE), harnesses)
    box.append(h)
    h.bus.drain()
    assert len(h.bus.deliveries) == 1  # handled quietly: not retried
    assert h.bus.deliveries[0].result["status"] == "gone"
    assert h.bus.dead_letters == []
    session = h.session()
    assert session.data["over"]["reason"] == "gone"
    # A late duplicate, or the next turn's work, finds the session over and posts nothing.
    payload = TurnPayload(CID, SID, 1).to_dict()
    result = h.app.handle(WorkerTask(payload), Invocation(log=h.log))
    assert result["status"] == "stale"


def test_disconnect_mid_stream_fences_the_worker(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    from offload_helpers import REF

    from warmline.core.events import Disconnect

    box: list[Harness] = []
    seen: dict[str, int] = {}

    def answer(turn: TurnContext) -> Iterator[str]:
        for i, token in enumerate(tokens(200)):
            if i == 40:
                box[0].app.handle(Disconnect(REF, 1000), Invocation(log=box[0].log))
                seen["posts"] = len(box[0].conns.sent(CID))
            yield token

    h = _start(Harness(store, answer, policy=COALESCE), harnesses)
    box.append(h)
    h.bus.drain()
    assert h.bus.deliveries[0].result["status"] == "fenced"
    assert len(h.conns.sent(CID)) == seen["posts"]
    assert h.session().data["over"]["reason"] == "disconnect"


def test_two_workers_race_for_one_turn_and_exactly_one_answers(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    release = threading.Event()

    def answer(turn: TurnContext) -> Iterator[str]:
        assert release.wait(10), "the other worker never finished"
        yield from tokens(30)

    h = _start(Harness(store, answer, policy=COALESCE), harnesses)
    (copy,) = [text for _, text, _ in h.bus._queue]
    payload = TurnPayload.from_dict(__import__("json").loads(copy)).to_dict()
    other = App(store=store, connections=lambda ref: h.conns)
    TurnWorker(answer, policy=COALESCE).install(other)
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run(app: App) -> None:
        barrier.wait(10)
        try:
            results.append(app.handle(WorkerTask(payload), Invocation(log=h.log)))
        except TurnBusyError as exc:
            results.append(exc)
            release.set()

    threads = [threading.Thread(target=run, args=(app,)) for app in (h.app, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    assert sum(isinstance(r, TurnBusyError) for r in results) == 1
    assert [r["status"] for r in results if isinstance(r, dict)] == ["done"]
    assert h.answer_text() == "".join(tokens(30))


def test_malformed_payloads_are_dropped_not_retried(
    store: SessionStore, harnesses: list[Harness]
) -> None:
    h = _start(Harness(store, lambda t: iter(["x"]), policy=COALESCE), harnesses)
    h.bus.drain()
    for bad in (
        {"kind": "warmline.turn", "v": 1, "sessionId": SID, "turn": 1},
        {"kind": "warmline.turn", "v": 9, "connectionId": CID, "sessionId": SID, "turn": 1},
        {"kind": "warmline.turn", "v": 1, "connectionId": CID, "sessionId": SID, "turn": "1"},
    ):
        h.bus.dispatch(bad)
    h.bus.drain()
    results = [d.result for d in h.bus.deliveries[1:]]
    assert [r["status"] for r in results] == ["invalid"] * 3
    assert "connectionId" in results[0]["error"]
    assert "v9" in results[1]["error"]
    assert len(h.bus.deliveries) == 4 and h.bus.dead_letters == []
