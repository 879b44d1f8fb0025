"""Hostile Lambda events: ``to_event`` and the whole ``lambda_handler`` on garbage.

The promise (DESIGN: "never raises for bad input from the peer"): ``to_event`` raises only
``InvalidEventError`` (or returns an event), and the Lambda handler around the reference
agent returns a proxy result -- a 4xx for garbage -- instead of raising, whatever the
event holds: any JSON value, a real event with fields of the wrong type, deep nesting,
lone surrogates, huge strings.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from hostile_strategies import EXAMPLES, deep, deep_json, json_values, mutated
from hypothesis import given, settings

from warmline.adapters.aws_lambda import lambda_handler, to_event
from warmline.agent.app import build_app
from warmline.connections.local import LocalConnections
from warmline.core.events import Event, WorkerTask
from warmline.errors import InvalidEventError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, http_event, websocket_event

FIXED_NOW_MS = 1_767_225_600_000

SETUP = json.dumps(
    {"type": "setup", "sessionId": "VX1", "callSid": "CA1", "from": "+15550100", "to": "+1555"}
)
TEMPLATES: list[dict[str, Any]] = [
    websocket_event("CONNECT", headers={"X-Twilio-Signature": "abc"}, now_ms=FIXED_NOW_MS),
    websocket_event("MESSAGE", body=SETUP, now_ms=FIXED_NOW_MS),
    websocket_event("MESSAGE", body='{"type":"prompt","voicePrompt":"hi","last":true}'),
    websocket_event("DISCONNECT", now_ms=FIXED_NOW_MS),
    http_event("POST", "/twiml", form={"CallSid": "CA1", "From": "+15550100"}),
    {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": "m1",
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": "1"},
            },
            {"EventSource": "aws:sns", "Sns": {"MessageId": "s1", "Message": "{}"}},
        ]
    },
    {
        "version": "0",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "resources": ["arn:aws:events:us-east-1:1:rule/x"],
        "detail": {},
    },
    {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {"ContactId": "c1", "Channel": "VOICE"},
            "Parameters": {"utterance": "hi"},
        },
    },
]


def agent_handler() -> tuple[Callable[..., Any], io.StringIO]:
    """The reference agent behind ``lambda_handler``, logging to a buffer."""
    app = build_app(store=MemoryStore(), connections=lambda _ref: LocalConnections())
    out = io.StringIO()
    return lambda_handler(app, log=StepLogger(out)), out


def check_to_event(raw: Any) -> None:
    try:
        result = to_event(raw)
    except InvalidEventError:
        return
    if isinstance(result, list):
        assert all(isinstance(task, WorkerTask) for task in result)
    else:
        assert isinstance(result, Event)


def check_result(result: Any) -> None:
    """A proxy result, an SQS batch report, a warm-up answer, or None (async events)."""
    if result is None:
        return
    assert isinstance(result, dict), result
    if "statusCode" in result:
        assert isinstance(result["statusCode"], int)
        assert 200 <= result["statusCode"] < 500, result


HANDLER, LOG = agent_handler()


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values)
def test_to_event_on_any_json_raises_only_invalid_event(raw: Any) -> None:
    check_to_event(raw)


@pytest.mark.parametrize("index", range(len(TEMPLATES)))
def test_to_event_accepts_every_template(index: int) -> None:
    """The templates themselves are valid, so the mutations below start from real shapes."""
    check_to_event(TEMPLATES[index])
    assert not isinstance(to_event(TEMPLATES[index]), WorkerTask)  # none is read as garbage


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st_data=mutated(TEMPLATES[0]) | mutated(TEMPLATES[1]) | mutated(TEMPLATES[3]))
def test_to_event_websocket_fields_of_wrong_type(st_data: Any) -> None:
    check_to_event(st_data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(mutated(TEMPLATES[4]) | mutated(TEMPLATES[5]) | mutated(TEMPLATES[6]))
def test_to_event_http_records_schedule_fields_of_wrong_type(raw: Any) -> None:
    check_to_event(raw)


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values)
def test_lambda_handler_on_any_json_never_raises(raw: Any) -> None:
    check_result(HANDLER(raw, LambdaContext()))


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    mutated(TEMPLATES[0])
    | mutated(TEMPLATES[1])
    | mutated(TEMPLATES[2])
    | mutated(TEMPLATES[3])
    | mutated(TEMPLATES[4])
    | mutated(TEMPLATES[6])
)
def test_lambda_handler_on_mutated_events_never_raises(raw: Any) -> None:
    check_result(HANDLER(raw, LambdaContext()))


def test_http_body_with_a_lone_surrogate_is_a_400_not_a_crash() -> None:
    """JSON can carry a lone surrogate (``"\\ud800"``) that no UTF-8 encoder accepts."""
    raw = json.loads(
        '{"version": "2.0", "routeKey": "$default", "rawPath": "/twiml", "rawQueryString": "",'
        ' "headers": {"host": "abc123.lambda-url.us-east-1.on.aws"},'
        ' "requestContext": {"domainName": "abc123.lambda-url.us-east-1.on.aws",'
        ' "http": {"method": "POST", "path": "/twiml", "sourceIp": "203.0.113.9"},'
        ' "requestId": "r1", "stage": "$default"},'
        ' "body": "\\ud800", "isBase64Encoded": false}'
    )
    with pytest.raises(InvalidEventError, match="not valid UTF-8"):
        to_event(raw)
    result = HANDLER(raw, LambdaContext())
    assert result["statusCode"] == 400


def test_garbage_object_is_a_400_not_a_crash() -> None:
    """An object of no known shape is an async invoke; with no @app.worker it is a 400."""
    handler, out = agent_handler()
    assert handler({"hello": "world"}, LambdaContext()) == {"statusCode": 400}
    assert '"invalid_event"' in out.getvalue()


@pytest.mark.parametrize(
    ("field", "value"),
    [("connectedAt", "yesterday"), ("connectedAt", 1e400), ("requestTimeEpoch", [1])],
)
def test_bad_numbers_in_request_context_do_not_crash(field: str, value: Any) -> None:
    """Found by this suite: ``int("yesterday")`` used to escape as ValueError."""
    event = websocket_event("MESSAGE", body=SETUP)
    event["requestContext"][field] = value
    check_to_event(event)
    check_result(HANDLER(event, LambdaContext()))


@pytest.mark.parametrize("count", ["x", 1e400, [], {"a": 1}])
def test_bad_sqs_receive_count_does_not_crash(count: Any) -> None:
    """Found by this suite: a non-numeric ApproximateReceiveCount escaped as ValueError."""
    event = {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": count},
            }
        ]
    }
    check_to_event(event)


def test_deeply_nested_event_10000_levels() -> None:
    """10,000 levels in the event and in the body: a 4xx or a clean drop, no RecursionError."""
    event = websocket_event("MESSAGE", body=deep_json(10_000))
    event["requestContext"]["extra"] = deep(10_000)
    check_to_event(event)
    check_result(HANDLER(event, LambdaContext()))
    check_result(HANDLER(deep(10_000), LambdaContext()))


@pytest.mark.parametrize(
    "body",
    [
        "x" * 2_000_000,  # far over 128 KB
        '{"type":"prompt","voicePrompt":"' + "a" * 200_000 + '","last":true}',
        '{"type":"setup","callSid":"\ud800"}',
        "\ud800\udfff\x00",
        '{"type":"prompt","voicePrompt":"hi","last":true,"n":' + "9" * 5000 + "}",
    ],
    ids=["2MB-text", "200KB-prompt", "lone-surrogate-field", "surrogate-body", "5000-digit-int"],
)
def test_oversized_and_broken_bodies(body: str) -> None:
    event = websocket_event("MESSAGE", body=body)
    check_result(HANDLER(event, LambdaContext()))


def test_base64_body_of_invalid_utf8() -> None:
    event = websocket_event("MESSAGE", body="/w==")  # base64 of b"\xff"
    event["isBase64Encoded"] = True
    check_result(HANDLER(event, LambdaContext()))
    http = http_event("POST", "/twiml")
    http["body"], http["isBase64Encoded"] = "***not base64***", True
    assert HANDLER(http, LambdaContext()) == {"statusCode": 400}
