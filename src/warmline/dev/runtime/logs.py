"""Where every log line of every environment goes: console, JSON-lines file, callbacks.

Lines are CloudWatch-shaped (docs/protocols.md §3.3): the platform's ``INIT_START`` /
``START`` / ``END`` / ``REPORT`` / ``INIT_REPORT`` lines with *tab* separators, the
function's own stdout/stderr lines in between. The file keeps one JSON object per line,
``{"ts", "function", "env", "line"}``, so ``warmline report`` can read a dev session later
like a CloudWatch export. The console shows ``[function env-short] line`` with the prefix
coloured per function when it is a terminal.

This module also formats the platform lines, so their exact shape lives in one place.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import signal
import sys
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

__all__ = [
    "LogRecord",
    "LogSink",
    "billed_ms",
    "end_line",
    "error_lines",
    "exit_description",
    "init_report_line",
    "init_start_line",
    "iso_now",
    "report_line",
    "restore_report_line",
    "restore_start_line",
    "runtime_version",
    "snapshot_init_report_line",
    "start_line",
    "timed_out_line",
]

#: Console prefixes kept (one per environment); the table is cleared when full.
_MAX_PREFIXES = 1024
_COLORS = ("36", "35", "33", "32", "34", "91", "96", "95", "93", "92")


class LogRecord(NamedTuple):
    """One log line of one environment.

    A named tuple rather than a frozen dataclass: three are made per invocation, and a
    frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost three times
    as much.

    Attributes:
        ts: epoch seconds when the emulator received it.
        function: the function's name.
        env: the environment id.
        line: the text, without its newline.
    """

    ts: float
    function: str
    env: str
    line: str


#: The C string encoder ``json.dumps`` uses (``ensure_ascii``): the file's lines are
#: written out with it, in ``json.dumps``'s default format, without an encoder per line.
_json_str = json.encoder.encode_basestring_ascii


class LogSink:
    """Receives every line; writes the console and the file, calls ``on_record``.

    Args:
        console: where to print (``None``: nowhere).
        color: colour the prefix; ``None`` = when ``console`` is a terminal.
        path: the JSON-lines file to append to (``None``: none).
        on_record: called with each :class:`LogRecord` (the dashboard, tests).
    """

    def __init__(
        self,
        *,
        console: TextIO | None = sys.stderr,
        color: bool | None = None,
        path: Path | None = None,
        on_record: Callable[[LogRecord], None] | None = None,
    ) -> None:
        self._console = console
        if color is None:
            isatty = getattr(console, "isatty", None)
            color = bool(isatty and isatty())
        self._color = color
        self._file: TextIO | None = path.open("a", encoding="utf-8") if path else None
        self._on_record = on_record
        self._listeners: list[Callable[[LogRecord], None]] = []
        self._flush_pending = False
        # Console lines wait for the flush: stderr is line-buffered, so writing each line
        # is a system call each (three per invocation under load), one write per pass is one.
        self._console_lines: list[str] = []
        self._prefixes: dict[tuple[str, str], tuple[str, str]] = {}

    def subscribe(self, listener: Callable[[LogRecord], None]) -> None:
        """Also call ``listener`` with each record (the ``warmline dev`` dashboard's feed)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[LogRecord], None]) -> None:
        """Stop calling ``listener`` (no error if it was not subscribed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, function: str, environment_id: str, line: str) -> None:
        """Record one line.

        Args:
            function: the function's name.
            environment_id: the environment's id.
            line: the text (a trailing newline is stripped).
        """
        line = line.rstrip("\n")
        ts = time.time()
        prefixes = self._prefixes.get((function, environment_id))
        if prefixes is None:
            prefixes = self._prefix(function, environment_id)
        if self._console is not None:
            self._console_lines.append(f"{prefixes[0]} {line}\n")
        if self._file is not None:
            # = json.dumps({"ts": ts, "function": ..., "env": ..., "line": line})
            self._file.write(f'{{"ts": {ts!r}, {prefixes[1]}"line": {_json_str(line)}}}\n')
        if not self._flush_pending:
            self._flush_soon()
        if self._on_record is not None or self._listeners:
            record = LogRecord(ts, function, environment_id, line)
            if self._on_record is not None:
                self._on_record(record)
            for listener in self._listeners:
                listener(record)

    def _prefix(self, function: str, environment_id: str) -> tuple[str, str]:
        """The console prefix and the file line's middle of one environment, made once."""
        prefix = f"[{function} {environment_id[:8]}]"
        if self._color:
            code = _COLORS[zlib.crc32(function.encode()) % len(_COLORS)]
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        middle = f'"function": {_json_str(function)}, "env": {_json_str(environment_id)}, '
        if len(self._prefixes) >= _MAX_PREFIXES:  # environments come and go
            self._prefixes.clear()
        self._prefixes[(function, environment_id)] = prefixes = (prefix, middle)
        return prefixes

    def _flush_soon(self) -> None:
        # One flush per event-loop pass, not per line: under load an emulator writes three
        # lines per invocation, and a flush is a system call each (outside a loop: now).
        if self._flush_pending:
            return
        import asyncio  # loaded already in the emulator; logs.py itself stays light

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_pending = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write out what the console and the file hold."""
        self._flush_pending = False
        if self._console is not None:
            lines, self._console_lines = self._console_lines, []
            with contextlib.suppress(OSError, ValueError):  # a closed or broken console
                if lines:
                    self._console.write("".join(lines))
                self._console.flush()
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


# --- platform lines (docs/protocols.md §3.3) -------------------------------------------------


@functools.lru_cache(maxsize=8)
def runtime_version(region: str) -> tuple[str, str]:
    """The ``Runtime Version`` and its ARN for this interpreter, stable per version.

    Args:
        region: the emulated region.

    Returns:
        ``("python:3.11.v1", "arn:aws:lambda:<region>::runtime:<64 hex>")``.
    """
    major, minor = sys.version_info[:2]
    version = f"python:{major}.{minor}.v{sys.version_info[2]}"
    digest = hashlib.sha256(f"warmline:{sys.version}".encode()).hexdigest()
    return version, f"arn:aws:lambda:{region}::runtime:{digest}"


def init_start_line(region: str, runtime: str | None = None) -> str:
    """``INIT_START Runtime Version: ...\\tRuntime Version ARN: ...``.

    Args:
        region: the emulated region.
        runtime: the declared runtime when it is not Python (``nodejs20.x``,
            ``provided.al2023``): its family names the version, as on AWS.
    """
    version, arn = runtime_version(region)
    if runtime is not None and not runtime.startswith("python"):
        if runtime.startswith("nodejs"):  # nodejs20.x -> nodejs:20.v1
            version = f"nodejs:{runtime[len('nodejs') :].split('.')[0]}.v1"
        else:  # provided.al2023 -> provided:al2023.v1
            version = f"provided:{runtime.partition('.')[2] or 'al2'}.v1"
        arn = arn[:-64] + hashlib.sha256(f"warmline:{runtime}".encode()).hexdigest()
    return f"INIT_START Runtime Version: {version}\tRuntime Version ARN: {arn}"


def restore_start_line(region: str) -> str:
    """``RESTORE_START Runtime Version: ...``: a snapstart environment resumes (§3.3, §3.5)."""
    return "RESTORE_START" + init_start_line(region)[len("INIT_START") :]


def restore_report_line(restore_ms: float) -> str:
    """``RESTORE_REPORT Restore Duration: X ms``."""
    return f"RESTORE_REPORT Restore Duration: {restore_ms:.2f} ms"


def snapshot_init_report_line(init_ms: float) -> str:
    """``INIT_REPORT Init Duration: X ms``: where Init Duration goes with SnapStart (§3.3)."""
    return f"INIT_REPORT Init Duration: {init_ms:.2f} ms"


def start_line(request_id: str) -> str:
    """``START RequestId: <id> Version: $LATEST``."""
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(request_id: str) -> str:
    """``END RequestId: <id>``."""
    return f"END RequestId: {request_id}"


def billed_ms(duration_ms: float) -> int:
    """Lambda bills per started millisecond."""
    return max(1, math.ceil(duration_ms))


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    billed: int,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    restore_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """The REPORT line, tab-separated, fields in CloudWatch's order.

    Args:
        request_id: the invocation.
        duration_ms: Duration.
        billed: Billed Duration.
        memory_mb: Memory Size.
        max_memory_mb: Max Memory Used.
        init_ms: Init Duration, on the first invocation of an on-demand environment.
        restore_ms: Restore Duration (snapstart); Billed Restore Duration rounds it up.
        status: ``Status:`` for failed invocations (``timeout``, ``error``).
        error_type: ``Error Type:`` with a status.

    Returns:
        The line.
    """
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_mb} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if restore_ms is not None:
        parts.append(f"Restore Duration: {restore_ms:.2f} ms")
        parts.append(f"Billed Restore Duration: {billed_ms(restore_ms)} ms")
    if status is not None:
        parts.append(f"Status: {status}")
        if error_type is not None:
            parts.append(f"Error Type: {error_type}")
    return "\t".join(parts)


def init_report_line(
    init_ms: float, *, phase: str, status: str, error_type: str | None = None
) -> str:
    """``INIT_REPORT Init Duration: X ms\\tPhase: init\\tStatus: timeout`` (§3.1)."""
    line = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: {phase}\tStatus: {status}"
    if error_type is not None:
        line += f"\tError Type: {error_type}"
    return line


def iso_now() -> str:
    """UTC now as CloudWatch prints it: ``2026-11-23T12:34:56.789Z``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def timed_out_line(request_id: str, timeout_s: float) -> str:
    """``<ISO time> <id> Task timed out after 3.00 seconds``."""
    return f"{iso_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def exit_description(code: int | None) -> str:
    """Like the Lambda service (a Go program) prints a process state."""
    if code is None:
        return "unknown"
    if code >= 0:
        return f"exit status {code}"
    try:
        name = signal.strsignal(-code) or f"signal {-code}"
    except ValueError:
        name = f"signal {-code}"
    return "signal: " + name[:1].lower() + name[1:]


def error_lines(error: Mapping[str, Any]) -> list[str]:
    """``[ERROR] Type: message`` and the traceback, one line each, as the runtime logs them.

    AWS's runtime interface client writes the ``Traceback (most recent call last):`` line
    whenever the error has a stack trace, even an empty one: an unpackaged import logs
    ``[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named
    'requests'`` and then that line alone.
    """
    lines = [f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}"]
    trace = error.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for entry in trace:
            lines.extend(str(entry).rstrip("\n").split("\n"))
    return lines
