"""``warmline report LOG...``: cold starts, warm-ups and call timings from Lambda logs.

Reads the emulator's log file (``warmline dev`` writes JSON lines) or CloudWatch text
exports; ``-`` reads standard input. Prints per function cold starts and durations, per
call connect -> setup -> greeting -> first prompt -> first token (as the caller waits, a
cold invocation's INIT included) with p50/p95/p99, and the waterfalls of the calls that
kept their caller waiting longest. ``--plot DIR`` draws the same as PNG files, with the
percentile lines and the ``--budget-ms`` line.

``--cloudwatch GROUP --since 1h`` reads a function's log group from CloudWatch Logs
instead (boto3, ``warmline[aws]``); ``--access-log-group GROUP`` (or ``--access-log FILE``)
adds the WebSocket stage's access log and prints each call as gateway -> function ->
``@connections``.
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
    p.add_argument("logs", nargs="*", help="log files (emulator JSON lines or CloudWatch text)")
    _add_cloudwatch_options(p)
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


def _add_cloudwatch_options(p: Any) -> None:
    p.add_argument(
        "--cloudwatch",
        metavar="LOG_GROUP",
        action="append",
        default=[],
        help="read this CloudWatch Logs group (boto3; repeatable)",
    )
    p.add_argument(
        "--since", default="1h", help="how far back --cloudwatch reads (90s, 15m, 1h, 2d)"
    )
    p.add_argument("--access-log-group", metavar="LOG_GROUP", help="the WebSocket access log group")
    p.add_argument("--access-log", metavar="FILE", help="an access log exported to a file")


def _read(names: list[str]) -> list[str] | None:
    lines: list[str] = []
    for name in names:
        if name == "-":
            lines.extend(sys.stdin)
            continue
        path = Path(name)
        if not path.is_file():
            print(f"error: no such log file: {name}", file=sys.stderr)
            return None
        lines.extend(path.read_text(errors="replace").splitlines())
    return lines


def _cloudwatch(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The function log lines and access-log messages the CloudWatch options name."""
    from warmline.tools.cloudwatch_logs import fetch_events, parse_since, to_report_lines

    since = parse_since(args.since)
    lines: list[str] = []
    for group in args.cloudwatch:
        function = args.function if args.function != "-" else group.rstrip("/").rsplit("/", 1)[-1]
        lines += to_report_lines(fetch_events(group, since), function)
    access: list[str] = []
    if args.access_log_group:
        access = [str(e.get("message") or "") for e in fetch_events(args.access_log_group, since)]
    return lines, access


def run(args: argparse.Namespace) -> int:
    """Print the report; 2 when a log cannot be read."""
    from warmline.tools.report import parse_lines, render

    lines = _read(args.logs)
    access = _read([args.access_log] if args.access_log else [])
    if lines is None or access is None:
        return 2
    if not args.logs and not args.cloudwatch:
        print("error: name log files or --cloudwatch LOG_GROUP", file=sys.stderr)
        return 2
    if args.cloudwatch or args.access_log_group:
        try:
            more, more_access = _cloudwatch(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        lines += more
        access += more_access
    report = parse_lines(lines, default_function=args.function)
    if args.as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        text = render(report, waterfalls=args.waterfalls, budget_ms=args.budget_ms)
        if access:
            from warmline.tools.report_access import parse_access, render_timelines

            text += "\n" + "\n".join(render_timelines(report, parse_access(access)))
        print(text)
    if args.plot:
        from warmline.tools.report_plots import write_plots

        written_files = write_plots(
            report, args.plot, budget_ms=args.budget_ms, waterfalls=max(args.waterfalls, 12)
        )
        for written in written_files:
            print(f"wrote {written}", file=sys.stderr)
    return 0
