"""Warm-up detection, over JSON fixtures in tests/events/warmup/ written for this project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.core.events import Scheduled, WarmUp
from warmline.core.warmup import (
    MAX_WARMUP_CONCURRENCY,
    PLUGIN_SOURCE,
    WARMER_CONCURRENCY,
    WARMER_CORRELATION_ID,
    WARMER_INVOCATION,
    detect_warmup,
    fanout_plan,
    fanout_response,
    parse_scheduled,
    parse_warmup_inputs,
    planned_fanout,
    runs_hooks,
    warmup_response,
)
from warmline.testing import modules_after

FIXTURES = Path(__file__).resolve().parent.parent / "events" / "warmup"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


POSITIVE = [
    "eventbridge_scheduled",
    "plugin_payload",
    "lambda_warmer_first",
    "lambda_warmer_fanout",
    "warmline_prewarm",
]
NEGATIVE = [
    "apigw_message_warmer",
    "sqs_record",
    "sns_record",
    "connect_event",
    "eventbridge_not_scheduled",
]


def test_every_fixture_is_used() -> None:
    used = {*POSITIVE, *NEGATIVE, "plugin_via_client_context", "constant_input"}
    assert {p.stem for p in FIXTURES.glob("*.json")} == used


# --- EventBridge schedules -------------------------------------------------------------


def test_a_scheduled_event_is_a_warmup_by_default() -> None:
    event = load("eventbridge_scheduled")
    w = detect_warmup(event)
    assert w == WarmUp(source="aws.events", raw=event)
    assert fanout_plan(w) == []


def test_a_scheduled_event_is_work_when_schedules_are_not_warmups() -> None:
    event = load("eventbridge_scheduled")
    assert detect_warmup(event, schedules_are_warmups=False) is None
    scheduled = parse_scheduled(event)
    assert scheduled == Scheduled(
        rule_arns=tuple(event["resources"]), time=event["time"], raw=event
    )


def test_a_schedule_with_odd_resources_and_time_still_parses() -> None:
    event = {**load("eventbridge_scheduled"), "resources": ["arn:a", 7, None], "time": 12}
    scheduled = parse_scheduled(event)
    assert scheduled is not None
    assert scheduled.rule_arns == ("arn:a",)
    assert scheduled.time == "12"
    no_resources = {k: v for k, v in load("eventbridge_scheduled").items() if k != "resources"}
    assert parse_scheduled(no_resources) is not None
    assert parse_scheduled(no_resources).rule_arns == ()  # type: ignore[union-attr]


def test_a_non_scheduled_eventbridge_event_is_neither() -> None:
    event = load("eventbridge_not_scheduled")
    assert detect_warmup(event) is None
    assert parse_scheduled(event) is None
    from_events = {**event, "source": "aws.events"}  # right source, wrong detail-type
    assert detect_warmup(from_events) is None
    assert parse_scheduled(from_events) is None


@pytest.mark.parametrize("name", [n for n in POSITIVE if n != "eventbridge_scheduled"])
def test_parse_scheduled_ignores_other_pings(name: str) -> None:
    assert parse_scheduled(load(name)) is None


# --- serverless-plugin-warmup ------------------------------------------------------------


def test_the_plugin_payload_is_a_single_ping() -> None:
    event = load("plugin_payload")
    w = detect_warmup(event)
    assert w is not None
    assert (w.source, w.concurrency, w.invocation) == ("serverless-plugin-warmup", 1, 1)
    assert fanout_plan(w) == []


def test_the_plugin_is_recognized_through_the_client_context() -> None:
    invoke = load("plugin_via_client_context")
    payload, custom = invoke["payload"], invoke["clientContext"]["custom"]
    w = detect_warmup(payload, client_context_custom=custom)
    assert w is not None
    assert w.source == "serverless-plugin-warmup"
    assert w.raw == payload
    assert detect_warmup(payload) is None
    assert detect_warmup(payload, client_context_custom={"source": "someone-else"}) is None


# --- lambda-warmer -----------------------------------------------------------------------


def test_the_first_lambda_warmer_invocation_plans_the_fan_out() -> None:
    w = detect_warmup(load("lambda_warmer_first"))
    assert w is not None
    assert (w.source, w.concurrency, w.invocation, w.correlation_id) == (
        "lambda-warmer",
        3,
        1,
        "",
    )
    plan = fanout_plan(w, correlation_id="req-1")
    assert plan == [
        {
            "warmer": True,
            WARMER_INVOCATION: i,
            WARMER_CONCURRENCY: 3,
            WARMER_CORRELATION_ID: "req-1",
        }
        for i in (2, 3)
    ]
    json.dumps(plan)


def test_a_fan_out_child_is_a_ping_that_does_not_fan_out_again() -> None:
    event = load("lambda_warmer_fanout")
    w = detect_warmup(event)
    assert w is not None
    assert (w.source, w.concurrency, w.invocation) == ("lambda-warmer", 3, 2)
    assert w.correlation_id == event[WARMER_CORRELATION_ID]
    assert fanout_plan(w) == []


def test_every_planned_payload_is_detected_as_the_child_it_describes() -> None:
    w = detect_warmup({"wake": 1, "n": "4"}, warmer_flag="wake", concurrency_field="n")
    assert w is not None
    plan = fanout_plan(w, warmer_flag="wake", correlation_id="abc")
    assert [p[WARMER_INVOCATION] for p in plan] == [2, 3, 4]
    for index, payload in enumerate(plan, start=2):
        child = detect_warmup(json.loads(json.dumps(payload)), warmer_flag="wake")
        assert child is not None
        assert (child.invocation, child.concurrency, child.correlation_id) == (index, 4, "abc")
        assert fanout_plan(child, warmer_flag="wake") == []


def test_a_child_marked_with_warmer_concurrency_only_does_not_fan_out() -> None:
    w = detect_warmup({"warmer": True, WARMER_CONCURRENCY: 5})
    assert w is not None
    assert (w.concurrency, w.invocation) == (5, 1)
    assert fanout_plan(w) == []


def test_the_correlation_id_of_the_ping_wins_over_the_default() -> None:
    w = detect_warmup({"warmer": True, "concurrency": 2, WARMER_CORRELATION_ID: "mine"})
    assert w is not None
    assert fanout_plan(w, correlation_id="req")[0][WARMER_CORRELATION_ID] == "mine"


def test_the_test_flag_suppresses_the_fan_out() -> None:
    w = detect_warmup({"warmer": True, "concurrency": 3, "test": True})
    assert w is not None
    assert w.concurrency == 3
    assert fanout_plan(w) == []


@pytest.mark.parametrize("flag", [False, 0, "", None, [], {}])
def test_a_falsy_warmer_flag_is_not_a_ping(flag: object) -> None:
    assert detect_warmup({"warmer": flag, "concurrency": 3}) is None


def test_the_flag_and_concurrency_field_are_configurable() -> None:
    event = {"keepWarm": "yes", "instances": 2}
    assert detect_warmup(event) is None
    w = detect_warmup(event, warmer_flag="keepWarm", concurrency_field="instances")
    assert w is not None
    assert (w.source, w.concurrency) == ("lambda-warmer", 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 1),
        ("abc", 1),
        ("", 1),
        (True, 1),
        (0, 1),
        (-3, 1),
        (1, 1),
        (2.7, 2),
        ("3", 3),
        (" 4 ", 4),
        (float("nan"), 1),
        (float("inf"), 1),
        ("1e400", 1),
        ([3], 1),
        ({"n": 3}, 1),
        (10**9, MAX_WARMUP_CONCURRENCY),
    ],
)
def test_concurrency_is_read_leniently_and_clamped(value: object, expected: int) -> None:
    w = detect_warmup({"warmer": True, "concurrency": value})
    assert w is not None
    assert w.concurrency == expected
    assert len(fanout_plan(w)) == expected - 1


def test_the_clamp_is_configurable() -> None:
    w = detect_warmup({"warmer": True, "concurrency": 40}, max_concurrency=5)
    assert w is not None
    assert w.concurrency == 5
    assert len(fanout_plan(w)) == 4


def test_an_invocation_beyond_the_total_is_clamped_to_it() -> None:
    w = detect_warmup({"warmer": True, WARMER_INVOCATION: 9, WARMER_CONCURRENCY: 3})
    assert w is not None
    assert (w.invocation, w.concurrency) == (3, 3)


# --- warmline's pre-warm and constant inputs --------------------------------------------


def test_warmlines_own_prewarm_fans_out_in_its_own_format() -> None:
    event = load("warmline_prewarm")
    w = detect_warmup(event)
    assert w is not None
    assert (w.source, w.concurrency, w.invocation) == ("warmline", 2, 1)
    assert w.correlation_id == event["correlationId"]
    plan = fanout_plan(w)
    assert plan == [
        {
            "warmline": "warmup",
            "concurrency": 2,
            "invocation": 2,
            "correlationId": event["correlationId"],
        }
    ]
    child = detect_warmup(plan[0])
    assert child is not None
    assert (child.source, child.invocation, child.concurrency) == ("warmline", 2, 2)
    assert fanout_plan(child) == []


def test_a_warmline_key_with_another_value_is_not_a_prewarm() -> None:
    assert detect_warmup({"warmline": "call", "concurrency": 2}) is None


def test_a_configured_constant_input_is_a_ping() -> None:
    event = load("constant_input")
    other = {"keepWarm": "other"}
    assert detect_warmup(event) is None
    w = detect_warmup(event, constant_inputs=[other, load("constant_input")])
    assert w is not None
    assert (w.source, w.concurrency, w.invocation) == ("input", 1, 1)
    assert fanout_plan(w) == []


@pytest.mark.parametrize(
    "configured",
    [
        {"keepWarm": 1},
        {"keepWarm": True, "extra": None},
        {},
        {"keepWarm": [True]},
        {"keepWarm": {"a": True}},
    ],
)
def test_a_constant_input_must_match_exactly(configured: dict[str, Any]) -> None:
    assert detect_warmup({"keepWarm": True}, constant_inputs=[configured]) is None


def test_constant_inputs_compare_lists_with_tuples() -> None:
    configured = {"targets": ("connect", "default"), "n": 1.0}
    assert detect_warmup({"targets": ["connect", "default"], "n": 1}, constant_inputs=[configured])


def test_a_known_shape_wins_over_a_constant_input() -> None:
    event = {"warmer": True, "concurrency": 2}
    w = detect_warmup(event, constant_inputs=[event])
    assert w is not None
    assert w.source == "lambda-warmer"


# --- what is never a ping ----------------------------------------------------------------


@pytest.mark.parametrize("name", NEGATIVE)
def test_other_events_are_not_pings(name: str) -> None:
    event = load(name)
    assert detect_warmup(event) is None
    assert parse_scheduled(event) is None


@pytest.mark.parametrize("name", [n for n in NEGATIVE if n != "eventbridge_not_scheduled"])
def test_real_traffic_is_never_a_ping_even_if_configured_as_input(name: str) -> None:
    event = load(name)
    assert detect_warmup(event, constant_inputs=[event]) is None


@pytest.mark.parametrize(
    "name", ["apigw_message_warmer", "sqs_record", "sns_record", "connect_event"]
)
@pytest.mark.parametrize(
    "marker",
    [
        {"source": "serverless-plugin-warmup"},
        {"source": "aws.events", "detail-type": "Scheduled Event"},
        {"warmer": True, "concurrency": 3},
        {"warmline": "warmup"},
    ],
)
def test_traffic_carrying_ping_markers_is_still_not_a_ping(
    name: str, marker: dict[str, Any]
) -> None:
    event = {**load(name), **marker}
    assert detect_warmup(event) is None
    assert (
        detect_warmup(event, client_context_custom={"source": "serverless-plugin-warmup"}) is None
    )
    assert parse_scheduled(event) is None


def test_a_connect_event_is_recognized_by_its_details_alone() -> None:
    event = load("connect_event")
    del event["Name"]
    assert detect_warmup({**event, "warmer": True}) is None


@pytest.mark.parametrize(
    "event",
    [None, [], [{"warmer": True}], "warmer", "", 3, 0.5, True, b'{"warmer":true}'],
)
def test_non_objects_are_never_pings(event: object) -> None:
    assert detect_warmup(event) is None
    assert (
        detect_warmup(event, client_context_custom={"source": "serverless-plugin-warmup"}) is None
    )
    assert parse_scheduled(event) is None


def test_an_empty_object_is_not_a_ping() -> None:
    assert detect_warmup({}) is None
    assert detect_warmup({}, constant_inputs=[{}]) is not None  # unless configured so


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "warmer",
        "concurrency",
        "source",
        "warmline",
        "test",
        "detail-type",
        "invocation",
        WARMER_INVOCATION,
        WARMER_CONCURRENCY,
        WARMER_CORRELATION_ID,
        "correlationId",
        "x",
    ]
)


@settings(max_examples=150, deadline=None)
@given(event=st.dictionaries(_keys, _json, max_size=8))
def test_any_json_object_gives_a_sane_answer(event: dict[str, Any]) -> None:
    w = detect_warmup(event)
    if w is None:
        return
    assert 1 <= w.invocation <= w.concurrency <= MAX_WARMUP_CONCURRENCY
    plan = fanout_plan(w)
    assert len(plan) <= w.concurrency - 1
    json.dumps(warmup_response(w))
    for payload in plan:
        child = detect_warmup(payload)
        assert child is not None
        assert fanout_plan(child) == []


@settings(max_examples=60, deadline=None)
@given(
    event=st.dictionaries(_keys, _json, max_size=8),
    key=st.sampled_from(["requestContext", "Records"]),
)
def test_any_object_with_a_traffic_key_is_not_a_ping(event: dict[str, Any], key: str) -> None:
    assert detect_warmup({**event, key: {}}) is None


# --- the response ------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSITIVE)
def test_the_response_is_small_json_naming_the_ping(name: str) -> None:
    w = detect_warmup(load(name))
    assert w is not None
    body = warmup_response(w)
    text = json.dumps(body)
    assert len(text) < 256
    assert json.loads(text) == body
    assert body["warmup"] is True
    assert body["source"] == w.source
    assert (body["invocation"], body["concurrency"]) == (w.invocation, w.concurrency)
    assert body.get("correlationId", "") == w.correlation_id


def test_the_response_does_not_echo_the_payload() -> None:
    w = detect_warmup({"warmer": True, "secret": "s3cr3t-value"})
    assert w is not None
    assert "s3cr3t-value" not in json.dumps(warmup_response(w))


def test_importing_the_module_loads_nothing_heavy() -> None:
    loaded = modules_after("import warmline.core.warmup")
    heavy = ("boto3", "botocore", "twilio", "asyncio", "logging", "socket", "urllib")
    assert "warmline.core.warmup" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []


def test_every_exported_name_exists() -> None:
    import importlib

    module = importlib.import_module("warmline.core.warmup")
    assert sorted(n for n in module.__all__ if not hasattr(module, n)) == []


# --- edges pinned by mutation testing ---------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"on": True},
        {"on": False},
        {"on": True, "targets": ["a", "b"], "opts": {"deep": [1, {"x": None}]}},
        {"targets": [], "opts": {}},
    ],
)
def test_a_constant_input_with_booleans_lists_and_objects_matches_itself(
    event: dict[str, Any],
) -> None:
    w = detect_warmup(event, constant_inputs=[json.loads(json.dumps(event))])
    assert w is not None
    assert w.source == "input"
    assert w.raw is event


@pytest.mark.parametrize(
    ("event", "configured"),
    [
        ({"on": True}, {"on": False}),
        ({"on": 1}, {"on": True}),
        ({"targets": ["a", "b"]}, {"targets": ["a", "c"]}),  # same length, other item
        ({"targets": ["a", "b"]}, {"targets": ["a"]}),
        ({"targets": ["a"]}, {"targets": ["a", "b"]}),
        ({"targets": "ab"}, {"targets": ["a", "b"]}),  # a string is not a list of chars
        ({"targets": ["a", "b"]}, {"targets": "ab"}),
        ({"k": 1}, {"k": [1]}),
        ({"k": [1]}, {"k": 1}),
        ({"k": 5}, {"k": {"x": 1}}),
        ({"k": {"x": 1}}, {"k": 5}),
        ({"k": {"x": 1}}, {"k": ["x"]}),
        ({"k": {"x": 1}}, {"k": {"x": 2}}),
        ({"k": {"x": 1}}, {"k": {"y": 1}}),
    ],
)
def test_a_constant_input_differing_in_one_value_or_kind_is_no_ping(
    event: dict[str, Any], configured: dict[str, Any]
) -> None:
    assert detect_warmup(event, constant_inputs=[configured]) is None


def test_a_connect_event_is_recognized_by_its_name_alone() -> None:
    event = {"Name": "ContactFlowEvent", "warmer": True, "source": PLUGIN_SOURCE}
    assert detect_warmup(event) is None
    assert detect_warmup(event, constant_inputs=[event]) is None
    # Only that exact name marks Connect traffic.
    assert detect_warmup({**event, "Name": "contactflowevent"}) is not None
    assert detect_warmup({"name": "ContactFlowEvent", "warmer": True}) is not None


@pytest.mark.parametrize("name", POSITIVE)
def test_every_ping_carries_its_raw_event(name: str) -> None:
    event = load(name)
    w = detect_warmup(event)
    assert w is not None
    assert w.raw is event


def test_a_constant_input_ping_carries_its_raw_event() -> None:
    event = {"keepWarm": True}
    w = detect_warmup(event, constant_inputs=[{"keepWarm": True}])
    assert w is not None and w.raw is event


@pytest.mark.parametrize("cap", [1, 0, -3])
def test_a_clamp_below_one_still_allows_one_environment(cap: int) -> None:
    w = detect_warmup({"warmline": "warmup", "concurrency": 5}, max_concurrency=cap)
    assert w is not None and (w.concurrency, w.invocation) == (1, 1)
    w = detect_warmup({"warmer": True, "concurrency": 5}, max_concurrency=cap)
    assert w is not None and w.concurrency == 1


@pytest.mark.parametrize("source", ["lambda-warmer", "warmline"])
def test_a_fan_out_child_never_fans_out_even_without_its_markers(source: str) -> None:
    for invocation in (2, 3):
        assert fanout_plan(WarmUp(source, concurrency=3, invocation=invocation, raw={})) == []


@pytest.mark.parametrize("source", ["lambda-warmer", "warmline"])
def test_a_ping_without_a_raw_mapping_still_plans_its_fan_out(source: str) -> None:
    plan = fanout_plan(WarmUp(source, concurrency=3, correlation_id="c1", raw=None))
    assert len(plan) == 2


def test_without_any_correlation_id_the_children_carry_an_empty_one() -> None:
    plan = fanout_plan(WarmUp("lambda-warmer", concurrency=2, raw={"warmer": True}))
    assert plan == [
        {"warmer": True, WARMER_INVOCATION: 2, WARMER_CONCURRENCY: 2, WARMER_CORRELATION_ID: ""}
    ]
    plan = fanout_plan(WarmUp("warmline", concurrency=2, raw={"warmline": "warmup"}))
    assert plan == [{"warmline": "warmup", "concurrency": 2, "invocation": 2, "correlationId": ""}]


def test_the_fanout_answer_counts_what_really_ran() -> None:
    w = detect_warmup({"warmer": True, "concurrency": 3})
    assert w is not None
    base = warmup_response(w)
    assert fanout_response(base, w, invoked=2) == {**base, "concurrency": 3, "requested": 3}
    partial = fanout_response(base, w, invoked=1, failures=["AccessDeniedException"])
    assert (partial["concurrency"], partial["requested"], partial["failed"]) == (2, 3, 1)
    assert partial["error"] == "AccessDeniedException"


@pytest.mark.parametrize(
    ("payload", "extra"),
    [
        ({"warmer": True, "concurrency": 3}, 2),
        ({"warmer": True, "concurrency": 3, "test": True}, 0),
        ({"warmer": True}, 0),
        ({"warmline": "warmup", "concurrency": 2}, 1),
        ({"ping": "hourly"}, 0),
        (None, 0),
    ],
)
def test_planned_fanout_counts_the_self_invokes(payload: Any, extra: int) -> None:
    assert planned_fanout(payload) == extra


def test_only_a_call_tied_ping_skips_the_hooks() -> None:
    call_tied = detect_warmup({"warmline": "warmup", "hooks": False})
    scheduled = detect_warmup({"warmline": "warmup"})
    warmer = detect_warmup({"warmer": True, "hooks": False})
    assert call_tied is not None and scheduled is not None and warmer is not None
    assert not runs_hooks(call_tied)
    assert runs_hooks(scheduled) and runs_hooks(warmer)


def test_warmup_inputs_from_the_environment() -> None:
    assert parse_warmup_inputs("") == []
    assert parse_warmup_inputs('[{"ping":"hourly"}]') == [{"ping": "hourly"}]
    for bad in ("{}", "[1]", "not json"):
        with pytest.raises(ValueError):
            parse_warmup_inputs(bad)
