"""The offload app of the Lambda fault tests: router and worker in one function, recording.

Why not ``tests/offload/emulator/offload_emu_app.py``: these tests must know what each worker
run did (a killed run leaves no result behind, a duplicate must be seen to do nothing), so
every run appends a line to ``FAULT_RUNS_PATH`` when it starts answering and when it ends.

Environment:
    FAULT_RUNS_PATH: the JSON-lines file of worker runs.
    FAULT_TOKENS: tokens in an answer (``<prompt> t0 t1 ...``: the prompt tells turns apart).
    FAULT_GAP_S: pause before each token.
    FAULT_PAUSE_AT / FAULT_PAUSE_S: a first run (nothing heard yet) pauses this long before
        token ``FAULT_PAUSE_AT``, so a kill timed into the pause lands mid-stream, after a
        post and its progress write, never between them.
    FAULT_LEASE_S: the turn claim's lease (short, so a retry can take a killed run's turn).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from warmline import App, lambda_handler
from warmline.core.app import Context
from warmline.offload import LambdaInvokeDispatcher, StreamPolicy, TurnContext, TurnWorker, offload


def _record(entry: dict[str, Any]) -> None:
    """Append one run's line (O_APPEND: concurrent environments do not interleave lines)."""
    line = json.dumps({"pid": os.getpid(), **entry}) + "\n"
    with open(os.environ["FAULT_RUNS_PATH"], "a", encoding="utf-8") as fh:
        fh.write(line)


async def answer(turn: TurnContext) -> AsyncIterator[str]:
    """``<prompt> `` then ``t0 `` .. ``tN-1 ``, at a steady pace (see the module docstring)."""
    _record({"event": "start", "turn": turn.turn, "resumedFrom": turn.resumed_from})
    count = int(os.environ.get("FAULT_TOKENS", "10"))
    gap = float(os.environ.get("FAULT_GAP_S", "0.01"))
    pause_at = int(os.environ.get("FAULT_PAUSE_AT", "-1"))
    pause_s = float(os.environ.get("FAULT_PAUSE_S", "0"))
    yield f"<{turn.prompt}> "
    for i in range(count):
        if i == pause_at and turn.resumed_from == 0:
            await asyncio.sleep(pause_s)
        await asyncio.sleep(gap)
        yield f"t{i} "


worker = TurnWorker(
    answer,
    policy=StreamPolicy(filler_after_s=None, max_delay_s=0.02),
    lease_s=float(os.environ.get("FAULT_LEASE_S", "30")),
)


def work(ctx: Context) -> Any:
    """The worker handler: the TurnWorker's, with its outcome recorded."""
    try:
        result = worker.handle(ctx)
    except Exception as exc:
        _record({"event": "end", "status": "raised", "error": type(exc).__name__})
        raise
    _record({"event": "end", **result})
    return result


app = App(allow_unsigned=True)  # a test app: its handshakes are unsigned
offload(app, LambdaInvokeDispatcher("worker"), worker=worker, install_worker=False)
app.worker(work)
handler = lambda_handler(app)
