"""An environment is free once its handler returned, not once the emulator got round to it.

On AWS a message that arrives after the previous invocation returned lands on the same,
now idle, environment; one that arrives while the handler still runs scales out. The
emulator reads results and log markers a loop pass or two after they were written, so
without care it scaled out in the gap: a cold start AWS would not have done
(bench/emulator_vs_offline.py saw ~80 cold starts for 50 connections; now 50).
"""

from __future__ import annotations

import asyncio
import select
from typing import Any

from runtime_helpers import run, started

from warmline.dev.runtime.runtime import Runtime


def _wait_written(runtime: Runtime, env_id: str) -> None:
    """Block (the loop too) until the environment has written its result to our socket."""
    env = runtime._functions["f"].envs[env_id]  # the test looks inside
    poller = select.poll()
    poller.register(env.channel.fd, select.POLLIN)
    assert poller.poll(5000), "the environment never answered"


def test_a_message_after_the_handler_returned_reuses_its_environment() -> None:
    async def main() -> tuple[Any, Any, Any]:
        async with started() as (rt, _logs):
            first = await rt.invoke("f", {"n": 0})  # cold; the environment is idle again
            loop = asyncio.get_running_loop()
            second_task = loop.create_task(rt.invoke("f", {"n": 1}))
            await asyncio.sleep(0)  # second is sent; its result is not read yet
            _wait_written(rt, first.environment_id)
            # The handler has returned (its result is in our socket) but the loop has not
            # read it: a new invocation now must not scale out.
            third = await rt.invoke("f", {"n": 2})
            return first, await second_task, third

    first, second, third = run(main())
    assert first.cold and not second.cold and not third.cold
    assert first.environment_id == second.environment_id == third.environment_id


def test_a_message_while_the_handler_runs_still_scales_out() -> None:
    async def main() -> tuple[Any, Any]:
        async with started() as (rt, _logs):
            await rt.invoke("f", {})
            busy = asyncio.get_running_loop().create_task(
                rt.invoke("f", {"action": "sleep", "seconds": 0.3})
            )
            await asyncio.sleep(0.05)
            other = await rt.invoke("f", {})
            return await busy, other

    busy, other = run(main())
    assert not busy.cold
    assert other.cold and other.environment_id != busy.environment_id
