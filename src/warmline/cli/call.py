"""``warmline call``: call your agent the way Twilio ConversationRelay would.

Examples::

    warmline call --twiml http://127.0.0.1:3001/twiml              # type prompts
    warmline call --twiml http://127.0.0.1:3001/twiml --script call.txt --json
    warmline call --ws ws://127.0.0.1:3001/dev --script call.txt
    warmline call --check http://127.0.0.1:3001/twiml              # conformance script

The Twilio auth token (``--auth-token`` or ``TWILIO_AUTH_TOKEN``) signs the webhooks and
the WebSocket handshake exactly as Twilio does; without one nothing is signed. Every frame
the app sends is shown (``text`` as speech, the others in brackets), and a frame Twilio
would refuse is shown with the rule it breaks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``call`` subcommand."""
    p = subparsers.add_parser(
        "call",
        help="call the agent like Twilio ConversationRelay (signed), scripted or typed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--twiml", help="the incoming-call webhook URL (fetches the TwiML)")
    target.add_argument("--ws", help="the ConversationRelay WebSocket URL, skipping TwiML")
    target.add_argument(
        "--check",
        metavar="URL",
        help="run the conformance script against a TwiML webhook (http[s]://) or a "
        "WebSocket (ws[s]://) and print what a Twilio call would hit",
    )
    p.add_argument("--connect-url", help="connect here instead (a local ws:// for a wss:// URL)")
    p.add_argument("--script", type=Path, help="steps, one per line (see warmline.tools.call)")
    p.add_argument("--auth-token", default=None, help="Twilio auth token (env TWILIO_AUTH_TOKEN)")
    p.add_argument("--from", dest="caller", default="+15550100", help="caller number")
    p.add_argument("--to", dest="callee", default="+15550101", help="called number")
    p.add_argument(
        "--method", default="POST", choices=("GET", "POST"), help="the webhook's HTTP method"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    p.add_argument(
        "--greeting-wait",
        type=float,
        default=10.0,
        help="seconds to listen for the app's greeting when the TwiML speaks none",
    )
    p.add_argument(
        "--welcome-greeting", help="with --ws: the TwiML's welcomeGreeting (spoken by Twilio)"
    )
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON at the end")


def describe(frame: dict[str, Any], problem: str | None) -> str:
    """A frame other than ``text``, as one bracketed line."""
    if problem is not None:
        shown = json.dumps(frame.get("raw", frame), ensure_ascii=False)[:120]
        return f"[refused by Twilio (64107): {problem}: {shown}]"
    kind = frame.get("type")
    details = " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in frame.items() if k != "type"
    )
    return f"[{kind}{' ' + details if details else ''}]"


def run(args: argparse.Namespace) -> int:
    """Run the call; 0 when it connected, 1 when the connect was rejected or a check
    failed, 2 on errors."""
    from warmline.errors import WarmlineError
    from warmline.tools.call import (
        CallIdentity,
        CallOptions,
        parse_script,
        place_call,
        run_call,
        typed_steps,
    )
    from warmline.tools.twilio_side import RelayTwiml

    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or None
    live = not args.as_json

    def show(token_text: str) -> None:
        if live:
            sys.stdout.write(token_text)
            sys.stdout.flush()

    def show_frame(frame: dict[str, Any], problem: str | None) -> None:
        if live:
            print(f"\n  {describe(frame, problem)}", flush=True)

    def turn_done(prompt: str) -> None:
        if live:
            print(f"\ncaller: {prompt}\nagent: ", end="", flush=True)

    options = CallOptions(
        auth_token=token,
        turn_timeout_s=args.timeout,
        greeting_wait_s=args.greeting_wait,
        on_token=show,
        on_frame=show_frame,
        on_prompt=turn_done,
    )
    if args.check:
        return _check(args, options)
    try:
        steps: Any
        if args.script:
            steps = parse_script(args.script.read_text().splitlines())
        elif not sys.stdin.isatty():
            steps = parse_script(sys.stdin.read().splitlines())
        else:
            steps = typed_steps()
        call = CallIdentity(args.caller, args.callee)
        if live:
            print(f"calling {args.twiml or args.ws} (CallSid {call.call_sid})\nagent: ", end="")
        if args.twiml:
            coro = place_call(
                args.twiml,
                steps,
                call=call,
                method=args.method,
                options=options,
                connect_url=args.connect_url,
            )
        else:
            relay = RelayTwiml.for_socket(args.ws, welcome_greeting=args.welcome_greeting)
            coro = run_call(
                args.ws,
                steps,
                call=call,
                relay=relay,
                options=options,
                connect_url=args.connect_url,
            )
        result = asyncio.run(coro)
    except (WarmlineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n")
        if result.rejected is not None:
            print(f"connect rejected: HTTP {result.rejected}")
        for turn in result.turns:
            extra = "".join(
                (
                    ", interrupted" if turn.interrupted else "",
                    f", session {turn.session + 1}" if turn.session else "",
                    f"; {turn.note}" if turn.note else "",
                )
            )
            print(
                f"  [{turn.prompt!r}: first token {turn.first_token_ms} ms, "
                f"last {turn.last_token_ms} ms{extra}]"
            )
        if result.invalid:
            print(f"Twilio refused {len(result.invalid)} frame(s) (error 64107)")
        if result.closed is not None:
            print(f"socket closed before the caller hung up: {result.closed}")
        for number, session in enumerate(result.sessions, 1):
            print(
                f"session {number} {session.session_id}: {session.status}, "
                f"{session.duration_s:.1f} s"
                + (f", action -> {session.action_twiml}" if session.action_twiml else "")
            )
    return 1 if result.rejected is not None else 0


def _check(args: argparse.Namespace, options: Any) -> int:
    """``--check URL``: the conformance script; its report."""
    from warmline.errors import WarmlineError
    from warmline.tools.conformance import run_check

    options.on_token = options.on_frame = options.on_prompt = None
    try:
        report = asyncio.run(
            run_check(
                args.check,
                options=options,
                method=args.method,
                connect_url=args.connect_url,
                welcome_greeting=args.welcome_greeting,
            )
        )
    except (WarmlineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0 if report.passed else 1
