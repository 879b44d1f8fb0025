"""The ``warmline`` command: one module per subcommand, imported only when it runs.

Each subcommand module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
Only the chosen module is imported, so ``warmline --help`` stays quick and a missing
optional extra only matters for the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "PlainParser", "main", "plain"]

#: reStructuredText inline markup the modules' docstrings (the commands' descriptions) use:
#: roles (:mod:`x`), literals (``x``) and interpreted text (`x`).
_MARKUP = re.compile(r":[a-z]+:`~?([^`]+)`|``([^`]+)``|`([^`]+)`")


def plain(text: str) -> str:
    """``text`` without reStructuredText inline markup, for a terminal."""
    return _MARKUP.sub(lambda m: next(g for g in m.groups() if g is not None), text)


class PlainParser(argparse.ArgumentParser):
    """An argument parser whose help (and every subcommand's) shows no markup."""

    def format_help(self) -> str:
        return plain(super().format_help())

    def format_usage(self) -> str:
        return plain(super().format_usage())


#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("warmline.cli.dev", "run the local API Gateway WebSocket + Lambda emulator"),
    "coldstart": ("warmline.cli.coldstart", "profile handlers' cold start; fail over a budget"),
    "report": ("warmline.cli.report", "summarize cold starts and call timings from logs"),
    "call": ("warmline.cli.call", "call the agent like Twilio ConversationRelay, signed"),
    "cost": ("warmline.cli.cost", "monthly cost: API Gateway + Lambda vs ECS/Fargate + ALB"),
    "warmup": ("warmline.cli.warmup", "cost of keeping environments warm: pings, PC, SnapStart"),
    "deploy": ("warmline.cli.deploy", "render SAM/Terraform templates and build Lambda zips"),
    "serve": ("warmline.cli.serve", "run an App as an ASGI server (WebSocket + HTTP, one port)"),
    "load": ("warmline.cli.load", "many concurrent scripted calls: lost turns, latency"),
    "kb": ("warmline.cli.kb", "build the knowledge-base index the agent ships with"),
    "schedule": ("warmline.cli.schedule", "fire a schedule of a running warmline dev now"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``warmline`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = PlainParser(
        prog="warmline",
        description="Voice and chat AI backends on serverless WebSockets.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(module_name).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    args = parser.parse_args(args_list)
    if args.version:
        from warmline import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
