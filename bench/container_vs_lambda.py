"""The same scripted calls against ``warmline serve`` (container mode) and ``warmline dev``
(API Gateway WebSocket + Lambda, emulated), in one run, side by side.

Both run the sample agent (``examples/agent``) with the same SQLite session store and the
same Twilio auth token; each call goes as a phone call does (``warmline.tools.call``): the
signed TwiML webhook, the signed WebSocket from the TwiML, ``setup``, then the script's
prompts. One server runs at a time, on 127.0.0.1, each in its own process tree.

Per target it prints, over the measured calls (a first warm-up call per target is run
and left out, so neither pays its cold start in the percentiles):

* per-turn latency, prompt -> first token and prompt -> last token, p50 and p99;
* throughput: turns/s and calls/s with ``--concurrency`` callers at once. Each caller
  waits ~150 ms after every answer for a possible ``end`` frame (as ``warmline call``
  does), so one caller cannot exceed ~6 turns/s: raise ``--concurrency`` to load the
  servers rather than the script;
* errors: calls that were rejected, failed or came back with a wrong turn count.

What it says and does not: the emulator runs each Lambda environment as a process and
posts through the ``@connections`` HTTP API, as AWS does; ``warmline serve`` answers in
threads of one process and writes straight onto the socket. Loopback numbers are floors:
on AWS add the network and API Gateway's own hops to the Lambda column.

Usage: ``python bench/container_vs_lambda.py [--calls N] [--concurrency C] [--quick]
[--json PATH]``. Every wait has a timeout; every subprocess is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "examples" / "agent"
TOKEN = "bench-auth-token"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SCRIPT = (
    "What are your support hours?\n"
    "How much is the Spark 300 plan?\n"
    "dtmf: 1\n"
    "Do you sell pizza?\n"
    "no thanks\n"
)
TURNS_PER_CALL = 5


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARMLINE_")}
    env.update(
        {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "WARMLINE_SQLITE_PATH": str(workdir / "sessions.sqlite3"),
            "WARMLINE_HANDOFF_NUMBER": "+15550123",
        }
    )
    return env


def _dev_config(workdir: Path) -> Path:
    """The sample agent's warmline.toml, without the warm-up schedule, code by absolute path."""
    environment = {
        "WARMLINE_HANDOFF_NUMBER": "+15550123",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "WARMLINE_SQLITE_PATH": str(workdir / "sessions.sqlite3"),
    }
    env_toml = ", ".join(f"{k} = {json.dumps(v)}" for k, v in environment.items())
    text = f"""region = "us-east-1"

[functions.agent]
handler = "app.handler"
code = {json.dumps(str(AGENT))}
memory = 512
timeout = 30
environment = {{ {env_toml} }}

[websocket]
stage = "dev"
route_selection_expression = "$request.body.type"

[websocket.routes]
"$connect" = "agent"
"$disconnect" = "agent"
"$default" = "agent"

[http]
function = "agent"
"""
    path = workdir / "warmline.toml"
    path.write_text(text)
    return path


@contextmanager
def _server(kind: str, workdir: Path) -> Iterator[str]:
    """Start ``warmline serve`` or ``warmline dev``; yields the TwiML webhook URL."""
    log_path = workdir / f"{kind}.log"
    if kind == "serve":
        command = [sys.executable, "-m", "warmline.cli.serve", "app:app"]
        command += ["--app-dir", str(AGENT), "--port", "0"]
        marker = "warmline serve: "
    else:
        command = [sys.executable, "-m", "warmline", "dev"]
        command += ["--config", str(_dev_config(workdir)), "--port", "0"]
        marker = "  Function URL: "
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, env=_env(workdir), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        base = None
        while base is None:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith(marker):
                    base = line[len(marker) :].split()[0].rstrip("/")
                    break
            if base is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
        yield f"{base}/twiml"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def _one_call(twiml_url: str) -> Any:
    from warmline.tools.call import fetch_twiml, parse_script, run_call

    caller = {"CallSid": "CA" + os.urandom(16).hex(), "From": "+15550100", "To": "+15550101"}
    ws_url, params, action = await asyncio.to_thread(fetch_twiml, twiml_url, caller, TOKEN)
    return await run_call(
        ws_url,
        parse_script(SCRIPT.splitlines()),
        auth_token=TOKEN,
        custom_parameters=params,
        action_url=action,
        turn_timeout_s=30,
    )


