"""The fault plan: how ``[faults]`` reads, and when a trigger fires (no emulator needed).

What each fault does to a caller is shown end to end in tests/reliability/
test_fault_injection_*.py; here is the arithmetic those tests rely on.
"""

from __future__ import annotations

import pytest

from warmline.dev.config import parse_config
from warmline.dev.faults import (
    FAULTS,
    FaultInjector,
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


def fires(injector: FaultInjector, name: str, chances: int, function: str | None = None) -> str:
    """A string of 1s and 0s: which of ``chances`` chances the fault fired on."""
    return "".join("1" if injector.fire(name, function) else "0" for _ in range(chances))


def test_after_spares_the_first_chances_and_count_caps_the_injections() -> None:
    injector = FaultInjector(parse_faults({"connections.drop": {"after": 2, "count": 3}}))
    assert fires(injector, "connections.drop", 8) == "00111000"
    assert injector.injected["connections.drop"] == 3


def test_a_fault_not_in_the_plan_never_fires() -> None:
    injector = FaultInjector(parse_faults({"connections.drop": 1.0}))
    assert fires(injector, "connections.throttle", 5) == "00000"
    assert not injector.injected


def test_functions_limit_lambda_faults_and_other_functions_are_not_chances() -> None:
    injector = FaultInjector(
        parse_faults({"lambda.kill": {"functions": ["worker"], "after": 1}}, FUNCTIONS)
    )
    assert fires(injector, "lambda.kill", 3, "agent") == "000"
    # the agent's invocations did not use up the worker's `after`
    assert fires(injector, "lambda.kill", 3, "worker") == "011"


def test_the_same_seed_fires_the_same_chances_and_the_rate_holds_roughly() -> None:
    plan = parse_faults({"seed": 42, "connections.throttle": 0.25})
    first = fires(FaultInjector(plan), "connections.throttle", 400)
    second = fires(FaultInjector(plan), "connections.throttle", 400)
    other = fires(FaultInjector(parse_faults({"seed": 43, "connections.throttle": 0.25})),
                  "connections.throttle", 400)  # fmt: skip
    assert first == second
    assert first != other
    assert 60 <= first.count("1") <= 140  # 100 expected; a 5-sigma band


def test_replace_starts_the_counters_over_and_logs_each_injection() -> None:
    lines: list[str] = []
    injector = FaultInjector(parse_faults({"client.abort": {"count": 1}}), log=lines.append)
    assert fires(injector, "client.abort", 2) == "10"
    injector.replace(parse_faults({"client.abort": {"count": 1}}))
    assert injector.fire("client.abort", detail="C1=") is not None
    assert lines == ["[warmline fault] client.abort", "[warmline fault] client.abort: C1="]
    injector.replace(FaultPlan())
    assert not injector.any_connections and not injector.any_invoke and not injector.any_async


def test_state_is_what_the_control_api_shows() -> None:
    injector = FaultInjector(parse_faults({"seed": 5, "store.stall": {"ms": 300, "count": 2}}))
    injector.fire("store.stall", "agent")
    state = injector.state()
    assert state["faults"] == {
        "seed": 5,
        "store.stall": {"rate": 1.0, "after": 0, "ms": 300.0, "count": 2},
    }
    assert state["injected"] == {"store.stall": 1}
    assert set(state["known"]) == set(FAULTS)
    assert parse_faults(state["faults"]) == injector.plan  # it reads back as it was
