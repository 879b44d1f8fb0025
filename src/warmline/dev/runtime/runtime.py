"""The emulated Lambda service: what the gateway, the bus and the Invoke API call.

:class:`Runtime` holds one :class:`~warmline.dev.runtime.pool.FunctionPool` per function
and routes each invoke (AWS Lambda's rules, docs/protocols.md §3.1): the most recently used idle
environment runs it; with none idle, an environment that has just returned gets a moment
(:meth:`FunctionPool.finishing`); otherwise a new one is created (a cold start, by
:class:`~warmline.dev.runtime.coldstart.Launcher`) unless ``reserved_concurrency``
environments exist, and then the invoke is throttled (``TooManyRequestsException``), never
queued. The invocation itself is :mod:`warmline.dev.runtime.invocation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warmline.core.limits import IDLE_RECLAIM_S, INIT_TIMEOUT_S
from warmline.dev.runtime import runtimes
from warmline.dev.runtime.capacity import Capacity
from warmline.dev.runtime.coldstart import Launcher, ProcessMode
from warmline.dev.runtime.invocation import (
    KILL_GRACE_S,
    Cancellable,
    InFlight,
    WarmInvocation,
    report_task,
    run,
)
from warmline.dev.runtime.isolation import Isolation
from warmline.dev.runtime.logs import LogSink
from warmline.dev.runtime.pool import FunctionPool
from warmline.dev.runtime.settings import environment_config
from warmline.dev.runtime.spec import (
    ACCOUNT_CONCURRENCY,
    EnvironmentInfo,
    FunctionSpec,
    InvokeResult,
    throttled_result,
)
from warmline.dev.runtime.wire import dumps
from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.dev.faults import FaultInjector

__all__ = ["Cancellable", "ProcessMode", "Runtime"]


class Runtime:
    """Runs Lambda functions locally, one OS process per execution environment.

    Args:
        functions: the functions it serves (unique names).
        log_sink: where log lines go (default: a console sink on stderr).
        idle_reclaim_s: kill environments idle this long.
        init_timeout_s: the INIT phase limit.
        snapstart: fork environments from a per-function pre-initialised template
            (reports Restore Duration instead of Init Duration).
        extra_env: variables for every environment (under each function's own).
        region: the emulated region (ARNs, ``AWS_REGION``).
        process_mode: ``"fork"`` (zygote), ``"spawn"`` (fresh interpreter per
            environment) or ``"auto"`` (fork where available).
        max_concurrent_inits: how many inits run at once (default: the CPU count, >= 2).
        sandbox: isolate environments as Lambda does (read-only task root, a private
            /tmp, Lambda's import path; :mod:`warmline.dev.runtime.sandbox`). Where the
            kernel refuses, :attr:`notices` says what is not isolated.
        state_dir: the emulator's state folder (``.warmline/``: dependency directories,
            the session store sandboxed functions share).
        memory_budget_mb: the local cap: environments counted at their memory size may
            add up to this much, then invocations wait (default: half the memory
            available at start; :mod:`warmline.dev.runtime.capacity`).
        account_concurrency: the account's concurrent executions (AWS's default 1,000);
            past it invocations are throttled.

    Raises:
        ConfigurationError: two functions share a name.
    """

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        *,
        log_sink: LogSink | None = None,
        idle_reclaim_s: float = IDLE_RECLAIM_S,
        init_timeout_s: float = INIT_TIMEOUT_S,
        snapstart: bool = False,
        extra_env: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        process_mode: ProcessMode = "auto",
        max_concurrent_inits: int | None = None,
        sandbox: bool = True,
        state_dir: Path | None = None,
        memory_budget_mb: int | None = None,
        account_concurrency: int = ACCOUNT_CONCURRENCY,
    ) -> None:
        sink = log_sink if log_sink is not None else LogSink()
        self._sink = sink
        self.capacity = Capacity(
            budget_mb=memory_budget_mb, account_limit=account_concurrency, warn=self._warn
        )
        self._functions: dict[str, FunctionPool] = {}
        for spec in functions:
            if spec.name in self._functions:
                raise ConfigurationError(f"two functions are named {spec.name!r}")
            runtimes.check_available(spec.runtime)
            pool = FunctionPool(spec, sink, idle_reclaim_s)
            pool.capacity = self.capacity
            self._functions[spec.name] = pool
        isolation = Isolation(
            enabled=sandbox, state_dir=state_dir if state_dir is not None else Path(".warmline")
        )
        self._launcher = Launcher(
            isolation=isolation,
            init_timeout_s=init_timeout_s,
            snapstart=snapstart,
            extra_env=extra_env or {},
            region=region,
            process_mode=process_mode,
            max_concurrent_inits=max_concurrent_inits,
        )
        #: set once the launcher has started: warm invocations can skip start().
        self._ready = False
        self._closed = False
        self._inflight = InFlight()
        #: injects lambda.* and store.* faults (warmline dev sets it; None: never).
        self.faults: FaultInjector | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def process_mode(self) -> str:
        """``"fork"`` or ``"spawn"`` once started (``"auto"`` before)."""
        return self._launcher.mode

    @property
    def notices(self) -> list[str]:
        """Start-up lines (after :meth:`start`): what is not isolated, which Python runs."""
        return list(self._launcher.isolation.notices)

    @property
    def isolated(self) -> bool:
        """Whether environments get their own filesystem view (after :meth:`start`)."""
        isolation = self._launcher.isolation
        return isolation.enabled and isolation.mounts is None

    def _warn(self, line: str) -> None:
        self._sink.emit("warmline", "", line)

    async def start(self) -> None:
        """Start the runtime process that forks environments (idempotent).

        Raises:
            ConfigurationError: snapstart mode without fork.
        """
        await self._launcher.start(self._functions.values())
        self._ready = True

    async def close(self) -> None:
        """Kill every environment and the runtime process; wait until they are gone."""
        if self._closed:
            return
        self._closed = True
        self._launcher.closed = True
        pools = self._functions.values()
        envs = [env for pool in pools for env in pool.envs.values()]
        for pool in pools:
            pool.closed = True
            for env in list(pool.envs.values()):
                pool.discard(env)
        if envs:
            await asyncio.wait([env.exited for env in envs], timeout=KILL_GRACE_S * 2)
        drained = self._inflight.drained
        if self._inflight.count and drained is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), KILL_GRACE_S * 2)
        for env in envs:
            env.close()
        for pool in pools:
            pool.close_timeouts()
        await self._launcher.close(pools)

    def set_extra_env(self, env: Mapping[str, str]) -> None:
        """Replace the variables every environment created from now on gets.

        Args:
            env: e.g. ``HTTPS_PROXY`` once the proxy listens.
        """
        self._launcher.extra_env = dict(env)

    async def recycle(self, function: str | None = None) -> int:
        """Retire environments so that the next invokes import the code afresh.

        For ``warmline dev`` after a code edit (not an AWS operation; a deploy does the
        same there). Idle environments and snapstart templates go now; busy ones finish
        their invocation first.

        Args:
            function: one function's name, or ``None`` for all.

        Returns:
            How many environments were retired.

        Raises:
            KeyError: unknown function.
        """
        pools = [self._functions[function]] if function is not None else self._functions.values()
        count = 0
        for pool in list(pools):
            count += pool.recycle()
            self._launcher.isolation.forget(pool.name)
            # Its restored environments die with the template: kept until they are gone.
            self._launcher.retire_template(pool)
        await self._launcher.close_unused_templates(self._functions.values())
        return count

    def environment_of(self, function: str) -> dict[str, str]:
        """The variables a new environment of ``function`` gets (for the start-up text).

        Raises:
            KeyError: unknown function.
        """
        launcher = self._launcher
        config = environment_config(
            self._functions[function].spec,
            "-",
            region=launcher.region,
            extra_env=launcher.extra_env,
            snapstart=launcher.snapstart,
        )
        env: dict[str, str] = config["env"]
        return env

    def environments(self) -> list[EnvironmentInfo]:
        """Every live environment of every function."""
        return [env.info() for pool in self._functions.values() for env in pool.envs.values()]

    # --- invoke ---------------------------------------------------------------------------

    async def invoke(
        self, function: str, event: Any, *, client_context: dict[str, Any] | None = None
    ) -> InvokeResult:
        """Invoke ``function`` synchronously (``RequestResponse``).

        Args:
            function: the function's name.
            event: a JSON-able event.
            client_context: becomes ``context.client_context`` (``client``/``custom``/``env``).

        Returns:
            The result; handler problems are in it, never raised.

        Raises:
            KeyError: unknown function.
            TypeError: the event is not JSON-able.
            RuntimeError: the runtime is closed.
        """
        pool = self._open_function(function)
        request_id = str(uuid.uuid4())
        body: dict[str, Any] = {"t": "invoke", "id": request_id, "event": event}
        if client_context:
            body["client_context"] = client_context
        # Serialised once, before anything else: a bad event is the caller's error, found
        # before any side effect; begin() splices the deadline in (the event is most of an
        # invocation's bytes).
        payload = dumps(body)
        kill_s: float | None = None
        faults = self.faults
        if faults is not None and faults.any_invoke:
            if faults.fire("lambda.throttle", function, request_id):
                return throttled_result(request_id)
            kill_s = self._inject(faults, function, request_id, body)
            if "faults" in body:
                payload = dumps(body)
        if not self._ready:
            await self.start()
        inflight = self._inflight
        inflight.started()
        try:
            while True:
                waited = False
                while True:
                    while pool.idle:
                        env = pool.idle.pop()
                        if env.state == "idle":
                            return await run(
                                pool, env, request_id, payload, cold=False, deadline=None,
                                kill_s=kill_s,
                            )  # fmt: skip
                    if waited or not await pool.finishing():
                        break
                    waited = True
                if pool.at_capacity():
                    return throttled_result(request_id)
                if self._room(pool):
                    return await self._launcher.cold_start(pool, request_id, payload, kill_s)
                count, _ = self.capacity.used(self._functions.values())
                if count >= self.capacity.account_limit:
                    return throttled_result(request_id, "ConcurrentInvocationLimitExceeded")
                # Over this machine's budget: wait for an environment (module capacity).
                self.capacity.warn_once(self._functions.values(), function)
                await self.capacity.wait()
                if self._closed:
                    raise RuntimeError("runtime is closed")
        finally:
            inflight.ended()

    def invoke_soon(
        self,
        function: str,
        event: Any,
        on_result: Callable[[InvokeResult | BaseException], None],
    ) -> Cancellable:
        """Start an invocation and report its end to ``on_result``: the per-message path.

        The same invocation as :meth:`invoke`. When an environment is idle (the common
        case under load) it runs without a Task
        (:class:`~warmline.dev.runtime.invocation.WarmInvocation`): the invoke is written
        at once and the result is booked inside the socket's read callback. A cold start, a
        throttle, a fault or any other case runs :meth:`invoke` in a Task. ``on_result``
        gets the :class:`InvokeResult`, or the exception :meth:`invoke` raised; nothing
        when the returned handle was cancelled first.

        Returns:
            A handle whose ``cancel()`` abandons the invocation (its environment is killed,
            as when :meth:`invoke` is cancelled).

        Raises:
            KeyError: unknown function.
            TypeError: the event is not JSON-able.
            RuntimeError: the runtime is closed.
        """
        pool = self._open_function(function)
        faults = self.faults
        if self._ready and pool.idle and (faults is None or not faults.any_invoke):
            env = pool.idle[-1]  # the most recently used, as invoke() takes
            if env.state == "idle" and env.channel.quiet:  # else invoke() sorts it out
                request_id = str(uuid.uuid4())
                payload = dumps({"t": "invoke", "id": request_id, "event": event})
                pool.idle.pop()
                return WarmInvocation(self._inflight, pool, env, request_id, payload, on_result)
        task = asyncio.get_running_loop().create_task(self.invoke(function, event))
        task.add_done_callback(functools.partial(report_task, on_result))
        return task

    def _room(self, pool: FunctionPool) -> bool:
        """Whether ``pool`` may add an environment now (account quota, local budget).

        An idle environment of another function is reclaimed early when that makes room.
        """
        pools = self._functions.values()
        capacity = self.capacity
        count, _ = capacity.used(pools)
        if count >= capacity.account_limit:
            return False
        while not capacity.fits(pools, pool.spec.memory_mb):
            idle = [env for other in pools if other is not pool for env in other.idle]
            if not idle:
                return False
            oldest = min(idle, key=lambda env: env.idle_since)
            owner = self._functions[oldest.function]
            owner.discard(oldest)
            owner.emit(oldest.id, "[warmline] environment reclaimed early: local cap reached")
            oldest.close()
        return True

    def _open_function(self, function: str) -> FunctionPool:
        pool = self._functions[function]  # KeyError: unknown function
        if self._closed:
            raise RuntimeError("runtime is closed")
        return pool

    @staticmethod
    def _inject(
        faults: FaultInjector, function: str, request_id: str, body: dict[str, Any]
    ) -> float | None:
        """Put this invocation's store faults in ``body``; the kill time, if one is due."""
        store: dict[str, Any] = {}
        if faults.fire("store.fail", function, request_id):
            store["fail"] = True
        stall = faults.fire("store.stall", function, request_id)
        if stall is not None:
            store["stall_ms"] = stall.ms
        if store:
            body["faults"] = {"store": store}
        kill = faults.fire("lambda.kill", function, request_id)
        return None if kill is None else kill.ms / 1000.0