async def _first_answer(twiml_url: str) -> None:
    """Wait until the webhook answers (the emulator starts its environments lazily)."""
    from warmline.tools.call import fetch_twiml

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            await asyncio.to_thread(fetch_twiml, twiml_url, {"CallSid": "CAwarm"}, TOKEN)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def measure(twiml_url: str, calls: int, concurrency: int) -> dict[str, Any]:
    """Run ``calls`` scripted calls, ``concurrency`` at a time, after one warm-up call."""
    await _first_answer(twiml_url)
    started = time.perf_counter()
    await _one_call(twiml_url)
    warmup_ms = (time.perf_counter() - started) * 1000
    first: list[float] = []
    last: list[float] = []
    errors = 0
    turns = 0
    gate = asyncio.Semaphore(concurrency)

    async def caller() -> None:
        nonlocal errors, turns
        async with gate:
            try:
                result = await _one_call(twiml_url)
            except Exception:  # counted, the run goes on
                errors += 1
                return
        if result.rejected is not None or len(result.turns) != TURNS_PER_CALL:
            errors += 1
        for turn in result.turns:
            turns += 1
            if turn.first_token_ms is not None:
                first.append(turn.first_token_ms)
            if turn.last_token_ms is not None:
                last.append(turn.last_token_ms)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(calls)))
    wall = time.perf_counter() - began
    return {
        "calls": calls,
        "concurrency": concurrency,
        "turns": turns,
        "errors": errors,
        "warmupCallMs": round(warmup_ms, 1),
        "firstTokenP50Ms": percentile(first, 50),
        "firstTokenP99Ms": percentile(first, 99),
        "lastTokenP50Ms": percentile(last, 50),
        "lastTokenP99Ms": percentile(last, 99),
        "turnsPerS": round(turns / wall, 1) if wall else None,
        "callsPerS": round(calls / wall, 2) if wall else None,
        "wallS": round(wall, 2),
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def report(results: dict[str, dict[str, Any]]) -> str:
    """The side-by-side table."""
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("calls (errors)", lambda r: f"{r['calls']} ({r['errors']})"),
        ("turns", lambda r: str(r["turns"])),
        ("first token p50 ms", lambda r: _fmt(r["firstTokenP50Ms"])),
        ("first token p99 ms", lambda r: _fmt(r["firstTokenP99Ms"])),
        ("last token p50 ms", lambda r: _fmt(r["lastTokenP50Ms"])),
        ("last token p99 ms", lambda r: _fmt(r["lastTokenP99Ms"])),
        ("turns/s", lambda r: _fmt(r["turnsPerS"])),
        ("calls/s", lambda r: _fmt(r["callsPerS"])),
        ("warm-up call ms", lambda r: _fmt(r["warmupCallMs"])),
    ]
    names = list(results)
    lines = [f"{'':22}" + "".join(f"{name:>16}" for name in names)]
    for label, cell in rows:
        lines.append(f"{label:22}" + "".join(f"{cell(results[n]):>16}" for n in names))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="measured calls per target")
    parser.add_argument("--concurrency", type=int, default=20, help="callers at once")
    parser.add_argument("--quick", action="store_true", help="4 calls, 2 at once")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--targets", default="serve,dev", help="comma-separated: serve, dev (default both)"
    )
    args = parser.parse_args(argv)
    calls, concurrency = (4, 2) if args.quick else (args.calls, args.concurrency)
    results: dict[str, dict[str, Any]] = {}
    names = {"serve": "warmline serve", "dev": "warmline dev"}
    for kind in [t.strip() for t in args.targets.split(",") if t.strip()]:
        with tempfile.TemporaryDirectory(prefix=f"warmline-bench-{kind}-") as tmp:
            with _server(kind, Path(tmp)) as twiml_url:
                results[names[kind]] = asyncio.run(measure(twiml_url, calls, concurrency))
    print(f"{TURNS_PER_CALL} turns per call, {calls} calls, {concurrency} at once (127.0.0.1)")
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["errors"] for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
