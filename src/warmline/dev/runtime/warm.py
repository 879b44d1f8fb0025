"""A warm invocation without a Task: the emulator's per-message path.

:meth:`warmline.dev.runtime.runtime.Runtime.invoke_soon` starts one when an environment
is idle. The invoke is written at once, the function timeout is a queued timer
(:mod:`warmline.dev.timers`), and the result is booked by the channel's read callback.
Per message that saves a Task, its future and the loop passes between them. Those were the
largest items of the emulator's CPU per echo (bench/emulator_vs_offline.py, cProfile of
the front process). What goes wrong (the environment died, the timeout) is handed to the
same coroutines as in ``Runtime.invoke``, in a task. This class works on the runtime's
internals (``_begin``, ``_complete``, ``_crashed``...): it is that method's other half,
kept in a module of its own for size.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from warmline.dev.runtime.environment import Environment
    from warmline.dev.runtime.runtime import Runtime, _Function
    from warmline.dev.runtime.spec import InvokeResult

__all__ = ["Cancellable", "WarmInvocation", "report_task"]


class Cancellable(Protocol):
    """What :meth:`Runtime.invoke_soon` returns: a Task, or a Task-free invocation."""

    def cancel(self) -> Any:
        """Abandon the invocation."""


def report_task(
    on_result: Callable[[InvokeResult | BaseException], None], task: asyncio.Task[InvokeResult]
) -> None:
    if task.cancelled():
        return
    error = task.exception()
    on_result(error if error is not None else task.result())


class WarmInvocation:
    """One invocation of an idle environment, driven by callbacks (no Task, no future).

    Started by :meth:`Runtime.invoke_soon`. The invoke is written with one ``send`` (the
    rest, if the socket takes only part of it, by a small task); the function timeout is
    a queued timer; the result is booked by the channel's read callback. What goes wrong
    (the environment died, the timeout) is handled by the same coroutines as in
    :meth:`Runtime.invoke`, in a task.
    """

    __slots__ = (
        "_done",
        "_env",
        "_fn",
        "_on_result",
        "_remaining",
        "_request_id",
        "_rt",
        "_started",
        "_tail",
        "_timer",
    )

    def __init__(
        self,
        runtime: Runtime,
        fn: _Function,
        env: Environment,
        request_id: str,
        payload: bytes,
        on_result: Callable[[InvokeResult | BaseException], None],
    ) -> None:
        self._rt = runtime
        self._fn = fn
        self._env = env
        self._request_id = request_id
        self._on_result = on_result
        self._done = False
        self._tail: asyncio.Task[None] | None = None
        runtime._started()
        end = time.monotonic() + fn.spec.timeout_s
        self._started, self._remaining, data = runtime._begin(fn, env, request_id, payload, end)
        channel = env.channel
        channel.on_message = self._message
        self._timer = runtime._timers(fn).call_later(self._timed_out)
        try:
            sent = channel.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the environment is gone: as a crash, when its end is read
            return
        if sent < len(data):
            self._tail = asyncio.get_running_loop().create_task(self._send_rest(data[sent:]))

    async def _send_rest(self, rest: bytes) -> None:
        with contextlib.suppress(OSError):  # a dead environment shows up as a crash
            await self._env.channel.send_bytes(rest)

    def cancel(self) -> None:
        """Abandon it: the environment cannot be reused (as a cancelled :meth:`invoke`)."""
        if self._done:
            return
        self._done = True
        self._timer.cancel()
        if self._env.channel.on_message == self._message:
            self._env.channel.on_message = None
        if self._tail is not None:
            self._tail.cancel()
        self._rt._abandon(self._fn, self._env)
        self._rt._ended()

    def _message(self, item: dict[str, Any] | Exception | None) -> None:
        if self._done:
            return
        self._timer.cancel()
        if isinstance(item, dict) and item.get("t") == "result":
            self._done = True
            rt = self._rt
            try:
                result: InvokeResult | BaseException = rt._complete(
                    self._fn, self._env, self._request_id, item, self._started, None
                )
            except Exception as exc:  # noqa: BLE001 - handed to on_result, as invoke's would be
                result = exc
            rt._ended()
            self._on_result(result)
            return
        rt = self._rt
        self._follow(rt._crashed(self._fn, self._env, self._request_id, self._started, None))

    def _timed_out(self) -> None:
        if self._done:
            return
        self._env.channel.on_message = None
        rt = self._rt
        self._follow(rt._timed_out(self._fn, self._env, self._request_id, self._remaining, None))

    def _follow(self, outcome: Coroutine[Any, Any, InvokeResult]) -> None:
        """Finish through ``outcome`` (a crash or timeout coroutine) in a task."""
        self._done = True
        if self._tail is not None:
            self._tail.cancel()

        async def finish() -> None:
            try:
                result: InvokeResult | BaseException = await outcome
            except Exception as exc:  # noqa: BLE001 - handed to on_result
                result = exc
            finally:
                self._rt._ended()
            self._on_result(result)

        self._tail = asyncio.get_running_loop().create_task(finish())
