"""Turn latency of the sample agent through ``warmline dev``, against the bare echo.

One run, one emulator, two functions on two stages of the same machine:

- the reference agent (``examples/agent``: intents, FTS5 retrieval, the offline extractive
  answerer, sessions in SQLite, answers streamed as text frames), and
- a bare echo (``bench/turn/echo_relay.py``): the same App, store and ``@connections``
  path, no agent — the floor of what any answer costs through the stack.

Each sample is a signed ConversationRelay call made with ``warmline call``'s engine
(setup, then prompts). Measured per prompt: prompt -> first token and prompt -> last
token. "cold" calls start right after the environments were reclaimed (the connect and
first prompt pay init); "warm" calls reuse warm environments. Printed: p50/p99 and the
ratio of each to the echo's round trip in the same run.

Target: warm first token within 2x of the echo round trip.

Usage: ``python bench/turn_latency.py [--calls 20] [--json PATH]``.
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

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What are your support hours?",
    "How much is the Spark 300 plan?",
    "How do I reset my router?",
    "Do you have a student discount?",
]


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


async def _server(tmp: Path, function: str, handler: str, code: Path) -> Any:
    from warmline.config import parse_config
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    env = {"WARMLINE_SQLITE_PATH": str(tmp / f"{function}.sqlite3")}
    config = parse_config(
        {
            "functions": {function: {"handler": handler, "code": ".", "environment": env}},
            "websocket": {
                "stage": "dev",
                "routes": {"$connect": function, "$disconnect": function, "$default": function},
            },
            "limits": {"idle_reclaim_s": 0.5},
        },
        base_dir=code,
    )
    server = DevServer(config, port=0, log_sink=LogSink(console=None))
    await server.start()
    return server


async def _calls(server: Any, n: int, cold: bool) -> tuple[list[float], list[float]]:
    from warmline.tools.call import parse_script, run_call

    firsts: list[float] = []
    lasts: list[float] = []
    for i in range(n):
        if cold:
            deadline = time.monotonic() + 10
            while server.runtime.environments() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        script = parse_script([QUESTIONS[i % len(QUESTIONS)]])
        result = await run_call(server.ws_url, script, turn_timeout_s=20)
        for turn in result.turns:
            if turn.first_token_ms is not None and turn.last_token_ms is not None:
                firsts.append(turn.first_token_ms)
                lasts.append(turn.last_token_ms)
        await server.drain()
    return firsts, lasts


async def main(calls: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        agent = await _server(tmp_path, "agent", "app.handler", ROOT / "examples" / "agent")
        echo = await _server(tmp_path, "echo", "echo_relay.handler", ROOT / "bench" / "turn")
        try:
            for name, server in (("echo", echo), ("agent", agent)):
                await _calls(server, 2, cold=False)  # load the page cache, not measured
                for mode in ("warm", "cold"):
                    n = calls if mode == "warm" else max(3, calls // 4)
                    firsts, lasts = await _calls(server, n, cold=(mode == "cold"))
                    results[f"{name} {mode}"] = {"first": firsts, "last": lasts}
        finally:
            await agent.close()
            await echo.close()
    return results


def report(results: dict[str, Any]) -> dict[str, Any]:
    base = statistics.median(results["echo warm"]["last"])
    out: dict[str, Any] = {"echo_round_trip_ms": round(base, 2)}
    print(
        f"{'':<12} {'first p50':>10} {'first p99':>10} {'last p50':>10} {'last p99':>10}"
        f" {'first/echo':>11}"
    )
    for name, data in results.items():
        f50, f99 = statistics.median(data["first"]), _pct(data["first"], 99)
        l50, l99 = statistics.median(data["last"]), _pct(data["last"], 99)
        ratio = f50 / base
        out[name] = {
            "first_p50": f50,
            "first_p99": f99,
            "last_p50": l50,
            "last_p99": l99,
            "first_over_echo": round(ratio, 2),
            "samples": len(data["first"]),
        }
        print(f"{name:<12} {f50:>10.2f} {f99:>10.2f} {l50:>10.2f} {l99:>10.2f} {ratio:>10.2f}x")
    warm = out["agent warm"]["first_over_echo"]
    verdict = "within" if warm <= 2.0 else "OVER"
    print(f"\nwarm first token = {warm:.2f}x the echo round trip ({base:.2f} ms): {verdict} 2x")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="warm calls per app")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    summary = report(asyncio.run(main(args.calls)))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    sys.exit(0)
