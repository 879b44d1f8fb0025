"""``warmline deploy render|package``: AWS templates and Lambda zips from ``warmline.toml``.

Examples::

    warmline deploy package                       # build/lambda/<function>.zip, with .pyc
    warmline deploy render --target sam           # deploy/sam/template.json
    warmline deploy render --target terraform --out infra
    warmline deploy package --strict --budget-mb 5   # CI: fail on boto3, numpy, size

The config is the one ``warmline dev`` runs (``warmline.toml`` or ``[tool.warmline]`` in
the current directory unless ``--config`` names a file) plus its optional ``[deploy]``
table; see ``docs/deploy.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

_TARGETS = ("sam", "terraform")


def add_parser(subparsers: Any) -> None:
    """Register the ``deploy`` subcommand and its ``render`` / ``package`` actions."""
    parser = subparsers.add_parser(
        "deploy",
        help="render SAM/Terraform and build Lambda zips from warmline.toml",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    render = actions.add_parser("render", help="write a SAM template or a Terraform file")
    render.add_argument("--target", choices=_TARGETS, required=True)
    render.add_argument("--config", type=Path, default=None, help="warmline.toml or pyproject.toml")
    render.add_argument(
        "--out", type=Path, default=None, help="default: deploy/TARGET beside the config"
    )
    package = actions.add_parser("package", help="build each function's Lambda zip")
    package.add_argument(
        "--config", type=Path, default=None, help="warmline.toml or pyproject.toml"
    )
    package.add_argument("--out", type=Path, default=None, help="default: [deploy] artifacts")
    package.add_argument(
        "--warmline-from",
        choices=("pip", "copy"),
        default=None,
        help="stage warmline with pip from its source tree, or copy the installed package",
    )
    package.add_argument("--python", default=None, help="interpreter that compiles the .pyc")
    package.add_argument(
        "--budget-mb", type=float, default=None, help="default: [deploy] budget_mb"
    )
    package.add_argument("--function", action="append", default=None, help="only this function")
    package.add_argument(
        "--strict", action="store_true", help="exit 1 on heavy dependencies, size or no .pyc"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``deploy render`` or ``deploy package``; returns the exit status."""
    from warmline.config import find_config
    from warmline.config.deploy import load_project
    from warmline.errors import WarmlineError

    if getattr(args, "action", None) not in ("render", "package"):
        print("warmline deploy: choose an action: render or package", file=sys.stderr)
        return 2
    try:
        path = args.config if args.config is not None else find_config(Path.cwd())
        project = load_project(path)
        if args.action == "render":
            return _render(project, args)
        return _package(project, args)
    except WarmlineError as exc:
        print(f"warmline deploy {args.action}: {exc}", file=sys.stderr)
        return 2


def _render(project: Any, args: argparse.Namespace) -> int:
    from warmline.templates.plan import build_plan

    plan = build_plan(project)
    out = args.out if args.out is not None else project.base_dir / "deploy" / args.target
    if args.target == "sam":
        from warmline.templates.cloudformation.write import write_sam

        written = write_sam(plan, out)
        step = f"sam deploy --guided --template-file {written}"
    else:
        from warmline.templates.terraform.write import write_terraform

        written = write_terraform(plan, out)
        step = f"terraform -chdir={out} init && terraform -chdir={out} apply"
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    missing = [fn.name for fn in plan.functions.values() if not fn.artifact.is_file()]
    print(f"wrote {written}")
    if missing:
        print(f"next: warmline deploy package   (no zip yet for: {', '.join(missing)})")
    print(f"then: {step}")
    return 0


def _package(project: Any, args: argparse.Namespace) -> int:
    from warmline.tools.deploy.package import package_project

    budget = args.budget_mb if args.budget_mb is not None else project.deploy.budget_mb
    reports = package_project(
        project,
        args.out,
        warmline_from=args.warmline_from,
        python=args.python,
        functions=args.function,
    )
    failed = False
    for report in reports:
        mb = report.unzipped_bytes / (1024 * 1024)
        print(
            f"{report.function}: {report.path}  {report.zipped_mb:.2f} MB zipped, "
            f"{mb:.2f} MB unzipped, {report.files} files"
        )
        biggest = sorted(report.packages.items(), key=lambda kv: -kv[1])[:5]
        print("  largest: " + ", ".join(f"{n} {b / 1024:.0f} KB" for n, b in biggest))
        print(f"  .pyc: {report.python or 'none'}")
        for note in report.notes:
            print(f"  note: {note}")
        for problem in report.problems(budget):
            print(f"  warning: {problem}", file=sys.stderr)
            failed = True
    return 1 if failed and args.strict else 0
