"""``warmline kb build``: build the knowledge-base search index ahead of time.

Examples::

    warmline kb build                                   # the shipped sample FAQ
    warmline kb build --source faq.jsonl --out faq.index.sqlite3

The index is a small SQLite file (FTS5 + BM25, see :mod:`warmline.agent.kb`) shipped
with the function and opened read-only at the first prompt, so no call pays for
indexing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``kb`` subcommand and its ``build`` action."""
    p = subparsers.add_parser(
        "kb",
        help="build the knowledge-base index",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="kb_command", metavar="ACTION")
    build = actions.add_parser("build", help="index a JSONL knowledge base")
    build.add_argument("--source", default=None, help="JSONL file (default: the sample FAQ)")
    build.add_argument("--out", default=None, help="index file (default: beside the sample)")


def run(args: argparse.Namespace) -> int:
    """Run ``warmline kb ACTION``; returns the exit code."""
    from warmline.agent.kb import DEFAULT_INDEX, DEFAULT_SOURCE, build_index
    from warmline.errors import ConfigurationError

    if getattr(args, "kb_command", None) != "build":
        print("usage: warmline kb build [--source FILE] [--out FILE]", file=sys.stderr)
        return 2
    source = args.source or DEFAULT_SOURCE
    out = args.out or (DEFAULT_INDEX if args.source is None else _beside(source))
    try:
        report = build_index(source, out)
    except (ConfigurationError, OSError) as exc:
        print(f"warmline kb build: {exc}", file=sys.stderr)
        return 1
    print(f"indexed {report.entries} entries from {source} -> {report.path} ({report.bytes} bytes)")
    return 0


def _beside(source: str) -> str:
    """``faq.jsonl`` -> ``faq.index.sqlite3`` in the same folder."""
    stem = source[: -len(".jsonl")] if source.endswith(".jsonl") else source
    return stem + ".index.sqlite3"
