"""The TwiML and action webhooks through the Lambda adapter (function URL events)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from warmline.adapters.aws_lambda import lambda_handler
from warmline.core.app import App
from warmline.core.session import SessionRecord
from warmline.errors import ConfigurationError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, http_event
from warmline.twilio.twiml import RelaySettings
from warmline.twilio.voice import mount_voice

TOKEN = "twilio-token"
HOST = "abc123.lambda-url.us-east-1.on.aws"
WSS = "wss://ws.example.com/prod"


def signed(path: str, form: dict[str, str], query: str = "") -> dict[str, Any]:
    from twilio.request_validator import RequestValidator

    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    return http_event(
        "POST", path, form=form, query=query, headers={"X-Twilio-Signature": signature}
    )


def make(**kwargs: Any) -> tuple[Any, MemoryStore, list[dict[str, Any]]]:
    store = MemoryStore()
    app = App(store=store, twilio_auth_token=TOKEN)
    settings = RelaySettings(url=WSS, welcome_greeting="Hi there", dtmf_detection=True)
    mount_voice(app, settings, **kwargs)
    log = StepLogger(stream=io.StringIO(), keep=True)
    assert log.records is not None
    return lambda_handler(app, log=log), store, log.records


CALL = {"CallSid": "CA1", "From": "+15550100", "To": "+15550101", "Direction": "inbound"}


def test_incoming_call_gets_connect_conversation_relay() -> None:
    handler, _, records = make()
    result = handler(signed("/twiml", CALL, query="lang=en"), LambdaContext())
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"] == "text/xml"
    root = ET.fromstring(result["body"].split("?>", 1)[1])
    connect = root.find("Connect")
    assert connect is not None
    assert connect.get("action") == f"https://{HOST}/cr-action"
    relay = connect.find("ConversationRelay")
    assert relay is not None
    assert (relay.get("url"), relay.get("welcomeGreeting"), relay.get("dtmfDetection")) == (
        WSS,
        "Hi there",
        "true",
    )
    assert records[-1]["callSid"] == "CA1"


@pytest.mark.parametrize("signature", [None, "AAAA"])
def test_unsigned_or_wrongly_signed_webhooks_get_403(signature: str | None) -> None:
    handler, _, _ = make()
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    event = http_event("POST", "/twiml", form=CALL, headers=headers)
    assert handler(event, LambdaContext())["statusCode"] == 403


def test_a_signature_for_other_params_is_rejected() -> None:
    handler, _, _ = make()
    event = signed("/twiml", CALL)
    event["body"] = event["body"].replace("CA1", "CA2")
    assert handler(event, LambdaContext())["statusCode"] == 403


def test_action_records_the_end_and_dials_a_human_on_handoff() -> None:
    handler, store, _ = make(handoff_number="+15550123")
    store.put(SessionRecord(session_id="VX1", connection_id="c", call_sid="CA1"))
    form = {
        "CallSid": "CA1",
        "SessionId": "VX1",
        "SessionStatus": "ended",
        "SessionDuration": "42",
        "HandoffData": json.dumps({"reason": "handoff", "topic": "billing"}),
        "CallStatus": "in-progress",
    }
    result = handler(signed("/cr-action", form), LambdaContext())
    root = ET.fromstring(result["body"].split("?>", 1)[1])
    assert root.findtext("Dial") == "+15550123"
    record = store.get("VX1")
    assert record is not None
    assert record.data["end"]["SessionStatus"] == "ended"
    assert json.loads(record.data["end"]["HandoffData"])["topic"] == "billing"


def test_action_hangs_up_when_the_caller_hung_up_or_no_number() -> None:
    handler, store, _ = make(handoff_number="+15550123")
    form = {"CallSid": "CA9", "SessionId": "VX9", "SessionStatus": "completed"}
    result = handler(signed("/cr-action", form), LambdaContext())
    root = ET.fromstring(result["body"].split("?>", 1)[1])
    assert root.find("Hangup") is not None and root.find("Dial") is None
    handler2, _, _ = make()
    form = {"CallSid": "CA1", "SessionId": "VX1", "HandoffData": '{"reason":"handoff"}'}
    root = ET.fromstring(handler2(signed("/cr-action", form), LambdaContext())["body"][38:])
    assert root.find("Hangup") is not None


def test_failed_sessions_keep_the_error_code() -> None:
    handler, store, _ = make()
    store.put(SessionRecord(session_id="VX2", connection_id="c", call_sid="CA2"))
    form = {
        "CallSid": "CA2",
        "SessionId": "VX2",
        "SessionStatus": "failed",
        "ErrorCode": "64105",
        "ErrorMessage": "Websocket ended",
    }
    handler(signed("/cr-action", form), LambdaContext())
    record = store.get("VX2")
    assert record is not None and record.data["end"]["ErrorCode"] == "64105"


def test_unknown_paths_and_methods() -> None:
    handler, _, _ = make()
    assert handler(http_event("GET", "/nope"), LambdaContext())["statusCode"] == 404
    result = handler(http_event("DELETE", "/cr-action"), LambdaContext())
    assert result["statusCode"] == 405 and result["headers"]["Allow"] == "GET, POST"


def test_an_action_requested_with_get_reads_its_query() -> None:
    """``<Connect method="GET">``: Twilio puts the parameters in the query string and signs
    the whole URL with no parameters (docs/protocols.md §1.5)."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    handler, store, _ = make(handoff_number="+15550123")
    store.put(SessionRecord(session_id="VX3", connection_id="c", call_sid="CA3"))
    form = {"CallSid": "CA3", "SessionId": "VX3", "SessionStatus": "ended", "HandoffData": "{}"}
    query = urlencode(form)
    signature = RequestValidator(TOKEN).compute_signature(f"https://{HOST}/cr-action?{query}", {})
    event = http_event("GET", "/cr-action", query=query, headers={"X-Twilio-Signature": signature})
    result = handler(event, LambdaContext())
    assert result["statusCode"] == 200 and "<Dial" in result["body"]
    record = store.get("VX3")
    assert record is not None and record.data["end"]["SessionStatus"] == "ended"


