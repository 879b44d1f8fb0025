"""``warmline call`` against ConversationRelay servers written here: what Twilio would do."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from relay_servers import APP_GREETING, GREETING, relay_server

from warmline.tools.call import CallIdentity, CallOptions, CallResult, parse_script, place_call

#: A deadline for a whole call, far below the turn and greeting waits the tests set: a
#: call that waited one of them out does not finish in time.
CALL_DEADLINE_S = 20.0
LONG_WAIT_S = 60.0


def options(**kw: Any) -> CallOptions:
    return CallOptions(turn_timeout_s=LONG_WAIT_S, greeting_wait_s=LONG_WAIT_S, **kw)


async def call(twiml_url: str, script: str, **kw: Any) -> CallResult:
    steps = parse_script(script.splitlines())
    opts = kw.pop("options", None) or options()
    return await asyncio.wait_for(place_call(twiml_url, steps, options=opts, **kw), CALL_DEADLINE_S)


def test_a_tutorial_server_is_greeted_by_the_twiml_and_one_callsid_runs_end_to_end() -> None:
    async def scenario() -> tuple[CallResult, Any]:
        async with relay_server("tutorial") as server:
            identity = CallIdentity("+15557770001", "+15557770002")
            result = await call(server.twiml_url, "Hello there\nWhat time is it?", call=identity)
            return result, server.recorded

    result, recorded = asyncio.run(scenario())
    assert (result.greeting, result.greeting_source) == (GREETING, "twiml")
    assert [t.answer for t in result.turns] == [
        "You said: Hello there",
        "You said: What time is it?",
    ]
    assert all(t.complete and t.first_token_ms is not None for t in result.turns)
    (twiml_path, _, webhook), (action_path, action_method, action) = recorded.webhooks
    (setup,) = recorded.setups
    assert (twiml_path, action_path, action_method) == ("/twiml", "/action", "POST")
    assert webhook["CallSid"] == setup["callSid"] == action["CallSid"] == result.call_sid
    assert webhook["AccountSid"] == setup["accountSid"] == action["AccountSid"]
    assert webhook["ApplicationSid"] == action["ApplicationSid"]
    assert webhook["ApiVersion"] == action["ApiVersion"] == "2010-04-01"
    assert (webhook["From"], webhook["Caller"]) == ("+15557770001", "+15557770001")
    assert (webhook["To"], webhook["Called"], webhook["CallStatus"]) == (
        "+15557770002",
        "+15557770002",
        "ringing",
    )
    assert setup["customParameters"] == {"tenant": "t1"}
    assert setup["callStatus"] == "RINGING"
    # the caller hung up at the end of the script: Twilio reports a completed session
    assert action["x"] == "1"  # the relative action URL kept its query
    assert (action["SessionStatus"], action["CallStatus"]) == ("completed", "completed")
    assert action["SessionId"] == setup["sessionId"]
    assert action["SessionDuration"].isdigit()
    assert "HandoffData" not in action and "ErrorCode" not in action
    assert recorded.closes == [1000]


def test_get_webhooks_carry_the_form_in_the_query() -> None:
    async def scenario() -> Any:
        async with relay_server("tutorial", method="GET") as server:
            await call(server.twiml_url, "Hi", method="GET")
            return server.recorded

    recorded = asyncio.run(scenario())
    assert [(path, method) for path, method, _ in recorded.webhooks] == [
        ("/twiml", "GET"),
        ("/action", "GET"),
    ]
    assert recorded.webhooks[1][2]["SessionStatus"] == "completed"


def test_every_outbound_type_is_shown_and_invalid_frames_are_answered_as_twilio_does() -> None:
    shown: list[tuple[str, str | None]] = []
    script = "\n".join(
        [
            "some music please",
            "send the digits",
            "speak spanish",
            "this is broken",
            "dtmf: 5",
            "tell me a long story",
            "interrupt after 2",
            "the stubborn rules",
            "interrupt after 1",
            "bye now",
            "never said",
        ]
    )

    async def scenario() -> tuple[CallResult, Any]:
        attributes = ' dtmfDetection="true" interruptible="speech"'
        async with relay_server("everything", extra_attributes=attributes) as server:
            opts = options(on_frame=lambda f, problem: shown.append((str(f.get("type")), problem)))
            return await call(server.twiml_url, script, options=opts), server.recorded

    result, recorded = asyncio.run(scenario())
    assert (result.greeting, result.greeting_source) == (APP_GREETING, "app")
    music, digits, spanish, broken, key, long, stubborn, bye = result.turns
    assert music.frames == [{"type": "play", "source": "https://example.com/hold.mp3", "loop": 2}]
    assert digits.frames == [{"type": "sendDigits", "digits": "12w#"}]
    assert [f["type"] for f in spanish.frames] == ["language", "text"]
    assert spanish.answer == "Hola."
    # the language switch changed what later prompts are transcribed in
    assert (digits.lang, broken.lang) == ("en-US", "es-ES")
    assert broken.answer == "Okay." and broken.complete
    assert [i["problem"] is not None for i in result.invalid] == [True, True, True]
    assert [i["frame"].get("type") for i in result.invalid] == ["sendDigits", "play", None]
    errors = recorded.received("error")
    assert len(errors) == result.errors_sent == 3
    assert all("64107" in e["description"] for e in errors)
    assert "this is not json" in errors[2]["description"]
    assert key.answer == "key 5" and key.sent
    assert long.interrupted and long.answer == "part 0 part 1 "
    (interrupt,) = recorded.received("interrupt")
    assert interrupt["utteranceUntilInterrupt"] == "part 0 part 1 "
    assert not stubborn.interrupted and stubborn.note and stubborn.complete
    assert stubborn.answer == "rule 0 rule 1 rule 2 "
    # ``end`` ended the session; the last step was never said
    assert bye.answer == "Goodbye." and result.end is not None
    assert [t.prompt for t in result.turns][-1] == "bye now"
    assert ("play", None) in shown and ("sendDigits", None) in shown
    assert ("language", None) in shown and ("end", None) in shown
    assert sum(1 for _, problem in shown if problem) == 3
    (session,) = result.sessions
    assert (session.status, session.handoff_data) == ("ended", '{"reason":"done"}')
    action = recorded.webhooks[-1][2]
    assert (action["SessionStatus"], action["CallStatus"]) == ("ended", "in-progress")
    assert action["HandoffData"] == '{"reason":"done"}'
    json.dumps(result.to_dict())  # all of it goes into --json


def test_ten_invalid_frames_in_a_row_close_the_socket_with_1007_and_fail_the_session() -> None:
    async def scenario() -> tuple[CallResult, Any]:
        async with relay_server("everything") as server:
            return await call(server.twiml_url, "flood\nstill there?"), server.recorded

    result, recorded = asyncio.run(scenario())
    assert len(recorded.received("error")) == result.errors_sent == 10
    assert recorded.closes == [1007]
    assert result.closed == "1007 Too many consecutive malformed messages."
    assert [t.prompt for t in result.turns] == ["flood"]
    action = recorded.webhooks[-1][2]
    assert (action["SessionStatus"], action["ErrorCode"]) == ("failed", "64105")
    assert action["ErrorMessage"] == "Websocket ended"


def test_an_action_that_connects_again_continues_the_call_on_a_new_session() -> None:
    async def scenario() -> tuple[CallResult, Any]:
        async with relay_server("everything", reconnects=1) as server:
            return await call(server.twiml_url, "hello\nbye\nafter the reconnect"), server.recorded

    result, recorded = asyncio.run(scenario())
    first, second = recorded.setups
    assert first["callSid"] == second["callSid"] == result.call_sid
    assert first["sessionId"] != second["sessionId"]
    assert (first["callStatus"], second["callStatus"]) == ("RINGING", "IN_PROGRESS")
    assert [s.status for s in result.sessions] == ["ended", "completed"]
    assert result.reconnects == 1
    last = result.turns[-1]
    assert (last.prompt, last.answer, last.session) == ("after the reconnect", "Okay.", 1)
    assert [w[2]["SessionStatus"] for w in recorded.webhooks[1:]] == ["ended", "completed"]


def test_twiml_attributes_decide_what_reaches_the_server() -> None:
    """dtmfDetection off: no key press; partialPrompts: cumulative partials first;
    events: the info frames of the subscribed channels."""
    attributes = ' partialPrompts="true" events="speaker-events tokens-played"'

    async def scenario() -> tuple[CallResult, Any]:
        async with relay_server("tutorial", extra_attributes=attributes) as server:
            return await call(server.twiml_url, "one two three four\ndtmf: 1"), server.recorded

    result, recorded = asyncio.run(scenario())
    prompts = [(p["voicePrompt"], p["last"]) for p in recorded.received("prompt")]
    assert prompts[-1] == ("one two three four", True)
    assert all(not last for _, last in prompts[:-1]) and len(prompts) > 1
    assert all("one two three four".startswith(text) for text, _ in prompts)
    assert recorded.received("dtmf") == []
    assert result.turns[1].note and not result.turns[1].sent
    infos = [(i["name"], i["value"]) for i in recorded.received("info")]
    assert ("clientSpeaking", "on") in infos and ("agentSpeaking", "off") in infos
    assert ("tokensPlayed", "You said: one two three four") in infos


def test_warmline_call_json_shows_every_frame() -> None:
    async def scenario() -> dict[str, Any]:
        async with relay_server("everything") as server:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "warmline",
                "call",
                "--twiml",
                server.twiml_url,
                "--json",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(
                proc.communicate(b"some music please\nsend the digits\nbroken\n"),
                CALL_DEADLINE_S,
            )
            assert proc.returncode == 0
            return dict(json.loads(out))

    report = asyncio.run(scenario())
    music, digits, broken = report["turns"]
    assert music["frames"][0]["type"] == "play"
    assert digits["frames"][0]["type"] == "sendDigits"
    assert len(report["invalidFrames"]) == 3 and report["errorsSent"] == 3
    assert report["sessions"][0]["status"] == "completed"


@pytest.mark.parametrize(
    ("style", "welcome", "expected"),
    [("everything", None, APP_GREETING), ("tutorial", "Hi from the TwiML", "Hi from the TwiML")],
)
def test_a_bare_socket_takes_the_greeting_from_the_command_line(
    style: str, welcome: str | None, expected: str
) -> None:
    """``--ws`` has no TwiML: ``--welcome-greeting`` stands for it, and the caller does not
    wait for the app to greet."""
    from warmline.tools.call import run_call
    from warmline.tools.twilio_side import RelayTwiml

    async def scenario() -> CallResult:
        async with relay_server(style) as server:
            relay = RelayTwiml.for_socket(server.ws_url, welcome_greeting=welcome)
            steps = parse_script(["hello"])
            return await asyncio.wait_for(
                run_call(server.ws_url, steps, relay=relay, options=options()), CALL_DEADLINE_S
            )

    result = asyncio.run(scenario())
    assert result.greeting == expected
    assert result.turns[0].answer in ("Okay.", "You said: hello")


def test_a_turn_is_timed_from_before_the_prompt_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's clock jumps a second while the prompt is being sent: a turn timed from
    before the send includes that second, one timed after ``send()`` returned does not."""
    import time

    from warmline.tools import relay_caller

    offset = [0.0]

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return time.perf_counter() + offset[0]

    class SlowSend:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def __aiter__(self) -> Any:
            return self.inner.__aiter__()

        async def send(self, message: str) -> None:
            if json.loads(message).get("type") == "prompt":
                offset[0] += 1.0
            await self.inner.send(message)

    run = relay_caller.RelaySession.run

    async def run_slowly(self: Any, ws: Any, script: Any) -> None:
        await run(self, SlowSend(ws), script)

    monkeypatch.setattr(relay_caller, "time", Clock)
    monkeypatch.setattr(relay_caller.RelaySession, "run", run_slowly)

    async def scenario() -> CallResult:
        async with relay_server("tutorial") as server:
            return await call(server.twiml_url, "Hello")

    (turn,) = asyncio.run(scenario()).turns
    assert turn.first_token_ms is not None and turn.first_token_ms >= 1000
