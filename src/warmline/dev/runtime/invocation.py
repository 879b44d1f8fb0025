"""One invocation on an environment: START, the invoke, then END/REPORT or a kill.

Lambda's rules for an invocation (docs/protocols.md §3.1):

- The function timeout is enforced by SIGKILL of the environment's process group: nothing
  the handler does afterwards reaches the logs or the caller, and the next invoke is cold.
- A crash (``os._exit``, a signal) discards only that environment. A handler exception is
  an ordinary result; the environment stays warm.
- Billing: the INIT phase of on-demand functions is billed, so a cold REPORT's Billed
  Duration covers init + duration (a restored one bills the duration only).

Two drivers share the booking functions (:func:`begin`, :func:`complete`, :func:`crashed`,
:func:`timed_out`). :func:`run` is a coroutine, for cold starts, faults and
:meth:`Runtime.invoke`. :class:`WarmInvocation` is the emulator's per-message path, for an
idle environment: the invoke is written at once, the function timeout is a queued timer
(:mod:`warmline.dev.timers`) and the result is booked by the channel's read callback, so a
warm message costs no Task, no future and no loop passes between them. Only what goes wrong
(the environment died, the timeout) finishes in a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from warmline.dev.runtime import logs
from warmline.dev.runtime.spec import InvokeResult, InvokeStatus
from warmline.dev.runtime.wire import FrameError, frame

if TYPE_CHECKING:
    from warmline.dev.runtime.environment import Environment
    from warmline.dev.runtime.pool import FunctionPool

__all__ = [
    "KILL_GRACE_S",
    "Cancellable",
    "InFlight",
    "WarmInvocation",
    "begin",
    "complete",
    "crashed",
    "report_task",
    "run",
    "timed_out",
]

#: How long to wait for a killed process's remaining output and exit status.
KILL_GRACE_S = 1.0


class Cancellable(Protocol):
    """What :meth:`Runtime.invoke_soon` returns: a Task, or a Task-free invocation."""

    def cancel(self) -> Any:
        """Abandon the invocation."""


class InFlight:
    """How many invocations are running; :attr:`drained` is set whenever none is."""

    __slots__ = ("count", "drained")

    def __init__(self) -> None:
        self.count = 0
        self.drained: asyncio.Event | None = None

    def started(self) -> None:
        """One more invocation runs."""
        self.count += 1
        if self.drained is None:
            self.drained = asyncio.Event()
        self.drained.clear()

    def ended(self) -> None:
        """One invocation finished (returned, failed or was abandoned)."""
        self.count -= 1
        if self.count == 0 and self.drained is not None:
            self.drained.set()


def report_task(
    on_result: Callable[[InvokeResult | BaseException], None], task: asyncio.Task[InvokeResult]
) -> None:
    """Hand a finished invocation task's result or exception to ``on_result``."""
    if task.cancelled():
        return
    error = task.exception()
    on_result(error if error is not None else task.result())


def begin(
    pool: FunctionPool, env: Environment, request_id: str, payload: bytes, end: float
) -> tuple[float, float, bytes]:
    """Mark ``env`` busy and log START; ``(now, seconds left, framed invoke body)``."""
    env.state = "busy"
    env.invocations += 1
    now = time.monotonic()
    remaining = max(end - now, 0.0)
    deadline_ms = int((time.time() + remaining) * 1000)
    pool.emit(env.id, logs.start_line(request_id))
    return now, remaining, frame(payload[:-1] + b',"deadline_ms":%d}' % deadline_ms)


async def run(
    pool: FunctionPool,
    env: Environment,
    request_id: str,
    payload: bytes,
    *,
    cold: bool,
    deadline: float | None,
    kill_s: float | None = None,
) -> InvokeResult:
    """Run one invocation on ``env`` (taken from ``pool``, busy) and book its end.

    Args:
        cold: ``env`` was just created; the result carries its init time.
        deadline: the monotonic time the invocation must end by (a retried init used
            part of the timeout); None: the whole function timeout, as a queued timer.
        kill_s: the ``lambda.kill`` fault: SIGKILL the environment this long in.
    """
    spec = pool.spec
    end = deadline if deadline is not None else time.monotonic() + spec.timeout_s
    now, remaining, data = begin(pool, env, request_id, payload, end)
    init_ms = env.init_ms if cold else None
    message: dict[str, Any] | None
    killer = None
    if kill_s is not None:  # the lambda.kill fault: SIGKILL mid-invocation
        killer = asyncio.get_running_loop().call_later(kill_s, env.kill)
    try:
        await env.channel.send_bytes(data)
        if deadline is None:  # the whole timeout, as every warm invocation: queued
            message = await env.channel.recv(timers=pool.timeouts())
        else:
            message = await env.channel.recv(remaining)
    except TimeoutError:
        return await timed_out(pool, env, request_id, remaining, init_ms)
    except (OSError, FrameError, ValueError):
        message = None
    except BaseException:  # cancelled mid-invocation: its environment cannot be reused
        pool.abandon(env)
        raise
    finally:
        if killer is not None:
            killer.cancel()
    if message is None or message.get("t") != "result":
        return await crashed(pool, env, request_id, now, init_ms)
    return complete(pool, env, request_id, message, now, init_ms)


