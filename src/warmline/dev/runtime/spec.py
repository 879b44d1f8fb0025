"""Value types shared by the emulated Lambda runtime and its callers (the gateway).

They are the contract between the gateway and the runtime (docs/architecture.md, "The
emulator"): plain frozen dataclasses, so the gateway and the dashboard can hold them without
touching the runtime's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ACCOUNT_CONCURRENCY",
    "DEFAULT_EPHEMERAL_STORAGE_MB",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT_S",
    "EnvironmentInfo",
    "FunctionSpec",
    "InvokeResult",
    "InvokeStatus",
]

#: Lambda's default memory size and function timeout (docs/protocols.md §3.1, §3.7).
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3.0
#: Lambda's default ``/tmp`` size, ``EphemeralStorage`` (docs/protocols.md §8.1).
DEFAULT_EPHEMERAL_STORAGE_MB = 512
#: Concurrent executions an account may run per Region by default (docs/protocols.md §8.4).
ACCOUNT_CONCURRENCY = 1000

InvokeStatus = Literal["ok", "error", "timeout", "crash", "init_error", "throttled"]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One Lambda function as the emulator runs it.

    Attributes:
        name: the function name, e.g. ``"ws"``.
        handler: AWS style ``"module.func"`` (module path relative to ``code_dir``, dots or
            slashes for packages).
        code_dir: first on ``sys.path`` and the environment's cwd (``LAMBDA_TASK_ROOT``).
        memory_mb: reported as Memory Size and ``context.memory_limit_in_mb``.
        timeout_s: the function timeout; an invocation running longer is killed.
        environment: the function's own variables (win over every other source).
        reserved_concurrency: most environments at once; ``None`` is unbounded.
        runtime: the declared runtime (``"python3.12"``, ``"nodejs20.x"``,
            ``"provided.al2023"``); Python environments run on that interpreter when this
            machine has it. ``None``: the emulator's own Python.
        ephemeral_storage_mb: the size of each environment's private ``/tmp``.
        bundles_warmline: whether the function's package contains warmline (every
            function of a ``warmline.toml``, as ``warmline deploy package`` bundles it); a
            template's function gets warmline only by declaring it
            (:mod:`warmline.dev.runtime.deps`).
    """

    name: str
    handler: str
    code_dir: Path
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    runtime: str | None = None
    ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_STORAGE_MB
    bundles_warmline: bool = True
    #: ``--debug``: ``tty`` and/or ``port`` for its environments (:mod:`warmline.dev.debug`).
    debug: Mapping[str, Any] | None = None
    #: ``"aws"``: a Python function runs under AWS's runtime interface client over the
    #: Runtime API (:mod:`warmline.dev.runtime.runtimes`); None: the built-in runtime.
    runtime_client: str | None = None


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What one invocation produced.

    Attributes:
        request_id: uuid4, the same as in START/END/REPORT and ``context.aws_request_id``.
        status: ``"ok"`` or how it failed.
        payload: the handler's return value, JSON round-tripped, when ``status == "ok"``.
        error: Lambda-style ``{"errorType", "errorMessage", "stackTrace"?}`` otherwise.
        cold: this invocation paid an init (or a restore in snapstart mode).
        init_ms: Init Duration (or Restore Duration) when cold.
        duration_ms: the REPORT Duration.
        billed_ms: the REPORT Billed Duration.
        environment_id: the environment that ran it (empty when throttled).
    """

    request_id: str
    status: InvokeStatus
    payload: Any
    error: dict[str, Any] | None
    cold: bool
    init_ms: float | None
    duration_ms: float
    billed_ms: int
    environment_id: str


@dataclass(frozen=True, slots=True)
class EnvironmentInfo:
    """A snapshot of one execution environment, for the dashboard and tests.

    Attributes:
        environment_id: 32 hex digits; also the tail of the log stream name.
        function: the function's name.
        pid: the environment's OS process.
        state: ``"initializing"``, ``"idle"``, ``"busy"`` or ``"dead"``.
        invocations: how many invocations it has started.
        created_at: epoch seconds.
        last_used_at: epoch seconds of the last invocation's end (or creation).
        init_ms: its Init (or Restore) Duration, once known.
    """

    environment_id: str
    function: str
    pid: int
    state: str
    invocations: int
    created_at: float
    last_used_at: float
    init_ms: float | None


def throttled_result(
    request_id: str, reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded"
) -> InvokeResult:
    """What a throttled invoke returns: ``TooManyRequestsException``, nothing ran.

    Args:
        request_id: the invocation's id.
        reason: the ``Reason`` AWS gives (reserved concurrency, or the account's
            ``ConcurrentInvocationLimitExceeded``).

    Returns:
        The result (no environment, no logs, as on AWS).
    """
    return InvokeResult(
        request_id=request_id,
        status="throttled",
        payload=None,
        error={
            "errorType": "TooManyRequestsException",
            "errorMessage": "Rate Exceeded.",
            "Reason": reason,
        },
        cold=False,
        init_ms=None,
        duration_ms=0.0,
        billed_ms=0,
        environment_id="",
    )
