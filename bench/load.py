"""Zero lost or doubled turns at scale, in one run: 200 concurrent calls x 5 turns through
``warmline dev`` (real process environments) and 1,000 concurrent calls through container
mode (``warmline serve``), against a relay-speaking ``websockets`` floor.

Every server is a subprocess on 127.0.0.1 running the sample agent; the calls come from
this process (:func:`warmline.tools.load.run_load`). Printed per target: calls completed,
turns answered, turns apologised (the App's spoken store apology: words, but no answer),
lost, doubled, first-token p50/p99, turns/s, and the ratios to the floor.

``--fault NAME[=SPEC]`` (repeatable, as ``warmline dev --fault``) runs the emulator with
those faults injected; ``--targets`` picks which servers run (the faults exist only in
``warmline dev``). A run passes with 0 lost and 0 doubled; apologies are counted apart.

``--rolling-restart`` runs another scenario instead: two ``warmline serve`` instances and
a redis-server behind a health-checking balancer, restarted one after the other while
calls talk; calls follow the moves as Twilio does (``bench/rolling_restart.py``). It passes
with 0 lost turns.

Usage: ``python bench/load.py [--emulator-calls 200] [--container-calls 1000] [--turns 5]
[--fault store.fail=0.05 ...] [--fault-seed 7] [--targets dev]`` (``--quick`` for a small
smoke run); ``python bench/load.py --rolling-restart [--rolling-calls 20]
[--rolling-turns 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "examples" / "agent"
FLOOR = """
import asyncio, json, sys
from websockets.asyncio.server import serve
async def relay(ws):
    async for raw in ws:
        msg = json.loads(raw)
        if msg.get("type") == "setup":
            await ws.send(json.dumps({"type": "text", "token": "Hi.", "last": True}))
        elif msg.get("type") == "prompt":
            await ws.send(json.dumps({"type": "text", "token": msg["voicePrompt"], "last": True}))
async def main():
    async with serve(relay, "127.0.0.1", int(sys.argv[1]), compression=None):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


