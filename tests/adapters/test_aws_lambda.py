"""The Lambda adapter: recorded API Gateway events in, proxy results out."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from warmline.adapters.aws_lambda import lambda_handler, to_event
from warmline.connections.local import LocalConnections
from warmline.core.app import App, Context
from warmline.core.events import Connect, Disconnect, Message, WarmUp, WorkerTask
from warmline.errors import ConfigurationError, InvalidEventError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

EVENTS = Path(__file__).parent.parent / "events"
CID = "R1kmxc2VNjMCFIA="


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


class UnusableStore:
    """A store that fails the test on any use: proves a path never touches sessions."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"the session store was used ({name})")


def make(app: App | None = None, **kwargs: Any) -> tuple[App, Any, LocalConnections, list[Any]]:
    conns = LocalConnections()
    conns.open(CID)
    app = app or App(store=MemoryStore(), connections=lambda ref: conns, **kwargs)
    log = StepLogger(stream=io.StringIO(), keep=True)
    handler = lambda_handler(app, log=log)
    assert log.records is not None
    return app, handler, conns, log.records


def test_connect_fixture_is_normalized_with_case_insensitive_headers() -> None:
    event = to_event(load("apigw/connect.json"))
    assert isinstance(event, Connect)
    assert event.connection.connection_id == CID
    assert event.connection.domain_name == "abc123.execute-api.us-east-1.amazonaws.com"
    assert event.connection.stage == "prod"
    assert event.connection.connected_at_ms == 1705751697419
    assert event.connection.source_ip == "203.0.113.9"
    assert event.headers["X-Twilio-Signature"] == "PLACEHOLDER"


def test_message_and_disconnect_fixtures_are_normalized() -> None:
    message = to_event(load("apigw/message_setup.json"))
    assert isinstance(message, Message)
    assert message.message_id == "R1knPc2ntjMCFIA="
    assert json.loads(message.body)["type"] == "setup"
    gone = to_event(load("apigw/disconnect.json"))
    assert isinstance(gone, Disconnect)
    assert (gone.status_code, gone.reason) == (1001, "Going away")


def test_setup_through_the_handler_stores_the_session_and_answers() -> None:
    app, handler, conns, records = make()
    app.route("setup")(lambda ctx: "Welcome")
    result = handler(load("apigw/message_setup.json"), LambdaContext())
    assert result == {"statusCode": 200}
    stored = app.store.by_call_sid("CA00000000000000000000000000000001")
    assert stored is not None and stored.connection_id == CID
    assert [json.loads(p) for p in conns.sent(CID)] == [
        {"type": "text", "token": "Welcome", "last": True}
    ]
    assert records[-1]["step"] == "message"
    assert records[-1]["cold"] is True
    assert records[-1]["callSid"] == "CA00000000000000000000000000000001"


def test_cold_is_true_only_on_the_first_invocation() -> None:
    app, handler, _, records = make()
    app.route("prompt")(lambda ctx: None)
    body = json.dumps({"type": "prompt", "voicePrompt": "hi", "lang": "en-US", "last": False})
    for _ in range(3):
        handler(websocket_event("MESSAGE", body=body, connection_id=CID), LambdaContext())
    assert [r["cold"] for r in records if r["step"] == "message"] == [True, False, False]


def test_twilio_signature_checked_on_connect_with_the_oracle() -> None:
    from twilio.request_validator import RequestValidator

    url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod?tenant=t1"
    good = RequestValidator("token-1").compute_signature(url, {})
    app, handler, _, _ = make(twilio_auth_token="token-1", public_url=url)
    connected: list[str] = []
    app.connect(lambda ctx: connected.append("yes"))
    event = load("apigw/connect.json")
    event["headers"]["x-twilio-signature"] = good
    assert handler(event, LambdaContext()) == {"statusCode": 200}
    for bad in ("", "AAAA", RequestValidator("other").compute_signature(url, {})):
        forged = copy.deepcopy(event)
        forged["headers"]["x-twilio-signature"] = bad
        assert handler(forged, LambdaContext()) == {"statusCode": 403}
    del event["headers"]["x-twilio-signature"]
    assert handler(event, LambdaContext()) == {"statusCode": 403}
    assert connected == ["yes"]


