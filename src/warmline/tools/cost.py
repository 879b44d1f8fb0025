"""Monthly cost of a voice agent: API Gateway WebSocket + Lambda against ECS/Fargate + ALB,
and of keeping environments warm (scheduled pings, provisioned concurrency, SnapStart).

Every figure is the product of a usage count and a price from :mod:`warmline.tools.prices`;
each line item carries both so an estimate can be checked by hand. Month = 730 hours (the
convention of AWS's own calculator).

The serverless side is an on-demand figure plus one of the warm-up strategies, each its
own row (:func:`warmup_strategies`): keeping an environment warm is a choice, and with
provisioned concurrency it is most of the bill.

The reference case: ECS/Fargate + ALB ≈ $130–150/month against ≈ $16–20 on
API Gateway + Lambda for 1,000 calls a month. :data:`PUBLISHED_CASE` states assumptions that
give those figures: two always-on Fargate tasks (1 vCPU, 2 GB, one per AZ) behind an ALB
with a NAT gateway for the LLM calls, against a 1,536 MB WebSocket function kept warm with
one provisioned environment (answers on the first ring) and an on-demand worker: about
$3.30 on demand plus $16.40 of provisioned concurrency. Kept warm by scheduled pings
instead, the same calls cost about $3.40. The container side is almost all fixed cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

from warmline.tools.prices import AS_OF, price

_T = TypeVar("_T")

__all__ = [
    "FIXED_ASSUMPTIONS",
    "HOURS_PER_MONTH",
    "PUBLISHED_CASE",
    "CallProfile",
    "ContainerFleet",
    "Estimate",
    "LineItem",
    "WarmupPlan",
    "assumptions",
    "container_cost",
    "serverless_cost",
    "warmup_options",
    "warmup_strategies",
]

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
#: Messages are metered in 32 KB increments (API Gateway pricing page).
MESSAGE_BILLING_BYTES = 32 * 1024


def _assume(default: _T, doc: str) -> _T:
    """A field whose meaning is printed with its value among the assumptions."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class CallProfile:
    """What the calls look like and how the serverless stack is set up."""

    calls_per_month: int = _assume(1_000, "calls a month")
    minutes_per_call: float = _assume(5.0, "minutes a call stays connected")
    turns_per_call: int = _assume(10, "caller prompts answered per call")
    inbound_frames_per_turn: int = _assume(
        6, "frames Twilio sends per turn (final + partial prompts, info, interrupt)"
    )
    posts_per_turn: int = _assume(
        60, "@connections posts per answer (tokens; coalescing lowers it)"
    )
    ws_invocations_per_turn: int = _assume(1, "WebSocket function invocations per turn")
    ws_ms_per_invocation: float = _assume(40.0, "billed ms per WebSocket function invocation")
    worker_seconds_per_turn: float = _assume(
        6.0, "worker (offload) seconds per turn streaming the answer; 0 = answers inline"
    )
    ws_memory_mb: int = _assume(1536, "WebSocket function memory (MB)")
    worker_memory_mb: int = _assume(1024, "worker function memory (MB)")
    architecture: str = _assume("x86_64", "Lambda architecture (x86_64 or arm64)")
    warm_environments: int = _assume(
        1, "WebSocket function environments a warm-up strategy keeps warm"
    )
    cold_starts_per_month: int = _assume(
        30, "cold starts still paid each month (scale-out beyond the warm environments)"
    )
    init_ms: float = _assume(700.0, "billed INIT ms per cold start")
    dynamodb_writes_per_turn: int = _assume(3, "session store writes per turn (on-demand)")
    dynamodb_reads_per_turn: int = _assume(4, "session store reads per turn (on-demand)")
    log_kb_per_call: float = _assume(2_000.0, "CloudWatch Logs ingested per call (KB)")
    alarms: int = _assume(3, "CloudWatch alarms")
    secrets: int = _assume(1, "Secrets Manager secrets (the Twilio auth token)")
    region: str = _assume("us-east-1", "AWS region (prices are per region)")


@dataclass(frozen=True)
class ContainerFleet:
    """The always-on alternative: Fargate tasks behind an ALB."""

    tasks: int = _assume(2, "always-on Fargate tasks (one per availability zone)")
    vcpu_per_task: float = _assume(1.0, "vCPU per task")
    gb_per_task: float = _assume(2.0, "memory per task (GB)")
    alb_lcu: float = _assume(1.0, "ALB load balancer capacity units, on average")
    nat_gateways: int = _assume(1, "NAT gateways (the tasks' way out to the LLM)")
    nat_gb_per_month: float = _assume(5.0, "GB through the NAT gateway a month")
    log_gb_per_month: float = _assume(5.0, "CloudWatch Logs ingested a month (GB)")
    alarms: int = _assume(3, "CloudWatch alarms")
    secrets: int = _assume(1, "Secrets Manager secrets")
    region: str = _assume("us-east-1", "AWS region")


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


