"""``warmline report LOG...``: cold starts, warm-ups and call timings from Lambda logs.

Reads the emulator's log file (``warmline dev`` writes JSON lines) or CloudWatch text
exports; ``-`` reads standard input. Prints per function cold starts and durations, per
call connect -> setup -> greeting -> first prompt -> first token (as the caller waits, a
cold invocation's INIT included) with p50/p95/p99, and the waterfalls of the calls that
kept their caller waiting longest. ``--plot DIR`` draws the same as PNG files, with the
percentile lines and the ``--budget-ms`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``report`` subcommand."""
    p = subparsers.add_parser("report", help="summarize cold starts and call timings from logs")
    p.add_argument("logs", nargs="+", help="log files (emulator JSON lines or CloudWatch text)")
    p.add_argument("--function", default="-", help="function name for lines that carry none")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="DIR", help="also write PNG plots here (warmline[report])")
    p.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        help="the caller's wait the greeting and the first token should stay under",
    )
    p.add_argument(
        "--waterfalls",
        type=int,
        default=3,
        metavar="N",
        help="print the waterfalls of the N calls that waited longest (0: none)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the report; 2 when a log cannot be read."""
    from warmline.tools.report import parse_lines, render

    lines: list[str] = []
    for name in args.logs:
        if name == "-":
            lines.extend(sys.stdin)
            continue
        path = Path(name)
        if not path.is_file():
            print(f"error: no such log file: {name}", file=sys.stderr)
            return 2
        lines.extend(path.read_text(errors="replace").splitlines())
    report = parse_lines(lines, default_function=args.function)
    if args.as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report, waterfalls=args.waterfalls, budget_ms=args.budget_ms))
    if args.plot:
        from warmline.tools.report_plots import write_plots

        written_files = write_plots(
            report, args.plot, budget_ms=args.budget_ms, waterfalls=max(args.waterfalls, 12)
        )
        for written in written_files:
            print(f"wrote {written}", file=sys.stderr)
    return 0
