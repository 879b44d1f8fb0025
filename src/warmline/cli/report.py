"""``warmline report LOG...``: cold starts, warm-ups and call timings from Lambda logs.

Reads the emulator's log file (``warmline dev`` writes JSON lines) or CloudWatch text
exports; ``-`` reads standard input.
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
    print(json.dumps(report.to_dict(), indent=2) if args.as_json else render(report))
    if args.plot:
        from warmline.tools.report import write_plots

        for written in write_plots(report, args.plot):
            print(f"wrote {written}", file=sys.stderr)
    return 0
