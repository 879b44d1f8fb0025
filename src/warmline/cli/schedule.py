"""``warmline schedule fire NAME``: fire a schedule of a running ``warmline dev`` now.

Posts to the emulator's control endpoint ``/_warmline/schedules/NAME/fire``, which sends
every target of the rule its scheduled event (or constant input) as an Event invocation,
as EventBridge would at the rule's next tick: "try my warmer" without waiting for
``rate(5 minutes)``. The emulator is found at ``--url``, else on loopback at
``$WARMLINE_PORT`` (or 3001), the port ``warmline dev`` picks the same way; the control
token, when the emulator needs one, is ``$WARMLINE_DEV_CONTROL_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import quote

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``warmline schedule fire``."""
    from warmline.cli.dev import DEFAULT_PORT, PORT_ENV

    parser = subparsers.add_parser(
        "schedule",
        help="fire a schedule of a running warmline dev now",
        description="Fire a schedule of a running warmline dev now.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fire = actions.add_parser(
        "fire",
        help="send the schedule's targets its event now (enabled or not)",
        description="Send every target of schedule NAME its scheduled event now, "
        "as an Event invocation.",
    )
    fire.add_argument("name", metavar="NAME", help="the schedule's name in the configuration")
    fire.add_argument(
        "--url",
        default=None,
        help=f"the emulator (default http://127.0.0.1:${PORT_ENV}, else port {DEFAULT_PORT})",
    )


def _base_url(url: str | None) -> str:
    from warmline.cli.dev import DEFAULT_PORT, PORT_ENV

    if url:
        return url.rstrip("/")
    port = os.environ.get(PORT_ENV, "").strip() or str(DEFAULT_PORT)
    return f"http://127.0.0.1:{port}"


def run(args: argparse.Namespace) -> int:
    """Fire the schedule; 0 when the emulator took it, 1 otherwise."""
    from warmline.cli.dev import CONTROL_TOKEN_ENV
    from warmline.errors import ConfigurationError
    from warmline.http1 import Http1Connection, message, split_endpoint
    from warmline.web import PREFIX

    base = _base_url(args.url)
    try:
        scheme, host, port, host_header, _path = split_endpoint(base, "--url")
    except ConfigurationError as exc:
        print(f"warmline schedule: {exc}", file=sys.stderr)
        return 2
    if scheme != "http":
        print("warmline schedule: --url must be http://HOST:PORT", file=sys.stderr)
        return 2
    headers = [("Host", host_header), ("Content-Length", "0"), ("Connection", "close")]
    token = os.environ.get(CONTROL_TOKEN_ENV)
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    path = f"{PREFIX}/schedules/{quote(args.name, safe='')}/fire"
    connection = Http1Connection(host, port, 10.0)
    try:
        response = connection.request(message("POST", path, headers, b""))
    except OSError as exc:
        print(f"warmline schedule: no warmline dev at {base}: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    try:
        body = json.loads(response.body or b"{}")
    except ValueError:
        body = {"message": response.body.decode(errors="replace")}
    if response.status != 202:
        print(f"warmline schedule: {response.status}: {body.get('message')}", file=sys.stderr)
        return 1
    targets = ", ".join(body.get("targets", []))
    print(f"fired {args.name} -> {targets}: request ids {', '.join(body.get('requestIds', []))}")
    return 0
