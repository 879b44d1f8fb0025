"""The runtime process (zygote): it dies with the emulator, and takes environments along."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime_helpers import FIXTURES, alive, eventually, run

from warmline.dev.runtime.procs import fork_available

SCRIPT = """
import asyncio, os, sys
from pathlib import Path
from warmline.dev.runtime import FunctionSpec, LogSink, Runtime

async def main():
    spec = FunctionSpec("f", "basic.handler", Path(sys.argv[1]))
    rt = Runtime([spec], log_sink=LogSink(console=None), snapstart=sys.argv[2] == "snap")
    await rt.start()
    results = await asyncio.gather(rt.invoke("f", {}), rt.invoke("f", {}))
    pids = [r.payload["pid"] for r in results] + [rt._launcher.spawner.pid]
    print(" ".join(map(str, pids)), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def _emulator_killed(mode: str) -> list[int]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(FIXTURES), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    return pids


def test_the_zygote_and_environments_die_when_the_emulator_is_killed() -> None:
    pids = _emulator_killed("plain")

    async def main() -> bool:
        return await eventually(lambda: not any(alive(pid) for pid in pids))

    assert run(main())


def test_snapstart_environments_die_when_the_emulator_is_killed() -> None:
    pids = _emulator_killed("snap")

    async def main() -> bool:
        return await eventually(lambda: not any(alive(pid) for pid in pids))

    assert run(main())


def test_fork_is_available_on_this_platform() -> None:
    # The fast path is what the suite exercises; a platform without it would silently
    # fall back to spawning interpreters, and these tests would not say so.
    assert fork_available() == (hasattr(os, "fork") and sys.platform != "win32")


def test_an_environment_that_dies_while_idle_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "bg.py").write_text(
        "import os, threading, time\n"
        "def _later():\n"
        "    time.sleep(0.2)\n"
        "    os._exit(9)\n"
        "def handler(event, context):\n"
        "    threading.Thread(target=_later, daemon=True).start()\n"
        "    return os.getpid()\n"
    )

    async def main() -> None:
        from runtime_helpers import started

        from warmline.dev.runtime.spec import FunctionSpec

        async with started(FunctionSpec("f", "bg.handler", tmp_path)) as (rt, logs):
            first = await rt.invoke("f", {})
            dropped = await eventually(lambda: rt.environments() == [])
            second = await rt.invoke("f", {})
            assert dropped
            assert any("exit status 9" in line for line in logs.lines())
            assert second.cold and second.payload != first.payload

    run(main())


def test_an_event_that_is_not_json_is_the_callers_error() -> None:
    async def main() -> None:
        import pytest
        from runtime_helpers import started

        async with started() as (rt, logs):
            with pytest.raises(TypeError):
                await rt.invoke("f", {"when": time})
            assert rt.environments() == []
            assert logs.lines() == []
            ok = await rt.invoke("f", {})
            assert ok.status == "ok"

    run(main())


def test_many_cold_starts_in_parallel_all_succeed() -> None:
    async def main() -> None:
        from runtime_helpers import started

        async with started() as (rt, _logs):
            results = await asyncio.gather(
                *[rt.invoke("f", {"action": "sleep", "seconds": 0.2}) for _ in range(12)]
            )
            assert [r.status for r in results] == ["ok"] * 12
            assert len({r.payload["pid"] for r in results}) == 12

    run(main())


def test_every_environment_leads_a_session_and_process_group_of_its_own() -> None:
    """Its own process group: a timeout kills what the handler started too. Its own
    session: with Linux's autogroup scheduling, environments do not share one CPU share."""

    async def main() -> None:
        from runtime_helpers import started

        async with started() as (rt, _logs):
            results = await asyncio.gather(
                *[rt.invoke("f", {"action": "sleep", "seconds": 0.2}) for _ in range(3)]
            )
            pids = [r.payload["pid"] for r in results]
            zygote = rt._launcher.spawner.pid  # type: ignore[union-attr]
            for pid in pids:
                assert os.getsid(pid) == pid
                assert os.getpgid(pid) == pid
            assert os.getsid(zygote) not in pids

    run(main())


