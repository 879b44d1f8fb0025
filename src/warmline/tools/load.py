"""``warmline load``: many concurrent scripted calls; counts what a caller would notice.

Each call is a full ConversationRelay call made as ``warmline call`` makes it
(:func:`warmline.tools.call.place_call` from a TwiML webhook, or
:func:`~warmline.tools.call.run_call` on a bare socket): the complete webhook, the signed
handshake, ``setup``, prompts, every frame judged as Twilio judges it, the ``action``
request, and a reconnect when the ``action`` connects the call again. Calls start at a
target rate (ramp-up) up to a concurrency cap, all bounded in count and time, loopback
only. Per call and turn it counts:

- **answered**: a complete answer arrived (a ``text`` frame with ``last: true``, or an
  answer of ``play`` / ``sendDigits`` frames only);
- **apologised**: the turn ended with the App's spoken store apology
  (:data:`warmline.core.app.STORE_APOLOGY`, "please say that again"): complete frames, but
  no answer, so counted apart from both answered and lost;
- **lost**: a prompt with no complete answer before the turn timeout — dead air;
- **doubled**: a second complete answer for the same prompt (a frame with ``last: true``
  that arrived after the turn's answer was complete);
- **reconnects**: sessions the ``action`` connected again (a deploy draining its calls);
  a prompt whose answer the session's end cut off is lost;
- **invalid frames**: frames Twilio would refuse (error 64107), and the 1007 closes;
- errors by kind (connect refused with a status, timeouts, exceptions);
- prompt -> first token latency (p50/p95/p99), measured from before the prompt's send.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from warmline.tools.call import CallOptions, CallResult, Step, place_call, run_call
from warmline.tools.report import percentile as _pct
from warmline.tools.twilio_side import RelayTwiml

__all__ = ["LoadResult", "run_load"]

DEFAULT_QUESTIONS = (
    "What are your support hours?",
    "How much is the Spark 300 plan?",
    "How do I reset my router?",
    "Do you have a student discount?",
    "How do I pay my bill?",
)


@dataclass
class LoadResult:
    """What the load run saw."""

    calls: int = 0
    completed: int = 0
    turns_sent: int = 0
    answered: int = 0
    apologised: int = 0
    lost: int = 0
    doubled: int = 0
    reconnects: int = 0
    invalid_frames: int = 0
    #: every valid frame the app sent, by type (``text``, ``play``, ``sendDigits``...).
    frames: Counter[str] = field(default_factory=Counter)
    first_token_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        firsts = self.first_token_ms
        return {
            "calls": self.calls,
            "completed": self.completed,
            "turnsSent": self.turns_sent,
            "answered": self.answered,
            "apologised": self.apologised,
            "lost": self.lost,
            "doubled": self.doubled,
            "reconnects": self.reconnects,
            "invalidFrames": self.invalid_frames,
            "frames": dict(self.frames),
            "firstTokenMs": {
                "p50": _pct(firsts, 50),
                "p95": _pct(firsts, 95),
                "p99": _pct(firsts, 99),
            },
            "turnsPerSecond": round(self.answered / self.elapsed_s, 1) if self.elapsed_s else 0,
            "errors": dict(self.errors),
            "elapsedS": round(self.elapsed_s, 2),
        }

    def add(self, result: CallResult, turns: int) -> None:
        self.turns_sent += sum(1 for turn in result.turns if turn.sent)
        self.reconnects += result.reconnects
        self.invalid_frames += len(result.invalid)
        for frame in [*result.greeting_frames, *(f for t in result.turns for f in t.frames)]:
            self.frames[str(frame.get("type"))] += 1
        if result.rejected is not None:
            self.errors[f"connect rejected: HTTP {result.rejected}"] += 1
            if not result.turns:
                self.lost += turns
                return
        if result.closed is not None:
            self.errors[f"connection closed by the server: {result.closed}"] += 1
        complete = True
        for turn in result.turns:
            if not turn.sent:
                continue
            if turn.apologised:
                self.apologised += 1
                complete = False
            elif turn.answered:
                self.answered += 1
                if turn.first_token_ms is not None:
                    self.first_token_ms.append(turn.first_token_ms)
            else:
                self.lost += 1
                complete = False
        self.lost += max(0, turns - sum(1 for turn in result.turns if turn.sent))
        self.doubled += sum(
            1
            for frame in result.other_frames
            if frame.get("late") and frame.get("type") == "text" and frame.get("last")
        )
        if complete and len(result.turns) == turns:
            self.completed += 1


async def run_load(
    ws_url: str | None = None,
    *,
    twiml_url: str | None = None,
    welcome_greeting: str | None = None,
    calls: int = 200,
    concurrency: int = 200,
    turns: int = 5,
    rate: float = 50.0,
    questions: Sequence[str] = DEFAULT_QUESTIONS,
    auth_token: str | None = None,
    turn_timeout_s: float = 30.0,
    deadline_s: float = 600.0,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Run ``calls`` calls of ``turns`` prompts each, at most ``concurrency`` at a time.

    Args:
        ws_url: call this socket directly (no webhooks, no reconnects).
        twiml_url: or place each call through this incoming-call webhook, as Twilio does.
        welcome_greeting: with ``ws_url``, the TwiML's greeting (the caller does not
            wait for the app to greet).
        rate: calls started per second during ramp-up.
        deadline_s: the whole run is cut after this (calls still running count as lost).
    """
    if (ws_url is None) == (twiml_url is None):
        raise ValueError("run_load takes ws_url or twiml_url")
    target = ws_url or ""
    result = LoadResult(calls=calls)
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def one(index: int) -> None:
        await asyncio.sleep(index / rate if rate > 0 else 0)
        async with gate:
            steps = [Step("say", questions[(index + t) % len(questions)]) for t in range(turns)]
            options = CallOptions(auth_token=auth_token, turn_timeout_s=turn_timeout_s)
            try:
                if twiml_url is not None:
                    call = await place_call(twiml_url, steps, options=options)
                else:
                    relay = RelayTwiml.for_socket(target, welcome_greeting=welcome_greeting)
                    call = await run_call(target, steps, relay=relay, options=options)
            except (TimeoutError, OSError) as exc:
                result.errors[type(exc).__name__] += 1
                result.lost += turns
            except Exception as exc:  # a load test reports, never stops
                result.errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
                result.lost += turns
            else:
                result.add(call, turns)
        if progress is not None:
            progress(result)

    tasks = [asyncio.create_task(one(i)) for i in range(calls)]
    done, pending = await asyncio.wait(tasks, timeout=deadline_s)
    for task in pending:
        task.cancel()
    if pending:
        result.errors["cut by the run deadline"] += len(pending)
        result.lost += turns * len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    result.elapsed_s = time.monotonic() - started
    return result


def progress_bar(total: int) -> Callable[[LoadResult], None]:
    """A one-line progress bar on stderr."""
    seen = [0]

    def show(result: LoadResult) -> None:
        seen[0] += 1
        width = 30
        filled = int(width * seen[0] / max(total, 1))
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {seen[0]}/{total} calls, "
            f"{result.answered} answered, {result.apologised} apologised, {result.lost} lost, "
            f"{result.reconnects} reconnects"
        )
        if seen[0] == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