def test_signature_url_defaults_to_wss_domain_stage_and_query() -> None:
    from twilio.request_validator import RequestValidator

    url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod?tenant=t1"
    app, handler, _, _ = make(twilio_auth_token="token-1")
    event = websocket_event(
        "CONNECT",
        domain_name="abc123.execute-api.us-east-1.amazonaws.com",
        query={"tenant": "t1"},
        headers={"X-Twilio-Signature": RequestValidator("token-1").compute_signature(url, {})},
    )
    assert handler(event, LambdaContext()) == {"statusCode": 200}
    event["queryStringParameters"] = {"tenant": "t2"}
    assert handler(event, LambdaContext()) == {"statusCode": 403}


@pytest.mark.parametrize(
    ("raw", "custom", "source"),
    [
        (
            {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}},
            None,
            "aws.events",
        ),
        ({"source": "serverless-plugin-warmup"}, None, "serverless-plugin-warmup"),
        ({}, {"source": "serverless-plugin-warmup"}, "serverless-plugin-warmup"),
        ({"warmer": True, "concurrency": 3, "test": True}, None, "lambda-warmer"),
        (
            {"warmer": True, "__WARMER_INVOCATION__": 2, "__WARMER_CONCURRENCY__": 3},
            None,
            "lambda-warmer",
        ),
    ],
)
def test_warmups_never_reach_routes_or_the_store(
    raw: dict[str, Any], custom: dict[str, Any] | None, source: str
) -> None:
    app = App(store=UnusableStore())  # type: ignore[arg-type]
    app.default(lambda ctx: pytest.fail("a warm-up reached a route"))
    app.worker(lambda ctx: pytest.fail("a warm-up reached the worker"))
    _, handler, _, records = make(app)
    context = LambdaContext()
    if custom is not None:
        context.client_context = type("CC", (), {"custom": custom})()
    result = handler(raw, context)
    assert result["warmup"] is True
    assert [r["step"] for r in records] == ["warmup"]
    assert records[0]["source"] == source