async def _load(url: str, calls: int, turns: int) -> dict[str, Any]:
    from warmline.tools.load import run_load

    result = await run_load(
        url,
        calls=calls,
        concurrency=calls,
        turns=turns,
        rate=100.0,
        turn_timeout_s=60,
        deadline_s=900,
    )
    return result.summary()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator-calls", type=int, default=200)
    parser.add_argument("--container-calls", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20 and 50 calls, 2 turns")
    parser.add_argument(
        "--fault", action="append", default=[], help="a warmline dev fault (repeatable)"
    )
    parser.add_argument("--fault-seed", type=int, default=None, help="the faults' dice seed")
    parser.add_argument(
        "--targets",
        default="floor,dev,serve",
        help="comma-separated: floor, dev, serve (default: all three)",
    )
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--rolling-restart",
        action="store_true",
        help="calls across a rolling restart of two warmline serve instances",
    )
    parser.add_argument("--rolling-calls", type=int, default=20)
    parser.add_argument("--rolling-turns", type=int, default=40)
    parser.add_argument(
        "--rolling-pause", type=float, default=0.5, help="seconds between a call's turns"
    )
    args = parser.parse_args()
    if args.rolling_restart:
        return _rolling(args)
    if args.quick:
        args.emulator_calls, args.container_calls, args.turns = 20, 50, 2
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, Any] = {}
    seed_flag = ["--fault-seed", str(args.fault_seed)] if args.fault_seed is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        env["WARMLINE_SQLITE_PATH"] = str(Path(tmp) / "sessions.sqlite3")
        targets = []
        port = _free_port()
        targets.append(
            (
                "floor",
                [sys.executable, "-c", FLOOR, str(port)],
                port,
                f"ws://127.0.0.1:{port}",
                args.container_calls,
            )
        )
        port = _free_port()
        targets.append(
            (
                "warmline dev",
                [
                    sys.executable,
                    "-m",
                    "warmline",
                    "dev",
                    "--config",
                    str(AGENT / "warmline.toml"),
                    "--port",
                    str(port),
                    *[f"--fault={fault}" for fault in args.fault],
                    *seed_flag,
                ],
                port,
                f"ws://127.0.0.1:{port}/dev",
                args.emulator_calls,
            )
        )
        port = _free_port()
        targets.append(
            (
                "warmline serve",
                [
                    sys.executable,
                    "-m",
                    "warmline",
                    "serve",
                    "app:app",
                    "--app-dir",
                    str(AGENT),
                    "--port",
                    str(port),
                ],
                port,
                f"ws://127.0.0.1:{port}/ws",
                args.container_calls,
            )
        )
        wanted = {"floor": "floor", "dev": "warmline dev", "serve": "warmline serve"}
        chosen = {wanted[t.strip()] for t in args.targets.split(",") if t.strip()}
        for name, argv, port, url, calls in targets:
            if name not in chosen:
                continue
            proc = _start(argv, env)
            try:
                _wait_port(port)
                time.sleep(0.5)
                print(f"[{name}] {calls} concurrent calls x {args.turns} turns ...", flush=True)
                results[name] = asyncio.run(_load(url, calls, args.turns))
            finally:
                _stop(proc)
    floor = results.get("floor")
    if args.fault:
        seed = f" (seed {args.fault_seed})" if args.fault_seed is not None else ""
        print(f"\nfaults in warmline dev: {' '.join(args.fault)}{seed}")
    print(
        f"\n{'target':<16} {'calls':>7} {'answered':>9} {'apologised':>11} {'lost':>5}"
        f" {'doubled':>8} {'p50 ms':>8} {'p99 ms':>8} {'turns/s':>8} {'p99/floor':>10}"
    )
    ok = True
    for name, r in results.items():
        f = r["firstTokenMs"]
        shown = "-"
        if floor is not None:
            ratio = (f["p99"] or 0) / max(floor["firstTokenMs"]["p99"] or 0.01, 0.01)
            shown = f"{ratio:.1f}x"
        print(
            f"{name:<16} {r['completed']:>3}/{r['calls']:<3} {r['answered']:>9}"
            f" {r['apologised']:>11} {r['lost']:>5}"
            f" {r['doubled']:>8} {f['p50'] or 0:>8.1f} {f['p99'] or 0:>8.1f}"
            f" {r['turnsPerSecond']:>8} {shown:>10}"
        )
        ok = ok and r["lost"] == 0 and r["doubled"] == 0
        for kind, count in r["errors"].items():
            print(f"    error: {kind} x{count}")
    print("\nzero lost or doubled turns:", "yes" if ok else "NO")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


def _rolling(args: argparse.Namespace) -> int:
    from rolling_restart import rolling_restart

    calls, turns = (5, 30) if args.quick else (args.rolling_calls, args.rolling_turns)
    print(f"[rolling restart] {calls} calls x {turns} turns, two instances restarted in turn")
    r = rolling_restart(calls, turns, args.rolling_pause)
    print(
        f"\n{'calls':>7} {'turns':>6} {'answered':>9} {'lost':>5} {'repeated':>9}"
        f" {'moves':>6}  restarts (s)"
    )
    print(
        f"{r['completed']:>3}/{r['calls']:<3} {r['turns']:>6} {r['answered']:>9} {r['lost']:>5}"
        f" {r['repeated']:>9} {r['moves']:>6}  {r['restartS']}"
    )
    for kind, count in r["errors"].items():
        print(f"    error: {kind} x{count}")
    ok = r["lost"] == 0 and r["repeated"] == 0 and r["completed"] == r["calls"]
    print("\nzero lost turns across the restart:", "yes" if ok else "NO")
    if args.json:
        Path(args.json).write_text(json.dumps({"rollingRestart": r}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
