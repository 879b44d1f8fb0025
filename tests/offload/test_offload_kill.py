"""A worker process killed with SIGKILL mid-stream; the retry finishes the turn, no repeats."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from offload_kill_child import POLICY, FileConnections, answer_tokens

from warmline.core.app import App, Invocation
from warmline.core.events import ConnectionRef, Message, WorkerTask
from warmline.log import StepLogger
from warmline.offload.claims import TurnBusyError
from warmline.offload.payload import TurnPayload
from warmline.offload.worker import TurnWorker
from warmline.stores.sqlite import SQLiteStore

CHILD = Path(__file__).with_name("offload_kill_child.py")
REF = ConnectionRef("C1=", "abc.example.com", "prod")


class Capture:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def dispatch(self, payload: dict[str, Any]) -> str:
        self.payloads.append(payload)
        return str(len(self.payloads))


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError("worker never reached the hang point")
        time.sleep(0.01)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_worker_killed_mid_stream_then_retried(tmp_path: Path) -> None:
    from warmline.offload.route import offload

    db = tmp_path / "sessions.sqlite3"
    posts = tmp_path / "posts.jsonl"
    marker = tmp_path / "hung"
    store = SQLiteStore(db)
    conns = FileConnections(str(posts))
    log = StepLogger(io.StringIO())
    router = App(store=store, connections=lambda ref: conns)
    capture = Capture()
    offload(router, capture, worker=None, mode="offload")
    router.handle(
        Message(REF, '{"type":"setup","sessionId":"VX9","callSid":"CA9"}'), Invocation(log=log)
    )
    router.handle(
        Message(REF, '{"type":"prompt","voicePrompt":"hi","lang":"en-US","last":true}'),
        Invocation(log=log),
    )
    (payload,) = capture.payloads
    assert TurnPayload.from_dict(payload).turn == 1

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(posts), str(marker), _json(payload), "70"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    heard_before = "".join(f["token"] for f in conns.frames())
    full = "".join(answer_tokens())
    assert heard_before and full.startswith(heard_before) and heard_before != full

    retry_app = App(store=store, connections=lambda ref: conns)
    later = [time.time()]
    TurnWorker(lambda t: iter(answer_tokens()), policy=POLICY, wall=lambda: later[0]).install(
        retry_app
    )
    task = WorkerTask(payload, delivery="invoke", attempt=2)
    with pytest.raises(TurnBusyError):  # the dead worker's lease has not run out yet
        retry_app.handle(task, Invocation(log=log))
    later[0] += 31  # Lambda's first async retry comes a minute later (docs/protocols.md §3.4)
    result = retry_app.handle(task, Invocation(log=log))
    assert result["status"] == "done"
    frames = conns.frames()
    assert "".join(f["token"] for f in frames) == full  # complete, nothing heard twice
    assert [f["last"] for f in frames].count(True) == 1
    retry_app.close()
    router.close()
    store.close()


def _json(payload: dict[str, Any]) -> str:
    import json

    return json.dumps(payload)
