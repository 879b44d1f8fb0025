"""``warmline.toml`` / ``[tool.warmline]``: parsing, defaults and errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from warmline.config import (
    Limits,
    RouteConfig,
    find_config,
    load_config,
    parse_config,
)
from warmline.errors import ConfigurationError

FULL = """
region = "eu-west-1"

[functions.ws]
handler = "app.handler"
code = "src"
memory = 256
timeout = 30
environment = { TABLE = "calls", DEBUG = true }

[functions.worker]
handler = "jobs.worker.run"
code = "src"

[websocket]
stage = "prod"
route_selection_expression = "$request.body.type"

[websocket.routes]
"$connect" = "ws"
"$default" = { function = "ws", route_response = true }
prompt = "ws"

[schedules.warm]
expression = "rate(5 minutes)"
targets = ["ws"]
input = '{"warmer": true}'

[schedules.nightly]
expression = "cron(0 3 * * ? *)"
targets = ["worker"]
enabled = false

[sqs.jobs]
function = "worker"
batch_size = 5
report_batch_item_failures = true

[sns.alerts]
functions = ["worker", "ws"]

[limits]
integration_timeout_s = 1.5
idle_timeout_s = 2
async_retry_delays_s = [0.1, 0.2]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_warmline_toml(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "warmline.toml", FULL))
    ws = config.functions["ws"]
    assert ws.code_dir == (tmp_path / "src").resolve()
    assert (ws.memory_mb, ws.timeout_s) == (256, 30.0)
    assert ws.environment == {"TABLE": "calls", "DEBUG": "true"}
    worker = config.functions["worker"]
    assert (worker.memory_mb, worker.timeout_s, worker.handler) == (128, 3.0, "jobs.worker.run")
    assert config.region == "eu-west-1"
    assert config.websocket.stage == "prod"
    assert config.websocket.selection_path == ("type",)
    assert config.websocket.routes["$default"] == RouteConfig("$default", "ws", True)
    assert config.websocket.routes["prompt"] == RouteConfig("prompt", "ws", False)
    assert config.schedules["warm"].input == {"warmer": True}
    assert config.schedules["nightly"].enabled is False
    assert config.sqs["jobs"].batch_size == 5 and config.sqs["jobs"].report_batch_item_failures
    assert config.sqs["jobs"].visibility_timeout_s == 30.0
    assert config.sns["alerts"].functions == ("worker", "ws")
    assert config.limits.integration_timeout_s == 1.5
    assert config.limits.idle_timeout_s == 2.0
    assert config.limits.async_retry_delays_s == (0.1, 0.2)
    assert config.limits.max_connection_s == Limits().max_connection_s == 7200


def test_defaults_are_aws_limits(tmp_path: Path) -> None:
    config = parse_config({"functions": {"f": {"handler": "m.h"}}}, base_dir=tmp_path)
    limits = config.limits
    assert (limits.integration_timeout_s, limits.idle_timeout_s) == (29.0, 600.0)
    assert (limits.max_frame_bytes, limits.max_message_bytes) == (32 * 1024, 128 * 1024)
    assert limits.async_retry_delays_s == (60.0, 120.0)
    assert config.websocket.stage == "dev"
    assert config.websocket.route_selection_expression == "$request.body.action"
    assert config.functions["f"].code_dir == tmp_path.resolve()


PYPROJECT = """
[project]
name = "callbot"

[tool.warmline]
region = "eu-west-1"

[tool.warmline.functions.ws]
handler = "app.handler"
code = "src"

[tool.warmline.websocket.routes]
"$default" = "ws"

[tool.ruff]
line-length = 100
"""


def test_pyproject_tool_table_and_discovery(tmp_path: Path) -> None:
    path = _write(tmp_path, "pyproject.toml", PYPROJECT)
    assert find_config(tmp_path) == path
    config = load_config(path)
    assert config.region == "eu-west-1" and set(config.functions) == {"ws"}
    assert config.websocket.routes["$default"].function == "ws"
    _write(tmp_path, "warmline.toml", FULL)
    assert find_config(tmp_path) == tmp_path / "warmline.toml"


