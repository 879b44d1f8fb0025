"""Cold-start init of the sample agent's Lambda handler against a naive one, in one run.

Three probes, each in fresh interpreters, interleaved run by run so machine noise hits
all alike (medians; bytecode cached, as in a package built by ``warmline deploy package``):

- a bare interpreter (``python -c pass``);
- the sample agent's handler: ``examples/agent/app.py`` (TwiML + ConversationRelay + the
  knowledge base, with Lambda's bootstrap modules loaded first, as on AWS);
- a naive handler: the same job written the usual way, importing boto3 and an LLM SDK
  (openai) at module top level. The SDK is installed into a cache directory on first use
  (``pip install --target``); if that fails the naive handler imports boto3 alone, and the
  table says so.

Target: the agent's init adds <= 40 ms over the bare interpreter and is >= 10x
less than the naive handler's.

Usage: ``python bench/coldstart.py [--runs 15] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "warmline-bench" / "llm-sdk"
BOOTSTRAP = "import json, decimal, http.client, socket, logging, traceback, uuid\n"
NAIVE = """import json
import boto3
{sdk}
_dynamodb = boto3.client("dynamodb", region_name="us-east-1")
_apigw = boto3.client("apigatewaymanagementapi", region_name="us-east-1",
                      endpoint_url="https://example.execute-api.us-east-1.amazonaws.com/prod")

def handler(event, context):
    return {{"statusCode": 200}}
"""


def _sdk_path() -> Path | None:
    marker = CACHE / "openai"
    if marker.exists():
        return CACHE
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(CACHE), "openai"],
        capture_output=True,
        text=True,
    )
    return CACHE if done.returncode == 0 and marker.exists() else None


def _time(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base_env["AWS_ACCESS_KEY_ID"] = base_env["AWS_SECRET_ACCESS_KEY"] = "bench"
    sdk = _sdk_path()
    with tempfile.TemporaryDirectory() as tmp:
        naive_dir = Path(tmp)
        sdk_line = "import openai" if sdk else "# (no LLM SDK could be installed)"
        (naive_dir / "naive.py").write_text(NAIVE.format(sdk=sdk_line))
        agent_env = dict(base_env, PYTHONPATH=str(ROOT / "examples" / "agent"))
        paths = [str(naive_dir)] + ([str(sdk)] if sdk else [])
        naive_env = dict(base_env, PYTHONPATH=os.pathsep.join(paths))
        probes = {
            "bare (Lambda bootstrap modules only)": (BOOTSTRAP, base_env),
            "warmline sample agent handler": (BOOTSTRAP + "import app; app.handler", agent_env),
            "naive handler (boto3 + " + ("openai" if sdk else "no SDK") + ")": (
                BOOTSTRAP + "import naive; naive.handler",
                naive_env,
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in probes}
        for code, env in probes.values():  # compile bytecode, warm the file cache
            _time(code, env)
        for _ in range(args.runs):
            for name, (code, env) in probes.items():
                samples[name].append(_time(code, env))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    bare = next(iter(medians.values()))
    names = list(medians)
    agent_added = medians[names[1]] - bare
    naive_added = medians[names[2]] - bare
    print(f"{'probe':<42} {'median ms':>10} {'added ms':>9}")
    for name, med in medians.items():
        print(f"{name:<42} {med:>10.1f} {med - bare:>9.1f}")
    ratio = naive_added / max(agent_added, 0.1)
    print(
        f"\nagent init adds {agent_added:.1f} ms ({'within' if agent_added <= 40 else 'OVER'}"
        f" 40 ms); the naive handler adds {naive_added:.1f} ms: {ratio:.0f}x more"
        f" ({'>=' if ratio >= 10 else '<'} 10x)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "medians_ms": medians,
                    "agent_added_ms": agent_added,
                    "naive_added_ms": naive_added,
                    "ratio": ratio,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
