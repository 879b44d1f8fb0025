"""Runs the configured schedules: EventBridge rules firing Event invocations.

Each enabled rule sleeps until its next fire time (``rate`` from start, ``cron`` on the wall
clock in UTC) and sends every target the scheduled event of docs/protocols.md §4.1, or the rule's
constant input (the target's own when it has one, as each EventBridge target carries its own
``Input``), through the async bus (so AWS's async retries apply). ``fire(name)`` runs a
rule now, enabled or not, for tests and for "try my warmer" at the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from warmline.config.schedule import parse_expression

if TYPE_CHECKING:
    from warmline.config import DevConfig, ScheduleConfig

__all__ = ["Scheduler", "scheduled_event"]


def scheduled_event(rule: str, region: str, account: str, now: datetime) -> dict[str, Any]:
    """The event EventBridge sends for a scheduled rule (docs/protocols.md §4.1)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule}"],
        "detail": {},
    }


class Scheduler:
    """Fires schedules into ``submit(function, event)`` (the async bus).

    Args:
        config: the schedules, region and account.
        submit: queues an Event invocation.
    """

    def __init__(self, config: DevConfig, submit: Callable[[str, Any], str]) -> None:
        self._config = config
        self._submit = submit
        self._tasks: list[asyncio.Task[None]] = []
        self.fired: dict[str, int] = {name: 0 for name in config.schedules}

    def start(self) -> None:
        """Start a timer per enabled schedule."""
        loop = asyncio.get_running_loop()
        for schedule in self._config.schedules.values():
            if schedule.enabled:
                self._tasks.append(loop.create_task(self._run(schedule)))

    async def close(self) -> None:
        """Stop every timer."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def fire(self, name: str) -> list[str]:
        """Fire schedule ``name`` now; returns the async request ids (one per target).

        Raises:
            KeyError: unknown schedule.
        """
        schedule = self._config.schedules[name]
        self.fired[name] += 1
        ids = []
        for target in schedule.targets:
            event = schedule.input_for(target)
            if event is None:
                config = self._config
                event = scheduled_event(name, config.region, config.account, datetime.now(UTC))
            ids.append(self._submit(target, event))
        return ids

    async def _run(self, schedule: ScheduleConfig) -> None:
        plan = parse_expression(schedule.expression)
        loop = asyncio.get_running_loop()
        start_wall = datetime.now(UTC)
        start_mono = loop.time()
        next_at = plan.next_after(start_wall)
        while True:
            delay = (next_at - start_wall).total_seconds() - (loop.time() - start_mono)
            if delay > 0:
                await asyncio.sleep(delay)
            self.fire(schedule.name)
            next_at = plan.next_after(next_at)
