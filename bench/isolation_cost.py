"""What the Lambda sandbox adds to a cold start: isolation on against off, same run.

``warmline dev`` isolates every environment (a mount namespace with a private /tmp and a
read-only task root, Lambda's import path: :mod:`warmline.dev.runtime.sandbox`). This
measures, for a trivial handler and for one that imports boto3 (the runtime's copy, through
the sandbox's runtime directory, against the virtualenv's), the median latency of a cold
invoke with the sandbox on and off, the difference (the isolation's cost per cold start)
and the Init Duration the environment reported. Batches alternate between the two settings
so that machine noise hits both alike. The target is <= 15 ms added per cold start;
docs/performance.md has the latest figures.

Usage: ``python bench/isolation_cost.py [--rounds 40] [--batches 4] [--json PATH]``.
No assertions.
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

HANDLERS = {
    "trivial": "def handler(event, context):\n    return event\n",
    "uses_boto3": "import boto3\n\n\ndef handler(event, context):\n    return boto3.__version__\n",
}
SETTINGS = {"on": True, "off": False}
#: Quiet time before each cold start, as between calls in a dev session.
PAUSE_S = 0.05


async def _measure(
    sandbox: bool, code_dir: Path, state: Path, module: str, rounds: int
) -> dict[str, list[float]]:
    specs = [FunctionSpec(f"f{i}", f"{module}.handler", code_dir) for i in range(rounds + 1)]
    runtime = Runtime(specs, log_sink=LogSink(console=None), sandbox=sandbox, state_dir=state)
    await runtime.start()
    samples: dict[str, list[float]] = {"cold": [], "init": []}
    try:
        await runtime.invoke("f0", {})  # the zygote is up, dependency folders built
        for spec in specs[1:]:
            await asyncio.sleep(PAUSE_S)
            start = time.perf_counter()
            cold = await runtime.invoke(spec.name, {"n": 1})
            samples["cold"].append((time.perf_counter() - start) * 1000)
            assert cold.cold and cold.status == "ok", cold.error
            samples["init"].append(cold.init_ms or 0.0)
    finally:
        await runtime.close()
    return samples


async def _run(rounds: int, batches: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = Path(tmp) / "code"
        code_dir.mkdir()
        for module, source in HANDLERS.items():
            (code_dir / f"{module}.py").write_text(source)
        state = Path(tmp) / "state"
        for module in HANDLERS:
            merged: dict[str, dict[str, list[float]]] = {
                name: {"cold": [], "init": []} for name in SETTINGS
            }
            for _ in range(batches):
                for name, sandbox in SETTINGS.items():
                    samples = await _measure(sandbox, code_dir, state, module, rounds // batches)
                    for key, values in samples.items():
                        merged[name][key].extend(values)
            row = {
                name: {
                    "cold_ms": statistics.median(s["cold"]),
                    "init_ms": statistics.median(s["init"]),
                    "n": len(s["cold"]),
                }
                for name, s in merged.items()
            }
            row["added_ms"] = row["on"]["cold_ms"] - row["off"]["cold_ms"]
            row["ratio"] = row["on"]["cold_ms"] / row["off"]["cold_ms"]
            out[module] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="cold starts per setting")
    parser.add_argument("--batches", type=int, default=4, help="alternations of on/off")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.rounds, max(1, args.batches)))
    print(f"{'handler':<9} {'sandbox':<8} {'cold p50 ms':>12} {'init p50 ms':>12} {'n':>4}")
    for module, row in result.items():
        for name in SETTINGS:
            r = row[name]
            print(f"{module:<9} {name:<8} {r['cold_ms']:>12.2f} {r['init_ms']:>12.2f} {r['n']:>4}")
        print(
            f"{module:<9} added by isolation: {row['added_ms']:+.2f} ms per cold start "
            f"(on/off {row['ratio']:.2f}x)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
