"""Creating execution environments: the process that forks them, init, and snapstart.

One OS process per execution environment, forked from a pre-started single-threaded
runtime process (the zygote) or, where fork is not available, spawned as a fresh
interpreter. Lambda's init rules (docs/protocols.md §3.1):

- Init runs once per environment, in the environment (the user's import), bounded by
  ``init_timeout_s`` (10 s). Past it: ``INIT_REPORT ... Status: timeout``, the environment
  is killed and init is retried once during the invoke, bounded by the function timeout.
- An init that fails (import error, missing handler, top-level exception) fails the
  invoke with ``init_error`` and the environment is discarded.
- With snapstart, environments are forked from a per-function pre-initialised template
  and report a Restore Duration instead of an Init Duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from warmline.dev.runtime import logs, templates
from warmline.dev.runtime.environment import Environment, new_environment_id
from warmline.dev.runtime.invocation import KILL_GRACE_S, run
from warmline.dev.runtime.isolation import Isolation
from warmline.dev.runtime.procs import (
    Spawner,
    SpawnError,
    SubprocessSpawner,
    ZygoteSpawner,
    fork_available,
    python_env,
)
from warmline.dev.runtime.settings import environment_config
from warmline.dev.runtime.spec import InvokeResult, InvokeStatus
from warmline.dev.runtime.wire import FrameError
from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.dev.runtime.pool import FunctionPool

__all__ = ["InitFailure", "Launcher", "ProcessMode"]

ProcessMode = Literal["auto", "fork", "spawn"]


@dataclass(slots=True)
class InitFailure:
    """An init that did not produce an environment: why, how long, which environment."""

    kind: Literal["error", "timeout"]
    error: dict[str, Any]
    init_ms: float
    environment_id: str


class Launcher:
    """Starts the process that makes environments and initialises each new one.

    Args:
        init_timeout_s: the INIT phase limit.
        snapstart: fork environments from a per-function pre-initialised template.
        extra_env: variables for every environment (under each function's own).
        region: the emulated region (``AWS_REGION``, the log lines).
        process_mode: ``"fork"`` (zygote), ``"spawn"`` or ``"auto"``.
        max_concurrent_inits: how many inits run at once (default: the CPU count, >= 2).
        isolation: what environments see and run on (default: no sandbox).
    """

    def __init__(
        self,
        *,
        init_timeout_s: float,
        snapstart: bool,
        extra_env: Mapping[str, str],
        region: str,
        process_mode: ProcessMode,
        max_concurrent_inits: int | None,
        isolation: Isolation | None = None,
    ) -> None:
        self.init_timeout_s = init_timeout_s
        self.isolation = isolation or Isolation(enabled=False, state_dir=Path(".warmline"))
        #: zygotes of other Python versions than this one, by interpreter.
        self._zygotes: dict[str, ZygoteSpawner] = {}
        self.snapstart = snapstart
        self.extra_env = dict(extra_env)
        self.region = region
        self.mode: ProcessMode = process_mode
        #: the zygote or the subprocess spawner, once started.
        self.spawner: Spawner | None = None
        self.closed = False
        self._start_lock: asyncio.Lock | None = None
        self._retired_templates: list[templates.Template] = []
        # On AWS every environment initialises on its own share of a machine; here they
        # share a few cores. Fifty boto3 imports at once on two cores would all blow the
        # 10 s init cap, which AWS would never show. So at most this many inits run at
        # once; the rest wait their turn, and waiting is not init time (it is not on AWS
        # either), though it is time the caller waits.
        self.max_inits = max_concurrent_inits or max(2, os.cpu_count() or 2)
        self._slots: asyncio.Semaphore | None = None

    async def start(self, pools: Iterable[FunctionPool] = ()) -> None:
        """Start the runtime process that forks environments (idempotent).

        Args:
            pools: the functions, whose isolation (interpreter, import path, start-up
                notes) is decided now rather than at their first cold start.

        Raises:
            ConfigurationError: snapstart mode without fork.
            RuntimeError: closed.
        """
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.spawner is not None:
                return
            if self.closed:
                raise RuntimeError("runtime is closed")
            if self.mode == "auto":
                self.mode = "fork" if fork_available() else "spawn"
            if self.snapstart and self.mode != "fork":
                raise ConfigurationError("snapstart mode needs fork (process_mode='fork')")
            stage = self.isolation.prepare_stage()
            if self.mode == "fork":
                spawner = await ZygoteSpawner.start()
                reason = await spawner.ready(probe=stage)
                self.spawner = spawner
            else:
                self.spawner = SubprocessSpawner()
                reason = await _probe_in_subprocess(stage) if stage else None
            self.isolation.probed(reason)
            for pool in pools:
                await self.isolation.config(pool.spec, self.extra_env)

    async def _live_spawner(self, python: str | None = None) -> Spawner | None:
        """The spawner, with a new zygote if the old one died (its environments died too).

        Args:
            python: another interpreter than this one: its own zygote (started on first use).
        """
        if python is not None and self.mode == "fork":
            other = self._zygotes.get(python)
            if other is None or (not other.alive and not self.closed):
                if other is not None:
                    await other.close()
                other = self._zygotes[python] = await ZygoteSpawner.start(python)
                await other.ready()
            return other
        spawner = self.spawner
        if isinstance(spawner, ZygoteSpawner) and not spawner.alive and not self.closed:
            await spawner.close()
            spawner = self.spawner = await ZygoteSpawner.start()
        return spawner

    async def close(self, pools: Iterable[FunctionPool]) -> None:
        """Close every snapstart template and the spawner (environments are already dead)."""
        self.closed = True
        for pool in pools:
            if pool.template is not None:
                await templates.close_template(pool.template)
                pool.template = None
        for template in self._retired_templates:
            await templates.close_template(template)
        self._retired_templates = []
        if self.spawner is not None:
            await self.spawner.close()
        for other in self._zygotes.values():
            await other.close()

    def retire_template(self, pool: FunctionPool) -> None:
        """Stop forking from ``pool``'s template; it closes once its environments are gone."""
        if pool.template is not None:
            self._retired_templates.append(pool.template)
            pool.template = None

    async def close_unused_templates(self, pools: Iterable[FunctionPool]) -> None:
        """Close the retired templates no live environment of ``pools`` was forked from."""
        in_use = {id(env.template) for pool in pools for env in pool.envs.values()}
        keep = [t for t in self._retired_templates if id(t) in in_use]
        unused = [t for t in self._retired_templates if id(t) not in in_use]
        self._retired_templates = keep
        for template in unused:
            await templates.close_template(template)

    async def cold_start(
        self, pool: FunctionPool, request_id: str, payload: bytes, kill_s: float | None
    ) -> InvokeResult:
        """Create an environment of ``pool`` and run the invocation on it (a cold start).

        Args:
            pool: the function; the caller checked it is not at capacity.
            request_id: the invocation's id.
            payload: the serialised invoke body.
            kill_s: the ``lambda.kill`` fault's delay, if one is due.
        """
        # Reserve the environment's slot before the first await, so concurrent invokes
        # cannot all pass the reserved-concurrency check while this one initialises.
        # _init_env turns the slot into an environment, or leaves it reserved on failure.
        pool.creating += 1
        env: Environment | None = None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_inits)
        try:
            async with self._slots:
                env, failure = await self._init_env(pool, "init", self.init_timeout_s)
                deadline = None
                if failure is not None and failure.kind == "timeout" and not self.closed:
                    # Lambda retries a timed-out init during the invoke, bounded by the
                    # function timeout (docs/protocols.md §3.1).
                    deadline = time.monotonic() + pool.spec.timeout_s
                    env, failure = await self._init_env(pool, "invoke", pool.spec.timeout_s)
        finally:
            if env is None:
                pool.creating -= 1
                if pool.capacity is not None:
                    pool.capacity.wake()
        if failure is not None or env is None:
            assert failure is not None
            return self._init_failed(pool, request_id, failure)
        return await run(
            pool, env, request_id, payload, cold=True, deadline=deadline, kill_s=kill_s
        )

    async def _config(self, pool: FunctionPool, env_id: str) -> dict[str, Any]:
        return environment_config(
            pool.spec,
            env_id,
            region=self.region,
            extra_env=self.extra_env,
            snapstart=self.snapstart,
            isolation=await self.isolation.config(pool.spec, self.extra_env),
        )

    async def _template(
        self, pool: FunctionPool, phase: str, limit_s: float
    ) -> tuple[templates.Template | None, InitFailure | None]:
        """The function's snapstart template, initialising it on first use."""
        if pool.template_lock is None:
            pool.template_lock = asyncio.Lock()
        async with pool.template_lock:
            old = pool.template
            if old is not None and old.alive:
                return old, None
            pool.template = None
            if old is not None:
                await templates.close_template(old)
            env_id = new_environment_id()
            config = await self._config(pool, env_id)
            zygote = await self._live_spawner(config.get("python"))
            assert isinstance(zygote, ZygoteSpawner)  # start() refuses snapstart otherwise
            pool.emit(env_id, logs.init_start_line(self.region))
            started = time.monotonic()
            template, hello = await templates.start_template(
                zygote,
                config,
                env_id,
                lambda line: pool.emit(env_id, line),
                limit_s,
            )
            elapsed_ms = (time.monotonic() - started) * 1000
            if template is not None:
                pool.template = template
                pool.emit(env_id, logs.snapshot_init_report_line(template.init_ms or 0.0))
                return template, None
            return None, self._init_failure(pool, env_id, phase, limit_s, hello, elapsed_ms, None)

    async def _init_env(
        self, pool: FunctionPool, phase: str, limit_s: float
    ) -> tuple[Environment | None, InitFailure | None]:
        """Create one environment and wait for its handler to be imported (or restored)."""
        env_id = new_environment_id()
        config = await self._config(pool, env_id)
        started = time.monotonic()
        spawner: Spawner | None = self.spawner
        if self.snapstart and "runtime_api" not in config:  # SnapStart: Python only
            template, failure = await self._template(pool, phase, limit_s)
            if template is None:
                return None, failure
            spawner = template.spawner
            config["kind"] = "restore"
            owner: templates.Template | None = template
            started = time.monotonic()
            pool.emit(env_id, logs.restore_start_line(self.region))
        else:
            owner = None
            spawner = await self._live_spawner(config.get("python"))
            pool.emit(env_id, logs.init_start_line(self.region, pool.spec.runtime))
        assert spawner is not None
        try:
            spawned = await spawner.spawn(config)
        except SpawnError as exc:
            error = {"errorType": "Runtime.Unknown", "errorMessage": str(exc)}
            elapsed_ms = (time.monotonic() - started) * 1000
            return None, InitFailure("error", error, elapsed_ms, env_id)
        env = Environment(
            env_id,
            pool.name,
            spawned,
            emit=lambda line: pool.emit(env_id, line),
            kill=spawner.kill,
        )
        env.template = owner
        pool.creating -= 1  # the caller's reserved slot is now this environment
        pool.envs[env_id] = env
        env.exited.add_done_callback(lambda _f: pool.on_exit(env, spawner))
        remaining = limit_s - (time.monotonic() - started)
        try:
            message = await env.channel.recv(max(remaining, 0.0))
        except TimeoutError:
            message = {"t": "timeout"}
        except (FrameError, ValueError):
            message = None
        except BaseException:  # cancelled: a half-initialised environment must not leak
            pool.abandon(env)
            pool.creating += 1
            raise
        elapsed_ms = (time.monotonic() - started) * 1000
        if message is not None and message.get("t") == "ready":
            env.init_ms = float(message.get("init_ms", elapsed_ms))
            env.restored = self.snapstart
            if env.restored:
                pool.emit(env_id, logs.restore_report_line(env.init_ms))
            env.state = "busy"
            return env, None
        pool.discard(env)
        pool.creating += 1  # back to a reserved slot, for a retry or for the caller to free
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
        return None, self._init_failure(pool, env_id, phase, limit_s, message, elapsed_ms, env)

    def _init_failure(
        self,
        pool: FunctionPool,
        env_id: str,
        phase: str,
        limit_s: float,
        message: Mapping[str, Any],
        elapsed_ms: float,
        env: Environment | None,
    ) -> InitFailure:
        """Log a failed init (error lines, INIT_REPORT) and describe it."""
        if message.get("t") == "timeout":
            pool.emit(env_id, logs.init_report_line(elapsed_ms, phase=phase, status="timeout"))
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Init timed out after {limit_s:.2f} seconds",
            }
            return InitFailure("timeout", error, elapsed_ms, env_id)
        error = dict(message.get("error") or {"errorType": "Runtime.Unknown"})
        init_ms = float(message.get("init_ms", elapsed_ms))
        for line in logs.error_lines(error):
            pool.emit(env_id, line)
        pool.emit(
            env_id,
            logs.init_report_line(
                init_ms, phase=phase, status="error", error_type=str(error.get("errorType"))
            ),
        )
        return InitFailure("error", error, init_ms, env_id)

    def _init_failed(
        self, pool: FunctionPool, request_id: str, failure: InitFailure
    ) -> InvokeResult:
        env_id = failure.environment_id
        pool.emit(env_id, logs.start_line(request_id))
        status: InvokeStatus
        if failure.kind == "timeout":
            status = "timeout"
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": (
                    f"RequestId: {request_id} Error: Task timed out after "
                    f"{pool.spec.timeout_s:.2f} seconds"
                ),
            }
            pool.emit(env_id, logs.timed_out_line(request_id, pool.spec.timeout_s))
            report_status = "timeout"
        else:
            status = "init_error"
            # The Invoke API's body for a failed init, in AWS's key order (the invoke's
            # request id included): {"errorMessage", "errorType", "requestId", "stackTrace"}.
            error = {
                "errorMessage": failure.error.get("errorMessage", ""),
                "errorType": failure.error.get("errorType", "Runtime.Unknown"),
                "requestId": request_id,
                **{
                    k: v for k, v in failure.error.items() if k not in ("errorType", "errorMessage")
                },
            }
            report_status = "error"
        duration = failure.init_ms
        billed = logs.billed_ms(duration)
        pool.emit(env_id, logs.end_line(request_id))
        pool.emit(
            env_id,
            logs.report_line(
                request_id,
                duration_ms=duration,
                billed=billed,
                memory_mb=pool.spec.memory_mb,
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


async def _probe_in_subprocess(stage: str) -> str | None:
    """:func:`~warmline.dev.runtime.sandbox.probe` in a fresh interpreter (spawn mode)."""
    code = (
        "import sys; from warmline.dev.runtime.sandbox import probe; "
        "print(probe(sys.argv[1]) or '')"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stage,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=python_env(),
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        return "the sandbox probe failed"
    return out.decode().strip() or None
