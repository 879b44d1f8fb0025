"""The ``warmline`` command: one module per subcommand, imported only when it runs.

Each subcommand module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
Only the chosen module is imported, so ``warmline --help`` stays quick and a missing
optional extra only matters for the command that needs it. A command whose extra is missing
stops with one line that names the extra to install (exit status 2), never a traceback:
the modules it always needs are looked up before it starts (:data:`COMMAND_EXTRAS`), and a
module of an extra that turns out missing later is reported the same way
(:data:`MODULE_EXTRAS`).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "COMMAND_EXTRAS", "MODULE_EXTRAS", "PlainParser", "main", "plain"]

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

#: subcommand -> (the extra it needs, the modules of that extra it imports on every run).
COMMAND_EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dev": ("dev", ("websockets",)),
    "call": ("dev", ("websockets",)),
    "load": ("dev", ("websockets",)),
    "serve": ("asgi", ("uvicorn", "websockets")),
}

#: third-party module -> (its distribution, the extras that install it), first one preferred.
#: tests/test_package.py checks each entry against pyproject.toml's extras.
MODULE_EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "websockets": ("websockets", ("dev", "asgi")),
    "uvicorn": ("uvicorn", ("asgi",)),
    "cryptography": ("cryptography", ("dev",)),
    "yaml": ("PyYAML", ("dev",)),
    "hcl2": ("python-hcl2", ("dev",)),
    "moto": ("moto", ("dev",)),
    "samtranslator": ("aws-sam-translator", ("dev",)),
    "boto3": ("boto3", ("aws",)),
    "botocore": ("boto3", ("aws",)),
    "redis": ("redis", ("redis",)),
    "matplotlib": ("matplotlib", ("report",)),
}


def missing_extra_message(command: str, module: str, extra: str) -> str:
    """The one line a command prints when ``module`` (of ``extra``) is not installed."""
    return (
        f"warmline {command}: needs the '{extra}' extra ({module} is not installed); "
        f"install it with: pip install 'warmline[{extra}]'"
    )


def _missing_module(command: str) -> str | None:
    """The first module the command always imports that is not installed, if any."""
    from importlib.util import find_spec

    for module in COMMAND_EXTRAS.get(command, ("", ()))[1]:
        if find_spec(module) is None:
            return module
    return None


def _extra_of(command: str, module: str) -> str | None:
    """The extra to name for a missing ``module``: the command's own when it holds it."""
    extras = MODULE_EXTRAS.get(module.partition(".")[0], ("", ()))[1]
    own = COMMAND_EXTRAS.get(command, ("", ()))[0]
    if own in extras:
        return own
    return extras[0] if extras else None


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
    missing = _missing_module(args.command)
    if missing is not None:
        extra = COMMAND_EXTRAS[args.command][0]
        print(missing_extra_message(args.command, missing, extra), file=sys.stderr)
        return 2
    from warmline.errors import MissingExtraError

    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args))
    except MissingExtraError as exc:
        print(missing_extra_message(args.command, exc.module, exc.extra), file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # A third-party module that no MissingExtraError wrapped: named through MODULE_EXTRAS.
        named = _extra_of(args.command, exc.name or "")
        if named is None:
            raise
        print(missing_extra_message(args.command, exc.name or "", named), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
