"""The app of the emulator test: one function serves as router and worker.

``WARMLINE_OFFLOAD_PROMPT`` (inline/offload) picks the mode; the answer takes
``ANSWER_S`` seconds in ``ANSWER_TOKENS`` tokens; sessions live in ``WARMLINE_SQLITE_PATH``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from warmline import App, lambda_handler
from warmline.offload import LambdaInvokeDispatcher, StreamPolicy, TurnContext, TurnWorker, offload


async def answer(turn: TurnContext) -> AsyncIterator[str]:
    count = int(os.environ["ANSWER_TOKENS"])
    gap = float(os.environ["ANSWER_S"]) / count
    for i in range(count):
        await asyncio.sleep(gap)
        yield f"t{i} "


app = App(allow_unsigned=True)  # a test app: its handshakes are unsigned
offload(
    app,
    LambdaInvokeDispatcher("worker"),
    worker=TurnWorker(answer, policy=StreamPolicy(filler_after_s=None, max_delay_s=0.05)),
)
handler = lambda_handler(app)