def complete(
    pool: FunctionPool,
    env: Environment,
    request_id: str,
    message: Mapping[str, Any],
    started: float,
    init_ms: float | None,
) -> InvokeResult:
    """Book a returned invocation: its output, END and REPORT; ``env`` idle again."""
    env.read_output()
    duration = float(message.get("duration_ms", (time.monotonic() - started) * 1000))
    env.max_memory_mb = max(env.max_memory_mb, math.ceil(message.get("maxrss_kb", 0) / 1024))
    billed = _end_and_report(pool, env, request_id, duration, env.max_memory_mb, init_ms)
    env.last_used_at = time.time()
    if env.retired:
        pool.discard(env)
        pool.emit(env.id, "[warmline] environment recycled")
        asyncio.get_running_loop().call_soon(env.close)
    elif env.state == "busy" and not pool.closed:
        env.state = "idle"
        pool.idle.append(env)
        env.idle_since = time.monotonic()
        if env.idle_timer is None:  # else the running timer re-arms itself (pool.reclaim)
            loop = asyncio.get_running_loop()
            env.idle_timer = loop.call_later(pool.idle_reclaim_s, pool.reclaim, env)
        capacity = pool.capacity
        if capacity is not None and capacity.waiting:  # invocations wait for room
            capacity.wake()
    ok = bool(message.get("ok"))
    return InvokeResult(
        request_id=request_id,
        status="ok" if ok else "error",
        payload=message.get("payload") if ok else None,
        error=None if ok else dict(message.get("error") or {}),
        cold=init_ms is not None,
        init_ms=init_ms,
        duration_ms=duration,
        billed_ms=billed,
        environment_id=env.id,
    )


async def timed_out(
    pool: FunctionPool,
    env: Environment,
    request_id: str,
    limit_s: float,
    init_ms: float | None,
) -> InvokeResult:
    """The function timeout passed: kill ``env``, log ``Task timed out``, report it."""
    memory = env.peak_memory_mb()
    pool.discard(env)
    await env.drain_output(KILL_GRACE_S)
    env.close()
    timeout_s = pool.spec.timeout_s
    message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
    return _ended_badly(
        pool,
        env,
        request_id,
        duration=limit_s * 1000,
        memory=memory,
        init_ms=init_ms,
        lines=[logs.timed_out_line(request_id, timeout_s)],
        status="timeout",
        error={"errorType": "Sandbox.Timedout", "errorMessage": message},
    )


async def crashed(
    pool: FunctionPool,
    env: Environment,
    request_id: str,
    started: float,
    init_ms: float | None,
) -> InvokeResult:
    """``env`` died or broke the wire mid-invocation: discard it, report the exit."""
    memory = env.peak_memory_mb()
    pool.discard(env)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(env.exited), KILL_GRACE_S)
    code = env.exited.result() if env.exited.done() else None
    await env.drain_output(KILL_GRACE_S)
    env.close()
    message = f"RequestId: {request_id} Error: Runtime exited with error: "
    message += logs.exit_description(code)
    return _ended_badly(
        pool,
        env,
        request_id,
        duration=(time.monotonic() - started) * 1000,
        memory=memory,
        init_ms=init_ms,
        lines=[message, "Runtime.ExitError"],
        status="crash",
        error={"errorType": "Runtime.ExitError", "errorMessage": message},
    )


def _end_and_report(
    pool: FunctionPool,
    env: Environment,
    request_id: str,
    duration: float,
    max_memory_mb: int,
    init_ms: float | None,
    *,
    status: str | None = None,
    error_type: str | None = None,
) -> int:
    """Log END and REPORT of one invocation; its billed ms (a cold one's INIT included,
    a SnapStart restore's not: it is reported as Restore Duration)."""
    restore_ms, init_only = (init_ms, None) if env.restored else (None, init_ms)
    billed = logs.billed_ms(duration + (init_only or 0.0))
    pool.emit(env.id, logs.end_line(request_id))
    pool.emit(
        env.id,
        logs.report_line(
            request_id,
            duration_ms=duration,
            billed=billed,
            memory_mb=pool.spec.memory_mb,
            max_memory_mb=max_memory_mb,
            init_ms=init_only,
            restore_ms=restore_ms,
            status=status,
            error_type=error_type,
        ),
    )
    return billed