def test_no_config_found(tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", "[project]\nname='x'\n")
    with pytest.raises(ConfigurationError, match="warmline.toml"):
        find_config(tmp_path)


def _fn(**extra: Any) -> dict[str, Any]:
    return {"f": {"handler": "m.h", **extra}}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "functions"),
        ({"functions": {}}, "functions"),
        ({"functions": {"f": {}}}, "functions.f.handler"),
        ({"functions": {"f": {"handler": "nodot"}}}, "functions.f.handler"),
        ({"functions": _fn(code="missing-dir")}, "functions.f.code"),
        ({"functions": _fn(memory=64)}, "functions.f.memory"),
        ({"functions": _fn(timeout=901)}, "functions.f.timeout"),
        ({"functions": _fn(timeout="3")}, "functions.f.timeout"),
        ({"functions": _fn(environment={"A": [1]})}, "functions.f.environment.A"),
        ({"functions": _fn(colour="red")}, "functions.f.colour"),
        ({"functions": _fn(), "websocket": {"stage": "a/b"}}, "websocket.stage"),
        (
            {"functions": _fn(), "websocket": {"route_selection_expression": "$request.header.x"}},
            "websocket.route_selection_expression",
        ),
        ({"functions": _fn(), "websocket": {"routes": {"$bad": "f"}}}, "websocket.routes.$bad"),
        ({"functions": _fn(), "websocket": {"routes": {"x": "nope"}}}, "websocket.routes.x"),
        (
            {
                "functions": _fn(),
                "websocket": {"routes": {"x": {"function": "f", "route_response": 1}}},
            },
            "websocket.routes.x.route_response",
        ),
        (
            {
                "functions": _fn(),
                "schedules": {"s": {"expression": "rate(5 minute)", "targets": ["f"]}},
            },
            "schedules.s.expression",
        ),
        (
            {"functions": _fn(), "schedules": {"s": {"expression": "rate(1 day)", "targets": []}}},
            "schedules.s.targets",
        ),
        (
            {
                "functions": _fn(),
                "schedules": {"s": {"expression": "rate(1 day)", "targets": ["g"]}},
            },
            "schedules.s.targets",
        ),
        (
            {
                "functions": _fn(),
                "schedules": {"s": {"expression": "rate(1 day)", "targets": "f", "input": "{"}},
            },
            "schedules.s.input",
        ),
        (
            {
                "functions": _fn(),
                "schedules": {
                    "s": {"expression": "rate(1 day)", "targets": ["f"], "inputs": {"g": {}}}
                },
            },
            "schedules.s.inputs.g",
        ),
        (
            {
                "functions": _fn(),
                "schedules": {"s": {"expression": "rate(1 day)", "targets": ["f"], "warmup": 1}},
            },
            "schedules.s.warmup",
        ),
        (
            {
                "functions": _fn(),
                "schedules": {
                    "s": {
                        "expression": "rate(1 day)",
                        "targets": ["f"],
                        "input": {"pad": "x" * 5000},
                        "warmup": True,
                    }
                },
            },
            "functions.f",
        ),
        (
            {"functions": _fn(), "sqs": {"q": {"function": "f", "batch_size": 0}}},
            "sqs.q.batch_size",
        ),
        ({"functions": _fn(), "sqs": {"q": {"function": "g"}}}, "sqs.q.function"),
        ({"functions": _fn(), "sns": {"t": {"functions": ["g"]}}}, "sns.t.functions"),
        ({"functions": _fn(), "limits": {"idle_timeout_s": -1}}, "limits.idle_timeout_s"),
        (
            {"functions": _fn(), "limits": {"async_retry_delays_s": "1"}},
            "limits.async_retry_delays_s",
        ),
        ({"functions": _fn(), "limits": {"nope": 1}}, "limits.nope"),
        ({"functions": _fn(), "extra": 1}, "extra"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_config(data, base_dir=tmp_path)
    assert key in str(info.value)


def test_invalid_toml_is_a_configuration_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "warmline.toml", "[functions\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_config(path)


def test_warm_up_inputs_reach_each_target_and_only_declared_ones(tmp_path: Path) -> None:
    config = parse_config(
        {
            "functions": {
                "a": {"handler": "m.h"},
                "b": {"handler": "m.h"},
                "c": {"handler": "m.h"},
            },
            "schedules": {
                "hourly": {
                    "expression": "rate(1 hour)",
                    "targets": ["a", "b"],
                    "input": {"ping": "hourly"},
                    "inputs": {"b": '{"ping": "b"}'},
                    "warmup": True,
                },
                "job": {"expression": "rate(1 hour)", "targets": ["c"], "input": {"job": 1}},
            },
        },
        base_dir=tmp_path,
    )
    hourly = config.schedules["hourly"]
    assert (hourly.input_for("a"), hourly.input_for("b")) == ({"ping": "hourly"}, {"ping": "b"})
    assert json.loads(config.functions["a"].environment["WARMLINE_WARMUP_INPUTS"]) == [
        {"ping": "hourly"}
    ]
    assert json.loads(config.functions["b"].environment["WARMLINE_WARMUP_INPUTS"]) == [
        {"ping": "b"}
    ]
    assert "WARMLINE_WARMUP_INPUTS" not in config.functions["c"].environment


def test_a_warm_up_inputs_value_the_function_sets_is_kept(tmp_path: Path) -> None:
    config = parse_config(
        {
            "functions": {"a": {"handler": "m.h", "environment": {"WARMLINE_WARMUP_INPUTS": "[]"}}},
            "schedules": {
                "s": {"expression": "rate(1 hour)", "targets": ["a"], "input": {}, "warmup": True}
            },
        },
        base_dir=tmp_path,
    )
    assert config.functions["a"].environment["WARMLINE_WARMUP_INPUTS"] == "[]"
