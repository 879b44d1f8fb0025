"""``warmline cost`` and ``warmline warmup plan``: what a call volume costs per month.

Examples::

    warmline cost                                   # the published case: 1,000 calls/month
    warmline cost --calls 50000 --minutes 4 --warm 2 --json
    warmline cost --region eu-west-1                # refused: lists the regions with prices
    warmline warmup plan --environments 2 --memory 1024

``warmline cost`` prints the on-demand API Gateway + Lambda figure with its line items,
each way of keeping environments warm as its own row (scheduled pings, provisioned
concurrency, SnapStart: add one), the ECS/Fargate + ALB alternative, every assumption
with its value, and the price table's date, sources and regions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

__all__ = ["add_parser", "add_warmup_parser", "run", "run_warmup"]


def _price(value: float) -> str:
    """A unit price in plain decimals (``0.0000166667``), as the pricing pages write it."""
    text = f"{abs(value):.10f}".rstrip("0").rstrip(".")
    return f"{'-' if value < 0 else ''}${text}"


def _items(est: Any, indent: str) -> list[str]:
    return [
        f"{indent}{item.name:<44} {item.quantity:>14,.4f} {item.unit:<17} "
        f"x {_price(item.unit_price):<14} = ${item.usd:>9,.2f}"
        for item in est.items
    ]


def _render(estimates: list[Any]) -> str:
    lines = []
    for est in estimates:
        lines.append(f"{est.architecture}: ${est.total:,.2f} / month")
        lines.extend(_items(est, "  "))
        lines.append("")
    return "\n".join(lines)


def _assumption_lines(title: str, rows: Sequence[tuple[str, Any, str]]) -> list[str]:
    lines = [f"{title}:"]
    lines.extend(f"  {name:<34} {value!s:>10}  {doc}" for name, value, doc in rows)
    return lines


def _prices_lines(region: str) -> list[str]:
    from warmline.tools.prices import AS_OF, SOURCES, regions

    lines = [
        f"Prices: {region}, USD, as of {AS_OF}; regions with prices: {', '.join(regions())}",
    ]
    lines.extend(f"  {source}" for source in SOURCES.values())
    return lines


def _add_fields(p: argparse.ArgumentParser, cls: Any) -> None:
    """One flag per field of the dataclass ``cls`` (``--calls-per-month``...)."""
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        doc = f.metadata.get("doc", "")
        p.add_argument(
            flag, dest=f.name, type=type(f.default), default=None, help=f"{doc} ({f.default})"
        )


def _chosen(args: argparse.Namespace, cls: Any) -> Any:
    changes = {
        f.name: getattr(args, f.name)
        for f in fields(cls)
        if getattr(args, f.name, None) is not None
    }
    return replace(cls(), **changes)


def add_parser(subparsers: Any) -> None:
    """Register ``cost``."""
    from warmline.tools.cost import CallProfile

    p = subparsers.add_parser(
        "cost",
        help="monthly cost: API Gateway + Lambda (and each warm-up) vs ECS/Fargate + ALB",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_fields(p, CallProfile)
    p.add_argument("--calls", dest="calls_per_month", type=int, default=None, help="calls/month")
    p.add_argument("--minutes", dest="minutes_per_call", type=float, default=None)
    p.add_argument("--turns", dest="turns_per_call", type=int, default=None)
    p.add_argument("--memory", dest="ws_memory_mb", type=int, default=None)
    p.add_argument("--warm", dest="warm_environments", type=int, default=None)
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Print the estimates, the warm-up rows, the assumptions and the prices' date.

    Returns:
        0, or 2 when the region has no prices (the message lists those that do).
    """
    from warmline.errors import ConfigurationError
    from warmline.tools.cost import (
        FIXED_ASSUMPTIONS,
        CallProfile,
        ContainerFleet,
        assumptions,
        container_cost,
        serverless_cost,
        warmup_strategies,
    )
    from warmline.tools.prices import AS_OF

    profile = _chosen(args, CallProfile)
    fleet = replace(ContainerFleet(), region=profile.region)
    try:
        serverless, container = serverless_cost(profile), container_cost(fleet)
        warmups = warmup_strategies(profile)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.as_json:
        report = {
            "pricesAsOf": AS_OF,
            "serverless": serverless.to_dict(),
            "warmups": [
                {**w.to_dict(), "withServerlessUsd": round(serverless.total + w.total, 2)}
                for w in warmups
            ],
            "container": container.to_dict(),
            "profile": vars(profile),
            "fleet": vars(fleet),
            "assumptions": list(FIXED_ASSUMPTIONS),
        }
        print(json.dumps(report, indent=2, default=str))
        return 0
    lines = [
        f"{profile.calls_per_month:,} calls/month, {profile.minutes_per_call:g} min each, "
        f"{profile.turns_per_call} turns (region {profile.region}, prices as of {AS_OF})",
        "",
        _render([serverless]),
        f"Keeping {profile.warm_environments} x {profile.ws_memory_mb} MB WebSocket "
        "environment(s) warm: one of these rows, added to the figure above",
    ]
    for warm in warmups:
        lines.append(
            f"  {warm.architecture}: ${warm.total:,.2f} / month "
            f"-> ${serverless.total + warm.total:,.2f} in all"
        )
        lines.extend(_items(warm, "    "))
    lines += ["", _render([container])]
    ratios = ", ".join(
        f"{container.total / (serverless.total + w.total):.1f}x against {w.architecture}"
        for w in warmups
    )
    lines += [f"container / serverless: {ratios}", ""]
    lines += _assumption_lines("Assumptions (calls and functions)", assumptions(profile))
    lines += _assumption_lines("Assumptions (container fleet)", assumptions(fleet))
    lines += ["Assumptions (both):", *(f"  {a}" for a in FIXED_ASSUMPTIONS), ""]
    lines += _prices_lines(profile.region)
    print("\n".join(lines))
    return 0


def add_warmup_parser(subparsers: Any) -> None:
    """Register ``warmup`` (with its ``plan`` action)."""
    from warmline.tools.cost import WarmupPlan

    p = subparsers.add_parser("warmup", help="cost of keeping environments warm, three ways")
    p.add_argument("action", choices=["plan"], help="plan: compare the options")
    _add_fields(p, WarmupPlan)
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")


def run_warmup(args: argparse.Namespace) -> int:
    """Print the three ways of keeping environments warm, cheapest first; 2 for a region
    without prices."""
    from warmline.errors import ConfigurationError
    from warmline.tools.cost import WarmupPlan, assumptions, warmup_options

    plan = _chosen(args, WarmupPlan)
    try:
        options = sorted(warmup_options(plan), key=lambda e: e.total)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.as_json:
        print(json.dumps([o.to_dict() for o in options], indent=2))
        return 0
    lines = [f"keeping {plan.environments} x {plan.memory_mb} MB warm ({plan.region}):", ""]
    lines += [_render(options), *_assumption_lines("Assumptions", assumptions(plan)), ""]
    lines += _prices_lines(plan.region)
    print("\n".join(lines))
    return 0
