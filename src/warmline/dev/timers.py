"""Timers of one fixed delay, kept in a queue instead of the event loop's heap.

Every message the emulator routes arms two timers that almost never fire: API Gateway's
29 s integration timeout and the function's own timeout. ``loop.call_later`` puts each in
the loop's heap, and a heap push or pop compares ``TimerHandle`` objects with a Python
``__lt__`` (about a dozen calls per message with a hundred in flight), and cancelled
handles are swept out of it again later. With a timer pair per message, that is a visible
share of the emulator's CPU per echo (a cProfile of the front process under
bench/emulator_vs_offline.py shows it).

Timers that share a delay expire in the order they were armed, so a FIFO queue holds them
in deadline order for free: arming appends, cancelling sets a flag, and only the oldest
live timer has a handle in the loop. When it fires, every timer that is due runs and the
handle is set again for the next live one. Cancelled entries are dropped as they reach the
head, or all at once when they outnumber the live ones (so a long run keeps no garbage).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["FixedDelayTimers", "Timer"]

#: Entries due this close to "now" fire in the same pass (the loop's own tolerance is the
#: clock's resolution; a microsecond is far below any timeout the emulator arms).
_SLACK_S = 1e-6
#: Compact the queue when it holds this many more cancelled entries than live ones.
_COMPACT_MIN = 256


def _nothing(*_args: Any) -> None:
    """A fired or cancelled timer's callback."""


class Timer:
    """One armed timer; :meth:`cancel` it like an ``asyncio.TimerHandle``."""

    __slots__ = ("_args", "_callback", "_owner", "cancelled", "when")

    def __init__(
        self,
        owner: FixedDelayTimers,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        self._owner = owner
        self.when = when
        self._callback = callback
        self._args = args
        #: cancelled, or already fired.
        self.cancelled = False

    def cancel(self) -> None:
        """Stop it from firing (idempotent; no effect once it has fired).

        Drops the callback and its arguments at once, as ``TimerHandle.cancel`` does: a
        callback is usually a method of the object that holds this timer, and the cycle
        would otherwise keep both (and all they hold) alive until the garbage collector
        ran: under load, thousands of objects per collection and pauses of milliseconds in
        the emulator.
        """
        if not self.cancelled:
            self._retire()
            self._owner._cancelled_one()

    def _retire(self) -> tuple[Callable[..., object], tuple[Any, ...]]:
        """Mark it done and let go of its callback; returns what it held."""
        held = self._callback, self._args
        self.cancelled = True
        self._callback, self._args = _nothing, ()
        return held


class FixedDelayTimers:
    """``call_later(delay, ...)`` for one fixed ``delay``, on the running loop.

    Args:
        loop: the event loop the callbacks run on.
        delay: seconds from arming to firing, the same for every timer of this queue.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, not {delay}")
        self.delay = delay
        self._loop = loop
        self._queue: deque[Timer] = deque()
        self._live = 0
        self._handle: asyncio.TimerHandle | None = None
        self._firing = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the timers run on."""
        return self._loop

    def __len__(self) -> int:
        """Timers armed and neither fired nor cancelled."""
        return self._live

    def call_later(self, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` after :attr:`delay` seconds, unless cancelled first."""
        when = self._loop.time() + self.delay
        timer = Timer(self, when, callback, args)
        self._queue.append(timer)
        self._live += 1
        if self._handle is None and not self._firing:  # _fire arms for what it leaves
            self._handle = self._loop.call_at(when, self._fire)
        return timer

    def close(self) -> None:
        """Cancel every timer (the loop is going away)."""
        for timer in self._queue:
            timer._retire()
        self._queue.clear()
        self._live = 0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _cancelled_one(self) -> None:
        self._live -= 1
        queue = self._queue
        if len(queue) > 2 * self._live + _COMPACT_MIN:
            self._queue = deque(timer for timer in queue if not timer.cancelled)
            if not self._queue and self._handle is not None:
                self._handle.cancel()
                self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._firing = True
        try:
            self._run_due()
        finally:
            self._firing = False
        queue = self._queue
        while queue and queue[0].cancelled:
            queue.popleft()
        if queue:
            self._handle = self._loop.call_at(queue[0].when, self._fire)

    def _run_due(self) -> None:
        due = self._loop.time() + _SLACK_S
        while self._queue:
            timer = self._queue[0]
            if timer.cancelled:
                self._queue.popleft()
                continue
            if timer.when > due:
                return
            self._queue.popleft()
            self._live -= 1
            callback, args = timer._retire()
            try:
                callback(*args)
            except Exception as exc:  # reported like a failing loop callback
                self._loop.call_exception_handler(
                    {"message": "Exception in timer callback", "exception": exc}
                )