def unsigned_app(monkeypatch: pytest.MonkeyPatch, **app_kwargs: Any) -> tuple[Any, Any]:
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_PARAMETER", "WARMLINE_ALLOW_UNSIGNED"):
        monkeypatch.delenv(name, raising=False)
    app = App(store=MemoryStore(), **app_kwargs)
    mount_voice(app, RelaySettings(url=WSS), handoff_number="+15550123")
    log = StepLogger(stream=io.StringIO(), keep=True)
    return lambda_handler(app, log=log), log.records


@pytest.mark.parametrize("path", ["/twiml", "/cr-action"])
def test_without_a_token_the_webhooks_are_refused_and_say_why(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Fail closed: no token and no opt-out is a 403 (nothing dialed, nothing recorded)."""
    handler, records = unsigned_app(monkeypatch)
    form = {**CALL, "SessionId": "VX1", "HandoffData": '{"reason":"handoff"}'}
    result = handler(http_event("POST", path, form=form), LambdaContext())
    assert (result["statusCode"], result["body"]) == (403, "invalid signature")
    refused = [r for r in records if r["step"] == "unsigned_refused"]
    assert len(refused) == 1 and "TWILIO_AUTH_TOKEN" in refused[0]["error"]
    assert refused[0]["level"] == "error"


def test_an_explicit_opt_out_serves_unsigned_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    handler, records = unsigned_app(monkeypatch, allow_unsigned=True)
    result = handler(http_event("POST", "/twiml", form=CALL), LambdaContext())
    assert result["statusCode"] == 200 and "<ConversationRelay" in result["body"]
    assert not [r for r in records if r["step"] == "unsigned_refused"]


def test_an_unreadable_token_answers_500_even_when_unsigned_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A configured secret that cannot be read never turns into "no token"."""

    def unreadable() -> str:
        raise ConfigurationError("cannot reach SSM for parameter '/voice/token'")

    handler, records = unsigned_app(monkeypatch, twilio_auth_token=unreadable, allow_unsigned=True)
    result = handler(http_event("POST", "/twiml", form=CALL), LambdaContext())
    assert result["statusCode"] == 500
    assert [r["error"] for r in records if r["step"] == "secret_unavailable"] == [
        "cannot reach SSM for parameter '/voice/token'"
    ]


def _connect_of(result: dict[str, Any]) -> ET.Element | None:
    root = ET.fromstring(result["body"].split("?>", 1)[1])
    return root.find("Connect")


def test_a_reconnect_end_connects_the_call_again_naming_its_session() -> None:
    from warmline.core import reconnect

    handler, store, records = make(reconnect_url="wss://healthy.example.com/ws")
    store.put(SessionRecord(session_id="VX1", connection_id="c", call_sid="CA1"))
    form = {
        "CallSid": "CA1",
        "SessionId": "VX1",
        "SessionStatus": "ended",
        "CallStatus": "in-progress",
        "HandoffData": reconnect.handoff_data("drain", "VX1"),
    }
    connect = _connect_of(handler(signed("/cr-action", form), LambdaContext()))
    assert connect is not None and connect.get("action") == f"https://{HOST}/cr-action"
    relay = connect.find("ConversationRelay")
    assert relay is not None
    assert relay.get("url") == "wss://healthy.example.com/ws"
    assert relay.get("welcomeGreeting") == "Hi there"  # the call's own settings otherwise
    params = {p.get("name"): p.get("value") for p in relay.findall("Parameter")}
    assert params == {reconnect.RESUME_PARAMETER: "VX1"}
    record = store.get("VX1")
    assert record is not None and reconnect.is_marked(record) and reconnect.moves(record) == 1
    assert records[-1]["reconnect"] == "VX1"


def test_a_dropped_socket_on_a_live_call_reconnects_to_the_relay_url_by_default() -> None:
    handler, store, _ = make(handoff_number="+15550123")
    store.put(SessionRecord(session_id="VX2", connection_id="c", call_sid="CA2"))
    form = {
        "CallSid": "CA2",
        "SessionId": "VX2",
        "SessionStatus": "failed",
        "CallStatus": "in-progress",
        "ErrorCode": "64105",
    }
    connect = _connect_of(handler(signed("/cr-action", form), LambdaContext()))
    assert connect is not None
    relay = connect.find("ConversationRelay")
    assert relay is not None and relay.get("url") == WSS


def test_reconnects_stop_after_the_cap_and_when_turned_off() -> None:
    from warmline.core import reconnect

    handler, store, records = make()
    data = {"reconnects": reconnect.MAX_RECONNECTS}
    store.put(SessionRecord(session_id="VX3", connection_id="c", call_sid="CA3", data=data))
    form = {"CallSid": "CA3", "SessionId": "VX3", "SessionStatus": "failed"}
    form["CallStatus"] = "in-progress"
    result = handler(signed("/cr-action", form), LambdaContext())
    assert _connect_of(result) is None and "<Hangup" in result["body"]
    assert any(r["step"] == "reconnect_refused" for r in records)
    off, store_off, _ = make(reconnect=False)
    store_off.put(SessionRecord(session_id="VX3", connection_id="c", call_sid="CA3"))
    assert _connect_of(off(signed("/cr-action", form), LambdaContext())) is None
    # A call the caller ended is not connected again.
    handler3, store3, _ = make()
    store3.put(SessionRecord(session_id="VX4", connection_id="c", call_sid="CA4"))
    done = {"CallSid": "CA4", "SessionId": "VX4", "SessionStatus": "completed"}
    done["CallStatus"] = "completed"
    assert _connect_of(handler3(signed("/cr-action", done), LambdaContext())) is None
