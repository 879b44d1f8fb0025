"""Monthly cost of a voice agent: API Gateway WebSocket + Lambda against ECS/Fargate + ALB,
and of keeping environments warm (scheduled pings, provisioned concurrency, SnapStart).

Every figure is the product of a usage count and a price from :mod:`warmline.tools.prices`;
each line item carries both so an estimate can be checked by hand. Month = 730 hours (the
convention of AWS's own calculator).

The reference case: ECS/Fargate + ALB ≈ $130–150/month against ≈ $16–20 on
API Gateway + Lambda for 1,000 calls a month. :data:`PUBLISHED_CASE` states assumptions that
give those figures: two always-on Fargate tasks (1 vCPU, 2 GB, one per AZ) behind an ALB
with a NAT gateway for the LLM calls, against a 1,536 MB WebSocket function kept warm with
one provisioned environment (answers on the first ring) and an on-demand worker. The
container side is almost all fixed cost; the serverless side is almost all the warm
environment — which is why the two cross over only at tens of thousands of calls.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from warmline.tools.prices import AS_OF, price

__all__ = [
    "HOURS_PER_MONTH",
    "PUBLISHED_CASE",
    "CallProfile",
    "ContainerFleet",
    "Estimate",
    "LineItem",
    "WarmupPlan",
    "container_cost",
    "serverless_cost",
    "warmup_options",
]

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
#: Messages are metered in 32 KB increments (API Gateway pricing page).
MESSAGE_BILLING_BYTES = 32 * 1024


@dataclass(frozen=True)
class CallProfile:
    """What the calls look like and how the serverless stack is set up."""

    calls_per_month: int = 1_000
    minutes_per_call: float = 5.0
    turns_per_call: int = 10
    #: Frames Twilio sends per turn (final prompt + partial prompts + info/interrupt).
    inbound_frames_per_turn: int = 6
    #: ``@connections`` posts per answer (tokens; coalescing lowers it).
    posts_per_turn: int = 60
    #: Invocations of the WebSocket function per turn (the prompt route).
    ws_invocations_per_turn: int = 1
    ws_ms_per_invocation: float = 40.0
    #: Worker (offload) time per turn streaming the answer; 0 when answers are inline.
    worker_seconds_per_turn: float = 6.0
    ws_memory_mb: int = 1536
    worker_memory_mb: int = 1024
    architecture: str = "x86_64"
    #: Provisioned environments for the WebSocket function (0 = on demand).
    provisioned_environments: int = 1
    #: Cold starts that still happen per month (scale-out beyond provisioned).
    cold_starts_per_month: int = 30
    init_ms: float = 700.0
    dynamodb_writes_per_turn: int = 3
    dynamodb_reads_per_turn: int = 4
    log_kb_per_call: float = 2_000.0
    alarms: int = 3
    secrets: int = 1
    region: str = "us-east-1"


@dataclass(frozen=True)
class ContainerFleet:
    """The always-on alternative: Fargate tasks behind an ALB."""

    tasks: int = 2
    vcpu_per_task: float = 1.0
    gb_per_task: float = 2.0
    alb_lcu: float = 1.0
    nat_gateways: int = 1
    nat_gb_per_month: float = 5.0
    log_gb_per_month: float = 5.0
    alarms: int = 3
    secrets: int = 1
    region: str = "us-east-1"


@dataclass(frozen=True)
class LineItem:
    """``quantity`` × ``unit_price`` = ``usd``."""

    name: str
    quantity: float
    unit: str
    unit_price: float

    @property
    def usd(self) -> float:
        return self.quantity * self.unit_price


@dataclass
class Estimate:
    """A monthly estimate as line items."""

    architecture: str
    items: list[LineItem] = field(default_factory=list)

    def add(self, name: str, quantity: float, unit: str, unit_price: float) -> None:
        self.items.append(LineItem(name, quantity, unit, unit_price))

    @property
    def total(self) -> float:
        return sum(item.usd for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "pricesAsOf": AS_OF,
            "totalUsd": round(self.total, 2),
            "items": [{**asdict(i), "usd": round(i.usd, 4)} for i in self.items],
        }


def _gb(mb: int) -> float:
    return mb / 1024


def serverless_cost(p: CallProfile) -> Estimate:
    """API Gateway WebSocket + Lambda (+ DynamoDB, logs) for the profile."""
    r, arch = p.region, p.architecture
    est = Estimate("API Gateway WebSocket + Lambda")
    turns = p.calls_per_month * p.turns_per_call
    # setup + the answers' posts + connect frame; every inbound and outbound message counts.
    messages = p.calls_per_month * (
        1 + p.turns_per_call * (p.inbound_frames_per_turn + p.posts_per_turn)
    )
    est.add(
        "WebSocket messages",
        messages / 1e6,
        "million messages",
        price(r, "apigw_ws_per_million_messages"),
    )
    est.add(
        "WebSocket connection minutes",
        p.calls_per_month * p.minutes_per_call / 1e6,
        "million minutes",
        price(r, "apigw_ws_per_million_connection_minutes"),
    )
    ws_invocations = p.calls_per_month * (3 + p.turns_per_call * p.ws_invocations_per_turn)
    worker_invocations = turns if p.worker_seconds_per_turn > 0 else 0
    est.add(
        "Lambda requests",
        (ws_invocations + worker_invocations) / 1e6,
        "million requests",
        price(r, "lambda_per_million_requests"),
    )
    ws_gbs = ws_invocations * p.ws_ms_per_invocation / 1000 * _gb(p.ws_memory_mb)
    if p.provisioned_environments > 0:
        configured = p.provisioned_environments * _gb(p.ws_memory_mb) * SECONDS_PER_MONTH
        est.add(
            "Provisioned concurrency (WebSocket function)",
            configured,
            "GB-s",
            price(r, f"lambda_pc_per_gb_second_{arch}"),
        )
        est.add(
            "Lambda duration on provisioned environments",
            ws_gbs,
            "GB-s",
            price(r, f"lambda_pc_duration_per_gb_second_{arch}"),
        )
    else:
        est.add(
            "Lambda duration (WebSocket function)",
            ws_gbs,
            "GB-s",
            price(r, f"lambda_per_gb_second_{arch}"),
        )
    worker_gbs = turns * p.worker_seconds_per_turn * _gb(p.worker_memory_mb)
    if worker_gbs:
        est.add(
            "Lambda duration (worker)", worker_gbs, "GB-s", price(r, f"lambda_per_gb_second_{arch}")
        )
    # INIT is billed for on-demand functions since 2025-08-01 (docs/protocols.md §3.1).
    init_gbs = p.cold_starts_per_month * p.init_ms / 1000 * _gb(p.ws_memory_mb)
    est.add(
        "Lambda INIT (billed since Aug 2025)",
        init_gbs,
        "GB-s",
        price(r, f"lambda_per_gb_second_{arch}"),
    )
    est.add(
        "DynamoDB writes",
        turns * p.dynamodb_writes_per_turn / 1e6,
        "million writes",
        price(r, "dynamodb_per_million_writes"),
    )
    est.add(
        "DynamoDB reads",
        turns * p.dynamodb_reads_per_turn / 1e6,
        "million reads",
        price(r, "dynamodb_per_million_reads"),
    )
    est.add(
        "CloudWatch Logs ingestion",
        p.calls_per_month * p.log_kb_per_call / 1024 / 1024,
        "GB",
        price(r, "cloudwatch_logs_per_gb"),
    )
    est.add("CloudWatch alarms", p.alarms, "alarms", price(r, "cloudwatch_alarm_per_month"))
    est.add("Secrets Manager", p.secrets, "secrets", price(r, "secret_per_month"))
    return est


def container_cost(f: ContainerFleet) -> Estimate:
    """ECS/Fargate + ALB (+ NAT gateway, logs) for the fleet; independent of call volume."""
    r = f.region
    est = Estimate("ECS/Fargate + ALB")
    est.add(
        "Fargate vCPU",
        f.tasks * f.vcpu_per_task * HOURS_PER_MONTH,
        "vCPU-hours",
        price(r, "fargate_per_vcpu_hour"),
    )
    est.add(
        "Fargate memory",
        f.tasks * f.gb_per_task * HOURS_PER_MONTH,
        "GB-hours",
        price(r, "fargate_per_gb_hour"),
    )
    est.add("ALB", HOURS_PER_MONTH, "hours", price(r, "alb_per_hour"))
    est.add("ALB capacity", f.alb_lcu * HOURS_PER_MONTH, "LCU-hours", price(r, "alb_per_lcu_hour"))
    est.add("NAT gateway", f.nat_gateways * HOURS_PER_MONTH, "hours", price(r, "nat_per_hour"))
    est.add("NAT data processed", f.nat_gb_per_month, "GB", price(r, "nat_per_gb"))
    est.add(
        "CloudWatch Logs ingestion", f.log_gb_per_month, "GB", price(r, "cloudwatch_logs_per_gb")
    )
    est.add("CloudWatch alarms", f.alarms, "alarms", price(r, "cloudwatch_alarm_per_month"))
    est.add("Secrets Manager", f.secrets, "secrets", price(r, "secret_per_month"))
    return est


@dataclass(frozen=True)
class WarmupPlan:
    """How many environments to keep warm and how."""

    environments: int = 1
    memory_mb: int = 1024
    architecture: str = "x86_64"
    #: Scheduled pings: one rule every ``ping_minutes``; each ping invokes every environment.
    ping_minutes: int = 5
    ping_ms: float = 2.0
    #: Environments are recycled now and then even when pinged; each recycle is an INIT.
    recycles_per_environment_per_day: float = 12.0
    init_ms: float = 700.0
    #: SnapStart restores per month (new environments created from the snapshot).
    snapstart_restores_per_month: int = 3_000
    region: str = "us-east-1"


def warmup_options(w: WarmupPlan) -> list[Estimate]:
    """Keeping ``w.environments`` warm: scheduled pings, provisioned concurrency, SnapStart."""
    r, arch, gb = w.region, w.architecture, _gb(w.memory_mb)
    pings = Estimate("scheduled warm-up pings")
    per_month = math.ceil(HOURS_PER_MONTH * 60 / w.ping_minutes) * w.environments
    pings.add(
        "ping invocations",
        per_month / 1e6,
        "million requests",
        price(r, "lambda_per_million_requests"),
    )
    pings.add(
        "ping duration (billed per ms)",
        per_month * math.ceil(w.ping_ms) / 1000 * gb,
        "GB-s",
        price(r, f"lambda_per_gb_second_{arch}"),
    )
    inits = w.environments * w.recycles_per_environment_per_day * 30.42
    pings.add(
        "INIT after recycles",
        inits * w.init_ms / 1000 * gb,
        "GB-s",
        price(r, f"lambda_per_gb_second_{arch}"),
    )
    pc = Estimate("provisioned concurrency")
    pc.add(
        "configured environments",
        w.environments * gb * SECONDS_PER_MONTH,
        "GB-s",
        price(r, f"lambda_pc_per_gb_second_{arch}"),
    )
    snap = Estimate("SnapStart (Python 3.12+)")
    snap.add(
        "snapshot cache",
        gb * SECONDS_PER_MONTH,
        "GB-s",
        price(r, "lambda_snapstart_cache_per_gb_second"),
    )
    snap.add(
        "restores",
        w.snapstart_restores_per_month * gb,
        "GB restored",
        price(r, "lambda_snapstart_restore_per_gb"),
    )
    return [pings, pc, snap]


#: The assumptions that reproduce the published case (module docstring).
PUBLISHED_CASE: dict[str, Any] = {
    "profile": CallProfile(),
    "fleet": ContainerFleet(),
}


def with_volume(profile: CallProfile, calls_per_month: int) -> CallProfile:
    """The same profile at another call volume."""
    return replace(profile, calls_per_month=calls_per_month)
