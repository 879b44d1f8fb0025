"""Hostile input to the other parsers: contact flows, dev config, offload turn payloads.

Each raises only its documented error on garbage: ``parse_contact_flow`` and
``TurnPayload.from_dict`` raise ``InvalidEventError``; ``parse_config``/``load_config``
raise ``ConfigurationError``; the contact-flow Lambda handler answers every event with a
Connect response (``next = error`` for garbage) and never raises.
(The template readers in ``warmline.templates`` have their own fuzz test:
tests/templates/.)
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hostile_strategies import EXAMPLES, deep, json_values, mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmline.adapters.connect_flow import connect_handler, parse_contact_flow
from warmline.agent.app import build_app
from warmline.config import load_config, parse_config
from warmline.errors import ConfigurationError, InvalidEventError
from warmline.log import StepLogger
from warmline.offload.payload import TurnPayload
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext

CONTACT_FLOW: dict[str, Any] = {
    "Name": "ContactFlowEvent",
    "Details": {
        "ContactData": {
            "ContactId": "c-1",
            "InitialContactId": "c-1",
            "Channel": "VOICE",
            "LanguageCode": "en-US",
            "CustomerEndpoint": {"Address": "+15550100", "Type": "TELEPHONE_NUMBER"},
        },
        "Parameters": {"utterance": "what are your hours"},
    },
}
TURN: dict[str, Any] = {
    "kind": "warmline.turn",
    "v": 1,
    "connectionId": "R1kmxc2VNjMCFIA=",
    "sessionId": "VX1",
    "turn": 1,
    "prompt": "hi",
    "lang": "en-US",
    "domainName": "x",
    "stage": "dev",
    "createdAt": 1.5,
}
CONFIG: dict[str, Any] = {
    "functions": {"ws": {"handler": "app.handler", "code": ".", "timeout": 5, "memory": 256}},
    "websocket": {"stage": "dev", "routes": {"$default": {"function": "ws"}}},
    "limits": {"integration_timeout_s": 29},
    "schedules": {"warm": {"expression": "rate(5 minutes)", "targets": ["ws"]}},
    "sqs": {"jobs": {"function": "ws", "batch_size": 5}},
    "sns": {"alerts": {"functions": ["ws"]}},
}


@pytest.fixture(scope="module")
def connect() -> Any:
    app = build_app(store=MemoryStore())
    return connect_handler(app, log=StepLogger(io.StringIO()), block_timeout_s=3.0)


def check_contact_flow(raw: Any) -> None:
    try:
        parse_contact_flow(raw)
    except InvalidEventError:
        pass


def check_turn(raw: Any, *, round_trip: bool = True) -> None:
    try:
        payload = TurnPayload.from_dict(raw)
    except InvalidEventError:
        return
    if round_trip:
        assert TurnPayload.from_dict(json.loads(payload.to_json())) == payload


def check_config(raw: Any, base_dir: Path) -> None:
    try:
        parse_config(raw, base_dir=base_dir)
    except ConfigurationError:
        pass


def test_templates_are_valid(tmp_path: Path) -> None:
    assert parse_contact_flow(CONTACT_FLOW).contact_id == "c-1"
    assert TurnPayload.from_dict(TURN).turn == 1
    assert parse_config(CONFIG, base_dir=tmp_path).websocket is not None


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values | mutated(CONTACT_FLOW))
def test_contact_flow_parser(raw: Any) -> None:
    check_contact_flow(raw)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(json_values | mutated(CONTACT_FLOW))
def test_contact_flow_handler_never_raises(connect: Any, raw: Any) -> None:
    result = connect(raw, LambdaContext())
    assert isinstance(result, dict)


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values | mutated(TURN))
def test_turn_payload(raw: Any) -> None:
    check_turn(raw)


@pytest.mark.parametrize("field", ["createdAt", "turn", "v"])
def test_turn_payload_huge_integer(field: str) -> None:
    """Found by this suite: ``createdAt: 1e400-as-int`` overflowed ``math.isfinite``."""
    check_turn({**TURN, field: 10**400})
    check_turn(
        json.loads(json.dumps(TURN).replace('"createdAt": 1.5', '"createdAt": 1' + "0" * 400))
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=st.dictionaries(st.text(max_size=10), json_values, max_size=5) | mutated(CONFIG))
def test_config_parser(tmp_path: Path, raw: Any) -> None:
    check_config(raw, tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 10_000 + "]" * 10_000,
        "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
        "functions = 1\n" + "x" * 1_000_000,
        "\ud800",
        "[functions.ws]\nhandler = 'a.b'\ncode = '.'\ntimeout = 1e400\n",
        "[functions.ws]\nhandler = 'a.b'\ncode = '.'\nmemory = " + "9" * 5000 + "\n",
    ],
    ids=["deep-arrays", "deep-tables", "1MB-garbage", "surrogate", "inf-timeout", "huge-memory"],
)
def test_config_file_hostile(tmp_path: Path, text: str) -> None:
    path = tmp_path / "warmline.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(ConfigurationError):
        load_config(path)


def test_deep_values_everywhere(connect: Any, tmp_path: Path) -> None:
    """10,000 levels of nesting in each parser's input: its own error, no RecursionError."""
    for field in ("Details", "Parameters"):
        event = json.loads(json.dumps(CONTACT_FLOW))
        target = event if field == "Details" else event["Details"]
        target[field] = deep(10_000)
        check_contact_flow(event)
        assert isinstance(connect(event, LambdaContext()), dict)
    # (no JSON round trip: json.dumps itself recurses; a payload that came from JSON
    # cannot be this deep, CPython's json.loads stops near 1,000 levels)
    check_turn({**TURN, "extra": deep(10_000)}, round_trip=False)
    check_config({**CONFIG, "limits": deep(10_000)}, tmp_path)
