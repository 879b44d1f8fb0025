"""Import cost of warmline's Lambda hot path, as a ratio to a bare interpreter.

Runs each probe in fresh interpreters (nothing cached in ``sys.modules``), interleaved so
that machine noise hits every probe alike, and prints medians and the cost added over a
bare ``python -c pass`` measured in the same run. boto3 and a boto3
``apigatewaymanagementapi`` client are measured as the yardstick (docs/performance.md has
the latest figures).

Bytecode is cached (``PYTHONDONTWRITEBYTECODE`` is unset for the children), as in a
deployment package that ships ``.pyc`` files; without them every cold start also compiles.

Usage: ``python bench/import_cost.py [--runs 25] [--json PATH]``.
Target: the hot path adds <= 25 ms over the bare interpreter.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

PROBES: dict[str, str] = {
    "bare": "pass",
    "warmline hot path": "import warmline, warmline.adapters.aws_lambda",
    "warmline hot path + relay + sqlite store + @connections client": (
        "import warmline, warmline.adapters.aws_lambda, warmline.core.relay, "
        "warmline.stores.sqlite, warmline.connections.apigw"
    ),
}
#: A handler made as Lambda makes it: metrics on (the EMF writer), tracing off and on.
_HANDLER = (
    "import os; os.environ.update({{'AWS_LAMBDA_FUNCTION_NAME': 'f'{extra}}}); "
    "import warmline, warmline.adapters.aws_lambda as a; a.lambda_handler(warmline.App(name='x'))"
)
PROBES["warmline handler, EMF metrics on, tracing off"] = _HANDLER.format(extra="")
#: The otel extra on: the OpenTelemetry SDK and its OTLP/HTTP exporter, set up.
OTEL = {
    "warmline handler, otel extra on (WARMLINE_OTEL=1)": _HANDLER.format(
        extra=", 'WARMLINE_OTEL': '1'"
    )
}
OPTIONAL: dict[str, str] = {
    "boto3": "import boto3",
    "boto3 + apigatewaymanagementapi client": (
        "import boto3; boto3.client('apigatewaymanagementapi', region_name='us-east-1',"
        " endpoint_url='https://example.com/prod', aws_access_key_id='x',"
        " aws_secret_access_key='x')"
    ),
}
TARGET_MS = 25.0


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time_once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="fresh interpreters per probe")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    probes = dict(PROBES)
    if importlib.util.find_spec("boto3") is not None:
        probes.update(OPTIONAL)
    if importlib.util.find_spec("opentelemetry.sdk") is not None:
        probes.update(OTEL)
    samples: dict[str, list[float]] = {name: [] for name in probes}
    for code in probes.values():  # warm the OS file cache first
        _time_once(code)
    for _ in range(args.runs):
        for name, code in probes.items():
            samples[name].append(_time_once(code))
    bare = statistics.median(samples["bare"])
    results = {}
    print(f"{'probe':<66} {'median ms':>10} {'added ms':>9} {'x bare':>7}")
    for name, values in samples.items():
        med = statistics.median(values)
        results[name] = {"median_ms": round(med, 2), "added_ms": round(med - bare, 2)}
        print(f"{name:<66} {med:>10.1f} {med - bare:>9.1f} {med / bare:>7.2f}")
    hot = results["warmline hot path"]["added_ms"]
    verdict = "within" if hot <= TARGET_MS else "OVER"
    print(f"\nhot path adds {hot:.1f} ms over a bare interpreter: {verdict} {TARGET_MS:.0f} ms")
    if "boto3" in results:
        ratio = results["boto3"]["added_ms"] / max(hot, 0.1)
        print(f"boto3 alone adds {results['boto3']['added_ms']:.1f} ms: {ratio:.0f}x the hot path")
    otel = results.get(next(iter(OTEL)))
    if otel is not None:
        base = results["warmline handler, EMF metrics on, tracing off"]["added_ms"]
        print(f"the otel extra adds {otel['added_ms'] - base:.1f} ms to a cold start")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
