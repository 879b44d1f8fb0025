"""One execution environment as the emulator sees it: its process, socket and log pipes.

The environment's stdout and stderr share one pipe, read on the event loop; each complete
line goes to the :class:`~warmline.dev.runtime.logs.LogSink`. A function's prints must land
between its START and END, as in CloudWatch, but the result comes back on another
descriptor (the socket) and may be read first. The environment flushes its streams before
it sends the result, so by then every byte the invocation printed is in the pipe (a write
to a pipe returns once the kernel holds it): when the result arrives the emulator reads the
pipe dry (:meth:`LinePipe.drain`) before it logs END. No end marker follows an invocation:
waiting for one would cost a system call and a loop wake-up per invocation on both sides.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from warmline.dev.runtime.spec import EnvironmentInfo
from warmline.dev.runtime.wire import AsyncChannel

if TYPE_CHECKING:
    from warmline.dev.runtime.procs import Spawned

__all__ = ["MAX_LINE_BYTES", "Environment", "LinePipe", "new_environment_id"]

_READ_SIZE = 64 * 1024
#: Reads of :meth:`LinePipe.drain` at most (4 MB); the loop's reader takes the rest.
_DRAIN_READS = 64
#: A line longer than this is cut into pieces (CloudWatch's event size is 256 KB).
MAX_LINE_BYTES = 256 * 1024


def new_environment_id() -> str:
    """32 hex digits, like the tail of a Lambda log stream name."""
    return uuid.uuid4().hex


class LinePipe:
    """Reads one pipe on the loop and calls back per line."""

    def __init__(
        self, fd: int, loop: asyncio.AbstractEventLoop, on_line: Callable[[str], None]
    ) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._loop = loop
        self._on_line = on_line
        self._buf = b""
        self.eof = asyncio.Event()
        loop.add_reader(fd, self._readable)

    def _readable(self) -> bool:
        """Read once; True if the pipe held data (False: empty now, or at its end)."""
        try:
            chunk = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._flush_partial()
            self.close()
            return False
        data = self._buf + chunk
        *lines, self._buf = data.split(b"\n")
        while len(self._buf) > MAX_LINE_BYTES:  # CloudWatch splits oversize events too
            lines.append(self._buf[:MAX_LINE_BYTES])
            self._buf = self._buf[MAX_LINE_BYTES:]
        on_line = self._on_line
        for whole in lines:
            if len(whole) <= MAX_LINE_BYTES:
                on_line(whole.decode(errors="replace"))
                continue
            for start in range(0, len(whole), MAX_LINE_BYTES):
                on_line(whole[start : start + MAX_LINE_BYTES].decode(errors="replace"))
        return True

    def drain(self) -> None:
        """Read everything the pipe holds now; a last line without its newline ends here.

        Called when an invocation's result has arrived: the environment flushed before it
        sent the result, so what the invocation printed is all in the pipe.
        """
        # Bounded: a thread may print on and on.
        for _ in range(_DRAIN_READS if self._fd >= 0 else 0):
            if not self._readable():
                break
        self._flush_partial()  # the invocation's last print had no newline

    def _flush_partial(self) -> None:
        """A line still waiting for its newline is a line now."""
        if self._buf:
            self._on_line(self._buf.decode(errors="replace"))
            self._buf = b""

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
        self._pipes = (LinePipe(spawned.stdout_fd, loop, emit),)

    def read_output(self) -> None:
        """Log every line the environment has printed so far (its result has arrived)."""
        for pipe in self._pipes:
            pipe.drain()

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
