"""AWS prices used by ``warmline cost``: dated, region-keyed, each with its source.

Prices change; this table says when it was read and where from, so an estimate can be
traced and re-checked. All figures are USD, on-demand, first pricing tier, without free
tier, as published on the AWS pricing pages named in ``SOURCES``.

Regions: only those whose every price was found on the pricing pages are in the table; a
region that is not is refused with the list of those that are, never guessed from another
region. The pages render their per-region rate tables in the browser; the copies read on
``CHECKED`` carried the pricing rules (WebSocket messages metered in 32 KB increments,
provisioned concurrency billed per GB-second configured plus a lower duration rate) but
no per-region figures, so the table still has US East (N. Virginia) alone. Add a region by
copying its block with every item, from the same pages, and updating ``AS_OF``.
"""

from __future__ import annotations

from typing import Final

from warmline.errors import ConfigurationError

__all__ = ["AS_OF", "CHECKED", "PRICES", "SOURCES", "price", "regions"]

#: When these figures were taken from the pricing pages.
AS_OF: Final = "2026-11"
#: When the pricing pages were last read for other regions (none found; see above).
CHECKED: Final = "2026-12-06"

SOURCES: Final = {
    "apigw": "https://aws.amazon.com/api-gateway/pricing/ (WebSocket APIs)",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "fargate": "https://aws.amazon.com/fargate/pricing/",
    "elb": "https://aws.amazon.com/elasticloadbalancing/pricing/",
    "vpc": "https://aws.amazon.com/vpc/pricing/ (NAT gateway)",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "cloudwatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "secrets": "https://aws.amazon.com/secrets-manager/pricing/",
    "eventbridge": "https://aws.amazon.com/eventbridge/pricing/",
}

#: region -> item -> USD per unit (the unit is in the name).
PRICES: Final[dict[str, dict[str, float]]] = {
    "us-east-1": {
        # API Gateway WebSocket: messages billed in 32 KB increments; first 1 billion.
        "apigw_ws_per_million_messages": 1.00,
        "apigw_ws_per_million_connection_minutes": 0.25,
        # Lambda (x86_64; arm64 is 20 % lower per GB-second).
        "lambda_per_million_requests": 0.20,
        "lambda_per_gb_second_x86_64": 0.0000166667,
        "lambda_per_gb_second_arm64": 0.0000133334,
        # Provisioned concurrency: per GB-second configured, and per GB-second invoked.
        "lambda_pc_per_gb_second_x86_64": 0.0000041667,
        "lambda_pc_duration_per_gb_second_x86_64": 0.0000097222,
        "lambda_pc_per_gb_second_arm64": 0.0000033334,
        "lambda_pc_duration_per_gb_second_arm64": 0.0000077778,
        # SnapStart (Python, .NET): snapshot cache per GB-second, restore per GB restored.
        "lambda_snapstart_cache_per_gb_second": 0.0000015046,
        "lambda_snapstart_restore_per_gb": 0.0001397998,
        # Fargate (Linux, x86_64).
        "fargate_per_vcpu_hour": 0.04048,
        "fargate_per_gb_hour": 0.004445,
        # Application Load Balancer.
        "alb_per_hour": 0.0225,
        "alb_per_lcu_hour": 0.008,
        # NAT gateway: per hour and per GB processed.
        "nat_per_hour": 0.045,
        "nat_per_gb": 0.045,
        # DynamoDB on-demand (after the November 2024 price cut).
        "dynamodb_per_million_writes": 0.625,
        "dynamodb_per_million_reads": 0.125,
        # CloudWatch Logs ingestion, alarms; Secrets Manager.
        "cloudwatch_logs_per_gb": 0.50,
        "cloudwatch_alarm_per_month": 0.10,
        "secret_per_month": 0.40,
        # EventBridge scheduled rules on the default bus deliver at no charge.
        "eventbridge_scheduled_per_million": 0.0,
    }
}


def regions() -> list[str]:
    """The regions the table has prices for."""
    return sorted(PRICES)


def price(region: str, item: str) -> float:
    """One price.

    Raises:
        ConfigurationError: the table has no prices for ``region`` (the message lists the
            regions it has), or no such ``item``.
    """
    table = PRICES.get(region)
    if table is None:
        raise ConfigurationError(
            f"warmline cost has no prices for region {region!r}; it has prices for: "
            f"{', '.join(regions())} (as of {AS_OF}; see docs/deploy.md, Cost)"
        )
    if item not in table:
        raise ConfigurationError(f"warmline cost has no price {item!r} for {region}")
    return table[item]
