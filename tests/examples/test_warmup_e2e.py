"""Warm-up seed scenarios through ``warmline dev``, end to end (the call-tied pre-warm's are
in ``test_prewarm_e2e.py``).

- lambda-warmer ``{"warmer": true, "concurrency": 3}`` from a scheduled rule warms three
  environments through the emulator's Invoke API (SigV4, IAM-checked: the grant comes from
  the rule in ``warmline.toml``), and the answer says how many invocations really ran.
- An hourly rule with two targets and a constant input declared a warm-up in
  ``warmline.toml`` is answered as a ping by both targets (the WebSocket agent and the
  Connect handler); the same input undeclared is not.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from dev_scenario import dev_server
from warmline.config import parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    return {"WARMLINE_SQLITE_PATH": str(tmp_path / "s.sqlite3"), "WARMLINE_ALLOW_UNSIGNED": "1"}


def _records(lines: list[str], function: str) -> list[dict[str, Any]]:
    """The JSON step records ``function`` logged."""
    out = []
    for line in lines:
        outer = json.loads(line)
        if outer.get("function") != function:
            continue
        try:
            inner = json.loads(outer.get("line", ""))
        except ValueError:
            continue
        if isinstance(inner, dict) and "step" in inner:
            out.append(inner)
    return out


# --- lambda-warmer fan-out and warm-up inputs from configuration ----------------------------
def _warmup_config(tmp_path: Path) -> Any:
    env = _env(tmp_path)
    agent = {"handler": "app.handler", "code": "agent", "environment": env}
    return parse_config(
        {
            "functions": {
                "ws": agent,
                "plain": agent,
                "connect": {"handler": "handler.handler", "code": "connect", "environment": env},
            },
            "websocket": {"stage": "dev", "routes": {"$default": "ws"}},
            "schedules": {
                "warmer": {
                    "expression": "rate(1 hour)",
                    "targets": ["ws"],
                    "input": {"warmer": True, "concurrency": 3},
                },
                "hourly": {
                    "expression": "rate(1 hour)",
                    "targets": ["ws", "connect"],
                    "input": {"ping": "hourly"},
                    "warmup": True,
                },
                "undeclared": {
                    "expression": "rate(1 hour)",
                    "targets": ["plain"],
                    "input": {"ping": "hourly"},
                },
            },
        },
        base_dir=EXAMPLES,
    )


@pytest.fixture(scope="module")
def warmups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("warmups")

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with dev_server(_warmup_config(tmp_path), tmp_path / "dev.log") as server:

            def envs(function: str) -> list[Any]:
                return [e for e in server.runtime.environments() if e.function == function]

            server.trigger_schedule("warmer")
            await server.drain()
            out["after_schedule"] = len(envs("ws"))
            # The same ping, invoked and answered: what really ran, in its own words.
            out["answer"] = (await server.invoke("ws", {"warmer": True, "concurrency": 3})).payload
            out["after_answer"] = len(envs("ws"))
            # A function no rule asks to fan out has no grant to invoke itself.
            denied = await server.invoke("plain", {"warmer": True, "concurrency": 3})
            out["denied"] = denied.payload
            server.trigger_schedule("hourly")
            server.trigger_schedule("undeclared")
            await server.drain()
        out["lines"] = (tmp_path / "dev.log").read_text().splitlines()
        return out

    return asyncio.run(scenario())


def test_lambda_warmer_concurrency_3_warms_3_environments(warmups: dict[str, Any]) -> None:
    assert warmups["after_schedule"] == 3
    fanouts = [r for r in _records(warmups["lines"], "ws") if r["step"] == "warmup_fanout"]
    assert fanouts[0]["invoked"] == 2 and fanouts[0]["failed"] == 0
    assert fanouts[0]["function"] == "ws:$LATEST"
    pings = [r for r in _records(warmups["lines"], "ws") if r["step"] == "warmup"]
    assert sorted(p["invocation"] for p in pings[:3]) == [1, 2, 3]


def test_the_warmer_answer_tells_the_truth(warmups: dict[str, Any]) -> None:
    answer = warmups["answer"]
    assert (answer["concurrency"], answer["requested"]) == (3, 3)
    assert "failed" not in answer
    assert warmups["after_answer"] == 3  # the warm environments served it
    denied = warmups["denied"]
    assert (denied["concurrency"], denied["requested"], denied["failed"]) == (1, 3, 2)
    assert "AccessDeniedException" in denied["error"]


def test_the_hourly_two_target_rule_is_a_warm_up_from_configuration(
    warmups: dict[str, Any],
) -> None:
    lines = warmups["lines"]
    for function in ("ws", "connect"):
        records = _records(lines, function)
        hourly = [r for r in records if r["step"] == "warmup" and r["source"] == "input"]
        assert len(hourly) == 1, function
        assert not [r for r in records if r["step"] == "invalid_event"], function
    # the control: the same input, not declared a warm-up, is not one
    plain = _records(lines, "plain")
    assert [r["step"] for r in plain if r["step"] in ("warmup", "invalid_event")][-1] == (
        "invalid_event"
    )
