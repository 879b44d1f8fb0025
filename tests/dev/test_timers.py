"""FixedDelayTimers: the per-message timeouts' queue (warmline.dev.timers)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from warmline.dev.timers import FixedDelayTimers

DELAY_S = 0.05


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_timers_fire_in_order_after_their_delay_and_not_before() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop, DELAY_S)
        fired: list[tuple[int, float]] = []
        done = loop.create_future()
        armed: list[float] = []
        for n in range(5):
            armed.append(loop.time())
            timers.call_later(lambda n=n: fired.append((n, loop.time())))
            await asyncio.sleep(0.005)
        timers.call_later(done.set_result, None)
        await asyncio.wait_for(done, 5)
        assert [n for n, _ in fired] == [0, 1, 2, 3, 4]
        for (n, at), start in zip(fired, armed, strict=True):
            assert at >= start + DELAY_S - 1e-3, n
        assert len(timers) == 0

    _run(main())


def test_a_cancelled_timer_never_fires_and_cancel_is_idempotent() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop, DELAY_S)
        fired: list[str] = []
        first = timers.call_later(fired.append, "first")
        timers.call_later(fired.append, "second")
        assert len(timers) == 2
        first.cancel()
        first.cancel()
        assert len(timers) == 1
        done = loop.create_future()
        timers.call_later(done.set_result, None)
        await asyncio.wait_for(done, 5)
        assert fired == ["second"]
        first.cancel()  # after the others fired: still nothing
        assert len(timers) == 0

    _run(main())


def test_cancel_after_firing_changes_nothing() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop, 0.0)
        done = loop.create_future()
        timer = timers.call_later(done.set_result, "x")
        assert await asyncio.wait_for(done, 5) == "x"
        timer.cancel()
        assert len(timers) == 0
        again = loop.create_future()
        timers.call_later(again.set_result, "y")
        assert await asyncio.wait_for(again, 5) == "y"

    _run(main())


def test_a_callback_may_arm_the_next_timer() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop, 0.01)
        count = 0
        done = loop.create_future()

        def tick() -> None:
            nonlocal count
            count += 1
            if count < 5:
                timers.call_later(tick)
            else:
                done.set_result(None)

        timers.call_later(tick)
        await asyncio.wait_for(done, 5)
        await asyncio.sleep(0.05)  # a second handle would tick again here
        assert count == 5

    _run(main())


def test_a_failing_callback_is_reported_and_the_others_still_fire() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        timers = FixedDelayTimers(loop, 0.0)
        done = loop.create_future()

        def boom() -> None:
            raise RuntimeError("boom")

        timers.call_later(boom)
        timers.call_later(done.set_result, "after")
        assert await asyncio.wait_for(done, 5) == "after"
        assert len(reported) == 1
        assert isinstance(reported[0]["exception"], RuntimeError)

    _run(main())


def test_cancelled_timers_do_not_pile_up() -> None:
    """A long run arms and cancels a timer per message: the queue must not keep them all."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop, 30.0)
        for _ in range(10_000):
            timers.call_later(print).cancel()
        assert len(timers) == 0
        assert len(timers._queue) < 1_000
        live = [timers.call_later(print) for _ in range(3)]
        for _ in range(10_000):
            timers.call_later(print).cancel()
        assert len(timers) == 3
        assert len(timers._queue) < 1_000
        assert all(not timer.cancelled for timer in live)
        timers.close()
        assert len(timers) == 0 and all(timer.cancelled for timer in live)

    _run(main())


def test_negative_delay_is_refused() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="delay"):
            FixedDelayTimers(asyncio.get_running_loop(), -1.0)

    _run(main())


def test_a_cancelled_or_fired_timer_lets_go_of_its_callback() -> None:
    """A callback is usually a method of the timer's holder: kept, the pair is a cycle only
    the garbage collector frees (under load, thousands of objects per collection)."""
    import gc
    import weakref

    class Holder:
        def __init__(self, timers: FixedDelayTimers) -> None:
            self.timer = timers.call_later(self.fire)

        def fire(self) -> None:
            pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        cancelled_timers = FixedDelayTimers(loop, 30.0)
        fired_timers = FixedDelayTimers(loop, 0.0)
        gc.disable()
        try:
            cancelled = Holder(cancelled_timers)
            cancelled.timer.cancel()
            fired = Holder(fired_timers)
            done = loop.create_future()
            fired_timers.call_later(done.set_result, None)
            await asyncio.wait_for(done, 5)
            refs = [weakref.ref(cancelled), weakref.ref(fired)]
            del cancelled, fired
            assert [ref() for ref in refs] == [None, None]  # freed without the collector
        finally:
            gc.enable()

    _run(main())
