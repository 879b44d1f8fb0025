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

The LLM path, in the same run: ``examples/llm-agent`` as it ships (its ``warmline.toml``:
retrieval, the OpenAI-compatible provider, offload ``auto``, signed handshakes) with only
its base URL pointed at a fake model in this process, which streams a grounded answer a
token every ``--token-gap-ms`` and notes the moment it wrote the last token of the first
sentence. The figure is the overhead from that moment to the caller receiving the text
frame that completes the sentence (what a TTS voice can start speaking): HTTP, the event
stream parser, the speech chunker, the turn stream and the ``@connections`` post. Both
clocks are this process's monotonic clock. Target: p95 <= 50 ms.

Usage: ``python bench/turn_latency.py [--calls 20] [--llm-turns 40] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The fake model's answer: a first sentence in several tokens, then more.
AUTH_TOKENS = [
    "Our phone ",
    "support team ",
    "is there ",
    "every day. ",
    "Chat is ",
    "open around ",
    "the clock. ",
    "Anything else?",
]
#: Every function checks X-Twilio-Signature with it; every call signs with it.
AUTH_TOKEN = "bench-auth-token"
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

    env = {
        "WARMLINE_SQLITE_PATH": str(tmp / f"{function}.sqlite3"),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
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
        result = await run_call(server.ws_url, script, auth_token=AUTH_TOKEN, turn_timeout_s=20)
        if result.rejected is not None:
            raise RuntimeError(f"the call was refused: {result.rejected}")
        for turn in result.turns:
            if turn.first_token_ms is not None and turn.last_token_ms is not None:
                firsts.append(turn.first_token_ms)
                lasts.append(turn.last_token_ms)
        await server.drain()
    return firsts, lasts


async def _llm_server(tmp: Path, model_url: str) -> Any:
    """``examples/llm-agent`` in the emulator, its model pointed at ``model_url``."""
    from fake_model import example_under_dev

    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    config = example_under_dev(
        model_url, tmp / "llm.sqlite3", auth_token=AUTH_TOKEN, api_key="bench"
    )
    server = DevServer(config, port=0, log_sink=LogSink(console=None))
    await server.start()
    return server


async def _llm_turns(server: Any, model: Any, turns: int) -> list[float]:
    """Per turn: ms from the model's first sentence to the caller's frame completing it."""
    from websockets.asyncio.client import connect

    from warmline.twilio.signature import compute_signature

    first_sentence = "".join(AUTH_TOKENS[:4]).strip()
    overheads: list[float] = []
    signed = {"X-Twilio-Signature": compute_signature(server.ws_url, {}, AUTH_TOKEN)}
    async with connect(server.ws_url, additional_headers=signed) as ws:
        call = os.urandom(8).hex()
        setup = {"type": "setup", "sessionId": f"VX{call}", "callSid": f"CA{call}"}
        await ws.send(json.dumps(setup))
        while not json.loads(await ws.recv()).get("last"):
            pass
        for i in range(turns):
            question = QUESTIONS[i % len(QUESTIONS)]
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": question, "last": True}))
            heard, at = "", None
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                heard += frame.get("token", "")
                if at is None and first_sentence in " ".join(heard.split()):
                    at = time.monotonic()
                if frame.get("last"):
                    break
            assert at is not None, heard
            overheads.append((at - model.first_sentence_at[-1]) * 1000)
    return overheads


async def _llm(tmp: Path, turns: int, gap_ms: float) -> dict[str, list[float]]:
    sys.path.insert(0, str(ROOT / "tests" / "agent" / "providers"))
    from fake_model import Script, fake_model

    with fake_model([Script("", AUTH_TOKENS)], gap_s=gap_ms / 1000) as model:
        server = await _llm_server(tmp, model.url)
        try:
            await _llm_turns(server, model, 4)  # cold start, page cache: not measured
            return {"overhead": await _llm_turns(server, model, turns)}
        finally:
            await server.close()


async def main(calls: int, llm_turns: int = 40, gap_ms: float = 20.0) -> dict[str, Any]:
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
        results["llm"] = await _llm(tmp_path, llm_turns, gap_ms)
    return results


def report(results: dict[str, Any]) -> dict[str, Any]:
    base = statistics.median(results["echo warm"]["last"])
    out: dict[str, Any] = {"echo_round_trip_ms": round(base, 2)}
    print(
        f"{'':<12} {'first p50':>10} {'first p99':>10} {'last p50':>10} {'last p99':>10}"
        f" {'first/echo':>11}"
    )
    for name, data in results.items():
        if name == "llm":
            continue
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
    overhead = results["llm"]["overhead"]
    p50, p95 = statistics.median(overhead), _pct(overhead, 95)
    out["llm_first_sentence_overhead_ms"] = {
        "p50": round(p50, 2),
        "p95": round(p95, 2),
        "max": round(max(overhead), 2),
        "samples": len(overhead),
    }
    verdict = "within" if p95 <= 50 else "OVER"
    print(
        f"LLM path: model's first sentence -> caller's frame: p50 {p50:.2f} ms, "
        f"p95 {p95:.2f} ms over {len(overhead)} turns: {verdict} 50 ms"
    )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="warm calls per app")
    parser.add_argument("--llm-turns", type=int, default=40, help="measured LLM turns")
    parser.add_argument("--token-gap-ms", type=float, default=20.0, help="the fake model's pace")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    summary = report(asyncio.run(main(args.calls, args.llm_turns, args.token_gap_ms)))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    sys.exit(0)
