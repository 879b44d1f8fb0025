"""The emulated Lambda service: pools of execution environments per function.

Rules (AWS Lambda's, PROTOCOLS.md §3.1, ANCHORS.md last section):

1. One invocation per environment at a time. An invoke takes the most recently used idle
   environment; if none is idle it creates one (a cold start = scale-out), unless the
   function's ``reserved_concurrency`` environments already exist: then it is throttled
   (``TooManyRequestsException``), never queued.
2. Init runs once per environment, in the environment (the user's import), bounded by
   ``init_timeout_s`` (10 s). Past it: ``INIT_REPORT ... Status: timeout``, the environment
   is killed and init is retried once during the invoke, bounded by the function timeout.
   An init that fails (import error, missing handler, top-level exception) fails the
   invoke with ``init_error`` and the environment is discarded.
3. The function timeout is enforced by SIGKILL of the environment's process group: nothing
   the handler does afterwards reaches the logs or the caller, and the next invoke is cold.
   A crash (``os._exit``, a signal) discards only that environment. A handler exception is
   an ordinary result; the environment stays warm.
4. Idle environments are reclaimed after ``idle_reclaim_s`` (§3.2: ~10 min measured).

Billing follows §3.1: since 2025-08-01 the INIT phase of on-demand functions is billed, so
a cold REPORT's Billed Duration covers init + duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from warmline.core.limits import IDLE_RECLAIM_S, INIT_TIMEOUT_S
from warmline.dev.runtime import logs, templates
from warmline.dev.runtime.environment import Environment, new_environment_id
from warmline.dev.runtime.logs import LogSink
from warmline.dev.runtime.procs import (
    Spawner,
    SpawnError,
    SubprocessSpawner,
    ZygoteSpawner,
    fork_available,
)
from warmline.dev.runtime.settings import environment_config
from warmline.dev.runtime.spec import (
    EnvironmentInfo,
    FunctionSpec,
    InvokeResult,
    InvokeStatus,
    throttled_result,
)
from warmline.dev.runtime.warm import Cancellable, WarmInvocation, report_task
from warmline.dev.runtime.wire import FrameError, dumps, frame
from warmline.dev.timers import FixedDelayTimers
from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.dev.faults import FaultInjector

__all__ = ["Cancellable", "ProcessMode", "Runtime"]

#: How long to wait for a killed process's remaining output and exit status.
KILL_GRACE_S = 1.0
#: Loop passes an environment that has returned gets to be booked idle (result, output,
#: END/REPORT) before an invocation scales out instead (see ``_finishing``).
_BOOKING_PASSES = 4

ProcessMode = Literal["auto", "fork", "spawn"]


@dataclass(slots=True)
class _InitFailure:
    kind: Literal["error", "timeout"]
    error: dict[str, Any]
    init_ms: float
    environment_id: str


class _Function:
    """A function's configuration and its environments."""

    __slots__ = ("creating", "envs", "idle", "spec", "template", "template_lock", "timers")

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        #: the function timeout of warm invocations (made on the first one, on its loop).
        self.timers: FixedDelayTimers | None = None
        self.envs: dict[str, Environment] = {}
        self.idle: list[Environment] = []
        self.creating = 0
        self.template: templates.Template | None = None
        self.template_lock: asyncio.Lock | None = None

    def at_capacity(self) -> bool:
        cap = self.spec.reserved_concurrency
        return cap is not None and len(self.envs) + self.creating >= cap


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
    ) -> None:
        self._functions: dict[str, _Function] = {}
        for spec in functions:
            if spec.name in self._functions:
                raise ConfigurationError(f"two functions are named {spec.name!r}")
            self._functions[spec.name] = _Function(spec)
        self._sink = log_sink if log_sink is not None else LogSink()
        self._idle_reclaim_s = idle_reclaim_s
        self._init_timeout_s = init_timeout_s
        self._snapstart = snapstart
        self._extra_env = dict(extra_env or {})
        self._region = region
        self._mode: ProcessMode = process_mode
        self._spawner: Spawner | None = None
        self._start_lock: asyncio.Lock | None = None
        self._closed = False
        self._inflight = 0
        self._drained: asyncio.Event | None = None
        self._retired_templates: list[templates.Template] = []
        # On AWS every environment initialises on its own share of a machine; here they
        # share a few cores. Fifty boto3 imports at once on two cores would all blow the
        # 10 s init cap, which AWS would never show. So at most this many inits run at
        # once; the rest wait their turn, and waiting is not init time (it is not on AWS
        # either), though it is time the caller waits.
        self._max_inits = max_concurrent_inits or max(2, os.cpu_count() or 2)
        self._init_slots: asyncio.Semaphore | None = None
        #: injects lambda.* and store.* faults (warmline dev sets it; None: never).
        self.faults: FaultInjector | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def process_mode(self) -> str:
        """``"fork"`` or ``"spawn"`` once started (``"auto"`` before)."""
        return self._mode

    async def start(self) -> None:
        """Start the runtime process that forks environments (idempotent).

        Raises:
            ConfigurationError: snapstart mode without fork.
        """
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._spawner is not None:
                return
            if self._closed:
                raise RuntimeError("runtime is closed")
            if self._mode == "auto":
                self._mode = "fork" if fork_available() else "spawn"
            if self._snapstart and self._mode != "fork":
                raise ConfigurationError("snapstart mode needs fork (process_mode='fork')")
            if self._mode == "fork":
                spawner = await ZygoteSpawner.start()
                await spawner.ready()
                self._spawner = spawner
            else:
                self._spawner = SubprocessSpawner()

    async def _live_spawner(self) -> Spawner | None:
        """The spawner, with a new zygote if the old one died (its environments died too)."""
        spawner = self._spawner
        if isinstance(spawner, ZygoteSpawner) and not spawner.alive and not self._closed:
            await spawner.close()
            spawner = self._spawner = await ZygoteSpawner.start()
        return spawner

    async def close(self) -> None:
        """Kill every environment and the runtime process; wait until they are gone."""
        if self._closed:
            return
        self._closed = True
        envs = [env for fn in self._functions.values() for env in fn.envs.values()]
        for fn in self._functions.values():
            for env in list(fn.envs.values()):
                self._discard(fn, env)
        if envs:
            await asyncio.wait([env.exited for env in envs], timeout=KILL_GRACE_S * 2)
        if self._inflight and self._drained is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), KILL_GRACE_S * 2)
        for env in envs:
            env.close()
        for fn in self._functions.values():
            if fn.timers is not None:
                fn.timers.close()
            if fn.template is not None:
                await templates.close_template(fn.template)
                fn.template = None
        for template in self._retired_templates:
            await templates.close_template(template)
        self._retired_templates = []
        if self._spawner is not None:
            await self._spawner.close()

    def set_extra_env(self, env: Mapping[str, str]) -> None:
        """Replace the variables every environment created from now on gets.

        Args:
            env: e.g. ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` once the port is known.
        """
        self._extra_env = dict(env)

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
        fns = [self._functions[function]] if function is not None else self._functions.values()
        count = 0
        for fn in list(fns):
            for env in list(fn.envs.values()):
                count += 1
                if env.state == "idle":
                    self._discard(fn, env)
                    self._emit(fn, env.id, "[warmline] environment recycled")
                    env.close()
                else:
                    env.retired = True
            if fn.template is not None:
                # Its restored environments die with it: keep it until they are gone.
                self._retired_templates.append(fn.template)
                fn.template = None
        await self._close_unused_templates()
        return count

    async def _close_unused_templates(self) -> None:
        in_use = {id(env.template) for fn in self._functions.values() for env in fn.envs.values()}
        keep = [t for t in self._retired_templates if id(t) in in_use]
        unused = [t for t in self._retired_templates if id(t) not in in_use]
        self._retired_templates = keep
        for template in unused:
            await templates.close_template(template)

    def environments(self) -> list[EnvironmentInfo]:
        """Every live environment of every function."""
        return [env.info() for fn in self._functions.values() for env in fn.envs.values()]

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
        fn = self._open_function(function)
        request_id = str(uuid.uuid4())
        body: dict[str, Any] = {"t": "invoke", "id": request_id, "event": event}
        if client_context:
            body["client_context"] = client_context
        # Serialised once, before anything else: a bad event is the caller's error, found
        # before any side effect; _begin splices the deadline in (the event is most of an
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
        if self._spawner is None:
            await self.start()
        self._started()
        try:
            waited = False
            while True:
                while fn.idle:
                    env = fn.idle.pop()
                    if env.state == "idle":
                        return await self._run(
                            fn, env, request_id, payload, cold=False, deadline=None, kill_s=kill_s
                        )
                if waited or not await self._finishing(fn):
                    break
                waited = True
            if fn.at_capacity():
                return throttled_result(request_id)
            return await self._invoke_cold(fn, request_id, payload, kill_s)
        finally:
            self._ended()

    def invoke_soon(
        self,
        function: str,
        event: Any,
        on_result: Callable[[InvokeResult | BaseException], None],
    ) -> Cancellable:
        """Start an invocation and report its end to ``on_result``: the per-message path.

        The same invocation as :meth:`invoke`. When an environment is idle (the common
        case under load) it runs without a Task: the invoke is written at once and the
        result is booked inside the socket's read callback. A cold start, a throttle, a
        fault or any other case runs :meth:`invoke` in a Task. ``on_result`` gets the
        :class:`InvokeResult`, or the exception :meth:`invoke` raised; nothing when the
        returned handle was cancelled first.

        Returns:
            A handle whose ``cancel()`` abandons the invocation (its environment is killed,
            as when :meth:`invoke` is cancelled).

        Raises:
            KeyError: unknown function.
            TypeError: the event is not JSON-able.
            RuntimeError: the runtime is closed.
        """
        fn = self._open_function(function)
        faults = self.faults
        if self._spawner is not None and fn.idle and (faults is None or not faults.any_invoke):
            env = fn.idle[-1]  # the most recently used, as invoke() takes
            if env.state == "idle" and env.channel.quiet:  # else invoke() sorts it out
                request_id = str(uuid.uuid4())
                payload = dumps({"t": "invoke", "id": request_id, "event": event})
                fn.idle.pop()
                return WarmInvocation(self, fn, env, request_id, payload, on_result)
        task = asyncio.get_running_loop().create_task(self.invoke(function, event))
        task.add_done_callback(functools.partial(report_task, on_result))
        return task

    def _open_function(self, function: str) -> _Function:
        fn = self._functions[function]  # KeyError: unknown function
        if self._closed:
            raise RuntimeError("runtime is closed")
        return fn

    def _started(self) -> None:
        self._inflight += 1
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()

    def _ended(self) -> None:
        self._inflight -= 1
        if self._inflight == 0 and self._drained is not None:
            self._drained.set()

    async def _finishing(self, fn: _Function) -> bool:
        """Give an environment that has already returned a moment to become idle.

        On AWS an environment is free once its handler returned. Here its result may sit in
        our socket buffer, or be read but not yet booked (the invocation's coroutine wakes
        a loop pass later), when the next message is routed: scaling out then would be a
        cold start AWS would not do, caused by the order this loop happens to serve
        sockets in. So: read what busy environments have written, and if one has returned,
        let the loop pass a few times for it to be booked idle.

        Returns:
            Whether an environment of ``fn`` is idle now.
        """
        busy = [env for env in fn.envs.values() if env.state == "busy"]
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
            if fn.idle:
                return True
            if not any(env.channel.unconsumed for env in busy):
                return False
        for _ in range(_BOOKING_PASSES):
            await asyncio.sleep(0)
            if fn.idle:
                return True
        return False

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

    async def _invoke_cold(
        self, fn: _Function, request_id: str, payload: bytes, kill_s: float | None
    ) -> InvokeResult:
        # Reserve the environment's slot before the first await, so concurrent invokes
        # cannot all pass the reserved-concurrency check while this one initialises.
        # _init_env turns the slot into an environment, or leaves it reserved on failure.
        fn.creating += 1
        env: Environment | None = None
        if self._init_slots is None:
            self._init_slots = asyncio.Semaphore(self._max_inits)
        try:
            async with self._init_slots:
                env, failure = await self._init_env(fn, "init", self._init_timeout_s)
                deadline = None
                if failure is not None and failure.kind == "timeout" and not self._closed:
                    # Lambda retries a timed-out init during the invoke, bounded by the
                    # function timeout (PROTOCOLS.md §3.1).
                    deadline = time.monotonic() + fn.spec.timeout_s
                    env, failure = await self._init_env(fn, "invoke", fn.spec.timeout_s)
        finally:
            if env is None:
                fn.creating -= 1
        if failure is not None or env is None:
            assert failure is not None
            return self._init_failed(fn, request_id, failure)
        return await self._run(
            fn, env, request_id, payload, cold=True, deadline=deadline, kill_s=kill_s
        )

    # --- environments ---------------------------------------------------------------------

    def _emit(self, fn: _Function, env_id: str, line: str) -> None:
        self._sink.emit(fn.spec.name, env_id, line)

    def _config(self, fn: _Function, env_id: str) -> dict[str, Any]:
        return environment_config(
            fn.spec,
            env_id,
            region=self._region,
            extra_env=self._extra_env,
            snapstart=self._snapstart,
        )

    async def _template(
        self, fn: _Function, phase: str, limit_s: float
    ) -> tuple[templates.Template | None, _InitFailure | None]:
        """The function's snapstart template, initialising it on first use."""
        if fn.template_lock is None:
            fn.template_lock = asyncio.Lock()
        async with fn.template_lock:
            old = fn.template
            if old is not None and old.alive:
                return old, None
            fn.template = None
            if old is not None:
                await templates.close_template(old)
            zygote = await self._live_spawner()
            assert isinstance(zygote, ZygoteSpawner)  # start() refuses snapstart otherwise
            env_id = new_environment_id()
            name = fn.spec.name
            self._emit(fn, env_id, logs.init_start_line(self._region))
            started = time.monotonic()
            template, hello = await templates.start_template(
                zygote,
                self._config(fn, env_id),
                env_id,
                lambda line: self._sink.emit(name, env_id, line),
                limit_s,
            )
            elapsed_ms = (time.monotonic() - started) * 1000
            if template is not None:
                fn.template = template
                self._emit(fn, env_id, logs.snapshot_init_report_line(template.init_ms or 0.0))
                return template, None
            return None, self._init_failure(fn, env_id, phase, limit_s, hello, elapsed_ms, None)

    async def _init_env(
        self, fn: _Function, phase: str, limit_s: float
    ) -> tuple[Environment | None, _InitFailure | None]:
        """Create one environment and wait for its handler to be imported (or restored)."""
        env_id = new_environment_id()
        started = time.monotonic()
        config = self._config(fn, env_id)
        spawner: Spawner | None = self._spawner
        if self._snapstart:
            template, failure = await self._template(fn, phase, limit_s)
            if template is None:
                return None, failure
            spawner = template.spawner
            config["kind"] = "restore"
            owner: templates.Template | None = template
            started = time.monotonic()
            self._emit(fn, env_id, logs.restore_start_line(self._region))
        else:
            owner = None
            spawner = await self._live_spawner()
            self._emit(fn, env_id, logs.init_start_line(self._region))
        assert spawner is not None
        try:
            spawned = await spawner.spawn(config)
        except SpawnError as exc:
            error = {"errorType": "Runtime.Unknown", "errorMessage": str(exc)}
            elapsed_ms = (time.monotonic() - started) * 1000
            return None, _InitFailure("error", error, elapsed_ms, env_id)
        name = fn.spec.name
        env = Environment(
            env_id,
            name,
            spawned,
            emit=lambda line: self._sink.emit(name, env_id, line),
            kill=spawner.kill,
        )
        env.template = owner
        fn.creating -= 1  # the caller's reserved slot is now this environment
        fn.envs[env_id] = env
        env.exited.add_done_callback(lambda _f: self._on_exit(fn, env, spawner))
        remaining = limit_s - (time.monotonic() - started)
        try:
            message = await env.channel.recv(max(remaining, 0.0))
        except TimeoutError:
            message = {"t": "timeout"}
        except (FrameError, ValueError):
            message = None
        except BaseException:  # cancelled: a half-initialised environment must not leak
            self._abandon(fn, env)
            fn.creating += 1
            raise
        elapsed_ms = (time.monotonic() - started) * 1000
        if message is not None and message.get("t") == "ready":
            env.init_ms = float(message.get("init_ms", elapsed_ms))
            env.restored = self._snapstart
            if env.restored:
                self._emit(fn, env_id, logs.restore_report_line(env.init_ms))
            env.state = "busy"
            return env, None
        self._discard(fn, env)
        fn.creating += 1  # back to a reserved slot, for a retry or for the caller to free
        if message is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(env.exited), KILL_GRACE_S)
            code = env.exited.result() if env.exited.done() else None
            message = {
                "t": "init_error",
                "error": {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"Runtime exited with error: {logs.exit_description(code)}",
                },
            }
        await env.drain_output(KILL_GRACE_S)
        env.close()
        return None, self._init_failure(fn, env_id, phase, limit_s, message, elapsed_ms, env)

    def _init_failure(
        self,
        fn: _Function,
        env_id: str,
        phase: str,
        limit_s: float,
        message: Mapping[str, Any],
        elapsed_ms: float,
        env: Environment | None,
    ) -> _InitFailure:
        """Log a failed init (error lines, INIT_REPORT) and describe it."""
        if message.get("t") == "timeout":
            self._emit(fn, env_id, logs.init_report_line(elapsed_ms, phase=phase, status="timeout"))
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Init timed out after {limit_s:.2f} seconds",
            }
            return _InitFailure("timeout", error, elapsed_ms, env_id)
        error = dict(message.get("error") or {"errorType": "Runtime.Unknown"})
        init_ms = float(message.get("init_ms", elapsed_ms))
        for line in logs.error_lines(error):
            self._emit(fn, env_id, line)
        self._emit(
            fn,
            env_id,
            logs.init_report_line(
                init_ms, phase=phase, status="error", error_type=str(error.get("errorType"))
            ),
        )
        return _InitFailure("error", error, init_ms, env_id)

    def _init_failed(self, fn: _Function, request_id: str, failure: _InitFailure) -> InvokeResult:
        env_id = failure.environment_id
        self._emit(fn, env_id, logs.start_line(request_id))
        status: InvokeStatus
        if failure.kind == "timeout":
            status = "timeout"
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": (
                    f"RequestId: {request_id} Error: Task timed out after "
                    f"{fn.spec.timeout_s:.2f} seconds"
                ),
            }
            self._emit(fn, env_id, logs.timed_out_line(request_id, fn.spec.timeout_s))
            report_status = "timeout"
        else:
            status = "init_error"
            error = failure.error
            report_status = "error"
        duration = failure.init_ms
        billed = logs.billed_ms(duration)
        self._emit(fn, env_id, logs.end_line(request_id))
        self._emit(
            fn,
            env_id,
            logs.report_line(
                request_id,
                duration_ms=duration,
                billed=billed,
                memory_mb=fn.spec.memory_mb,
                max_memory_mb=0,
                status=report_status,
                error_type=str(error.get("errorType")) if status != "timeout" else None,
            ),
        )
        return InvokeResult(
            request_id=request_id,
            status=status,
            payload=None,
            error=error,
            cold=True,
            init_ms=failure.init_ms,
            duration_ms=duration,
            billed_ms=billed,
            environment_id=env_id,
        )

    def _discard(self, fn: _Function, env: Environment) -> None:
        """Take ``env`` out of service and kill it (its resources close later)."""
        fn.envs.pop(env.id, None)
        with contextlib.suppress(ValueError):
            fn.idle.remove(env)
        env.kill()

    def _abandon(self, fn: _Function, env: Environment) -> None:
        """Kill and close ``env`` (its invoke was cancelled; nobody will log it).

        Closing waits one loop turn: the cancelled read's own clean-up (removing its
        reader) is already scheduled and must run before the descriptor is closed and
        its number reused.
        """
        self._discard(fn, env)
        asyncio.get_running_loop().call_soon(env.close)

    def _on_exit(self, fn: _Function, env: Environment, spawner: Any) -> None:
        forget = getattr(spawner, "forget", None)
        if forget is not None:
            forget(env.pid)
        if env.state == "idle":
            # Died between invocations (a background thread called os._exit, say).
            self._discard(fn, env)
            code = env.exited.result()
            self._emit(fn, env.id, f"[warmline] environment exited: {logs.exit_description(code)}")
            env.close()

    def _reclaim(self, fn: _Function, env: Environment) -> None:
        # One timer per environment, not one per invocation: it fires, and re-arms for the
        # rest of the idle time when the environment was used since it was set.
        env.idle_timer = None
        if env.state != "idle":
            return  # busy: _run arms a new timer when it is idle again
        left = env.idle_since + self._idle_reclaim_s - time.monotonic()
        if left > 0:
            loop = asyncio.get_running_loop()
            env.idle_timer = loop.call_later(left, self._reclaim, fn, env)
            return
        self._discard(fn, env)
        self._emit(
            fn,
            env.id,
            f"[warmline] environment reclaimed after {self._idle_reclaim_s:g} s idle",
        )
        env.close()

    # --- one invocation -------------------------------------------------------------------

    def _begin(
        self, fn: _Function, env: Environment, request_id: str, payload: bytes, end: float
    ) -> tuple[float, float, bytes]:
        """Mark ``env`` busy and log START; ``(now, seconds left, framed invoke body)``."""
        env.state = "busy"
        env.invocations += 1
        now = time.monotonic()
        remaining = max(end - now, 0.0)
        deadline_ms = int((time.time() + remaining) * 1000)
        self._emit(fn, env.id, logs.start_line(request_id))
        return now, remaining, frame(payload[:-1] + b',"deadline_ms":%d}' % deadline_ms)

    async def _run(
        self,
        fn: _Function,
        env: Environment,
        request_id: str,
        payload: bytes,
        *,
        cold: bool,
        deadline: float | None,
        kill_s: float | None = None,
    ) -> InvokeResult:
        spec = fn.spec
        end = deadline if deadline is not None else time.monotonic() + spec.timeout_s
        now, remaining, data = self._begin(fn, env, request_id, payload, end)
        init_ms = env.init_ms if cold else None
        message: dict[str, Any] | None
        killer = None
        if kill_s is not None:  # the lambda.kill fault: SIGKILL mid-invocation
            killer = asyncio.get_running_loop().call_later(kill_s, env.kill)
        try:
            await env.channel.send_bytes(data)
            if deadline is None:  # the whole timeout, as every warm invocation: queued
                message = await env.channel.recv(timers=self._timers(fn))
            else:
                message = await env.channel.recv(remaining)
        except TimeoutError:
            return await self._timed_out(fn, env, request_id, remaining, init_ms)
        except (OSError, FrameError, ValueError):
            message = None
        except BaseException:  # cancelled mid-invocation: its environment cannot be reused
            self._abandon(fn, env)
            raise
        finally:
            if killer is not None:
                killer.cancel()
        if message is None or message.get("t") != "result":
            return await self._crashed(fn, env, request_id, now, init_ms)
        return self._complete(fn, env, request_id, message, now, init_ms)

    def _timers(self, fn: _Function) -> FixedDelayTimers:
        """The queue of ``fn``'s function timeouts on the running loop."""
        timers = fn.timers
        loop = asyncio.get_running_loop()
        if timers is None or timers.loop is not loop:
            timers = fn.timers = FixedDelayTimers(loop, fn.spec.timeout_s)
        return timers

    def _complete(
        self,
        fn: _Function,
        env: Environment,
        request_id: str,
        message: Mapping[str, Any],
        started: float,
        init_ms: float | None,
    ) -> InvokeResult:
        """Book a returned invocation: its output, END and REPORT; ``env`` idle again."""
        spec = fn.spec
        env.read_output()
        duration = float(message.get("duration_ms", (time.monotonic() - started) * 1000))
        env.max_memory_mb = max(env.max_memory_mb, math.ceil(message.get("maxrss_kb", 0) / 1024))
        restore_ms = init_ms if env.restored else None
        init_only = None if env.restored else init_ms
        billed = logs.billed_ms(duration + (init_only or 0.0))
        self._emit(fn, env.id, logs.end_line(request_id))
        self._emit(
            fn,
            env.id,
            logs.report_line(
                request_id,
                duration_ms=duration,
                billed=billed,
                memory_mb=spec.memory_mb,
                max_memory_mb=env.max_memory_mb,
                init_ms=init_only,
                restore_ms=restore_ms,
            ),
        )
        env.last_used_at = time.time()
        if env.retired:
            self._discard(fn, env)
            self._emit(fn, env.id, "[warmline] environment recycled")
            asyncio.get_running_loop().call_soon(env.close)
        elif env.state == "busy" and not self._closed:
            env.state = "idle"
            fn.idle.append(env)
            env.idle_since = time.monotonic()
            if env.idle_timer is None:  # else the running timer re-arms itself (_reclaim)
                loop = asyncio.get_running_loop()
                env.idle_timer = loop.call_later(self._idle_reclaim_s, self._reclaim, fn, env)
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

    async def _timed_out(
        self,
        fn: _Function,
        env: Environment,
        request_id: str,
        limit_s: float,
        init_ms: float | None,
    ) -> InvokeResult:
        memory = env.peak_memory_mb()
        self._discard(fn, env)
        await env.drain_output(KILL_GRACE_S)
        env.close()
        timeout_s = fn.spec.timeout_s
        message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
        return self._ended_badly(
            fn,
            env,
            request_id,
            duration=limit_s * 1000,
            memory=memory,
            init_ms=init_ms,
            lines=[logs.timed_out_line(request_id, timeout_s)],
            status="timeout",
            error={"errorType": "Sandbox.Timedout", "errorMessage": message},
        )

    async def _crashed(
        self,
        fn: _Function,
        env: Environment,
        request_id: str,
        started: float,
        init_ms: float | None,
    ) -> InvokeResult:
        memory = env.peak_memory_mb()
        self._discard(fn, env)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(env.exited), KILL_GRACE_S)
        code = env.exited.result() if env.exited.done() else None
        await env.drain_output(KILL_GRACE_S)
        env.close()
        message = f"RequestId: {request_id} Error: Runtime exited with error: "
        message += logs.exit_description(code)
        return self._ended_badly(
            fn,
            env,
            request_id,
            duration=(time.monotonic() - started) * 1000,
            memory=memory,
            init_ms=init_ms,
            lines=[message, "Runtime.ExitError"],
            status="crash",
            error={"errorType": "Runtime.ExitError", "errorMessage": message},
        )

    def _ended_badly(
        self,
        fn: _Function,
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
        restore_ms, init_only = (init_ms, None) if env.restored else (None, init_ms)
        billed = logs.billed_ms(duration + (init_only or 0.0))
        for line in lines:
            self._emit(fn, env.id, line)
        self._emit(fn, env.id, logs.end_line(request_id))
        crashed = status == "crash"
        self._emit(
            fn,
            env.id,
            logs.report_line(
                request_id,
                duration_ms=duration,
                billed=billed,
                memory_mb=fn.spec.memory_mb,
                max_memory_mb=memory,
                init_ms=init_only,
                restore_ms=restore_ms,
                status="error" if crashed else "timeout",
                **({"error_type": "Runtime.ExitError"} if crashed else {}),
            ),
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
