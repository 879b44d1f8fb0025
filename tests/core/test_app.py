"""The App: routing, relay handling, sessions, sending, warm-ups — through the pure core."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from warmline.adapters.compose import from_environment
from warmline.connections.local import LocalConnections
from warmline.core.app import App, Context, Invocation, Response
from warmline.core.events import Connect, ConnectionRef, Disconnect, Headers, Message, WarmUp
from warmline.core.limits import MAX_MESSAGE_BYTES
from warmline.core.relay import End, Text
from warmline.errors import ConfigurationError, RelayValidationError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore

CID = "R1kmxc2VNjMCFIA="
REF = ConnectionRef(connection_id=CID, domain_name="abc.example.com", stage="prod")


def frame(**fields: Any) -> str:
    return json.dumps(fields)


SETUP = frame(
    type="setup",
    sessionId="VX1",
    callSid="CA1",
    accountSid="AC1",
    parentCallSid="",
    **{"from": "+15550100"},
    to="+15550101",
    forwardedFrom="",
    callType="PSTN",
    callerName="",
    direction="inbound",
    callStatus="RINGING",
    customParameters={"tenant": "t1"},
)


def prompt(text: str, last: bool = True) -> str:
    return frame(type="prompt", voicePrompt=text, lang="en-US", last=last)


class Harness:
    """An App wired to a memory store and in-process connections, with logs kept."""

    def __init__(self, **app_kwargs: Any) -> None:
        self.store = MemoryStore()
        self.conns = LocalConnections()
        self.conns.open(CID)
        self.app = App(store=self.store, connections=lambda ref: self.conns, **app_kwargs)
        # composed as an adapter would, from an empty environment (runner, signature check);
        # unsigned handshakes opt out explicitly, as a test of routing (not of signatures)
        self.app.compose(from_environment({}, allow_unsigned=True))
        self.log = StepLogger(keep=True, stream=_Null())

    def invocation(self) -> Invocation:
        return Invocation(cold=False, log=self.log)

    def message(self, body: str, route_key: str = "$default") -> Any:
        return self.app.handle(Message(REF, body, route_key=route_key), self.invocation())

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.conns.sent(CID)]

    def steps(self) -> list[str]:
        assert self.log.records is not None
        return [r["step"] for r in self.log.records]


class _Null:
    def write(self, _: str) -> int:
        return 0


def test_setup_creates_the_session_and_greets() -> None:
    h = Harness()
    h.app.route("setup")(lambda ctx: "Hello")
    assert h.message(SETUP) == Response(200)
    record = h.store.get("VX1")
    assert record is not None
    assert (record.connection_id, record.call_sid, record.version) == (CID, "CA1", 1)
    assert record.data["setup"]["customParameters"] == {"tenant": "t1"}
    assert h.frames() == [{"type": "text", "token": "Hello", "last": True}]


def test_duplicate_setup_keeps_the_first_session() -> None:
    h = Harness()
    h.app.route("setup")(lambda ctx: None)
    h.message(SETUP)
    h.message(SETUP)
    record = h.store.get("VX1")
    assert record is not None and record.version == 1


def test_route_selection_uses_the_relay_type_and_falls_back_to_default() -> None:
    h = Harness()
    seen: list[str] = []
    h.app.route("dtmf")(lambda ctx: seen.append("dtmf"))
    h.app.default(lambda ctx: seen.append(f"default:{type(ctx.message).__name__}"))
    h.message(frame(type="dtmf", digit="5"))
    h.message(frame(type="info", name="roundTripDelayMs", value="120"))
    h.message(frame(type="somethingNew", x=1))
    assert seen == ["dtmf", "default:Info", "default:UnknownMessage"]


def test_a_custom_route_key_from_api_gateway_wins() -> None:
    h = Harness(protocol="raw", route_selection_expression="$request.body.action")
    seen: list[str] = []
    h.app.route("sendmessage")(lambda ctx: seen.append("send"))
    h.app.default(lambda ctx: seen.append("default"))
    h.message("not json", route_key="sendmessage")
    h.message(frame(action="sendmessage"))
    h.message("not json")
    assert seen == ["send", "send", "default"]


def test_final_prompt_and_interrupt_bump_the_turn_partial_does_not() -> None:
    h = Harness()
    h.app.route("setup")(lambda ctx: None)
    h.app.route("prompt")(lambda ctx: None)
    h.app.route("interrupt")(lambda ctx: None)
    h.message(SETUP)
    h.message(prompt("hel", last=False))
    assert h.store.get("VX1").turn == 0  # type: ignore[union-attr]
    h.message(prompt("hello"))
    assert h.store.get("VX1").turn == 1  # type: ignore[union-attr]
    h.message(frame(type="interrupt", utteranceUntilInterrupt="Sure", durationUntilInterruptMs=460))
    assert h.store.get("VX1").turn == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    ["{not json", "[1, 2]", '{"no": "type"}', '"just a string"', "\udcff", ""],
)
def test_malformed_frames_are_logged_and_nothing_is_stored_or_sent(body: str) -> None:
    h = Harness()
    called: list[str] = []
    h.app.default(lambda ctx: called.append("x"))
    assert h.message(body).status_code == 400
    assert called == []
    assert h.frames() == []
    assert h.store.by_connection(CID) is None
    assert h.steps() == ["malformed_frame"]


def test_an_oversize_body_is_rejected_before_parsing() -> None:
    h = Harness()
    h.app.default(lambda ctx: pytest.fail("must not be called"))
    big = frame(type="prompt", voicePrompt="x" * MAX_MESSAGE_BYTES, lang="en", last=True)
    assert h.message(big).status_code == 413
    assert h.store.by_connection(CID) is None


def test_generator_streams_tokens_then_closes_the_talk_cycle() -> None:
    h = Harness()

    def stream(ctx: Context) -> Iterator[str]:
        yield "Hello "
        yield "there."

    h.app.route("prompt")(stream)
    h.message(prompt("hi"))
    assert h.frames() == [
        {"type": "text", "token": "Hello ", "last": False},
        {"type": "text", "token": "there.", "last": False},
        {"type": "text", "token": "", "last": True},
    ]


def test_async_generator_and_coroutine_handlers_work() -> None:
    h = Harness()

    async def stream(ctx: Context) -> AsyncIterator[Any]:
        yield "one "
        yield Text(token="two", last=True)

    async def ending(ctx: Context) -> Any:
        return End(handoff_data={"reason": "agent"})

    h.app.route("prompt")(stream)
    h.app.route("dtmf")(ending)
    h.message(prompt("hi"))
    h.message(frame(type="dtmf", digit="0"))
    h.app.close()
    assert h.frames() == [
        {"type": "text", "token": "one ", "last": False},
        {"type": "text", "token": "two", "last": True},
        {"type": "end", "handoffData": '{"reason": "agent"}'},
    ]


def test_a_caller_who_hung_up_stops_the_stream() -> None:
    h = Harness()
    produced: list[int] = []

    def stream(ctx: Context) -> Iterator[str]:
        for i in range(5):
            produced.append(i)
            if i == 2:
                h.conns.close(CID)
            yield f"t{i} "

    h.app.route("prompt")(stream)
    assert h.message(prompt("hi")).status_code == 200
    assert [f["token"] for f in h.frames()] == ["t0 ", "t1 "]
    assert produced == [0, 1, 2]
    assert "gone" in h.steps()


def test_handler_cannot_send_an_invalid_relay_frame() -> None:
    h = Harness()
    h.app.route("prompt")(lambda ctx: {"type": "text"})  # no token
    h.app.route("dtmf")(lambda ctx: Text(token=None))  # type: ignore[arg-type]
    with pytest.raises(RelayValidationError):
        h.message(prompt("x"))
    with pytest.raises(RelayValidationError):
        h.message(frame(type="dtmf", digit="1"))
    assert h.frames() == []


def test_connect_results_map_to_status_codes() -> None:
    for result, status in [(None, 200), (True, 200), (False, 403), (401, 401)]:
        h = Harness()
        h.app.connect(lambda ctx, r=result: r)
        response = h.app.handle(Connect(REF), h.invocation())
        assert response.status_code == status


def test_connect_with_a_bad_twilio_signature_is_403_and_runs_nothing() -> None:
    h = Harness(twilio_auth_token="secret", public_url="wss://abc.example.com/prod")
    h.app.connect(lambda ctx: pytest.fail("must not run"))
    bad = Connect(REF, headers=Headers({"X-Twilio-Signature": "AAAA"}))
    missing = Connect(REF)
    assert h.app.handle(bad, h.invocation()).status_code == 403
    assert h.app.handle(missing, h.invocation()).status_code == 403
    assert h.store.by_connection(CID) is None


def test_connect_with_a_good_twilio_signature_passes() -> None:
    from warmline.twilio.signature import compute_signature

    url = "wss://abc.example.com/prod"
    h = Harness(twilio_auth_token="secret", public_url=url)
    sig = compute_signature(url, {}, "secret")
    response = h.app.handle(
        Connect(REF, headers=Headers({"x-twilio-signature": sig})), h.invocation()
    )
    assert response.status_code == 200


def test_warmups_run_prewarm_hooks_once_and_touch_nothing_else() -> None:
    h = Harness()
    hooks: list[str] = []
    h.app.prewarm(lambda: hooks.append("imported"))
    h.app.default(lambda ctx: pytest.fail("a warm-up must not reach a route"))
    for _ in range(2):
        result = h.app.handle(WarmUp(source="aws.events"), h.invocation())
        assert result["warmup"] is True
    assert hooks == ["imported"]
    assert h.store.by_connection(CID) is None
    assert h.steps() == ["warmup", "warmup"]


def test_disconnect_runs_its_handler() -> None:
    h = Harness()
    seen: list[int | None] = []
    h.app.disconnect(lambda ctx: seen.append(ctx.event.status_code))  # type: ignore[union-attr]
    h.app.handle(Disconnect(REF, status_code=1001, reason="Going away"), h.invocation())
    assert seen == [1001]


def test_routes_are_validated() -> None:
    app = App(store=MemoryStore())
    app.route("prompt")(lambda ctx: None)
    with pytest.raises(ConfigurationError):
        app.route("prompt")(lambda ctx: None)
    with pytest.raises(ConfigurationError):
        app.route("$custom")
    with pytest.raises(ConfigurationError):
        App(route_selection_expression="$request.header.type")
    with pytest.raises(ConfigurationError):
        App(protocol="xml")  # type: ignore[arg-type]


def test_the_turn_fence_moves_even_without_an_interrupt_route() -> None:
    h = Harness()
    h.app.route("prompt")(lambda ctx: None)
    h.message(SETUP)  # no setup route either: the session is still created
    h.message(prompt("hello"))
    h.message(frame(type="interrupt", utteranceUntilInterrupt="", durationUntilInterruptMs=5))
    record = h.store.get("VX1")
    assert record is not None and record.turn == 2


def test_annotating_a_field_the_app_also_logs_does_not_break_the_request() -> None:
    h = Harness()
    h.app.route("prompt")(lambda ctx: ctx.annotate(turn=99, route="mine", sends=7, cold=None))
    assert h.message(prompt("x")).status_code == 200
    assert h.log.records is not None and h.log.records[-1]["turn"] == 99


# --- typed routes ---------------------------------------------------------------------
def test_typed_decorators_register_their_relay_type_and_get_that_message() -> None:
    from warmline.core.relay import Dtmf, Interrupt, Prompt, Setup

    h = Harness()
    seen: list[object] = []

    @h.app.setup
    def on_setup(ctx: Context[Setup]) -> None:
        seen.append(ctx.message)

    @h.app.prompt
    def on_prompt(ctx: Context[Prompt]) -> str:
        seen.append(ctx.message)
        return ctx.message.voice_prompt.upper()

    @h.app.dtmf
    def on_dtmf(ctx: Context[Dtmf]) -> None:
        seen.append(ctx.message)

    @h.app.interrupt
    def on_interrupt(ctx: Context[Interrupt]) -> None:
        seen.append(ctx.message)

    h.message(SETUP)
    h.message(prompt("hi"))
    h.message(frame(type="dtmf", digit="5"))
    h.message(frame(type="interrupt", utteranceUntilInterrupt="H"))

    assert [type(m).__name__ for m in seen] == ["Setup", "Prompt", "Dtmf", "Interrupt"]
    assert sorted(h.app.routes) == ["dtmf", "interrupt", "prompt", "setup"]
    assert h.frames() == [{"type": "text", "token": "HI", "last": True}]
    assert on_prompt is h.app.routes["prompt"]  # the decorator returns the function


@pytest.mark.parametrize(
    "kwargs", [{"protocol": "raw"}, {"route_selection_expression": "$request.body.kind"}]
)
def test_typed_decorators_need_the_relay_protocol_routed_by_type(kwargs: dict[str, Any]) -> None:
    app = App(**kwargs)
    with pytest.raises(ConfigurationError, match="@app.prompt"):
        app.prompt(lambda ctx: None)
    assert app.routes == {}


def test_context_subscript_is_the_class_at_run_time() -> None:
    from warmline.core.relay import Prompt

    assert Context[Prompt] is Context


def test_a_contact_flow_handler_gets_the_turn_and_its_reply_is_collected() -> None:
    from warmline.core.app import FlowReply
    from warmline.core.events import ContactFlow
    from warmline.core.relay import Prompt, Text

    h = Harness()

    @h.app.contact_flow
    def flow(ctx: Context[Prompt | None]) -> Any:
        ctx.annotate(intent="answer")
        assert isinstance(ctx.message, Prompt)
        yield Text(token=ctx.message.voice_prompt)
        yield "!"

    event = ContactFlow("c1", "c0", {}, {}, message=Prompt(voice_prompt="hello", last=True))
    reply = h.app.handle(event, h.invocation())

    assert isinstance(reply, FlowReply)
    assert [getattr(i, "token", i) for i in reply.items] == ["hello", "!"]
    assert reply.fields == {"intent": "answer"} and reply.session is None


def test_contact_flow_writes_are_fenced_to_the_claimed_turn() -> None:
    from warmline.core.events import ContactFlow
    from warmline.core.session import SessionRecord

    h = Harness()
    h.store.put(SessionRecord(session_id="c0", turn=3))
    results: list[object] = []

    @h.app.contact_flow
    def flow(ctx: Context[None]) -> None:
        results.append(ctx.update_session(lambda r: r.evolve(data={"said": "x"})))

    h.app.handle(ContactFlow("c1", "c0", {}, {}, turn=3), h.invocation())
    h.app.handle(ContactFlow("c1", "c0", {}, {}, turn=2), h.invocation())  # a late worker
    stored = h.store.get("c0")

    assert stored is not None and stored.data == {"said": "x"} and stored.version == 2
    assert [getattr(r, "version", None) for r in results] == [2, 2]  # the late one wrote nothing
