"""Snapstart mode: a pre-initialised template per function, hooks, Restore Duration."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from runtime_helpers import INIT_START_RE, REPORT_RE, alive, eventually, run, spec, started

from warmline.dev.runtime.spec import FunctionSpec


def test_environments_are_restored_from_one_initialised_template() -> None:
    async def main() -> None:
        async with started(spec("hooks.handler"), snapstart=True) as (rt, logs):
            first = await rt.invoke("f", {})
            warm = await rt.invoke("f", {})
            # Still running when the other arrives, so the second one scales out (a handler
            # that has already returned would rightly be reused, as on AWS).
            more = await asyncio.gather(*[rt.invoke("f", {"pause": 0.2}) for _ in range(2)])
            results = [first, *more]
            pids = {r.payload["pid"] for r in results}
            init_pids = {r.payload["init_pid"] for r in results}
            assert all(r.status == "ok" for r in [*results, warm])
            assert first.cold and not warm.cold
            assert warm.payload["pid"] == first.payload["pid"]
            # Module top level ran once, in the template, not in the environments.
            assert len(init_pids) == 1 and not init_pids & pids
            assert len(pids) >= 2
            # Before-snapshot hooks ran in reverse registration order, once; the
            # after-restore hook ran in each environment, in that environment.
            for result in results:
                calls = result.payload["calls"]
                assert calls == ["before-2:x", "before-1", f"after:{result.payload['pid']}"]
            reports = {m["id"]: m for m in logs.matching(REPORT_RE)}
            cold = reports[first.request_id]
            assert cold["init"] is None and cold["restore"] is not None
            assert float(cold["restore"]) == round(first.init_ms or 0, 2)
            assert int(cold["billed_restore"]) >= float(cold["restore"])
            assert reports[warm.request_id]["restore"] is None
            assert sum(bool(INIT_START_RE.match(line)) for line in logs.lines()) == 1
            assert any(line.startswith("INIT_REPORT Init Duration:") for line in logs.lines())
            assert sum(line.startswith("RESTORE_START") for line in logs.lines()) == len(pids)

    run(main())


def test_a_failing_template_init_is_an_init_error_and_is_retried_next_time(
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky.py").write_text(
        "import os\n"
        "if not os.path.exists(os.environ['READY_FILE']):\n"
        "    raise RuntimeError('not yet')\n"
        "def handler(event, context):\n"
        "    return 'ok'\n"
    )
    ready = tmp_path / "ready"

    async def main() -> None:
        fn = FunctionSpec("f", "flaky.handler", tmp_path, environment={"READY_FILE": str(ready)})
        async with started(fn, snapstart=True) as (rt, _logs):
            failed = await rt.invoke("f", {})
            ready.touch()
            fixed = await rt.invoke("f", {})
            assert failed.status == "init_error"
            assert failed.error is not None and failed.error["errorType"] == "RuntimeError"
            assert (fixed.status, fixed.payload) == ("ok", "ok")

    run(main())


def test_close_removes_templates_and_restored_environments() -> None:
    async def main() -> None:
        pids: list[int] = []
        async with started(spec("hooks.handler"), snapstart=True) as (rt, _logs):
            results = await asyncio.gather(*[rt.invoke("f", {"pause": 0.2}) for _ in range(2)])
            pids = [r.payload["pid"] for r in results] + [results[0].payload["init_pid"]]
            assert all(alive(pid) for pid in pids)
        assert not any(alive(pid) for pid in pids)

    run(main())


def test_a_timed_out_restored_environment_is_replaced_by_a_new_restore() -> None:
    async def main() -> None:
        async with started(spec("basic.handler", timeout_s=0.3), snapstart=True) as (rt, logs):
            timed = await rt.invoke("f", {"action": "sleep", "seconds": 2})
            after = await rt.invoke("f", {})
            assert timed.status == "timeout"
            assert after.status == "ok" and after.cold
            reports = {m["id"]: m for m in logs.matching(REPORT_RE)}
            assert reports[timed.request_id]["status"] == "timeout"
            assert reports[timed.request_id]["restore"] is not None

    run(main())


def test_snapstart_needs_fork() -> None:
    import pytest

    from warmline.errors import ConfigurationError

    async def main() -> None:
        with pytest.raises(ConfigurationError):
            async with started(snapstart=True, process_mode="spawn"):
                pass

    run(main())


def test_a_cold_start_cancelled_while_its_template_initialises_leaves_no_template() -> None:
    """The caller goes away during the template's init: the half-made template is killed and
    its socket closed there and then, not left running until the emulator closes."""

    async def main() -> None:
        fn = spec("slow_init.handler", environment={"SLOW_INIT_S": "30"})
        async with started(fn, snapstart=True) as (rt, logs):
            call = asyncio.ensure_future(rt.invoke("f", {}))
            said = "slow init in process "
            assert await eventually(lambda: any(x.startswith(said) for x in logs.lines()))
            pid = next(int(x[len(said) :]) for x in logs.lines() if x.startswith(said))
            assert alive(pid)  # the template, in its init
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            assert await eventually(lambda: not alive(pid))

    run(main())