def _ended_badly(
    pool: FunctionPool,
    env: Environment,
    request_id: str,
    *,
    duration: float,
    memory: int,
    init_ms: float | None,
    lines: list[str],
    status: InvokeStatus,
    error: dict[str, Any],
) -> InvokeResult:
    """Log ``lines``, END and REPORT for an invocation that killed its environment."""
    for line in lines:
        pool.emit(env.id, line)
    crashed = status == "crash"
    billed = _end_and_report(
        pool,
        env,
        request_id,
        duration,
        memory,
        init_ms,
        status="error" if crashed else "timeout",
        error_type="Runtime.ExitError" if crashed else None,
    )
    return InvokeResult(
        request_id=request_id,
        status=status,
        payload=None,
        error=error,
        cold=init_ms is not None,
        init_ms=init_ms,
        duration_ms=duration,
        billed_ms=billed,
        environment_id=env.id,
    )


class WarmInvocation:
    """One invocation of an idle environment, driven by callbacks (no Task, no future).

    Started by :meth:`Runtime.invoke_soon`. The invoke is written with one ``send`` (the
    rest, if the socket takes only part of it, by a small task); the function timeout is
    a queued timer; the result is booked by the channel's read callback. What goes wrong
    (the environment died, the timeout) is handled by the same coroutines as in
    :func:`run`, in a task.

    Args:
        inflight: the runtime's count of running invocations.
        pool: the function's environments; ``env`` was just taken from its idle stack.
        env: the environment.
        request_id: the invocation's id.
        payload: the serialised invoke body (without its deadline).
        on_result: gets the result, or the exception a crash or timeout raised.
    """

    __slots__ = (
        "_done",
        "_env",
        "_inflight",
        "_on_result",
        "_pool",
        "_remaining",
        "_request_id",
        "_started",
        "_tail",
        "_timer",
    )

    def __init__(
        self,
        inflight: InFlight,
        pool: FunctionPool,
        env: Environment,
        request_id: str,
        payload: bytes,
        on_result: Callable[[InvokeResult | BaseException], None],
    ) -> None:
        self._inflight = inflight
        self._pool = pool
        self._env = env
        self._request_id = request_id
        self._on_result = on_result
        self._done = False
        self._tail: asyncio.Task[None] | None = None
        inflight.started()
        end = time.monotonic() + pool.spec.timeout_s
        self._started, self._remaining, data = begin(pool, env, request_id, payload, end)
        channel = env.channel
        channel.on_message = self._message
        self._timer = pool.timeouts().call_later(self._timed_out)
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
        """Abandon it: the environment cannot be reused (as a cancelled :func:`run`)."""
        if self._done:
            return
        self._done = True
        self._timer.cancel()
        if self._env.channel.on_message == self._message:
            self._env.channel.on_message = None
        if self._tail is not None:
            self._tail.cancel()
        self._pool.abandon(self._env)
        self._inflight.ended()

    def _message(self, item: dict[str, Any] | Exception | None) -> None:
        if self._done:
            return
        self._timer.cancel()
        if isinstance(item, dict) and item.get("t") == "result":
            self._done = True
            try:
                result: InvokeResult | BaseException = complete(
                    self._pool, self._env, self._request_id, item, self._started, None
                )
            except Exception as exc:  # handed to on_result, as run's would be
                result = exc
            self._inflight.ended()
            self._on_result(result)
            return
        self._follow(crashed(self._pool, self._env, self._request_id, self._started, None))

    def _timed_out(self) -> None:
        if self._done:
            return
        self._env.channel.on_message = None
        self._follow(timed_out(self._pool, self._env, self._request_id, self._remaining, None))

    def _follow(self, outcome: Coroutine[Any, Any, InvokeResult]) -> None:
        """Finish through ``outcome`` (a crash or timeout coroutine) in a task."""
        self._done = True
        if self._tail is not None:
            self._tail.cancel()

        async def finish() -> None:
            try:
                result: InvokeResult | BaseException = await outcome
            except Exception as exc:  # handed to on_result
                result = exc
            finally:
                self._inflight.ended()
            self._on_result(result)

        self._tail = asyncio.get_running_loop().create_task(finish())
