"""One function's execution environments: the idle stack, capacity, and taking one out.

AWS Lambda's scaling rules (docs/protocols.md §3.1, §3.2) as far as they concern environments
that exist:

1. One invocation per environment at a time. An invoke takes the most recently used idle
   environment (:attr:`FunctionPool.idle` is a stack); if none is idle the runtime creates
   one, unless ``reserved_concurrency`` environments already exist (:meth:`at_capacity`).
2. An environment that has already returned is about to be idle: :meth:`finishing` gives
   it that moment instead of scaling out (a cold start AWS would not make).
3. A timed-out or crashed environment is discarded (:meth:`discard`); the next invoke of
   that slot is cold. Idle environments are reclaimed after ``idle_reclaim_s``
   (:meth:`reclaim`, §3.2: ~10 min measured).

How environments are created is :mod:`warmline.dev.runtime.coldstart`; how one invocation
runs on an environment taken from here is :mod:`warmline.dev.runtime.invocation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from warmline.dev.runtime import logs
from warmline.dev.timers import FixedDelayTimers

if TYPE_CHECKING:
    from warmline.dev.runtime.capacity import Capacity
    from warmline.dev.runtime.environment import Environment
    from warmline.dev.runtime.logs import LogSink
    from warmline.dev.runtime.spec import FunctionSpec
    from warmline.dev.runtime.templates import Template

__all__ = ["BOOKING_PASSES", "FunctionPool"]

#: Loop passes an environment that has returned gets to be booked idle (result, output,
#: END/REPORT) before an invocation scales out instead (see :meth:`FunctionPool.finishing`).
BOOKING_PASSES = 4


class FunctionPool:
    """A function's configuration and its environments.

    Args:
        spec: the function.
        sink: where its log lines go.
        idle_reclaim_s: an environment idle this long is killed.

    Attributes:
        envs: every live environment, by id.
        idle: the idle ones, most recently used last.
        creating: environment slots reserved by inits in progress (they count against
            ``reserved_concurrency`` before the environment exists).
        closed: set when the runtime closes; a returning environment is then not reused.
        template: the snapstart template environments are forked from, once made.
    """

    __slots__ = (
        "_timeouts",
        "capacity",
        "closed",
        "creating",
        "envs",
        "idle",
        "idle_reclaim_s",
        "name",
        "sink",
        "spec",
        "template",
        "template_lock",
    )

    def __init__(self, spec: FunctionSpec, sink: LogSink, idle_reclaim_s: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.sink = sink
        self.idle_reclaim_s = idle_reclaim_s
        self.closed = False
        #: the function timeouts of warm invocations (made on the first one, on its loop).
        self._timeouts: FixedDelayTimers | None = None
        self.envs: dict[str, Environment] = {}
        self.idle: list[Environment] = []
        self.creating = 0
        self.template: Template | None = None
        self.template_lock: asyncio.Lock | None = None
        #: the account quota and local memory budget shared by every function (woken
        #: whenever an environment is freed).
        self.capacity: Capacity | None = None

    def at_capacity(self) -> bool:
        """Whether ``reserved_concurrency`` environments exist or are being created."""
        cap = self.spec.reserved_concurrency
        return cap is not None and len(self.envs) + self.creating >= cap

    def emit(self, env_id: str, line: str) -> None:
        """One log line of environment ``env_id``."""
        self.sink.emit(self.name, env_id, line)

    def timeouts(self) -> FixedDelayTimers:
        """The queue of this function's timeouts on the running loop."""
        timers = self._timeouts
        loop = asyncio.get_running_loop()
        if timers is None or timers.loop is not loop:
            timers = self._timeouts = FixedDelayTimers(loop, self.spec.timeout_s)
        return timers

    def close_timeouts(self) -> None:
        """Drop the queued timeouts (the runtime is closing)."""
        if self._timeouts is not None:
            self._timeouts.close()

    async def finishing(self) -> bool:
        """Give an environment that has already returned a moment to become idle.

        On AWS an environment is free once its handler returned. Here its result may sit in
        our socket buffer, or be read but not yet booked (the invocation's coroutine wakes
        a loop pass later), when the next message is routed: scaling out then would be a
        cold start AWS would not do, caused by the order this loop happens to serve
        sockets in. So: read what busy environments have written, and if one has returned,
        let the loop pass a few times for it to be booked idle.

        Returns:
            Whether an environment is idle now.
        """
        busy = [env for env in self.envs.values() if env.state == "busy"]
        if not busy:
            return False
        if not any(env.channel.unconsumed for env in busy):
            import select

            poller = select.poll()
            for env in busy:
                poller.register(env.channel.fd, select.POLLIN)
            readable = {fd for fd, _ in poller.poll(0)}
            for env in busy:
                if env.channel.fd in readable:
                    env.channel.read_now()  # a warm invocation's result is booked in it
            if self.idle:
                return True
            if not any(env.channel.unconsumed for env in busy):
                return False
        for _ in range(BOOKING_PASSES):
            await asyncio.sleep(0)
            if self.idle:
                return True
        return False

    def discard(self, env: Environment) -> None:
        """Take ``env`` out of service and kill it (its resources close later)."""
        self.envs.pop(env.id, None)
        with contextlib.suppress(ValueError):
            self.idle.remove(env)
        env.kill()
        if self.capacity is not None and self.capacity.waiting:
            self.capacity.wake()

    def abandon(self, env: Environment) -> None:
        """Kill and close ``env`` (its invoke was cancelled; nobody will log it).

        Closing waits one loop turn: the cancelled read's own clean-up (removing its
        reader) is already scheduled and must run before the descriptor is closed and
        its number reused.
        """
        self.discard(env)
        asyncio.get_running_loop().call_soon(env.close)

    def on_exit(self, env: Environment, spawner: Any) -> None:
        """``env``'s process ended: forget it; if it was idle, take it out of service."""
        forget = getattr(spawner, "forget", None)
        if forget is not None:
            forget(env.pid)
        if env.state == "idle":
            # Died between invocations (a background thread called os._exit, say).
            self.discard(env)
            code = env.exited.result()
            self.emit(env.id, f"[warmline] environment exited: {logs.exit_description(code)}")
            env.close()

    def reclaim(self, env: Environment) -> None:
        """The idle timer of ``env``: kill it if it stayed idle ``idle_reclaim_s``.

        One timer per environment, not one per invocation: it fires, and re-arms for the
        rest of the idle time when the environment was used since it was set.
        """
        env.idle_timer = None
        if env.state != "idle":
            return  # busy: booking it idle again arms a new timer
        left = env.idle_since + self.idle_reclaim_s - time.monotonic()
        if left > 0:
            loop = asyncio.get_running_loop()
            env.idle_timer = loop.call_later(left, self.reclaim, env)
            return
        self.discard(env)
        self.emit(env.id, f"[warmline] environment reclaimed after {self.idle_reclaim_s:g} s idle")
        env.close()

    def recycle(self) -> int:
        """Retire every environment: idle ones now, busy ones when they return.

        Returns:
            How many environments were retired.
        """
        count = 0
        for env in list(self.envs.values()):
            count += 1
            if env.state == "idle":
                self.discard(env)
                self.emit(env.id, "[warmline] environment recycled")
                env.close()
            else:
                env.retired = True
        return count
