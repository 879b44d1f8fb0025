"""``warmline warmup plan``: the cost of keeping environments warm (see ``warmline.cli.cost``)."""

from __future__ import annotations

from warmline.cli.cost import add_warmup_parser as add_parser
from warmline.cli.cost import run_warmup as run

__all__ = ["add_parser", "run"]
