"""When a fault fires: the injector's arithmetic over a plan (no emulator needed).

What each fault does to a caller is shown end to end in tests/reliability/
test_fault_injection_*.py; here is the arithmetic those tests rely on.
"""

from __future__ import annotations

from warmline.config.faults import FAULTS, FaultPlan, parse_faults
from warmline.dev.faults import FaultInjector

FUNCTIONS = ("agent", "worker")


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
