"""How many environments may exist at once: the account's quota and this machine's memory.

AWS (docs/protocols.md §8.4) lets an account run 1,000 executions at once per Region by
default; past that an invoke is throttled with ``TooManyRequestsException`` (reason
``ConcurrentInvocationLimitExceeded``), as past a function's reserved concurrency.

A laptop runs out of memory long before that: one connection sending frames faster than
its environments answer makes AWS scale out, an environment per frame, and the emulator
would fork as many processes. So the emulator also keeps a local cap: environments are
counted at their configured ``MemorySize``, as Lambda counts them, against a budget derived
from the memory this machine has available when the emulator starts. Past the budget an
invocation waits for an environment (an idle one of its function, or room left by one that
ends) instead of forking, and one warning line says what AWS would have done. An idle
environment of another function is reclaimed early to make room.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from warmline.dev.runtime.spec import ACCOUNT_CONCURRENCY

if TYPE_CHECKING:
    from warmline.dev.runtime.pool import FunctionPool

__all__ = ["BUDGET_SHARE", "Capacity", "available_memory_mb"]

#: The share of the memory available at start that environments may be counted against;
#: the rest is left to the emulator, the session store, the browser and the editor.
BUDGET_SHARE = 0.5
#: When /proc/meminfo cannot be read.
_FALLBACK_MB = 4096


def available_memory_mb() -> int:
    """``MemAvailable`` from ``/proc/meminfo`` in MB (a fixed guess where it is missing)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(pages // (1024 * 1024))
    except (OSError, ValueError, AttributeError):
        return _FALLBACK_MB


class Capacity:
    """The account quota and the local memory budget, shared by every function's pool.

    Args:
        budget_mb: what environments may add up to, counted at their ``MemorySize``
            (default: :data:`BUDGET_SHARE` of the memory available now).
        account_limit: concurrent environments of the account (AWS's default: 1,000).
        warn: called once with the line that says the cap was reached.
    """

    def __init__(
        self,
        *,
        budget_mb: int | None = None,
        account_limit: int = ACCOUNT_CONCURRENCY,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.budget_mb = (
            budget_mb if budget_mb is not None else int(available_memory_mb() * BUDGET_SHARE)
        )
        self.account_limit = account_limit
        self._warn = warn
        self.warned = False
        #: invocations waiting for room; woken whenever an environment is freed.
        self.waiting: list[asyncio.Future[None]] = []

    def set_warn(self, warn: Callable[[str], None]) -> None:
        """Where the one warning goes."""
        self._warn = warn

    @staticmethod
    def used(pools: Iterable[FunctionPool]) -> tuple[int, int]:
        """``(environments, MB)`` that exist or are being created, over every function."""
        count = 0
        mb = 0
        for pool in pools:
            n = len(pool.envs) + pool.creating
            count += n
            mb += n * pool.spec.memory_mb
        return count, mb

    def fits(self, pools: Iterable[FunctionPool], memory_mb: int) -> bool:
        """Whether one more environment of ``memory_mb`` stays within the local budget."""
        count, mb = self.used(pools)
        # One environment always fits, whatever its size: an emulator that can run
        # nothing would help nobody.
        return count == 0 or mb + memory_mb <= self.budget_mb

    def warn_once(self, pools: Iterable[FunctionPool], function: str) -> None:
        """Say, once, that invocations now wait, and what AWS would have done."""
        if self.warned or self._warn is None:
            return
        self.warned = True
        count, mb = self.used(pools)
        self._warn(
            f"[warmline] local cap reached: {count} environments counted at their memory "
            f"size ({mb} MB of a {self.budget_mb} MB budget, half of this machine's "
            f"available memory); invocations of {function} and others now wait for an "
            "environment. AWS would start a new environment for each, up to the account's "
            f"{self.account_limit} concurrent executions, then throttle "
            "(TooManyRequestsException)."
        )

    async def wait(self) -> None:
        """Until an environment is freed (idle again, or gone)."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        try:
            await future
        finally:
            if future in self.waiting:
                self.waiting.remove(future)

    def wake(self) -> None:
        """An environment was freed: every waiter looks again."""
        waiting, self.waiting = self.waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)
