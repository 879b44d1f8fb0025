"""Cold-start overhead of the emulated Lambda runtime: zygote fork vs fresh interpreter.

For a trivial handler, a cold invoke's latency is almost all emulator overhead: making the
environment process, its runtime set-up, the import of a one-line module, and the round
trip. This measures, for each way of making environments (``fork`` from the pre-started
runtime process, ``spawn`` of a fresh interpreter), the median latency of a cold invoke, of
a warm invoke right after it, their difference (the cold-start overhead) and the Init
Duration the environment reported, then the spawn/fork ratio. Rounds alternate between the
modes so that machine noise hits both alike. docs/performance.md has the latest figures.

Usage: ``python bench/runtime_coldstart.py [--rounds 30] [--json PATH]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from warmline.dev.runtime import FunctionSpec, LogSink, Runtime
from warmline.dev.runtime.runtime import ProcessMode

HANDLER = "def handler(event, context):\n    return event\n"
MODES: tuple[ProcessMode, ...] = ("fork", "spawn")
#: Quiet time before each cold start, as between calls in a dev session (the zygote
#: refills its spare environment when idle; back-to-back cold starts fork on demand).
PAUSE_S = 0.05


async def _measure(mode: ProcessMode, code_dir: Path, rounds: int) -> dict[str, list[float]]:
    specs = [FunctionSpec(f"f{i}", "trivial.handler", code_dir) for i in range(rounds)]
    runtime = Runtime(specs, log_sink=LogSink(console=None), process_mode=mode)
    await runtime.start()
    samples: dict[str, list[float]] = {"cold": [], "warm": [], "init": []}
    try:
        await runtime.invoke("f0", {})  # the runtime process is up and its caches warm
        for spec in specs[1:]:
            await asyncio.sleep(PAUSE_S)
            start = time.perf_counter()
            cold = await runtime.invoke(spec.name, {"n": 1})
            middle = time.perf_counter()
            warm = await runtime.invoke(spec.name, {"n": 2})
            end = time.perf_counter()
            assert cold.cold and not warm.cold and cold.status == warm.status == "ok"
            samples["cold"].append((middle - start) * 1000)
            samples["warm"].append((end - middle) * 1000)
            samples["init"].append(cold.init_ms or 0.0)
    finally:
        await runtime.close()
    return samples


async def _run(rounds: int, batches: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = Path(tmp)
        (code_dir / "trivial.py").write_text(HANDLER)
        merged: dict[str, dict[str, list[float]]] = {
            mode: {"cold": [], "warm": [], "init": []} for mode in MODES
        }
        for _ in range(batches):
            for mode in MODES:
                samples = await _measure(mode, code_dir, rounds // batches + 1)
                for key, values in samples.items():
                    merged[mode][key].extend(values)
    summary: dict[str, dict[str, float]] = {}
    for name, samples in merged.items():
        cold = statistics.median(samples["cold"])
        warm = statistics.median(samples["warm"])
        summary[name] = {
            "cold_ms": cold,
            "warm_ms": warm,
            "overhead_ms": cold - warm,
            "init_ms": statistics.median(samples["init"]),
            "n": float(len(samples["cold"])),
        }
    return summary


def main() -> int:
    """Print the medians and the spawn/fork ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="cold starts per mode")
    parser.add_argument("--batches", type=int, default=3, help="alternations of the modes")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    summary = _run_sync(args.rounds, args.batches)
    print(f"{'mode':<8}{'cold ms':>10}{'warm ms':>10}{'overhead ms':>14}{'Init Duration':>15}")
    for name, row in summary.items():
        print(
            f"{name:<8}{row['cold_ms']:>10.2f}{row['warm_ms']:>10.2f}"
            f"{row['overhead_ms']:>14.2f}{row['init_ms']:>12.2f} ms"
        )
    fork, spawn = summary["fork"]["overhead_ms"], summary["spawn"]["overhead_ms"]
    ratio = spawn / fork if fork > 0 else float("inf")
    print(f"cold-start overhead, fresh interpreter / zygote fork: {ratio:.1f}x (medians)")
    if args.json:
        result: dict[str, Any] = {"modes": summary, "spawn_over_fork": ratio}
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _run_sync(rounds: int, batches: int) -> dict[str, dict[str, float]]:
    return asyncio.run(_run(rounds, batches))


if __name__ == "__main__":
    sys.exit(main())