def test_a_dead_zygote_is_replaced_on_the_next_cold_start() -> None:
    async def main() -> None:
        from runtime_helpers import started

        from warmline.dev.runtime.procs import ZygoteSpawner

        async with started() as (rt, _logs):
            first = await rt.invoke("f", {})
            old = rt._launcher.spawner
            assert isinstance(old, ZygoteSpawner) and old.pid is not None
            os.kill(old.pid, signal.SIGKILL)
            assert await eventually(lambda: not old.alive)
            # Its environment went with it (killed as an orphan): the next invoke is cold.
            assert await eventually(lambda: not alive(first.payload["pid"]))
            second = await rt.invoke("f", {})
            assert second.status == "ok" and second.cold
            assert rt._launcher.spawner is not old

    run(main())


def test_spawn_mode_enforces_timeouts_and_isolates_crashes() -> None:
    async def main() -> None:
        from runtime_helpers import spec, started

        async with started(spec(timeout_s=0.5), process_mode="spawn") as (rt, logs):
            warm = await rt.invoke("f", {})
            timed = await rt.invoke("f", {"action": "sleep", "seconds": 3})
            crash = await rt.invoke("f", {"action": "exit", "code": 4})
            assert timed.status == "timeout"
            assert await eventually(lambda: not alive(warm.payload["pid"]))
            assert crash.status == "crash"
            assert crash.error is not None and "exit status 4" in crash.error["errorMessage"]
            assert "after sleep" not in logs.lines()

    run(main())


def test_a_burst_of_cold_starts_with_large_configurations_all_complete() -> None:
    # 100 KB of variables per environment: a burst fills the control socket, so spawn
    # requests must queue for it rather than overwrite each other's wait (a hang).
    async def main() -> None:
        from runtime_helpers import spec, started

        fn = spec("probe.handler", environment={"BIG": "x" * 100_000})
        async with started(fn) as (rt, _logs):
            results = await asyncio.wait_for(
                asyncio.gather(*[rt.invoke("f", {"pause": 0.3}) for _ in range(12)]), 30
            )
            assert [r.status for r in results] == ["ok"] * 12
            assert all(len(r.payload["environ"]["BIG"]) == 100_000 for r in results)

    run(main())


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def test_a_spawn_cancelled_as_its_environment_arrives_kills_it_and_closes_its_ends() -> None:
    """The caller is cancelled in the same loop turn the environment arrives: nobody else
    holds the new process, so the spawner kills it and closes its socket and pipe."""
    from warmline.dev.runtime.procs import ZygoteSpawner

    async def main() -> tuple[set[int], set[int], int]:
        spawner = await ZygoteSpawner.start()
        try:
            assert await spawner.ready() is None
            before = _open_fds()
            dispatch = spawner._dispatch
            task: asyncio.Task[object] | None = None

            def dispatch_then_cancel(message: dict[str, object], fds: list[int]) -> None:
                dispatch(message, fds)
                if message.get("t") == "spawned" and task is not None:
                    task.cancel()  # before the task wakes up to take the result

            spawner._dispatch = dispatch_then_cancel  # type: ignore[method-assign]
            config = {"code_dir": str(FIXTURES), "handler": "basic.handler", "env": {}}
            task = asyncio.ensure_future(spawner.spawn(config))
            done, _ = await asyncio.wait([task], timeout=10)
            assert task in done and task.cancelled()
            pid = next(iter(spawner._exits))
            code = await asyncio.wait_for(asyncio.shield(spawner._exits[pid]), 10)
            return before, _open_fds(), code
        finally:
            await spawner.close()

    before, after, code = run(main())
    assert after <= before  # the socket and the output pipe are closed
    assert code == -signal.SIGKILL
