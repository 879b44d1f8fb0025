"""One execution environment as the emulator sees it: its process, socket and log pipes.

The environment's stdout and stderr are pipes read on the event loop; each complete line
goes to the :class:`~warmline.dev.runtime.logs.LogSink`. After an invocation the
environment writes :data:`~warmline.dev.runtime.bootstrap.END_MARKER` on both pipes; the
emulator waits for both markers before it logs END, so a function's prints always land
between its START and END, as in CloudWatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from warmline.dev.runtime.bootstrap import END_MARKER
from warmline.dev.runtime.spec import EnvironmentInfo
from warmline.dev.runtime.wire import AsyncChannel

if TYPE_CHECKING:
    from warmline.dev.runtime.procs import Spawned

__all__ = ["MAX_LINE_BYTES", "Environment", "LinePipe", "new_environment_id"]

_MARKER = END_MARKER.encode()
_READ_SIZE = 64 * 1024
#: A line longer than this is cut into pieces (CloudWatch's event size is 256 KB).
MAX_LINE_BYTES = 256 * 1024


def new_environment_id() -> str:
    """32 hex digits, like the tail of a Lambda log stream name."""
    return uuid.uuid4().hex


class LinePipe:
    """Reads one pipe on the loop; calls back per line and per end marker."""

    def __init__(
        self,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        on_line: Callable[[str], None],
        on_marker: Callable[[str], None],
    ) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._loop = loop
        self._on_line = on_line
        self._on_marker = on_marker
        self._buf = b""
        self.eof = asyncio.Event()
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            if self._buf:
                self._on_line(self._buf.decode(errors="replace"))
                self._buf = b""
            self.close()
            return
        data = self._buf + chunk
        *lines, self._buf = data.split(b"\n")
        while len(self._buf) > MAX_LINE_BYTES:  # CloudWatch splits oversize events too
            lines.append(self._buf[:MAX_LINE_BYTES])
            self._buf = self._buf[MAX_LINE_BYTES:]
        for whole in lines:
            for start in range(0, max(len(whole), 1), MAX_LINE_BYTES):
                self._line(whole[start : start + MAX_LINE_BYTES])

    def _line(self, raw: bytes) -> None:
        at = raw.find(_MARKER)
        if at < 0:
            self._on_line(raw.decode(errors="replace"))
            return
        if at:  # the invocation's last print had no newline
            self._on_line(raw[:at].decode(errors="replace"))
        self._on_marker(raw[at + len(_MARKER) :].decode(errors="replace"))

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        self.eof.set()


class Environment:
    """A live environment process and its bookkeeping.

    Args:
        environment_id: its id (also in its log stream name).
        function: the function's name.
        spawned: the process, socket and pipes.
        emit: ``emit(line)`` for each line it prints.
        kill: ``kill(pid)`` of the process that forked it.
    """

    def __init__(
        self,
        environment_id: str,
        function: str,
        spawned: Spawned,
        emit: Callable[[str], None],
        kill: Callable[[int], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.id = environment_id
        self.function = function
        self.pid = spawned.pid
        self.exited = spawned.exited
        self._kill = kill
        self.channel = AsyncChannel(spawned.sock, loop)
        self.state = "initializing"
        self.invocations = 0
        self.created_at = time.time()
        self.last_used_at = self.created_at
        self.init_ms: float | None = None
        #: Forked from a snapstart template: ``init_ms`` is a Restore Duration.
        self.restored = False
        #: Retire after the current invocation (the code changed).
        self.retired = False
        #: The snapstart template it was forked from (it must outlive the environment).
        self.template: object | None = None
        self.max_memory_mb = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        #: monotonic time it last became idle (the reclaim timer measures from it).
        self.idle_since = time.monotonic()
        self._markers: dict[str, int] = {}
        self._marker_event = asyncio.Event()
        self._pipes = (LinePipe(spawned.stdout_fd, loop, emit, self._marker),)

    def _marker(self, request_id: str) -> None:
        self._markers[request_id] = self._markers.get(request_id, 0) + 1
        self._marker_event.set()

    async def wait_output(self, request_id: str, timeout_s: float) -> None:
        """Wait until the invocation's prints have all been read (both end markers).

        Args:
            request_id: the invocation.
            timeout_s: give up after this long (a handler that closed its stdout).
        """
        deadline = time.monotonic() + timeout_s
        while self._markers.get(request_id, 0) < len(self._pipes):
            if all(p.eof.is_set() for p in self._pipes):
                break
            self._marker_event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._marker_event.wait(), remaining)
        self._markers.pop(request_id, None)

    async def drain_output(self, timeout_s: float) -> None:
        """After a kill: read what the process wrote before it died, until end of file."""
        waits = [asyncio.ensure_future(p.eof.wait()) for p in self._pipes]
        _done, pending = await asyncio.wait(waits, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def peak_memory_mb(self) -> int:
        """The process's peak RSS from ``/proc`` (Linux), else the last reported value."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return max(self.max_memory_mb, int(line.split()[1]) // 1024)
        except (OSError, ValueError, IndexError):
            pass
        return self.max_memory_mb

    def kill(self) -> None:
        """SIGKILL the process (and its process group); it is then ``dead``."""
        self.cancel_idle_timer()
        self.state = "dead"
        if not self.exited.done():
            self._kill(self.pid)

    def cancel_idle_timer(self) -> None:
        """Forget a scheduled idle reclaim."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def close(self) -> None:
        """Release the socket and pipes (the process must already be killed or exited)."""
        self.cancel_idle_timer()
        self.state = "dead"
        self.channel.close()
        for pipe in self._pipes:
            pipe.close()

    def info(self) -> EnvironmentInfo:
        """A snapshot for the dashboard and tests."""
        return EnvironmentInfo(
            environment_id=self.id,
            function=self.function,
            pid=self.pid,
            state=self.state,
            invocations=self.invocations,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            init_ms=self.init_ms,
        )
