"""The fault plan: how ``[faults]`` and ``--fault`` read (no emulator needed).

When a trigger fires is in tests/dev/test_faults.py; what each fault does to a caller is
shown end to end in tests/reliability/test_fault_injection_*.py.
"""

from __future__ import annotations

import pytest

from warmline.config import parse_config
from warmline.config.faults import (
    FAULTS,
    FaultPlan,
    Trigger,
    parse_fault_flag,
    parse_faults,
)
from warmline.errors import ConfigurationError

FUNCTIONS = ("agent", "worker")


def test_nested_and_flat_tables_read_the_same() -> None:
    nested = parse_faults(
        {"seed": 3, "connections": {"drop": 0.5}, "lambda": {"kill": {"ms": 20, "count": 1}}},
        FUNCTIONS,
    )
    flat = parse_faults(
        {"seed": 3, "connections.drop": 0.5, "lambda.kill": {"ms": 20, "count": 1}}, FUNCTIONS
    )
    assert nested == flat
    assert nested.triggers["connections.drop"] == Trigger(rate=0.5)
    assert nested.triggers["lambda.kill"] == Trigger(ms=20.0, count=1)


def test_a_bare_true_is_every_chance_and_false_is_none() -> None:
    plan = parse_faults({"client": {"abort": True}, "async": {"duplicate": False}})
    assert plan.triggers["client.abort"].rate == 1.0
    assert plan.triggers["async.duplicate"].rate == 0.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"connections": {"lose": 0.1}}, "unknown fault 'faults.connections.lose'"),
        ({"network": 0.1}, "unknown fault 'faults.network'"),
        ({"connections.drop": 1.5}, "faults.connections.drop.rate must be in 0..1"),
        ({"connections.drop": "often"}, "must be a rate (0..1) or a table"),
        ({"connections.drop": {"often": 1}}, "unknown key faults.connections.drop.'often'"),
        ({"connections.delay": 0.5}, "faults.connections.delay needs ms > 0"),
        ({"store.stall": {"ms": -1}}, "faults.store.stall.ms must be >= 0"),
        ({"lambda.kill": {"count": -1}}, "faults.lambda.kill.count must be a whole number"),
        ({"lambda.kill": {"after": 1.5}}, "faults.lambda.kill.after must be a whole number"),
        ({"lambda.kill": {"functions": ["nope"]}}, "unknown function 'nope'"),
        ({"connections.drop": {"functions": ["agent"]}}, "applies to lambda.*"),
        ({"seed": "x"}, "faults.seed must be an integer"),
        ({"lambda.kill": {"ms": float("nan")}}, "faults.lambda.kill.ms must be a number"),
    ],
)
def test_bad_tables_name_the_problem(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_faults(table, FUNCTIONS)
    assert message in str(info.value)


def test_every_documented_fault_parses() -> None:
    table = {name: {"ms": 1} for name in FAULTS}
    assert set(parse_faults(table, FUNCTIONS).triggers) == set(FAULTS)


def test_flags() -> None:
    assert parse_fault_flag("client.abort") == ("client.abort", Trigger())
    assert parse_fault_flag("connections.drop=0.05") == ("connections.drop", Trigger(rate=0.05))
    name, trigger = parse_fault_flag("lambda.kill=ms=150,count=1,functions=agent+worker")
    assert name == "lambda.kill"
    assert trigger == Trigger(ms=150.0, count=1, functions=("agent", "worker"))
    with pytest.raises(ConfigurationError, match="expected key=value"):
        parse_fault_flag("lambda.kill=ms")
    with pytest.raises(ConfigurationError, match="ms is not a number"):
        parse_fault_flag("lambda.kill=ms=soon")


def test_the_config_file_carries_the_plan() -> None:
    from pathlib import Path

    table = {
        "functions": {"agent": {"handler": "app.handler", "code": "."}},
        "faults": {"seed": 1, "store": {"fail": {"functions": ["agent"]}}},
    }
    config = parse_config(table, base_dir=Path(__file__).parent)
    assert config.faults.seed == 1
    assert config.faults.triggers["store.fail"].functions == ("agent",)
    with pytest.raises(ConfigurationError, match="unknown function 'other'"):
        parse_config(
            {**table, "faults": {"store": {"fail": {"functions": ["other"]}}}},
            base_dir=Path(__file__).parent,
        )
    assert parse_config({"functions": table["functions"]}, base_dir=Path(".")).faults == FaultPlan()
