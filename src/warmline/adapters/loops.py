"""Runners: how the adapters run a handler's coroutines for the synchronous App.

:class:`ThreadLoops` keeps one event loop per thread for the life of the environment:
Lambda runs one thread, the ASGI adapter runs ``App.handle`` in worker threads, and a
loop cannot run in two threads at once. Keeping the loop keeps what is bound to it (an
LLM client's connection pool) alive between invocations.

:class:`FreshLoop` runs each coroutine on a new loop (``asyncio.run``): for threads that
live for one request, such as the Connect adapter's answer threads, where a kept loop
would never be closed.

``asyncio`` (~30 ms to import) is imported at the first coroutine, never before.
"""

from __future__ import annotations

from _thread import get_ident  # the thread id without importing threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from asyncio import AbstractEventLoop
    from collections.abc import Awaitable
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["FreshLoop", "ThreadLoops"]


class ThreadLoops:
    """A :class:`~warmline.core.ports.Runner` with one event loop per thread, kept."""

    __slots__ = ("_loops",)

    def __init__(self) -> None:
        #: thread id -> its loop, for each thread that ran a coroutine.
        self._loops: dict[int, AbstractEventLoop] = {}

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on this thread's loop (created on first need)."""
        loop = self._loops.get(get_ident())
        if loop is None:
            import asyncio

            loop = self._loops[get_ident()] = asyncio.new_event_loop()
        return loop.run_until_complete(awaitable)

    def close(self) -> None:
        """Close every loop made (once no thread is running one)."""
        loops, self._loops = self._loops, {}
        for loop in loops.values():
            loop.close()


class FreshLoop:
    """A :class:`~warmline.core.ports.Runner` that runs each coroutine on a new loop."""

    __slots__ = ()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` with ``asyncio.run`` (the loop is closed after)."""
        import asyncio

        async def wrapped() -> T:
            return await awaitable

        return asyncio.run(wrapped())

    def close(self) -> None:
        """Nothing is kept."""
