"""``warmline cost`` and ``warmline warmup plan``: what a call volume costs per month.

Examples::

    warmline cost                                   # the published case: 1,000 calls/month
    warmline cost --calls 50000 --minutes 4 --provisioned 0 --json
    warmline warmup plan --environments 2 --memory 1024
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from typing import Any

__all__ = ["add_parser", "add_warmup_parser", "run", "run_warmup"]


def _render(estimates: list[Any]) -> str:
    lines = []
    for est in estimates:
        lines.append(f"{est.architecture}: ${est.total:,.2f} / month")
        for item in est.items:
            lines.append(
                f"  {item.name:<46} {item.quantity:>14,.4f} {item.unit:<18} "
                f"x ${item.unit_price:<12.10g} = ${item.usd:>9,.2f}"
            )
        lines.append("")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> None:
    """Register ``cost``."""
    from warmline.tools.cost import CallProfile

    p = subparsers.add_parser(
        "cost",
        help="monthly cost: API Gateway + Lambda vs ECS/Fargate + ALB",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in fields(CallProfile):
        flag = "--" + f.name.replace("_", "-")
        p.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=f"({f.default})")
    p.add_argument("--calls", dest="calls_per_month", type=int, default=None, help="calls/month")
    p.add_argument("--minutes", dest="minutes_per_call", type=float, default=None)
    p.add_argument("--turns", dest="turns_per_call", type=int, default=None)
    p.add_argument("--memory", dest="ws_memory_mb", type=int, default=None)
    p.add_argument("--provisioned", dest="provisioned_environments", type=int, default=None)
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Print both estimates and the ratio."""
    from warmline.tools.cost import CallProfile, ContainerFleet, container_cost, serverless_cost

    changes = {
        f.name: getattr(args, f.name)
        for f in fields(CallProfile)
        if getattr(args, f.name, None) is not None
    }
    profile = replace(CallProfile(), **changes)
    fleet = replace(ContainerFleet(), region=profile.region)
    serverless, container = serverless_cost(profile), container_cost(fleet)
    if args.as_json:
        print(
            json.dumps(
                {
                    "serverless": serverless.to_dict(),
                    "container": container.to_dict(),
                    "profile": vars(profile),
                },
                indent=2,
                default=str,
            )
        )
        return 0
    print(
        f"{profile.calls_per_month:,} calls/month, {profile.minutes_per_call:g} min each, "
        f"{profile.turns_per_call} turns (region {profile.region})\n"
    )
    print(_render([serverless, container]))
    ratio = container.total / serverless.total if serverless.total else float("inf")
    print(f"container / serverless: {ratio:.1f}x")
    return 0


def add_warmup_parser(subparsers: Any) -> None:
    """Register ``warmup`` (with its ``plan`` action)."""
    from warmline.tools.cost import WarmupPlan

    p = subparsers.add_parser("warmup", help="cost of keeping environments warm, three ways")
    p.add_argument("action", choices=["plan"], help="plan: compare the options")
    for f in fields(WarmupPlan):
        flag = "--" + f.name.replace("_", "-")
        p.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=f"({f.default})")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")


def run_warmup(args: argparse.Namespace) -> int:
    """Print the three ways of keeping environments warm, cheapest first."""
    from warmline.tools.cost import WarmupPlan, warmup_options

    changes = {
        f.name: getattr(args, f.name)
        for f in fields(WarmupPlan)
        if getattr(args, f.name, None) is not None
    }
    plan = replace(WarmupPlan(), **changes)
    options = sorted(warmup_options(plan), key=lambda e: e.total)
    if args.as_json:
        print(json.dumps([o.to_dict() for o in options], indent=2))
        return 0
    print(f"keeping {plan.environments} x {plan.memory_mb} MB warm ({plan.region}):\n")
    print(_render(options))
    return 0
