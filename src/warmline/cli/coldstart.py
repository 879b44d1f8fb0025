"""``warmline coldstart HANDLER...``: profile handlers' cold starts; fail over a budget.

Examples::

    warmline coldstart app.handler --lambda --budget-ms 40
    warmline coldstart src/app.handler --path src --svg cold.svg --speedscope cold.json

Each heavy import chain is printed with its fix: the import statement to change
(file:line) and the lazy-import pattern for it (import inside the function that uses it,
a PEP 562 ``__getattr__`` in a barrel ``__init__``, or the submodule instead of the barrel
package). A module of your own code whose top-level code is slow is a chain too.

The budget may also come from ``[tool.warmline.coldstart] budget_ms`` in pyproject.toml
(or ``[coldstart]`` in warmline.toml) in the current directory.

It profiles Python handlers only. A Node.js or custom-runtime function's cold start shows
under ``warmline dev``, as on Lambda: ``INIT_START`` and the REPORT line's Init Duration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``coldstart`` subcommand."""
    p = subparsers.add_parser(
        "coldstart",
        help="profile handlers' import-time cold start, per module; fail over a budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("handlers", nargs="+", metavar="HANDLER", help="module.function (Lambda's)")
    p.add_argument("--runs", type=int, default=15, help="fresh interpreters per measure")
    p.add_argument("--budget-ms", type=float, default=None, help="exit 1 when over this")
    p.add_argument(
        "--lambda",
        dest="lambda_mode",
        action="store_true",
        help="import Lambda's runtime bootstrap modules first, as Lambda does",
    )
    p.add_argument("--path", action="append", default=[], help="add to PYTHONPATH (code root)")
    p.add_argument(
        "--threshold-ms",
        type=float,
        default=5.0,
        help="smallest cross-package import reported as a chain",
    )
    p.add_argument("--top", type=int, default=12, help="modules listed by self time")
    p.add_argument("--svg", type=Path, help="write a flame graph SVG (one handler)")
    p.add_argument("--speedscope", type=Path, help="write a speedscope JSON (one handler)")
    p.add_argument("--json", dest="json_path", type=Path, help="write the results as JSON")


def _configured_budget() -> float | None:
    for name, keys in (
        ("pyproject.toml", ("tool", "warmline", "coldstart")),
        ("warmline.toml", ("coldstart",)),
    ):
        path = Path(name)
        if not path.is_file():
            continue
        data: Any = tomllib.loads(path.read_text())
        for key in keys:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if isinstance(data, dict) and "budget_ms" in data:
            return float(data["budget_ms"])
    return None


def _non_python(target: str, paths: list[str]) -> str | None:
    """The JavaScript file a handler names when there is no Python module for it."""
    module = target.rsplit(".", 1)[0].replace(".", "/")
    for root in [*paths, "."]:
        base = Path(root) / module
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return None
        for ext in (".js", ".mjs", ".cjs"):
            if base.with_suffix(ext).is_file():
                return str(base.with_suffix(ext))
    return None


def run(args: argparse.Namespace) -> int:
    """Profile each handler, print the report, return 1 if any is over budget."""
    from warmline.tools import flamegraph
    from warmline.tools.coldstart import profile_handler

    budget = args.budget_ms if args.budget_ms is not None else _configured_budget()
    # File names are shown relative to the code root when one is given.
    root = str(Path(args.path[0]).resolve()) if args.path else None
    over = False
    report: list[dict[str, Any]] = []
    for target in args.handlers:
        other = _non_python(target, args.path)
        if other is not None:
            print(
                f"error: warmline coldstart profiles Python handlers only; {target} is in "
                f"{other}. Its cold start shows under warmline dev as INIT_START and the "
                "REPORT line's Init Duration.",
                file=sys.stderr,
            )
            return 2
        try:
            prof = profile_handler(
                target,
                runs=args.runs,
                lambda_mode=args.lambda_mode,
                paths=args.path,
                threshold_ms=args.threshold_ms,
            )
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        verdict = ""
        if budget is not None:
            ok = prof.added_ms <= budget
            over = over or not ok
            verdict = f"  [{'ok' if ok else 'OVER'} budget {budget:g} ms]"
        mode = " (Lambda init order)" if args.lambda_mode else ""
        print(
            f"\n{target}{mode}: +{prof.added_ms:.1f} ms cold-start import cost "
            f"(imports {prof.import_ms:.1f} ms; wall +{prof.wall_added_ms:.1f} ms over a "
            f"bare interpreter of {prof.bare_ms:.1f} ms; imports: medians, wall: fastest, "
            f"of {prof.runs} runs){verdict}"
        )
        print(f"  {'module':<48} {'self ms':>8} {'cum ms':>8}")
        for name, self_ms, cum_ms in prof.heaviest(args.top):
            print(f"  {name:<48} {self_ms:>8.2f} {cum_ms:>8.2f}")
        if prof.chains:
            print("  heaviest import chains, and what to change:")
            for chain in prof.chains[:8]:
                print(f"    {chain.cumulative_ms:7.1f} ms  {chain.describe()}")
                for fix in chain.fixes:
                    if fix.site is not None:
                        print(f"{'':15}{fix.site.where(root)}  {fix.site.code}")
                    print(f"{'':17}-> {fix.advice}")
        if args.svg or args.speedscope:
            flamegraph.write(
                prof.roots,
                f"{target}: +{prof.added_ms:.1f} ms",
                svg=args.svg,
                speedscope=args.speedscope,
            )
        report.append(
            {
                "handler": target,
                "added_ms": round(prof.added_ms, 2),
                "bare_ms": round(prof.bare_ms, 2),
                "chains": [chain.to_dict() for chain in prof.chains],
                "over_budget": budget is not None and prof.added_ms > budget,
            }
        )
    if args.json_path:
        args.json_path.write_text(json.dumps({"budget_ms": budget, "handlers": report}, indent=2))
    return 1 if over else 0
