"""Shared pieces of the offload tests: a call harness over real stores and LocalConnections."""

from __future__ import annotations

import io
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))

from moto_server import ENV, moto_server

from warmline.adapters.loops import ThreadLoops
from warmline.connections.local import LocalConnections
from warmline.core.app import App
from warmline.core.events import ConnectionRef, Message
from warmline.log import StepLogger
from warmline.offload.dispatchers import LocalDispatcher
from warmline.offload.route import offload
from warmline.offload.stream import StreamPolicy
from warmline.offload.worker import AnswerFn, TurnWorker
from warmline.types import SessionStore

__all__ = ["ENV", "CID", "Harness", "make_store", "moto_endpoint_fixture", "tokens"]

CID = "R1kmxc2VNjMCFIA="
SID = "VX00000000000000000000000000000001"
REF = ConnectionRef(connection_id=CID, domain_name="abc.example.com", stage="prod")


def tokens(n: int = 200) -> list[str]:
    """A deterministic answer of ``n`` small tokens."""
    return [f"w{i} " for i in range(n)]


def frame(**fields: Any) -> str:
    return json.dumps(fields)


SETUP = frame(
    type="setup",
    sessionId=SID,
    callSid="CA1",
    accountSid="AC1",
    parentCallSid="",
    **{"from": "+15550100"},
    to="+15550101",
    forwardedFrom="",
    callType="PSTN",
    callerName="",
    direction="inbound",
    callStatus="RINGING",
    customParameters={},
)


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> SessionStore:
    """A real store: ``memory``, ``sqlite`` (tmp file) or ``dynamodb`` (moto server)."""
    if kind == "memory":
        from warmline.stores.memory import MemoryStore

        return MemoryStore()
    if kind == "sqlite":
        from warmline.stores.sqlite import SQLiteStore

        store = SQLiteStore(tmp_path / "sessions.sqlite3")
        request.addfinalizer(store.close)
        return store
    from warmline.stores.dynamodb import DynamoDBStore

    endpoint = request.getfixturevalue("moto_endpoint")
    name = f"offload-{uuid.uuid4().hex[:8]}"
    dynamo = DynamoDBStore(name, endpoint_url=endpoint, region_name="us-east-1")
    dynamo.create_table()
    return dynamo


def moto_endpoint_fixture() -> Iterator[str]:
    """Body of a module-scoped fixture: a moto server with the test credentials set."""
    import os

    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        with moto_server() as url:
            yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Harness:
    """One call: an App with a prompt route offloaded to a TurnWorker over a LocalDispatcher."""

    def __init__(
        self,
        store: SessionStore,
        answer: AnswerFn,
        *,
        policy: StreamPolicy | None = None,
        mode: str = "offload",
        conns: LocalConnections | None = None,
        bus_options: dict[str, Any] | None = None,
        **worker_options: Any,
    ) -> None:
        self.store = store
        self.conns = conns or LocalConnections()
        self.conns.open(CID)
        self.log = StepLogger(io.StringIO(), keep=True)
        self.app = App(store=store, connections=lambda ref: self.conns, runner=ThreadLoops())
        self.worker = TurnWorker(
            answer, policy=policy or StreamPolicy(filler_after_s=None), **worker_options
        )
        self.bus = LocalDispatcher(self.app, log=self.log, **(bus_options or {}))
        offload(self.app, self.bus, worker=self.worker, mode=mode)

    def close(self) -> None:
        self.bus.close()
        self.app.close()

    def send(self, body: str) -> Any:
        from warmline.core.app import Invocation

        return self.app.handle(Message(REF, body), Invocation(log=self.log))

    def setup(self) -> None:
        self.send(SETUP)

    def prompt(self, text: str = "hello", *, last: bool = True) -> None:
        self.send(frame(type="prompt", voicePrompt=text, lang="en-US", last=last))

    def interrupt(self) -> None:
        self.send(frame(type="interrupt", utteranceUntilInterrupt="w0", durationUntilInterruptMs=5))

    def frames(self) -> list[dict[str, Any]]:
        return [f for f in self.conns.sent_json(CID) if f.get("type") == "text"]

    def answer_text(self) -> str:
        """What the caller was sent as answer text (the filler left out)."""
        return "".join(f["token"] for f in self.frames() if not f.get("preemptible"))

    def steps(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.log.records or [] if r.get("step") == name]

    def session(self) -> Any:
        return self.store.get(SID)
