"""``warmline call``: call your agent the way Twilio ConversationRelay would.

Examples::

    warmline call --twiml http://127.0.0.1:3001/twiml              # type prompts
    warmline call --twiml http://127.0.0.1:3001/twiml --script call.txt --json
    warmline call --ws ws://127.0.0.1:3001/dev --script call.txt

The Twilio auth token (``--auth-token`` or ``TWILIO_AUTH_TOKEN``) signs the webhook and the
WebSocket handshake exactly as Twilio does; without one nothing is signed.
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
    p.add_argument("--connect-url", help="connect here instead (a local ws:// for a wss:// URL)")
    p.add_argument("--script", type=Path, help="steps, one per line (see warmline.tools.call)")
    p.add_argument("--auth-token", default=None, help="Twilio auth token (env TWILIO_AUTH_TOKEN)")
    p.add_argument("--from", dest="caller", default="+15550100", help="caller number")
    p.add_argument("--to", dest="callee", default="+15550101", help="called number")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON at the end")


def run(args: argparse.Namespace) -> int:
    """Run the call; 0 when it connected, 1 when the connect was rejected, 2 on errors."""
    from warmline.errors import WarmlineError
    from warmline.tools.call import fetch_twiml, parse_script, run_call, typed_steps

    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or None
    live = not args.as_json

    def show(token_text: str) -> None:
        if live:
            sys.stdout.write(token_text)
            sys.stdout.flush()

    def turn_done(prompt: str) -> None:
        if live:
            print(f"\ncaller: {prompt}\nagent: ", end="", flush=True)

    try:
        params: dict[str, str] = {}
        action = None
        ws_url = args.ws
        if args.twiml:
            call = {
                "CallSid": "CA" + os.urandom(16).hex(),
                "From": args.caller,
                "To": args.callee,
                "Direction": "inbound",
                "CallStatus": "ringing",
            }
            ws_url, params, action = fetch_twiml(args.twiml, call, token)
        steps: Any
        if args.script:
            steps = parse_script(args.script.read_text().splitlines())
        elif not sys.stdin.isatty():
            steps = parse_script(sys.stdin.read().splitlines())
        else:
            steps = typed_steps()
        if live:
            print(f"calling {ws_url}\nagent: ", end="")
        result = asyncio.run(
            run_call(
                ws_url,
                steps,
                auth_token=token,
                custom_parameters=params,
                action_url=action,
                caller=args.caller,
                callee=args.callee,
                turn_timeout_s=args.timeout,
                on_token=show,
                connect_url=args.connect_url,
                on_prompt=turn_done,
            )
        )
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
            print(
                f"  [{turn.prompt!r}: first token {turn.first_token_ms} ms, "
                f"last {turn.last_token_ms} ms{', interrupted' if turn.interrupted else ''}]"
            )
        if result.end is not None:
            print(f"call ended by the agent: {json.dumps(result.end)}")
        if result.action_twiml:
            print(f"action TwiML: {result.action_twiml}")
    return 1 if result.rejected is not None else 0