def test_a_fan_out_that_cannot_invoke_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """No region to invoke in: the first ping reports the one environment it warmed."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    app = App(store=UnusableStore())  # type: ignore[arg-type]
    _, handler, _, records = make(app)
    result = handler({"warmer": True, "concurrency": 3}, LambdaContext())
    assert result["concurrency"] == 1
    assert result["requested"] == 3
    assert result["failed"] == 2
    assert "region" in result["error"]
    fanout = [r for r in records if r["step"] == "warmup_fanout"]
    assert fanout[0]["invoked"] == 0 and fanout[0]["level"] == "warning"


def test_a_test_ping_does_not_fan_out_and_says_so() -> None:
    app = App(store=UnusableStore())  # type: ignore[arg-type]
    _, handler, _, records = make(app)
    result = handler({"warmer": True, "concurrency": 3, "test": True}, LambdaContext())
    assert (result["concurrency"], result["requested"]) == (1, 3)
    assert [r["step"] for r in records] == ["warmup"]


def test_a_call_tied_ping_is_answered_without_running_the_hooks() -> None:
    app = App(store=UnusableStore())  # type: ignore[arg-type]
    ran: list[str] = []
    app.prewarm(lambda: ran.append("hook"))
    _, handler, _, records = make(app)
    result = handler({"warmline": "warmup", "hooks": False}, LambdaContext())
    assert result["warmup"] is True and ran == []
    assert [(r["step"], r["hooks"]) for r in records] == [("warmup", 0)]
    handler({"warmline": "warmup"}, LambdaContext())
    assert ran == ["hook"]


def test_warmup_inputs_declared_in_the_environment_are_pings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARMLINE_WARMUP_INPUTS", '[{"ping": "hourly"}]')
    app = App(store=UnusableStore())  # type: ignore[arg-type]
    app.worker(lambda ctx: pytest.fail("the declared input reached the worker"))
    _, handler, _, _ = make(app)
    assert handler({"ping": "hourly"}, LambdaContext())["warmup"] is True


def test_malformed_warmup_inputs_fail_at_composition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMLINE_WARMUP_INPUTS", "{not json")
    with pytest.raises(ConfigurationError, match="WARMLINE_WARMUP_INPUTS"):
        make(App(store=UnusableStore()))  # type: ignore[arg-type]


def test_a_configured_constant_input_is_a_warmup() -> None:
    app = App(store=UnusableStore())  # type: ignore[arg-type]
    log = StepLogger(stream=io.StringIO(), keep=True)
    handler = lambda_handler(app, constant_warmup_inputs=[{"ping": "keep-warm"}], log=log)
    assert handler({"ping": "keep-warm"}, LambdaContext())["warmup"] is True


def test_remaining_time_is_capped_by_the_29_second_integration_timeout() -> None:
    app, handler, _, _ = make(protocol="raw")
    seen: list[int] = []
    app.default(lambda ctx: seen.append(ctx.remaining_ms()))
    handler(websocket_event("MESSAGE", body="x"), LambdaContext(timeout_s=900))
    handler(websocket_event("MESSAGE", body="x"), LambdaContext(timeout_s=3))
    assert 28_000 < seen[0] <= 29_000
    assert 2_000 < seen[1] <= 3_000


def test_sqs_batch_reports_only_failed_items() -> None:
    app, handler, _, _ = make()
    done: list[str] = []

    def work(ctx: Context) -> None:
        task = ctx.event
        assert isinstance(task, WorkerTask)
        if task.payload.get("fail"):
            raise RuntimeError("boom")
        done.append(task.message_id)

    app.worker(work)
    records = [
        {"messageId": "m1", "body": '{"n": 1}', "eventSource": "aws:sqs", "attributes": {}},
        {"messageId": "m2", "body": '{"fail": true}', "eventSource": "aws:sqs", "attributes": {}},
    ]
    assert handler({"Records": records}, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "m2"}]
    }
    assert done == ["m1"]


def test_sns_record_payload_is_decoded() -> None:
    app, handler, _, _ = make()
    got: list[Any] = []
    app.worker(lambda ctx: got.append(ctx.event.payload))  # type: ignore[union-attr]
    sns = {"EventSource": "aws:sns", "Sns": {"MessageId": "s1", "Message": '{"turn": 2}'}}
    handler({"Records": [sns]}, LambdaContext())
    assert got == [{"turn": 2}]


@pytest.mark.parametrize(
    "raw",
    [
        [1, 2],
        "text",
        None,
        {"requestContext": {"eventType": "WHAT", "connectionId": "c"}},
        {"requestContext": {"eventType": "MESSAGE"}},
        {"Records": [{"eventSource": "aws:kinesis"}]},
        {"Records": [{"eventSource": "aws:sqs", "body": "not json"}]},
        {"Name": "ContactFlowEvent", "Details": "x"},
        {"Name": "ContactFlowEvent", "Details": {"ContactData": {"ContactId": 5}}},
    ],
)
def test_unknown_or_broken_events_get_a_clear_400(raw: Any) -> None:
    app, handler, _, records = make()
    assert handler(raw, LambdaContext()) == {"statusCode": 400}
    assert records[-1]["step"] == "invalid_event"


def test_to_event_rejects_non_objects() -> None:
    with pytest.raises(InvalidEventError):
        to_event([1])
    assert isinstance(to_event({"source": "serverless-plugin-warmup"}), WarmUp)


def test_a_connect_event_goes_through_the_apps_contact_flow_handler() -> None:
    """Without connect_handler's deadline and retries, lambda_handler still answers a
    contact flow with the flat map, from the App's @app.contact_flow handler."""
    from warmline.agent.app import AgentConfig, build_app

    store = MemoryStore()
    handler = lambda_handler(build_app(store=store), log=StepLogger(io.StringIO()))
    event = json.loads((EVENTS / "connect" / "voice_start.json").read_text())

    result = handler(event, LambdaContext())

    assert result["answer"] == AgentConfig().greeting
    assert result["intent"] == "greeting" and result["next"] == "continue"
    assert all(isinstance(v, str) for v in result.values())
