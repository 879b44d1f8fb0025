"""Fault injection for ``warmline dev``: break the stack on purpose, reproducibly.

The plan (which faults, how often, the seed) is :class:`~warmline.config.faults.FaultPlan`,
read from ``[faults]``, ``--fault`` or ``PUT /_warmline/faults``. :class:`FaultInjector`
decides per chance whether a fault fires. Each injection is logged (``[warmline fault] ...``)
and counted in :attr:`FaultInjector.injected`, so a test can say exactly what happened to
the caller.

Decisions come from one seeded PRNG in the emulator (never in the function processes), so
a run with a seed is repeatable as long as the order of chances is (concurrent calls may
interleave differently).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from warmline.config.faults import FAULTS, FaultPlan, Trigger

__all__ = ["FaultInjector"]


class FaultInjector:
    """Decides, per chance, whether a fault fires; counts and logs what it injected.

    Args:
        plan: the faults switched on.
        log: receives one line per injection.
    """

    def __init__(self, plan: FaultPlan | None = None, log: Callable[[str], None] | None = None):
        self._log = log
        self.replace(plan or FaultPlan())

    def replace(self, plan: FaultPlan) -> None:
        """Switch to ``plan``: counters and the PRNG start over."""
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._chances: Counter[str] = Counter()
        #: injections so far, by fault name.
        self.injected: Counter[str] = Counter()
        names = plan.triggers
        self.any_connections = any(n.startswith(("connections.", "client.")) for n in names)
        self.any_invoke = any(n.startswith(("lambda.", "store.")) for n in names)
        self.any_async = any(n.startswith("async.") for n in names)

    def fire(self, name: str, function: str | None = None, detail: str = "") -> Trigger | None:
        """This chance of ``name``: its trigger when the fault fires now, else None."""
        trigger = self.plan.triggers.get(name)
        if trigger is None:
            return None
        if trigger.functions and function not in trigger.functions:
            return None
        seen = self._chances[name]
        self._chances[name] = seen + 1
        if seen < trigger.after:
            return None
        if trigger.count is not None and self.injected[name] >= trigger.count:
            return None
        if trigger.rate < 1.0 and self._rng.random() >= trigger.rate:
            return None
        self.injected[name] += 1
        if self._log is not None:
            where = f" {function}" if function else ""
            more = f": {detail}" if detail else ""
            self._log(f"[warmline fault] {name}{where}{more}")
        return trigger

    def state(self) -> dict[str, Any]:
        """What ``GET /_warmline/faults`` answers: the plan and the injections so far."""
        return {
            "faults": self.plan.to_dict(),
            "injected": dict(self.injected),
            "known": dict(FAULTS),
        }
