"""MkDocs hook: the CLI and ``warmline.toml`` reference pages, written from the code at build time.

``mkdocs.yml`` names this file under ``hooks:``. Before MkDocs reads the nav it adds two
generated pages, so they cannot drift from what the code accepts:

- ``reference/cli.md``: every ``warmline`` command and option, from the argparse parsers
  each ``warmline.cli.<command>`` module registers with ``add_parser(subparsers)``;
- ``reference/configuration.md``: every ``warmline.toml`` table and key, from
  :data:`warmline.config.keys.TABLES` (the registry the loaders check files against) and
  the fault names of :data:`warmline.config.faults.FAULTS`.

``tests/docs/test_reference.py`` builds the site and checks both pages against the parsers
and the registry. ``python scripts/docs_reference.py`` prints both pages.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Iterator
from typing import Any

CLI_PAGE = "reference/cli.md"
CONFIG_PAGE = "reference/configuration.md"


def build_parser() -> argparse.ArgumentParser:
    """The ``warmline`` parser with every subcommand registered (``main`` registers one)."""
    from warmline.cli import COMMANDS

    parser = argparse.ArgumentParser(prog="warmline")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, _help in COMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Each command under ``parser`` (depth first): its words, its parser, its help line."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            yield (*path, name), sub, helps.get(name, "")
            yield from commands(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The arguments a user types: every action but ``--help`` and subcommand groups."""
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
    ]


def anchor(text: str) -> str:
    """The heading id used for a command or a table path (``deploy.secrets.<ENV>``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "top-level"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_row(action: argparse.Action, prog: str) -> str:
    names = ", ".join(action.option_strings) or action.metavar or action.dest
    if action.choices is not None and not isinstance(action.choices, dict):
        value = " \\| ".join(f"`{c}`" for c in action.choices)
    elif action.nargs == 0:
        value = ""
    else:
        metavar = action.metavar or action.dest.upper()
        value = f"`{metavar if isinstance(metavar, str) else ' '.join(metavar)}`"
    if action.nargs in ("*", "+"):
        value += " ..."
    default = action.default
    shown = "" if default in (None, False, argparse.SUPPRESS, []) else f"`{default}`"
    if action.required:
        shown = "required"
    helper = argparse.HelpFormatter(prog)
    text = helper._expand_help(action) if action.help else ""  # fills %(default)s
    return f"| `{names}` | {value} | {shown} | {_cell(text)} |"


def cli_markdown() -> str:
    """The CLI reference page."""
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "Every `warmline` command and option, generated from the argument parsers when the "
        "site is built. `warmline COMMAND --help` prints the same.",
        "",
        "| option | value | default | meaning |",
        "|---|---|---|---|",
        *(_option_row(a, "warmline") for a in options(parser)),
        "",
    ]
    for path, sub, help_line in commands(parser):
        title = "warmline " + " ".join(path)
        level = "#" * min(len(path) + 1, 4)
        lines += [f"{level} {title} {{#{anchor(title)}}}", ""]
        if help_line:
            lines += [_cell(help_line[:1].upper() + help_line[1:]) + ".", ""]
        lines += ["```text", sub.format_usage().strip(), "```", ""]
        description = (sub.description or "").strip("\n")
        if description and description.rstrip(".").lower() != help_line.rstrip(".").lower():
            lines += ["```text", description, "```", ""]
        rows = [_option_row(a, sub.prog) for a in options(sub)]
        if rows:
            lines += [
                "| option | value | default | meaning |",
                "|---|---|---|---|",
                *rows,
                "",
            ]
    return "\n".join(lines)


def _table_title(path: str) -> str:
    return "top level" if not path else f"[{path}]"


def config_markdown() -> str:
    """The ``warmline.toml`` reference page."""
    from warmline.config.faults import FAULTS
    from warmline.config.keys import TABLES

    lines = [
        "# `warmline.toml`",
        "",
        "Every table and key `warmline dev` and `warmline deploy` accept, generated from the "
        "registry the loaders check files against (`warmline/config/keys.py`), so an unknown "
        "key is refused with its name and every accepted key is listed here. The same tables "
        "go under `[tool.warmline]` in `pyproject.toml`. `<name>` is a name you choose; a "
        "default of `-` means none.",
        "",
        "Tables: " + ", ".join(f"[`{_table_title(p)}`](#{anchor(p)})" for p in TABLES) + ".",
        "",
    ]
    for path, keys in TABLES.items():
        lines += [f"## `{_table_title(path)}` {{#{anchor(path)}}}", ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, (kind, default, text) in keys.items():
            lines.append(f"| `{key}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |")
        lines.append("")
        if path == "faults":
            lines += [
                "The faults, by name (the chance each counts is in brackets):",
                "",
                "| fault | what it does |",
                "|---|---|",
                *(f"| `{name}` | {_cell(text)} |" for name, text in FAULTS.items()),
                "",
            ]
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for uri, content in ((CLI_PAGE, cli_markdown()), (CONFIG_PAGE, config_markdown())):
        files.append(File.generated(config, uri, content=content))
    return files


if __name__ == "__main__":
    print(cli_markdown())
    print(config_markdown())
