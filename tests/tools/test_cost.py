"""warmline cost: the arithmetic against hand-computed cases and the published case; warm-up
strategies as separate rows; the assumptions and the price table's date printed; regions
without prices refused by name."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from warmline.cli import main
from warmline.errors import ConfigurationError
from warmline.tools.cost import (
    PUBLISHED_CASE,
    CallProfile,
    ContainerFleet,
    WarmupPlan,
    container_cost,
    serverless_cost,
    warmup_options,
    warmup_strategies,
)
from warmline.tools.prices import AS_OF, PRICES, price, regions


def item(estimate: object, name: str) -> float:
    return next(i.usd for i in estimate.items if i.name == name)  # type: ignore[attr-defined]


def test_the_published_case_lands_in_its_ranges() -> None:
    serverless = serverless_cost(PUBLISHED_CASE["profile"])
    pings, provisioned, _ = warmup_strategies(PUBLISHED_CASE["profile"])
    container = container_cost(PUBLISHED_CASE["fleet"])
    assert 16.0 <= serverless.total + provisioned.total <= 20.0
    assert 130.0 <= container.total <= 150.0
    # Kept warm by pings instead, the same calls cost a fifth of that.
    assert serverless.total + pings.total < 4.0


def test_provisioned_concurrency_is_a_warm_up_row_not_part_of_the_on_demand_figure() -> None:
    profile = CallProfile(warm_environments=2)
    serverless = serverless_cost(profile)
    assert not [i for i in serverless.items if "rovisioned" in i.name]
    assert serverless.architecture == "API Gateway WebSocket + Lambda, on demand"
    rows = {row.architecture: row for row in warmup_strategies(profile)}
    assert set(rows) == {
        "scheduled warm-up pings",
        "provisioned concurrency",
        "SnapStart (Python 3.12+)",
    }
    # 2 x 1.5 GB x 730 h x 3600 s configured
    assert item(rows["provisioned concurrency"], "configured environments") == pytest.approx(
        2 * 1.5 * 2_628_000 * price("us-east-1", "lambda_pc_per_gb_second_x86_64")
    )
    # The WebSocket function's duration is billed at the lower provisioned rate.
    credit = item(rows["provisioned concurrency"], "provisioned duration rate (vs on demand)")
    on_demand = item(serverless, "Lambda duration (WebSocket function)")
    assert -on_demand < credit < 0
    # 730 h x 12 pings/h x 2 environments
    assert item(rows["scheduled warm-up pings"], "ping invocations") == pytest.approx(
        17_520 / 1e6 * 0.20
    )


def test_websocket_messages_and_minutes_by_hand() -> None:
    # 2,000 calls x (1 setup + 4 turns x (3 in + 10 out)) = 106,000 messages -> $0.106
    p = CallProfile(
        calls_per_month=2_000,
        turns_per_call=4,
        inbound_frames_per_turn=3,
        posts_per_turn=10,
        minutes_per_call=3.0,
    )
    est = serverless_cost(p)
    assert item(est, "WebSocket messages") == pytest.approx(0.106)
    # 6,000 connection minutes x $0.25 / million
    assert item(est, "WebSocket connection minutes") == pytest.approx(6_000 * 0.25 / 1e6)


def test_lambda_duration_and_provisioned_concurrency_by_hand() -> None:
    p = CallProfile(
        calls_per_month=1_000,
        turns_per_call=10,
        worker_seconds_per_turn=2.0,
        worker_memory_mb=512,
        ws_memory_mb=1024,
        ws_ms_per_invocation=100.0,
        cold_starts_per_month=10,
        init_ms=500.0,
    )
    est = serverless_cost(p)
    # worker: 10,000 turns x 2 s x 0.5 GB = 10,000 GB-s x $0.0000166667
    assert item(est, "Lambda duration (worker)") == pytest.approx(10_000 * 0.0000166667)
    # WebSocket function on demand: 13,000 invocations x 0.1 s x 1 GB
    assert item(est, "Lambda duration (WebSocket function)") == pytest.approx(1_300 * 0.0000166667)
    # INIT billed: 10 x 0.5 s x 1 GB
    assert item(est, "Lambda INIT (billed since Aug 2025)") == pytest.approx(5 * 0.0000166667)
    _, pc, _ = warmup_strategies(replace(p, warm_environments=2))
    # 2 x 1 GB x 730 h x 3600 s x $0.0000041667
    assert item(pc, "configured environments") == pytest.approx(2 * 2_628_000 * 0.0000041667)


def test_the_container_fleet_does_not_depend_on_call_volume() -> None:
    fleet = ContainerFleet(tasks=3, vcpu_per_task=0.5, gb_per_task=1.0, nat_gateways=0)
    est = container_cost(fleet)
    assert item(est, "Fargate vCPU") == pytest.approx(3 * 0.5 * 730 * 0.04048)
    assert item(est, "NAT gateway") == 0.0
    many = serverless_cost(CallProfile(calls_per_month=100_000))
    few = serverless_cost(CallProfile(calls_per_month=1_000))
    assert many.total > few.total


def test_warmup_options_by_hand() -> None:
    pings, pc, snap = warmup_options(WarmupPlan(environments=3, memory_mb=2048, ping_minutes=5))
    # 730 h x 12 pings/h x 3 environments = 26,280 requests
    assert item(pings, "ping invocations") == pytest.approx(26_280 / 1e6 * 0.20)
    assert pc.total == pytest.approx(3 * 2 * 2_628_000 * 0.0000041667)
    assert item(snap, "snapshot cache") == pytest.approx(2 * 2_628_000 * 0.0000015046)
    assert pings.total < snap.total < pc.total


def test_unknown_region_is_a_clear_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="no prices for region 'mars-1'") as raised:
        price("mars-1", "lambda_per_million_requests")
    assert not isinstance(raised.value, KeyError)
    assert all(region in str(raised.value) for region in regions())
    with pytest.raises(ConfigurationError, match="no prices for region"):
        serverless_cost(CallProfile(region="eu-west-1"))
    with pytest.raises(ConfigurationError, match="no price 'nope'"):
        price("us-east-1", "nope")


def test_every_region_in_the_table_prices_every_item() -> None:
    items = set(PRICES["us-east-1"])
    for region in regions():
        assert set(PRICES[region]) == items, region
        profile = CallProfile(region=region)
        assert serverless_cost(profile).total > 0
        assert all(row.total > 0 for row in warmup_strategies(profile))
        assert container_cost(ContainerFleet(region=region)).total > 0


@pytest.mark.parametrize("command", [["cost"], ["warmup", "plan"]])
def test_cli_refuses_a_region_without_prices(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--region", "eu-west-1"]) == 2
    captured = capsys.readouterr()
    assert "no prices for region 'eu-west-1'" in captured.err
    assert "us-east-1" in captured.err and "Traceback" not in captured.err


def test_cli_prints_line_items_warm_up_rows_assumptions_and_price_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cost", "--calls", "5000", "--warm", "2"]) == 0
    out = capsys.readouterr().out
    assert "5,000 calls/month" in out and "container / serverless" in out
    for line_item in (
        "Lambda requests",
        "Lambda duration (WebSocket function)",
        "WebSocket messages",
        "WebSocket connection minutes",
        "CloudWatch Logs ingestion",
        "configured environments",
    ):
        assert line_item in out
    assert "scheduled warm-up pings: $" in out and "provisioned concurrency: $" in out
    assert "Keeping 2 x 1536 MB" in out
    for f in fields(CallProfile):
        assert f"  {f.name} " in out
    assert "5000" in out.split("calls_per_month", 1)[1].splitlines()[0]
    assert f"as of {AS_OF}" in out and "https://aws.amazon.com/lambda/pricing/" in out
    assert f"regions with prices: {', '.join(regions())}" in out


def test_cli_prints_tables_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    pc = next(w for w in data["warmups"] if w["architecture"] == "provisioned concurrency")
    assert 16 <= pc["withServerlessUsd"] <= 20
    assert data["serverless"]["totalUsd"] < 4 and data["pricesAsOf"] == AS_OF
    assert main(["warmup", "plan", "--environments", "2", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert plans[0]["architecture"] == "scheduled warm-up pings"
