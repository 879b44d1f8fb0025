"""Runtime.invoke_soon: the per-message path, Task-free when an environment is warm.

It must be the same invocation as ``await Runtime.invoke``: the same result, log lines,
environment reuse, timeout, crash and cancel behaviour. Each test says which path ran:
``invoke_soon`` returns an ``asyncio.Task`` only when it fell back to ``invoke``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runtime_helpers import END_RE, REPORT_RE, alive, eventually, run, spec, started

from warmline.dev.runtime.spec import InvokeResult


class Outcome:
    """Collects what ``on_result`` was called with."""

    def __init__(self) -> None:
        self.calls: list[InvokeResult | BaseException] = []
        self.done = asyncio.get_running_loop().create_future()

    def __call__(self, result: InvokeResult | BaseException) -> None:
        self.calls.append(result)
        if not self.done.done():
            self.done.set_result(result)

    async def result(self) -> InvokeResult:
        got = await asyncio.wait_for(asyncio.shield(self.done), 10)
        assert isinstance(got, InvokeResult), got
        return got


async def _warm_env(rt: Any) -> str:
    first = await rt.invoke("f", {})
    assert first.status == "ok" and first.cold
    return str(first.environment_id)


def test_a_warm_environment_runs_it_without_a_task_and_logs_as_invoke() -> None:
    async def main() -> None:
        async with started() as (rt, logs):
            env_id = await _warm_env(rt)
            outcome = Outcome()
            handle = rt.invoke_soon("f", {"action": "print", "n": 1}, outcome)
            assert not isinstance(handle, asyncio.Task)
            result = await outcome.result()
            assert result.status == "ok" and not result.cold and result.init_ms is None
            assert result.environment_id == env_id
            assert result.payload["event"] == {"action": "print", "n": 1}
            lines = logs.for_request(result.request_id)
            assert lines[1:-1] == ["hello from stdout", "hello from stderr"]
            assert END_RE.match(lines[-1])
            report = next(m for m in logs.matching(REPORT_RE) if m["id"] == result.request_id)
            assert report["init"] is None
            # the environment is idle again: the next one reuses it, also without a task
            again = Outcome()
            assert not isinstance(rt.invoke_soon("f", {}, again), asyncio.Task)
            assert (await again.result()).environment_id == env_id
            assert len(outcome.calls) == 1

    run(main())


def test_with_no_idle_environment_it_falls_back_to_a_cold_invoke() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            outcome = Outcome()
            handle = rt.invoke_soon("f", {}, outcome)
            assert isinstance(handle, asyncio.Task)
            result = await outcome.result()
            assert result.status == "ok" and result.cold

    run(main())


def test_a_handler_error_keeps_the_environment_warm() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            env_id = await _warm_env(rt)
            outcome = Outcome()
            assert not isinstance(rt.invoke_soon("f", {"action": "raise"}, outcome), asyncio.Task)
            result = await outcome.result()
            assert result.status == "error" and result.error is not None
            assert result.error["errorType"] == "ValueError"
            assert (await rt.invoke("f", {})).environment_id == env_id

    run(main())


def test_a_warm_invocation_over_its_timeout_is_killed_and_the_next_is_cold() -> None:
    async def main() -> None:
        async with started(spec(timeout_s=0.5)) as (rt, logs):
            await _warm_env(rt)
            pid = rt.environments()[0].pid
            outcome = Outcome()
            handle = rt.invoke_soon("f", {"action": "sleep", "seconds": 5}, outcome)
            assert not isinstance(handle, asyncio.Task)
            result = await outcome.result()
            assert result.status == "timeout"
            assert result.error is not None and "Task timed out after 0.50" in str(result.error)
            assert await eventually(lambda: not alive(pid))
            assert "after sleep" not in logs.lines()
            assert (await rt.invoke("f", {})).cold

    run(main())


def test_a_crash_in_a_warm_invocation_loses_only_that_environment() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            await _warm_env(rt)
            outcome = Outcome()
            assert not isinstance(
                rt.invoke_soon("f", {"action": "exit", "code": 7}, outcome), asyncio.Task
            )
            result = await outcome.result()
            assert result.status == "crash"
            assert result.error is not None and "exit status 7" in result.error["errorMessage"]
            after = await rt.invoke("f", {})
            assert after.status == "ok" and after.cold

    run(main())


def test_cancelling_a_warm_invocation_kills_its_environment_and_reports_nothing() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            await _warm_env(rt)
            pid = rt.environments()[0].pid
            outcome = Outcome()
            handle = rt.invoke_soon("f", {"action": "sleep", "seconds": 5}, outcome)
            assert not isinstance(handle, asyncio.Task)
            handle.cancel()
            handle.cancel()  # idempotent
            assert await eventually(lambda: not alive(pid))
            assert rt.environments() == []
            await asyncio.sleep(0.05)  # a late on_result would land here
            assert outcome.calls == []
            assert (await rt.invoke("f", {})).cold

    run(main())


def test_an_event_that_is_not_json_raises_and_leaves_the_environment_idle() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            env_id = await _warm_env(rt)
            with pytest.raises(TypeError):
                rt.invoke_soon("f", {"bad": {1, 2}}, Outcome())
            outcome = Outcome()
            assert not isinstance(rt.invoke_soon("f", {}, outcome), asyncio.Task)
            assert (await outcome.result()).environment_id == env_id

    run(main())


def test_concurrent_messages_scale_out_and_every_one_is_answered_once() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            await _warm_env(rt)
            outcomes = [Outcome() for _ in range(6)]
            for n, outcome in enumerate(outcomes):
                rt.invoke_soon("f", {"action": "sleep", "seconds": 0.2, "n": n}, outcome)
            results = [await outcome.result() for outcome in outcomes]
            assert [r.payload["event"]["n"] for r in results] == list(range(6))
            assert all(len(o.calls) == 1 for o in outcomes)
            assert len({r.environment_id for r in results}) == 6  # one each: scale-out
            assert sum(r.cold for r in results) == 5
            assert len({r.request_id for r in results}) == 6

    run(main())
