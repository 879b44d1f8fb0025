"""``warmline load``: N concurrent scripted calls against ``warmline dev`` or ``warmline serve``.

Examples::

    warmline load --ws ws://127.0.0.1:3001/dev --calls 200 --concurrency 200 --turns 5
    warmline load --twiml http://127.0.0.1:3001/twiml --calls 50   # webhooks, action, reconnects

Bounded in count (``--calls``) and time (``--deadline``); loopback targets only.
Exit code 1 when any turn was lost or answered twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

__all__ = ["add_parser", "run"]

_LOOPBACK = ("127.", "localhost", "::1", "[::1]")


def add_parser(subparsers: Any) -> None:
    """Register ``load``."""
    p = subparsers.add_parser("load", help="many concurrent scripted calls; lost turns, p99")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--ws", help="the ConversationRelay WebSocket URL")
    target.add_argument("--twiml", help="the incoming-call webhook: each call as Twilio places it")
    p.add_argument("--welcome-greeting", help="with --ws: the TwiML's welcomeGreeting")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--rate", type=float, default=50.0, help="calls started per second")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per turn")
    p.add_argument("--deadline", type=float, default=600.0, help="seconds for the whole run")
    p.add_argument("--auth-token", default=None, help="signs handshakes (TWILIO_AUTH_TOKEN)")
    p.add_argument("--json", dest="as_json", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run the load; print the summary."""
    from warmline.tools.load import progress_bar, run_load

    host = urlsplit(args.ws or args.twiml).hostname or ""
    if not host.startswith(_LOOPBACK[:2]) and host not in ("::1",):
        print("warmline load only targets this machine (127.x, localhost, ::1)", file=sys.stderr)
        return 2
    result = asyncio.run(
        run_load(
            args.ws,
            twiml_url=args.twiml,
            welcome_greeting=args.welcome_greeting,
            calls=args.calls,
            concurrency=args.concurrency,
            turns=args.turns,
            rate=args.rate,
            auth_token=args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or None,
            turn_timeout_s=args.timeout,
            deadline_s=args.deadline,
            progress=progress_bar(args.calls) if sys.stderr.isatty() and not args.as_json else None,
        )
    )
    summary = result.summary()
    if args.as_json:
        print(json.dumps(summary, indent=2))
    else:
        f = summary["firstTokenMs"]
        print(
            f"{summary['completed']}/{summary['calls']} calls completed, "
            f"{summary['answered']}/{summary['turnsSent']} turns answered, "
            f"{summary['apologised']} apologised, {summary['lost']} lost, "
            f"{summary['doubled']} doubled, {summary['reconnects']} reconnects, "
            f"{summary['invalidFrames']} invalid frames; first token p50/p95/p99 "
            f"{f['p50']}/{f['p95']}/{f['p99']} ms; {summary['turnsPerSecond']} turns/s"
        )
        for kind, count in summary["errors"].items():
            print(f"  error: {kind} x{count}")
    return 1 if result.lost or result.doubled else 0