def _ws_invocations(p: CallProfile) -> int:
    """$connect, setup and $disconnect per call, and the turns."""
    return p.calls_per_month * (3 + p.turns_per_call * p.ws_invocations_per_turn)


def _ws_gb_seconds(p: CallProfile) -> float:
    return _ws_invocations(p) * p.ws_ms_per_invocation / 1000 * _gb(p.ws_memory_mb)


def serverless_cost(p: CallProfile) -> Estimate:
    """API Gateway WebSocket + Lambda (+ DynamoDB, logs) for the profile, on demand.

    Keeping environments warm is a choice with its own price: :func:`warmup_strategies`
    gives each way as a separate row to add to this figure.

    Raises:
        ConfigurationError: no prices for ``p.region``.
    """
    r, arch = p.region, p.architecture
    est = Estimate("API Gateway WebSocket + Lambda, on demand")
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
    ws_invocations = _ws_invocations(p)
    worker_invocations = turns if p.worker_seconds_per_turn > 0 else 0
    est.add(
        "Lambda requests",
        (ws_invocations + worker_invocations) / 1e6,
        "million requests",
        price(r, "lambda_per_million_requests"),
    )
    est.add(
        "Lambda duration (WebSocket function)",
        _ws_gb_seconds(p),
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

    environments: int = _assume(1, "environments kept warm")
    memory_mb: int = _assume(1024, "function memory (MB)")
    architecture: str = _assume("x86_64", "Lambda architecture (x86_64 or arm64)")
    ping_minutes: int = _assume(5, "minutes between scheduled pings (each warms every environment)")
    ping_ms: float = _assume(2.0, "ms a ping invocation runs (billed per ms, rounded up)")
    recycles_per_environment_per_day: float = _assume(
        12.0, "times a day Lambda recycles a pinged environment (each an INIT)"
    )
    init_ms: float = _assume(700.0, "billed INIT ms per recycle")
    snapstart_restores_per_month: int = _assume(
        3_000, "SnapStart restores a month (environments created from the snapshot)"
    )
    region: str = _assume("us-east-1", "AWS region")


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


def warmup_strategies(p: CallProfile) -> list[Estimate]:
    """Each way of keeping ``p.warm_environments`` WebSocket environments warm, as a row to
    add to :func:`serverless_cost`: scheduled pings, provisioned concurrency, SnapStart.

    With provisioned concurrency the WebSocket function's invocations are billed at the
    lower provisioned duration rate; the row carries that difference as a negative item.
    """
    plan = WarmupPlan(
        environments=p.warm_environments,
        memory_mb=p.ws_memory_mb,
        architecture=p.architecture,
        init_ms=p.init_ms,
        region=p.region,
    )
    pings, provisioned, snapstart = warmup_options(plan)
    if p.warm_environments > 0:
        arch = p.architecture
        provisioned.add(
            "provisioned duration rate (vs on demand)",
            _ws_gb_seconds(p),
            "GB-s",
            price(p.region, f"lambda_pc_duration_per_gb_second_{arch}")
            - price(p.region, f"lambda_per_gb_second_{arch}"),
        )
    return [pings, provisioned, snapstart]


#: What every estimate assumes besides the profile's own fields.
FIXED_ASSUMPTIONS = (
    f"a month is {HOURS_PER_MONTH} hours (AWS's calculator convention)",
    "prices are on-demand USD list prices of the first tier, before tax; no free tier, "
    "Savings Plans or data transfer out",
    "every WebSocket message is under 32 KB, so each counts once "
    "(API Gateway meters messages in 32 KB increments)",
    "each call invokes the WebSocket function for $connect, setup and $disconnect, "
    "plus once per turn",
    "INIT is billed for on-demand functions (since August 2025), at the duration rate",
    "warm-up rows are alternatives: add one of them to the on-demand figure",
)


def assumptions(obj: Any) -> list[tuple[str, Any, str]]:
    """(field, value, meaning) for each field of a profile, fleet or warm-up plan."""
    return [(f.name, getattr(obj, f.name), str(f.metadata.get("doc", ""))) for f in fields(obj)]


#: The assumptions that reproduce the published case (module docstring).
PUBLISHED_CASE: dict[str, Any] = {
    "profile": CallProfile(),
    "fleet": ContainerFleet(),
}


def with_volume(profile: CallProfile, calls_per_month: int) -> CallProfile:
    """The same profile at another call volume."""
    return replace(profile, calls_per_month=calls_per_month)
