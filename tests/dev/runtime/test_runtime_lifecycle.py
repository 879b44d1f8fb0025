"""Environments: cold then warm, scale-out, reserved concurrency, idle reclaim, close."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from runtime_helpers import CLIENTS, REPORT_RE, alive, eventually, run, spec, started

from warmline.dev.runtime.runtime import Runtime


@CLIENTS
def test_first_invoke_is_cold_and_the_next_reuses_the_same_process(client: str | None) -> None:
    async def main() -> None:
        async with started(spec(runtime_client=client)) as (rt, logs):
            first = await rt.invoke("f", {"n": 1})
            second = await rt.invoke("f", {"n": 2})
            assert (first.status, second.status) == ("ok", "ok")
            assert first.cold and not second.cold
            assert first.init_ms is not None and first.init_ms > 0
            assert second.init_ms is None
            assert first.payload["pid"] == second.payload["pid"]
            assert first.payload["event"] == {"n": 1}
            assert second.payload["init_count"] == 1
            assert first.environment_id == second.environment_id
            reports = {m["id"]: m for m in logs.matching(REPORT_RE)}
            assert reports[first.request_id]["init"] is not None
            assert reports[second.request_id]["init"] is None
            assert sum(line.startswith("INIT_START") for line in logs.lines()) == 1
            [info] = rt.environments()
            assert (info.state, info.invocations) == ("idle", 2)
            if client is None:  # awslambdaric runs as a child of the environment's process
                assert info.pid == first.payload["pid"]

    run(main())


def test_concurrent_invokes_scale_out_to_one_process_each(tmp_path: Path) -> None:
    release = tmp_path / "go"

    async def main() -> None:
        async with started() as (rt, _logs):
            event = {"action": "wait_file", "path": str(release)}
            tasks = [asyncio.ensure_future(rt.invoke("f", event)) for _ in range(3)]
            busy = await eventually(lambda: sum(e.state == "busy" for e in rt.environments()) == 3)
            release.touch()
            results = await asyncio.gather(*tasks)
            assert busy
            assert [r.status for r in results] == ["ok"] * 3
            assert all(r.cold for r in results)
            assert len({r.payload["pid"] for r in results}) == 3
            assert len({r.environment_id for r in results}) == 3
            # Afterwards all three are warm and idle; the next invoke reuses one of them.
            again = await rt.invoke("f", {})
            assert not again.cold
            assert again.payload["pid"] in {r.payload["pid"] for r in results}

    run(main())


def test_reserved_concurrency_throttles_instead_of_queueing(tmp_path: Path) -> None:
    release = tmp_path / "go"

    async def main() -> None:
        async with started(spec(reserved_concurrency=1)) as (rt, logs):
            event = {"action": "wait_file", "path": str(release)}
            blocked = asyncio.ensure_future(rt.invoke("f", event))
            assert await eventually(lambda: [e.state for e in rt.environments()] == ["busy"])
            throttled = await rt.invoke("f", {})
            release.touch()
            done = await blocked
            after = await rt.invoke("f", {})
            assert throttled.status == "throttled"
            assert throttled.error is not None
            assert throttled.error["errorType"] == "TooManyRequestsException"
            assert throttled.payload is None
            assert throttled.request_id not in "\n".join(logs.lines())
            assert done.status == "ok"
            assert after.status == "ok" and not after.cold

    run(main())


def test_reserved_concurrency_zero_throttles_everything() -> None:
    async def main() -> None:
        async with started(spec(reserved_concurrency=0)) as (rt, _logs):
            result = await rt.invoke("f", {})
            assert result.status == "throttled"
            assert rt.environments() == []

    run(main())


def test_idle_environments_are_reclaimed_and_the_next_invoke_is_cold() -> None:
    async def main() -> None:
        async with started(idle_reclaim_s=0.2) as (rt, logs):
            first = await rt.invoke("f", {})
            pid = first.payload["pid"]
            reclaimed = await eventually(lambda: rt.environments() == [])
            gone = await eventually(lambda: not alive(pid))
            second = await rt.invoke("f", {})
            assert reclaimed and gone
            assert any("reclaimed" in line for line in logs.lines())
            assert second.cold
            assert second.payload["pid"] != pid

    run(main())


def test_a_warm_environment_is_not_reclaimed_while_in_use() -> None:
    async def main() -> None:
        async with started(idle_reclaim_s=0.5) as (rt, _logs):
            first = await rt.invoke("f", {})
            second = await rt.invoke("f", {"action": "sleep", "seconds": 0.7})
            assert second.status == "ok" and not second.cold
            assert second.payload["pid"] == first.payload["pid"]

    run(main())


def test_close_leaves_no_process_behind(tmp_path: Path) -> None:
    release = tmp_path / "never"

    async def main() -> None:
        captured: list[int] = []
        async with started() as (rt, _logs):
            busy = asyncio.ensure_future(
                rt.invoke("f", {"action": "wait_file", "path": str(release)})
            )
            assert await eventually(lambda: len(rt.environments()) == 1)
            idle = await rt.invoke("f", {})
            assert sorted(e.state for e in rt.environments()) == ["busy", "idle"]
            captured = [e.pid for e in rt.environments()]
            assert idle.payload["pid"] in captured
            zygote = rt._launcher.spawner
            assert zygote is not None
            zygote_pid = getattr(zygote, "pid", None)
        result = await busy
        assert result.status == "crash"
        assert not any(alive(pid) for pid in captured)
        if zygote_pid is not None:
            assert not alive(zygote_pid)

    run(main())


def test_extra_env_applies_to_environments_created_afterwards(tmp_path: Path) -> None:
    release = tmp_path / "go"

    async def main() -> None:
        fn = spec("probe.handler", environment={"OWN": "function", "SHARED": "function"})
        async with started(fn, extra_env={"EXTRA": "one", "SHARED": "extra"}) as (rt, _logs):
            before = await rt.invoke("f", {"pause": 0})
            rt.set_extra_env({"EXTRA": "two"})
            warm = await rt.invoke("f", {"pause": 0})
            # A second, concurrent invoke needs a new environment: it sees the new value.
            blocker = asyncio.ensure_future(rt.invoke("f", {"pause": 0, "wait": str(release)}))
            await eventually(lambda: any(e.state == "busy" for e in rt.environments()))
            fresh = await rt.invoke("f", {"pause": 0})
            release.touch()
            await blocker
            assert before.payload["environ"]["EXTRA"] == "one"
            assert before.payload["environ"]["SHARED"] == "function"
            assert before.payload["environ"]["OWN"] == "function"
            assert warm.payload["environ"]["EXTRA"] == "one"
            assert fresh.cold and fresh.payload["environ"]["EXTRA"] == "two"

    run(main())


def test_unknown_function_raises_key_error() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            with pytest.raises(KeyError):
                await rt.invoke("nope", {})

    run(main())


def test_spawn_mode_runs_a_fresh_interpreter_per_environment() -> None:
    async def main() -> None:
        async with started(process_mode="spawn") as (rt, _logs):
            first = await rt.invoke("f", {"action": "print"})
            second = await rt.invoke("f", {})
            assert rt.process_mode == "spawn"
            assert first.status == "ok" and first.cold
            assert not second.cold and second.payload["pid"] == first.payload["pid"]
            pid = first.payload["pid"]
        assert not alive(pid)

    run(main())


def test_two_functions_get_separate_pools() -> None:
    async def main() -> None:
        async with started(spec(name="a"), spec(name="b")) as (rt, logs):
            a = await rt.invoke("a", {})
            b = await rt.invoke("b", {})
            assert a.cold and b.cold
            assert a.payload["pid"] != b.payload["pid"]
            assert {e.function for e in rt.environments()} == {"a", "b"}
            assert any(line.startswith("START") for line in logs.lines("a"))
            assert any(line.startswith("START") for line in logs.lines("b"))

    run(main())


def test_duplicate_function_names_are_rejected() -> None:
    from warmline.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Runtime([spec(), spec()])


def test_environment_pid_is_a_real_separate_process() -> None:
    async def main() -> None:
        async with started() as (rt, _logs):
            result = await rt.invoke("f", {})
            assert result.payload["pid"] != os.getpid()
            assert alive(result.payload["pid"])

    run(main())


def test_a_cancelled_invoke_frees_its_environment_and_its_slot(tmp_path: Path) -> None:
    release = tmp_path / "never"

    async def main() -> None:
        async with started(spec(reserved_concurrency=1)) as (rt, _logs):
            event = {"action": "wait_file", "path": str(release)}
            task = asyncio.ensure_future(rt.invoke("f", event))
            assert await eventually(lambda: [e.state for e in rt.environments()] == ["busy"])
            pid = rt.environments()[0].pid
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gone = await eventually(lambda: not alive(pid))
            after = await rt.invoke("f", {})
            assert gone
            assert after.status == "ok" and after.cold

    run(main())


@pytest.mark.parametrize("snapstart", [False, True])
def test_simultaneous_cold_starts_respect_reserved_concurrency(snapstart: bool) -> None:
    async def main() -> None:
        async with started(spec(reserved_concurrency=1), snapstart=snapstart) as (rt, _logs):
            results = await asyncio.gather(*[rt.invoke("f", {}) for _ in range(3)])
            assert sorted(r.status for r in results) == ["ok", "throttled", "throttled"]
            assert len(rt.environments()) == 1

    run(main())


@pytest.mark.parametrize("snapstart", [False, True])
def test_recycle_makes_the_next_invoke_load_the_edited_code(
    tmp_path: Path, snapstart: bool
) -> None:
    code = tmp_path / "app.py"
    release = tmp_path / "go"
    source = (
        "import os, time\n"
        "VERSION = {version}\n"
        "def handler(event, context):\n"
        "    while event.get('wait') and not os.path.exists(event['wait']):\n"
        "        time.sleep(0.005)\n"
        "    return VERSION\n"
    )
    code.write_text(source.format(version=1))

    async def main() -> None:
        from warmline.dev.runtime.spec import FunctionSpec

        fn = FunctionSpec("f", "app.handler", tmp_path)
        async with started(fn, snapstart=snapstart) as (rt, logs):
            busy = asyncio.ensure_future(rt.invoke("f", {"wait": str(release)}))
            idle = await rt.invoke("f", {})
            assert await eventually(
                lambda: sorted(e.state for e in rt.environments()) == ["busy", "idle"]
            )
            code.write_text(source.format(version=2))
            retired = await rt.recycle()
            assert [e.state for e in rt.environments()] == ["busy"]
            release.touch()
            finished = await busy
            fresh = await rt.invoke("f", {})
            assert retired == 2
            assert (idle.payload, finished.status, finished.payload) == (1, "ok", 1)
            assert fresh.cold and fresh.payload == 2
            assert [e.environment_id for e in rt.environments()] == [fresh.environment_id]
            assert logs.lines().count("[warmline] environment recycled") == 2

    run(main())
