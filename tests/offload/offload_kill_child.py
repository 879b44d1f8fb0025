"""A worker process for the SIGKILL test: answers one turn, then hangs mid-stream.

Usage: ``python offload_kill_child.py DB POSTS MARKER PAYLOAD_JSON HANG_AT``. It posts to a
file (one JSON frame per line, written before the post returns), and when the answer
reaches token ``HANG_AT`` it writes ``MARKER`` and blocks until killed.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from warmline.core.app import App, Invocation
from warmline.core.events import WorkerTask
from warmline.errors import ConnectionGoneError
from warmline.log import StepLogger
from warmline.offload.stream import StreamPolicy
from warmline.offload.worker import TurnContext, TurnWorker
from warmline.stores.sqlite import SQLiteStore
from warmline.types import ConnectionInfo

POLICY = StreamPolicy(filler_after_s=None, max_chars=40)


def answer_tokens() -> list[str]:
    return [f"t{i} " for i in range(120)]


class FileConnections:
    """A ConnectionClient that appends every post to a file (survives the process)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def post(self, connection_id: str, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def get(self, connection_id: str) -> ConnectionInfo:
        raise ConnectionGoneError("not supported")

    def delete(self, connection_id: str) -> None:
        raise ConnectionGoneError("not supported")

    def frames(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []


def main() -> None:
    db, posts, marker, payload, hang_at = sys.argv[1:6]

    def answer(turn: TurnContext) -> Iterator[str]:
        for i, token in enumerate(answer_tokens()):
            if i == int(hang_at):
                with open(marker, "w") as fh:
                    fh.write("hung")
                time.sleep(3600)  # stuck: the test kills us here
            yield token

    conns = FileConnections(posts)
    app = App(store=SQLiteStore(db), connections=lambda ref: conns)
    TurnWorker(answer, policy=POLICY).install(app)
    app.handle(WorkerTask(json.loads(payload)), Invocation(log=StepLogger(io.StringIO())))


if __name__ == "__main__":
    main()
