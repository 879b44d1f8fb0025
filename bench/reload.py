"""Reload on save: from an edit of a handler to the first message its new code answers.

Starts ``warmline dev`` on a one-function project, keeps a WebSocket open, and per run:
saves the handler with a new version string, then sends a message every few milliseconds
until the answer carries the new version. The time from the save to that answer is the
figure; the baseline, in the same run, is a warm message's round trip (what the loop would
cost with no reload at all) and a cold start's (what the first message after a reload pays
at least).

Target: the new code answers within 1 s of the save (the median and the worst run).

Usage: ``python bench/reload.py [--runs 10] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dev"))

from dev_process import DevProcess, echo_config  # noqa: E402

HANDLER = """
def handler(event, context):
    return {{"statusCode": 200, "body": "{version}:" + (event.get("body") or "")}}
"""
#: How often the benchmark asks while it waits for the new code.
POLL_S = 0.005
TARGET_S = 1.0


def _round_trip(ws: object, text: str) -> tuple[float, str]:
    started = time.perf_counter()
    ws.send(text)  # type: ignore[attr-defined]
    answer = str(ws.recv(timeout=30))  # type: ignore[attr-defined]
    return time.perf_counter() - started, answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from websockets.sync.client import connect

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        code = root / "code"
        code.mkdir()
        handler = code / "app.py"
        handler.write_text(HANDLER.format(version="v0"))
        (root / "warmline.toml").write_text(echo_config(code))
        reloads, warm, cold = [], [], []
        with DevProcess(root) as dev, connect(dev.ws_url) as ws:
            _round_trip(ws, "first")
            for run in range(1, args.runs + 1):
                for _ in range(5):
                    warm.append(_round_trip(ws, "warm")[0])
                version = f"v{run}"
                saved = time.perf_counter()
                handler.write_text(HANDLER.format(version=version))
                while True:
                    spent, answer = _round_trip(ws, "x")
                    if answer.startswith(version + ":"):
                        reloads.append(time.perf_counter() - saved)
                        cold.append(spent)
                        break
                    time.sleep(POLL_S)
    result = {
        "runs": args.runs,
        "save_to_new_code_median_s": statistics.median(reloads),
        "save_to_new_code_max_s": max(reloads),
        "warm_round_trip_median_s": statistics.median(warm),
        "first_new_code_round_trip_median_s": statistics.median(cold),
    }
    result["ratio_to_warm"] = (
        result["save_to_new_code_median_s"] / result["warm_round_trip_median_s"]
    )
    result["met"] = result["save_to_new_code_max_s"] <= TARGET_S
    ms = {key: value * 1000 for key, value in result.items() if key.endswith("_s")}
    print(
        f"save -> new code answers: median {ms['save_to_new_code_median_s']:.0f} ms, "
        f"worst {ms['save_to_new_code_max_s']:.0f} ms (target <= {TARGET_S * 1000:.0f} ms)"
    )
    print(
        f"warm round trip (baseline): median {ms['warm_round_trip_median_s']:.2f} ms; "
        f"first new-code round trip (cold): {ms['first_new_code_round_trip_median_s']:.1f} ms"
    )
    print(
        f"save -> new code is {result['ratio_to_warm']:.0f}x a warm round trip; "
        f"target {'met' if result['met'] else 'NOT met'}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
